"""``openai:<model>``: any server that speaks OpenAI's ``/v1/chat/completions`` (vLLM, SGLang,
Ollama, llama.cpp, hosted APIs).

Servers are flaky, so a request that fails in a way that may pass (429, 5xx, a timeout, a
dropped connection, a body that is cut short, not JSON or malformed) is retried with
exponential backoff and full jitter, honouring Retry-After; a request that cannot pass
(401/403/404) raises :class:`FatalModelError` at once, so the run stops instead of failing
every sample the same way. Replies are cached on disk by request, so a rerun costs nothing.
The API key is sent, never written: it is absent from errors, results and the cache.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import json
import os
import random
import re
import ssl
import tempfile
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from functools import cache, lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlparse
from urllib.request import url2pathname

import cv2
import httpx
import numpy as np
import pydantic_core
from PIL import Image

from roadthink.errors import FatalModelError, RoadthinkError
from roadthink.models.base import register
from roadthink.models.types import Completion, Message, TextPart, TokenLogprob, ToolCall

DEFAULT_BASE_URL = "https://api.openai.com/v1"
DEFAULT_CACHE_DIR = Path("~/.cache/roadthink/responses")
FATAL_HINTS = {
    401: "check OPENAI_API_KEY",
    403: "check OPENAI_API_KEY and what it may access",
    404: "check the base URL and the model name",
}
PASS_THROUGH = ("data:", "http://", "https://")
SNIPPET = 200  # characters of a server's error body quoted in a message


class ModelError(RoadthinkError):
    """A request that failed for good: the runner records it against the sample and goes on."""


class _Transient(Exception):
    """A failure worth another try, with the server's requested wait when it gave one."""

    def __init__(self, reason: str, wait: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.wait = wait


def backoff_delay(attempt: int, base: float, cap: float, rng: random.Random) -> float:
    """Full jitter (AWS's scheme): uniform in [0, min(cap, base·2^attempt)], so clients that
    failed together do not retry together."""
    return rng.uniform(0.0, min(cap, base * 2**attempt))


def retry_after(value: str | None, now: datetime, cap: float) -> float | None:
    """Seconds a Retry-After header asks to wait (delta-seconds or an HTTP date), at most
    ``cap``; None when absent or unreadable."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = (parsedate_to_datetime(value) - now).total_seconds()
        except (TypeError, ValueError):
            return None
    return min(max(seconds, 0.0), cap)


async def image_data_url(url: str, max_side: int) -> str:
    """What the server is sent for an image: data: and http(s): URLs as they are; a file:
    URL as a base64 data URL, scaled down (aspect kept) so its longer side is at most
    ``max_side``. PNG and JPEG files that already fit are sent byte for byte. Decoding and
    scaling (milliseconds to tens of them) run in a thread, so other requests keep flowing;
    the rest runs at once, being cheaper than a thread's hand-off."""
    key = image_key(url, max_side)
    if key is None:
        return url
    return _as_is(*key) or await asyncio.to_thread(_scaled, *key)


def image_key(url: str, max_side: int) -> tuple[Path, int, int, int] | None:
    """What an encoded image is cached under: the file a file: URL names, its size and mtime
    (which tell a rewritten file) and ``max_side``; None for data: and http(s): URLs."""
    if url.startswith(PASS_THROUGH):
        return None
    if not url.startswith("file:"):
        raise ValueError(f"image URL {url[:60]!r}: expected file:, data: or http(s):")
    path = Path(url2pathname(urlparse(url).path))
    try:
        stat = path.stat()
    except OSError as e:
        raise ValueError(f"{path}: cannot read image ({e.strerror})") from None
    return path, stat.st_size, stat.st_mtime_ns, max_side


@lru_cache(maxsize=32)  # one scene's images go with several of its samples
def _as_is(path: Path, size: int, mtime_ns: int, max_side: int) -> str | None:
    """The data URL of a whole PNG or JPEG whose longer side is at most ``max_side``, its bytes
    as they are; None for any other file. Read from the header (and a PNG's chunk checksums,
    so a torn file is not sent) without decoding a pixel: decoding costs a hundred times more."""
    raw = _read(path)
    try:
        with Image.open(io.BytesIO(raw), formats=("PNG", "JPEG")) as image:
            kind, fits = image.format.lower(), max(image.size) <= max_side
            image.verify()
    except Exception:  # PIL raises OSError, SyntaxError, struct.error… on bad bytes: _scaled judges those
        return None
    return _data_url(raw, kind) if fits else None


@lru_cache(maxsize=32)
def _scaled(path: Path, size: int, mtime_ns: int, max_side: int) -> str:
    """The image decoded, scaled down to fit and encoded again: a JPEG as JPEG, else as PNG."""
    raw = _read(path)
    image = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"{path}: not an image")
    height, width = image.shape[:2]
    scale = min(1.0, max_side / max(height, width))
    if scale < 1:
        target = (max(1, round(width * scale)), max(1, round(height * scale)))
        image = cv2.resize(image, target, interpolation=cv2.INTER_AREA)
    kind = "jpeg" if raw.startswith(b"\xff\xd8\xff") else "png"
    encoded = cv2.imencode(f".{kind}", image, [cv2.IMWRITE_JPEG_QUALITY, 90] if kind == "jpeg" else [])[1]
    return _data_url(encoded.tobytes(), kind)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise ValueError(f"{path}: cannot read image ({e.strerror})") from None


def _data_url(raw: bytes, kind: str) -> str:
    return f"data:image/{kind};base64,{base64.b64encode(raw).decode()}"


def wire_message(message: Message, images: Mapping[str, str]) -> dict[str, Any]:
    """``message`` in OpenAI's JSON shape, its image URLs replaced by ``images[url]``."""
    out: dict[str, Any] = {"role": message.role}
    if isinstance(message.content, str):
        out["content"] = message.content
    else:
        out["content"] = [
            {"type": "text", "text": p.text}
            if isinstance(p, TextPart)
            else {"type": "image_url", "image_url": _image_field(images[p.image_url.url], p.image_url.detail)}
            for p in message.content
        ]
    if message.tool_calls:
        out["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in message.tool_calls
        ]
    if message.tool_call_id is not None:
        out["tool_call_id"] = message.tool_call_id
    return out


def _image_field(url: str, detail: str) -> dict[str, str]:
    """``detail`` only when asked for: some servers reject fields they do not know."""
    return {"url": url} if detail == "auto" else {"url": url, "detail": detail}


def completion_from(data: dict[str, Any], latency_s: float) -> Completion:
    """The first choice of a chat.completion object; content as a string or as text parts,
    tool-call arguments as a string or (some servers) an object."""
    message = data["choices"][0].get("message") or {}
    content = message.get("content") or ""
    if isinstance(content, list):
        content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
    calls = [
        ToolCall(
            id=c.get("id") or f"call_{i}",
            name=(c.get("function") or {}).get("name", ""),
            arguments=_arguments((c.get("function") or {}).get("arguments", "")),
        )
        for i, c in enumerate(message.get("tool_calls") or [])
    ]
    usage = data.get("usage") or {}
    return Completion(
        text=content,
        tool_calls=calls,
        logprobs=_logprobs(data["choices"][0].get("logprobs")),
        prompt_tokens=int(usage.get("prompt_tokens") or 0),
        completion_tokens=int(usage.get("completion_tokens") or 0),
        latency_s=latency_s,
        raw=data,
    )


def _logprobs(value: Any) -> list[TokenLogprob] | None:
    """OpenAI's ``choices[0].logprobs.content``; None when the server gave none."""
    content = value.get("content") if isinstance(value, dict) else None
    if not isinstance(content, list):
        return None
    return [
        TokenLogprob(
            token=str(entry.get("token", "")),
            logprob=float(entry.get("logprob", 0.0)),
            top={str(t.get("token", "")): float(t.get("logprob", 0.0)) for t in entry.get("top_logprobs") or []},
        )
        for entry in content
        if isinstance(entry, dict)
    ]


def _arguments(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def cache_key(base_url: str, model: str, body: dict[str, Any]) -> str:
    """The request's identity: the same body to the same model at the same server."""
    text = json.dumps([base_url, model, body], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def read_cached(path: Path) -> Completion | None:
    """A stored completion; a missing or corrupt file is a miss (and is overwritten later)."""
    try:
        return Completion.model_validate_json(path.read_bytes())
    except (OSError, ValueError):
        return None


def write_cached(path: Path, completion: Completion) -> None:
    """Atomic: a reader sees the old file or the whole new one, never half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(completion.model_dump_json())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class OpenAIModel:
    """A model behind an OpenAI-compatible server. ``generate`` options ``temperature``,
    ``max_tokens``, ``tools`` and ``tool_choice`` override the settings, ``logprobs=True``
    (and ``top_logprobs``) asks for token log-probabilities; others (the runner's ``sample``,
    ``scene``, ``seed``) are ignored: a real model reads only messages."""

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: float = 60.0,
        max_retries: int = 5,
        max_image_side: int = 1024,
        cache: bool = True,
        cache_dir: Path | str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        backoff: float = 0.5,
        max_wait: float = 60.0,
    ) -> None:
        if not model:
            raise RoadthinkError("openai: needs a model name, e.g. openai:gpt-4o-mini")
        base_url = (base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
        if not base_url.startswith(("http://", "https://")):
            raise RoadthinkError(f"openai:{model}: base URL {_public(base_url)!r} is not http(s)://")
        self.name = f"openai:{model}"
        self.model = model
        self.base_url = base_url
        self._api_key = api_key or os.environ.get("OPENAI_API_KEY") or ""
        self.timeout = timeout
        self.max_retries = max_retries
        self.max_image_side = max_image_side
        self.cache_dir = Path(cache_dir or DEFAULT_CACHE_DIR).expanduser() if cache else None
        self.defaults = {"temperature": temperature, "max_tokens": max_tokens}
        self.backoff = backoff
        self.max_wait = max_wait
        self._rng = random.Random()
        self._idle: dict[asyncio.AbstractEventLoop, list[httpx.AsyncClient]] = {}
        self._reached = False  # whether the server has ever answered, with anything

    def __repr__(self) -> str:
        return f"OpenAIModel({self.model!r}, base_url={_public(self.base_url)!r})"

    async def generate(self, messages: list[Message], **options: Any) -> Completion:
        body = await self.request_body(messages, options)
        path = self.cache_dir / f"{cache_key(self.base_url, self.model, body)}.json" if self.cache_dir else None
        cached = read_cached(path) if path else None
        if cached is not None:
            return cached
        completion = await self._post(body)
        if path:
            write_cached(path, completion)
        return completion

    async def request_body(self, messages: list[Message], options: Mapping[str, Any]) -> dict[str, Any]:
        """The JSON sent, its images encoded (see :func:`image_data_url`)."""
        urls = {url for m in messages for url in m.images}
        images = {url: await image_data_url(url, self.max_image_side) for url in urls}
        body: dict[str, Any] = {"model": self.model, "messages": [wire_message(m, images) for m in messages]}
        for key in ("temperature", "max_tokens", "tools", "tool_choice"):
            value = options.get(key, self.defaults.get(key))
            if value is not None:
                body[key] = value
        if options.get("logprobs"):
            body.update(logprobs=True, top_logprobs=int(options.get("top_logprobs") or 5))
        return body

    async def _post(self, body: dict[str, Any]) -> Completion:
        """Send ``body`` until it passes, a fatal answer comes, or the retries run out."""
        reason, refused = "", True
        content = pydantic_core.to_json(body)  # a fifth of json.dumps's time on bodies of base64 images
        for attempt in range(self.max_retries + 1):
            wait = None
            start = time.perf_counter()
            idle = self._idle_clients()
            client = idle.pop() if idle else self._new_client()
            try:
                async with asyncio.timeout(self.timeout):
                    response = await client.post(f"{self.base_url}/chat/completions", content=content)
                self._reached = True
                data = self._read(response)
            except TimeoutError:
                reason, refused = f"no answer within {self.timeout:g} s", False
            except httpx.ConnectError as e:
                reason = f"connection failed ({type(e).__name__}: {e})"
            except httpx.RequestError as e:
                reason, refused = f"connection failed ({type(e).__name__}: {e})", False
            except _Transient as e:
                reason, wait, refused = e.reason, e.wait, False
            else:
                try:
                    return completion_from(data, time.perf_counter() - start)
                except (KeyError, IndexError, TypeError, AttributeError, ValueError):
                    raise ModelError(self._where("a choice that is not a chat message")) from None
            finally:
                idle.append(client)
            if attempt < self.max_retries:
                await asyncio.sleep(
                    wait if wait is not None else backoff_delay(attempt, self.backoff, self.max_wait, self._rng)
                )
        if refused and not self._reached:  # nothing listens there: no sample could pass
            raise FatalModelError(self._where(f"cannot reach the server: {reason}; check --base-url"))
        raise ModelError(self._where(f"{reason}; gave up after {self.max_retries + 1} attempts"))

    def _read(self, response: httpx.Response) -> dict[str, Any]:
        """The JSON of a good response; raises what a bad one means."""
        status = f"{response.status_code} {response.reason_phrase}".strip()
        if response.status_code == 429 or response.status_code >= 500:
            raise _Transient(status, retry_after(response.headers.get("retry-after"), datetime.now(UTC), self.max_wait))
        if response.status_code in FATAL_HINTS:
            raise FatalModelError(self._where(f"{status} — {FATAL_HINTS[response.status_code]}"))
        if response.status_code >= 400:
            raise ModelError(self._where(f"{status}: {response.text[:SNIPPET]}"))
        kind = response.headers.get("content-type", "")
        if "json" not in kind:
            raise _Transient(f"content type {kind or 'none'!r}, not JSON")
        try:
            data = response.json()
        except ValueError:
            raise _Transient("malformed JSON") from None
        if not isinstance(data, dict):
            raise _Transient("malformed JSON")
        if not data.get("choices"):
            error = data.get("error")
            detail = f": {error.get('message', error) if isinstance(error, dict) else error}" if error else ""
            raise ModelError(self._where(f"a response without choices{detail}"[:SNIPPET]))
        return data

    def _where(self, what: str) -> str:
        """One line naming the model and server, with the key blanked wherever it was echoed."""
        line = re.sub(r"\s+", " ", f"{self.name} at {_public(self.base_url)}: {what}")
        return line.replace(self._api_key, "***") if self._api_key else line

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}

    def _idle_clients(self) -> list[httpx.AsyncClient]:
        """This event loop's idle clients (a client is bound to the loop that opened it)."""
        loop = asyncio.get_running_loop()
        if loop not in self._idle:
            self._idle = {k: v for k, v in self._idle.items() if not k.is_closed()}
            self._idle[loop] = []
        return self._idle[loop]

    def _new_client(self) -> httpx.AsyncClient:
        """A client of one connection, used by one request at a time: httpx's pool looks over
        all its connections on every request (encode/httpcore#1035), which at 16 in flight
        costs more than the request itself. No httpx timeouts: ``_post`` sets one deadline."""
        headers = {"Content-Type": "application/json", **self._headers()}
        return httpx.AsyncClient(
            headers=headers, timeout=None, limits=httpx.Limits(max_connections=1), verify=_ssl_context()
        )


@cache
def _ssl_context() -> ssl.SSLContext:
    """httpx's default context, made once: loading the CA certificates costs ~50 ms, which
    every run (a new event loop, so a new client) would pay again."""
    return httpx.create_ssl_context()


def _public(url: str) -> str:
    """``url`` without any user:password@ part."""
    return re.sub(r"//[^/@]*@", "//", url)


SETTINGS = (
    "base_url",
    "api_key",
    "timeout",
    "max_retries",
    "max_image_side",
    "cache",
    "cache_dir",
    "temperature",
    "max_tokens",
    "backoff",
    "max_wait",
)


def _factory(argument: str, settings: dict[str, Any]) -> OpenAIModel:
    """Settings meant for other backends (the CLI hands every model ``train``, ``seed``) and
    those left unset (None) are ignored."""
    return OpenAIModel(argument, **{k: v for k, v in settings.items() if k in SETTINGS and v is not None})


register("openai", _factory)
