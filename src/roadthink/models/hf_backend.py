"""``hf:<path-or-id>``: a vision-language model loaded with Hugging Face transformers
(``AutoModelForImageTextToText`` + ``AutoProcessor``: Qwen2-VL, Qwen2.5-VL, SmolVLM, LLaVA…).

Requests that arrive together are answered together: concurrent ``generate`` calls queue up
and a worker thread runs them as left-padded batches of up to ``batch_size``, while the event
loop keeps preparing the next ones. Replies are generated in passes (``chunk_tokens``, then as
many again as a row has so far): finished rows leave and unfinished ones go on beside the next
requests, so a batch of short answers does not wait for one long plan. Requests with different
generation settings never share a batch. Greedy decoding unless a temperature above 0 is asked for.

On CPU, OpenMP threads that spin while waiting made forwards about 20x slower on 2 cores when
anything else wanted the CPU (the event loop, a second test process); so ``OMP_WAIT_POLICY``
is set to PASSIVE before torch is first imported, and ``threads`` sets torch's thread count.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import io
import json
import os
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse
from urllib.request import url2pathname

from roadthink.errors import RoadthinkError
from roadthink.models.base import register
from roadthink.models.toolcalls import split_tool_calls
from roadthink.models.types import Completion, Message, TextPart, TokenLogprob

HUB = "huggingface.co"
GENERATION_OPTIONS = ("max_tokens", "temperature", "top_p", "seed", "tools", "logprobs", "top_logprobs")


def _torch() -> Any:
    """torch, imported with passive OpenMP waiting (it is read once, when torch loads)."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    try:
        import torch
    except ImportError:
        raise RoadthinkError("hf: models need torch and transformers: pip install 'roadthink[hf]'") from None
    return torch


def pick_device(requested: str = "auto") -> str:
    """``auto``: the first of cuda, mps and cpu that this machine has."""
    if requested != "auto":
        return requested
    torch = _torch()
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def pick_dtype(requested: str, device: str) -> Any:
    """``auto``: bfloat16 on a GPU that has it, float16 on other GPUs and mps, float32 on CPU."""
    torch = _torch()
    if requested != "auto":
        value = getattr(torch, requested, None)
        if not isinstance(value, torch.dtype):
            raise RoadthinkError(f"dtype {requested!r}: use auto, float32, bfloat16 or float16")
        return value
    if device.startswith("cuda"):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float16 if device == "mps" else torch.float32


def load_image(url: str, where: str) -> Any:
    """An image part's URL (file:, data: or http(s):) as an RGB PIL image; anything that is not
    an image is a ValueError naming ``where`` and the URL."""
    from PIL import Image, UnidentifiedImageError

    shown = url[:60] + ("…" if len(url) > 60 else "")
    try:
        if url.startswith("data:"):
            raw = base64.b64decode(url.partition(",")[2], validate=True)
        elif url.startswith("file:"):
            raw = Path(url2pathname(urlparse(url).path)).read_bytes()
        elif url.startswith(("http://", "https://")):
            import httpx

            response = httpx.get(url, timeout=30, follow_redirects=True)
            response.raise_for_status()
            raw = response.content
        else:
            raise ValueError("expected a file:, data: or http(s): URL")
        image = Image.open(io.BytesIO(raw))
        image.load()
    except (OSError, binascii.Error, UnidentifiedImageError) as e:
        raise ValueError(f"{where} ({shown}): not an image ({type(e).__name__}: {e})") from None
    except ValueError as e:
        raise ValueError(f"{where} ({shown}): {e}") from None
    except Exception as e:  # httpx errors: the image could not be fetched
        raise ValueError(f"{where} ({shown}): cannot fetch ({type(e).__name__}: {e})") from None
    return image.convert("RGB")


def chat_and_images(messages: list[Message]) -> tuple[list[dict[str, Any]], list[Any]]:
    """``messages`` in the chat-template shape transformers' processors read (an image part
    becomes ``{"type": "image"}``), and their images in order."""
    chat: list[dict[str, Any]] = []
    images: list[Any] = []
    for m, message in enumerate(messages):
        entry: dict[str, Any] = {"role": message.role}
        if isinstance(message.content, str):
            entry["content"] = message.content
        else:
            entry["content"] = []
            for p, part in enumerate(message.content):
                if isinstance(part, TextPart):
                    entry["content"].append({"type": "text", "text": part.text})
                else:
                    images.append(load_image(part.image_url.url, f"message {m} part {p}"))
                    entry["content"].append({"type": "image"})
        if message.tool_calls:
            entry["tool_calls"] = [
                {"type": "function", "id": c.id, "function": {"name": c.name, "arguments": _json_or_text(c.arguments)}}
                for c in message.tool_calls
            ]
        if message.tool_call_id is not None:
            entry["tool_call_id"] = message.tool_call_id
        chat.append(entry)
    return chat, images


def _json_or_text(arguments: str) -> Any:
    """Chat templates expect tool arguments as an object; text that is not JSON stays text."""
    try:
        return json.loads(arguments)
    except ValueError:
        return arguments


@dataclass
class _Request:
    chat: list[dict[str, Any]]
    images: list[Any]
    options: dict[str, Any]
    future: asyncio.Future[Completion]
    start: float = field(default_factory=time.perf_counter)
    generated: list[int] = field(default_factory=list)  # reply tokens so far, over the chunks it took
    prompt_tokens: int = 0

    @property
    def size(self) -> tuple[int, int]:
        """How long the request is, roughly: its images, then its text and reply so far."""
        text = sum(len(str(entry.get("content", ""))) for entry in self.chat)
        return len(self.images), text + 4 * len(self.generated)

    @property
    def batch_key(self) -> str:
        """Requests batch together only when they decode alike (and all or none have images)."""
        return json.dumps([self.options, bool(self.images)], sort_keys=True, default=str)


class HFModel:
    """A transformers image-text-to-text model behind roadthink's async interface."""

    def __init__(
        self,
        path: str,
        *,
        device: str = "auto",
        dtype: str = "auto",
        max_tokens: int = 256,
        temperature: float | None = None,
        top_p: float | None = None,
        batch_size: int = 8,
        threads: int | None = None,
        chunk_tokens: int = 32,
        loaded: tuple[Any, Any] | None = None,
        name: str | None = None,
    ) -> None:
        """``chunk_tokens``: the first pass of a reply generates this many tokens, each later
        one as many as the longest row has so far; rows that are done leave the batch and the
        rest go on with the next requests, so short answers never wait for the longest reply.
        ``loaded``: (processor, model) already in memory, e.g. a model in training, used as
        they are instead of loading ``path``.
        ``name``: the model string runs record (default ``hf:<path>``)."""
        if not path:
            raise RoadthinkError("hf: needs a model folder or Hugging Face id, e.g. hf:models/tiny")
        self.name = name or f"hf:{path}"
        self.path = path
        self.batch_size = max(1, batch_size)
        self.chunk_tokens = max(1, chunk_tokens)
        self.defaults = {"max_tokens": max_tokens, "temperature": temperature, "top_p": top_p}
        torch = _torch()
        if threads:
            torch.set_num_threads(threads)
        self.device = pick_device(device)
        self.processor, self.model = loaded or load(path, self.device, pick_dtype(dtype, self.device))
        self.tokenizer = tokenizer = getattr(self.processor, "tokenizer", self.processor)
        tokenizer.padding_side = "left"  # decoder-only batches pad on the left
        self._stop_ids = {i for i in (tokenizer.eos_token_id, tokenizer.pad_token_id) if i is not None}
        self._pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        self._pending: list[_Request] = []
        self._worker: asyncio.Task[None] | None = None
        self._lock = threading.Lock()  # one forward at a time, whichever loop asks

    def __repr__(self) -> str:
        return f"HFModel({self.path!r}, device={self.device!r})"

    async def generate(self, messages: list[Message], **options: Any) -> Completion:
        """Queue the request and wait for the batch it joins. Bad images or tool arguments
        raise ValueError with a one-line reason; the run records it against the sample."""
        chat, images = await asyncio.to_thread(chat_and_images, messages)
        settings = {key: options.get(key, self.defaults.get(key)) for key in GENERATION_OPTIONS}
        request = _Request(chat, images, settings, asyncio.get_running_loop().create_future())
        self._pending.append(request)
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._drain())
        return await request.future

    async def _drain(self) -> None:
        """Run queued requests batch by batch until none are left; what arrives while a batch
        runs joins the next one."""
        while self._pending:
            batch = self._next_batch()
            self._pending = [r for r in self._pending if all(r is not b for b in batch)]
            try:
                completions = await asyncio.to_thread(self._generate_batch, batch)
            except Exception as error:  # the whole batch failed: each request hears why
                for request in batch:
                    if not request.future.done():
                        request.future.set_exception(error)
                continue
            going_on = [r for r, c in zip(batch, completions, strict=True) if c is None]
            self._pending = going_on + self._pending  # unfinished replies go on first, together
            for request, completion in zip(batch, completions, strict=True):
                if completion is not None and not request.future.done():
                    request.future.set_result(completion)

    def _next_batch(self) -> list[_Request]:
        """The first waiting request and those of its kind nearest it in length: a batch pads
        every row to its longest, and a long prompt often has a long reply."""
        first = self._pending[0]
        alike = sorted((r for r in self._pending if r.batch_key == first.batch_key), key=lambda r: r.size)
        at = next(i for i, r in enumerate(alike) if r is first)
        start = min(max(0, at - self.batch_size // 2), max(0, len(alike) - self.batch_size))
        return alike[start : start + self.batch_size]

    def _generate_batch(self, batch: list[_Request]) -> list[Completion | None]:
        """The next chunk of each request's reply; a request's Completion once its reply has
        ended (stop token or ``max_tokens``), None while it goes on. Asked for logprobs, a
        batch runs to the end in one go."""
        torch = _torch()
        options = batch[0].options
        tools = options.get("tools")
        texts = [
            self.processor.apply_chat_template(r.chat, tools=tools, add_generation_prompt=True, tokenize=False)
            for r in batch
        ]
        images = [r.images for r in batch] if batch[0].images else None
        inputs = self.processor(text=texts, images=images, return_tensors="pt", padding=True)
        for request, mask in zip(batch, inputs["attention_mask"].tolist(), strict=True):
            request.prompt_tokens = request.prompt_tokens or int(sum(mask))
        if any(r.generated for r in batch):
            inputs = self._continued(inputs, batch)
        inputs = inputs.to(self.device)
        temperature = options.get("temperature") or 0.0
        sampling: dict[str, Any] = {"do_sample": temperature > 0}
        if temperature > 0:
            sampling.update(temperature=temperature, top_p=options.get("top_p") or 1.0)
            if options.get("seed") is not None:
                torch.manual_seed(int(options["seed"]))  # a batch shares one stream: seeds fix batches, not rows
        scored = bool(options.get("logprobs"))
        limit = int(options.get("max_tokens") or 256)
        left = [limit - len(r.generated) for r in batch]
        with self._lock, torch.inference_mode():
            output = self.model.generate(
                **inputs,
                max_new_tokens=max(left) if scored else min(max(left), self._chunk(batch)),
                pad_token_id=self._pad_id,
                output_scores=scored,
                return_dict_in_generate=scored,
                **sampling,
            )
        sequences = output.sequences if scored else output
        new = sequences[:, inputs["input_ids"].shape[1] :].tolist()
        steps = (
            token_logprobs(self.processor, output.scores, new, int(options.get("top_logprobs") or 5))
            if scored
            else None
        )
        completions: list[Completion | None] = []
        for index, (request, row, room) in enumerate(zip(batch, new, left, strict=True)):
            used = next((i for i, token in enumerate(row) if token in self._stop_ids), len(row))
            stopped = used < len(row) and used < room
            request.generated += row[: min(used, room)]
            if not stopped and len(request.generated) < limit:
                completions.append(None)
                continue
            text = self.processor.decode(request.generated, skip_special_tokens=True)
            text, calls, _ = split_tool_calls(text) if tools else (text, [], [])
            completions.append(
                Completion(
                    text=text,
                    tool_calls=calls,
                    logprobs=None if steps is None else steps[index][: len(request.generated)],
                    prompt_tokens=request.prompt_tokens,
                    completion_tokens=len(request.generated) + stopped,  # the stop token counts
                    latency_s=time.perf_counter() - request.start,
                )
            )
        return completions

    def _chunk(self, batch: list[_Request]) -> int:
        """Tokens to generate in this pass: ``chunk_tokens``, or as many as the longest row has
        so far, so a long reply is prompted anew a few times (32, 64, 128…), not every chunk."""
        return max(self.chunk_tokens, *(len(r.generated) for r in batch))

    def _continued(self, inputs: Any, batch: list[_Request]) -> Any:
        """``inputs`` with each row's reply so far after its prompt, left-padded anew: every
        per-token field grows by the reply's tokens (ids; mask 1; token type 0, text)."""
        torch = _torch()
        masks = inputs["attention_mask"].bool()
        width = max(int(m.sum()) + len(r.generated) for m, r in zip(masks, batch, strict=True))
        for key, value in list(inputs.items()):
            if value.dim() != 2 or value.shape != masks.shape:
                continue
            pad = self._pad_id if key == "input_ids" else 0
            rows = []
            for row, mask, request in zip(value, masks, batch, strict=True):
                tail = (
                    request.generated if key == "input_ids" else [int(key == "attention_mask")] * len(request.generated)
                )
                grown = torch.cat([row[mask], torch.tensor(tail, dtype=value.dtype)])
                rows.append(torch.cat([torch.full((width - len(grown),), pad, dtype=value.dtype), grown]))
            inputs[key] = torch.stack(rows)
        return inputs


def token_logprobs(tokenizer: Any, scores: tuple, rows: list[list[int]], top: int) -> list[list[TokenLogprob]]:
    """Per row, each generated token's log-probability and the ``top`` likeliest tokens at
    that step, from generate()'s per-step scores (the logits after sampling processors)."""
    import torch

    steps = torch.stack(scores, dim=1).float().log_softmax(-1)  # (batch, new tokens, vocabulary)
    best = steps.topk(top, dim=-1)
    out = []
    for b, row in enumerate(rows):
        entries = []
        for t, token in enumerate(row[: steps.shape[1]]):
            ids, values = best.indices[b, t].tolist(), best.values[b, t].tolist()
            alternatives = {tokenizer.decode([i]): v for i, v in zip(ids, values, strict=True)}
            entries.append(
                TokenLogprob(token=tokenizer.decode([token]), logprob=float(steps[b, t, token]), top=alternatives)
            )
        out.append(entries)
    return out


def load(path: str, device: str, dtype: Any) -> tuple[Any, Any]:
    """Processor and model from a local folder, the local Hugging Face cache, or the Hub.
    Whatever fails says so in one line: a folder that is not a model, a processor that needs
    a missing package, an id that is not cached where the Hub cannot be reached."""
    from transformers import AutoModelForImageTextToText, AutoProcessor
    from transformers.utils import logging

    import roadthink.models.tiny  # noqa: F401  (registers the image-only processor of roadthink's tiny models)
    from roadthink.models.patch_conv import patch_embeddings_as_matmuls

    logging.disable_progress_bar()
    local = Path(path).expanduser()
    where = f"hf:{path}"
    if local.exists():
        if not (local / "config.json").is_file():
            raise RoadthinkError(f"{where}: {local} is not a model folder (no config.json)")
        source, offline = str(local), True
    else:
        source, offline = path, _cached(path)
        if not offline and not _hub_reachable():
            raise RoadthinkError(
                f"{where}: not a local folder, not in the Hugging Face cache, and {HUB} cannot be reached to "
                "download it; download it where there is a network and pass its folder"
            )
    try:
        processor = AutoProcessor.from_pretrained(source, local_files_only=offline)
        model = AutoModelForImageTextToText.from_pretrained(source, local_files_only=offline, dtype=dtype)
    except ImportError as e:
        raise RoadthinkError(f"{where}: a package it needs is missing: {str(e).splitlines()[0]}") from None
    except (OSError, ValueError, KeyError) as e:
        raise RoadthinkError(f"{where}: cannot load it ({type(e).__name__}: {str(e).splitlines()[0]})") from None
    patch_embeddings_as_matmuls(model)
    return processor, model.to(device).eval()


def _cached(model_id: str) -> bool:
    """Whether the local Hugging Face cache holds ``model_id``'s config."""
    from huggingface_hub import try_to_load_from_cache

    try:
        return isinstance(try_to_load_from_cache(model_id, "config.json"), str)
    except ValueError:  # not a valid repo id
        return False


def _hub_reachable(timeout: float = 3.0) -> bool:
    """A quick look before downloading: without it, transformers retries for about half a
    minute before saying there is no network."""
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes"):
        return False
    host = urlparse(os.environ.get("HF_ENDPOINT", f"https://{HUB}")).hostname or HUB
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


SETTINGS = ("device", "dtype", "max_tokens", "temperature", "top_p", "batch_size", "threads", "chunk_tokens")


def hf_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """The settings HFModel takes: those meant for other backends (``train``, ``base_url``…)
    and unset ones are left out."""
    return {k: v for k, v in settings.items() if k in SETTINGS and v is not None}


def _factory(argument: str, settings: dict[str, Any]) -> HFModel:
    return HFModel(argument, **hf_settings(settings))


register("hf", _factory)
