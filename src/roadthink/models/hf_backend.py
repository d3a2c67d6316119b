"""``hf:<path-or-id>``: a vision-language model loaded with Hugging Face transformers
(``AutoModelForImageTextToText`` + ``AutoProcessor``: Qwen2-VL, Qwen2.5-VL, SmolVLM, LLaVA…).

Requests are answered by continuous batching: a worker thread decodes up to ``batch_size``
rows together, one token each per forward, over a KV cache that holds every row's prompt and
reply so far; finished rows leave at once. Requests that arrive meanwhile are read beside the
decoding (their prompts and images in one forward, in a second thread) and join the running
rows as soon as they are read, their cache put beside the others', left-padded. No prompt is
read twice, no row waits for the longest reply, and decoding does not stop while prompts are
read. Requests with different generation settings never share rows. Greedy decoding unless a
temperature above 0 is asked for (with ``top_p``); the repetition penalty of the model's
generation config applies, as in ``generate()``.

On CPU, OpenMP threads that spin while waiting made forwards about 20x slower on 2 cores when
anything else wanted the CPU (the event loop, a second test process); so ``OMP_WAIT_POLICY``
is set to PASSIVE before torch is first imported, and ``threads`` sets torch's thread count.
Reading and decoding share those threads, half each (a decode step of a few rows ran 1.7x
faster on one thread than on two passive ones); a read with no rows decoding takes them all.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import inspect
import io
import json
import os
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse
from urllib.request import url2pathname

from roadthink.errors import RoadthinkError
from roadthink.models.base import register
from roadthink.models.image_size import ImageSizer
from roadthink.models.toolcalls import split_tool_calls
from roadthink.models.types import Completion, Message, TextPart, TokenLogprob

if TYPE_CHECKING:
    from roadthink.models.kv_rows import Rows

HUB = "huggingface.co"
# what a processor returns for a prompt that batches with others by left padding alone: the token rows (the
# value padding takes) and Qwen-VL's images, their patches one after another, however many a prompt has
PADDED = {"input_ids": 0, "attention_mask": 0, "mm_token_type_ids": 0, "token_type_ids": 0}
JOINED = {"pixel_values", "image_grid_thw"}
FILE_IMAGES_MB = 64  # room for image files resized to the processor's size, kept for when they are asked about again
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


class Kept:
    """Values by key, the least lately used dropped once they take more than ``room`` bytes
    (``size`` of a value says how many one takes); safe to share between threads."""

    def __init__(self, room: int, size: Callable[[Any], int]) -> None:
        self.room, self.size = room, size
        self.values: OrderedDict[Any, Any] = OrderedDict()
        self.used = 0
        self._lock = threading.Lock()

    def get(self, key: Any) -> Any:
        """The value kept for ``key`` (None when there is none)."""
        with self._lock:
            if key not in self.values:
                return None
            self.values.move_to_end(key)
            return self.values[key]

    def put(self, key: Any, value: Any) -> None:
        with self._lock:
            if key in self.values:
                self.used -= self.size(self.values.pop(key))
            self.values[key] = value
            self.used += self.size(value)
            while self.used > self.room and self.values:
                self.used -= self.size(self.values.popitem(last=False)[1])


class ImageFeatures:
    """The vision tower's features of the images seen lately, by a digest of their pixels, up
    to ``room_mb``: an image asked about again is not encoded again. For models whose forward
    takes them ready-made (``mm_encoder_outputs``, transformers' own) and whose processor gives
    Qwen-VL's flat patches with their grids; none are kept otherwise."""

    def __init__(self, model: Any, room_mb: float) -> None:
        takes = "mm_encoder_outputs" in inspect.signature(model.forward).parameters
        self.model = model
        self.room = int(room_mb * 2**20) if takes and hasattr(model, "get_image_features") else 0
        self.kept = Kept(self.room, lambda feature: feature.numel() * feature.element_size())

    def keys(self, images: list[Any]) -> list[bytes] | None:
        """A prompt's images' keys, digests of their pixels as the processor is given them
        (None when no cache is kept)."""
        if not self.room:
            return None
        return [_digest(image) for image in images]

    def features(self, pixel_values: Any, grids: Any, keys: list[bytes]) -> Any:
        """The features of a batch's images (``keys`` in order), in the form the model's
        ``get_image_features`` gives them: those not kept are encoded together, then kept."""
        from transformers.modeling_outputs import BaseModelOutputWithPooling

        found = {key: self.kept.get(key) for key in keys}
        new = [(key, keys.index(key)) for key, feature in found.items() if feature is None]
        if new:
            patches = pixel_values.split(grids.prod(-1).tolist())
            encoded = self.model.get_image_features(
                _torch().cat([patches[i] for _, i in new]), grids[[i for _, i in new]], return_dict=True
            ).pooler_output
            for (key, _), feature in zip(new, encoded, strict=True):
                found[key] = feature
                self.kept.put(key, feature)
        return BaseModelOutputWithPooling(pooler_output=tuple(found[key] for key in keys))


def _digest(image: Any) -> bytes:
    digest = hashlib.blake2b(repr((image.size, image.mode)).encode(), digest_size=16)
    digest.update(image.tobytes())
    return digest.digest()


def pads_alone(keys: set[str]) -> bool:
    """Whether prompts read one by one with these processor outputs batch by left padding alone:
    token rows, and images only as Qwen-VL's flat patches with their grids."""
    return keys <= set(PADDED) | JOINED and ("pixel_values" not in keys or "image_grid_thw" in keys)


def chat_and_images(
    messages: list[Message], load: Callable[[str, str], Any] = load_image
) -> tuple[list[dict[str, Any]], list[Any]]:
    """``messages`` in the chat-template shape transformers' processors read (an image part
    becomes ``{"type": "image"}``), and their images in order, each as ``load`` gives it."""
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
                    images.append(load(part.image_url.url, f"message {m} part {p}"))
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
    generated: list[int] = field(default_factory=list)  # reply tokens so far
    steps: list[TokenLogprob] = field(default_factory=list)  # their log-probabilities, when asked for
    prompt_tokens: int = 0
    inputs: Any = None  # the prompt as the processor reads it, when read on arrival (``HFModel._prompts``)
    image_keys: list[bytes] | None = None  # a digest of each image's pixels, for the cache of their features

    @property
    def size(self) -> tuple[int, int]:
        """How long the request is: its tokens when its prompt was read on arrival, else
        roughly, its images, then its text."""
        if self.inputs is not None:
            return 0, int(self.inputs["input_ids"].shape[1])
        return len(self.images), sum(len(str(entry.get("content", ""))) for entry in self.chat)

    @property
    def batch_key(self) -> str:
        """Requests batch together only when they decode alike (and all or none have images)."""
        return json.dumps([self.options, bool(self.images)], sort_keys=True, default=str)


@dataclass
class _Read:
    """Prompts read while rows decode: their ``rows`` and first-token ``logits``, to join the
    running rows; or, from a model whose rows cannot join, the replies ``done`` in one go."""

    batch: list[_Request]
    rows: Rows | None = None
    logits: Any = None
    done: list[tuple[_Request, Completion]] = field(default_factory=list)


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
        batch_size: int = 32,
        threads: int | None = None,
        chunk_tokens: int = 32,
        loaded: tuple[Any, Any] | None = None,
        name: str | None = None,
        image_cache_mb: float = 64,
    ) -> None:
        """``batch_size``: the most rows decoded together. ``chunk_tokens``: reply tokens decoded
        between looks at the queue; requests that arrived meanwhile join the rows still going
        (their prompts read once, their KV cache put beside the others').
        ``loaded``: (processor, model) already in memory, e.g. a model in training, used as
        they are instead of loading ``path``.
        ``name``: the model string runs record (default ``hf:<path>``).
        ``image_cache_mb``: room for the vision tower's features of images already seen (the
        bench asks several questions of each camera image), kept for models loaded here, whose
        weights do not change: none for a ``loaded`` one."""
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
        self.threads = torch.get_num_threads()
        self.device = pick_device(device)
        self.processor, self.model = loaded or load(path, self.device, pick_dtype(dtype, self.device))
        self.tokenizer = tokenizer = getattr(self.processor, "tokenizer", self.processor)
        tokenizer.padding_side = "left"  # decoder-only batches pad on the left
        self._stop_ids = {i for i in (tokenizer.eos_token_id, tokenizer.pad_token_id) if i is not None}
        self._pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        self.sizer = ImageSizer(self.processor)
        self._continuous = True  # False once the model's KV cache proves not to be a plain dynamic one
        self._pads_alone = True  # False once the processor proves to give more than pads_alone() batches
        self._penalty = float(getattr(self.model.generation_config, "repetition_penalty", None) or 1.0)
        self._pending: list[_Request] = []
        self._running: Rows | None = None
        self._worker: asyncio.Task[None] | None = None
        # one read and one decode at a time, whichever loop asks: a read sets Qwen-VL's rope_deltas, which
        # decoding (given its positions) never reads, so the two may run together
        self._reading = threading.Lock()
        self._decoding = threading.Lock()
        # fast tokenizers fail ("Already borrowed") when one thread changes their padding while another uses them
        self._processing = threading.Lock()
        self.images = ImageFeatures(self.model, 0 if loaded else image_cache_mb)
        self._files = Kept(FILE_IMAGES_MB * 2**20, lambda image: image.width * image.height * len(image.getbands()))

    def __repr__(self) -> str:
        return f"HFModel({self.path!r}, device={self.device!r})"

    async def generate(self, messages: list[Message], **options: Any) -> Completion:
        """Queue the request and wait for its reply. Bad images or tool arguments raise
        ValueError with a one-line reason; the run records it against the sample."""
        settings = {key: options.get(key, self.defaults.get(key)) for key in GENERATION_OPTIONS}
        chat, images, inputs, keys = await asyncio.to_thread(self._read, messages, settings.get("tools"))
        future = asyncio.get_running_loop().create_future()
        request = _Request(chat, images, settings, future, inputs=inputs, image_keys=keys)
        self._pending.append(request)
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._drain())
        return await request.future

    def _read(self, messages: list[Message], tools: Any) -> tuple[list[dict[str, Any]], list[Any], Any, Any]:
        """The chat, its images resized to the processor's size, and, for models whose prompts
        batch by padding alone (``_prompts``), the processor's reading of it and its images'
        keys in the feature cache: done here, beside the threads that read and decode, rather
        than in them when the request joins."""
        chat, images = chat_and_images(messages, self._image)
        if not self._pads_alone:
            return chat, images, None, None
        text = self._template(chat, tools)
        with self._processing:
            inputs = self.processor(text=[text], images=[images] if images else None, return_tensors="pt", padding=True)
        if not pads_alone(set(inputs)):
            self._pads_alone = False  # its prompts are read together from now on, not twice
            return chat, images, None, None
        return chat, images, inputs, self.images.keys(images) if "image_grid_thw" in inputs else None

    def _image(self, url: str, where: str) -> Any:
        """An image part's image at the processor's size; a file's is kept for when it is asked
        about again (by path, size and modification time), as the bench asks several questions
        of each camera image."""
        if url.startswith("file:"):
            path = Path(url2pathname(urlparse(url).path))
            try:
                found = path.stat()
            except OSError:
                return load_image(url, where)  # says what is wrong with this part, in one line
            key = (str(path), found.st_size, found.st_mtime_ns)
            image = self._files.get(key)
            if image is None:
                image = self.sizer.fit(load_image(url, where))
                self._files.put(key, image)
            return image
        return self.sizer.fit(load_image(url, where))

    def _template(self, chat: list[dict[str, Any]], tools: Any) -> str:
        """A chat as the model's template writes it, ready for the reply."""
        return self.processor.apply_chat_template(chat, tools=tools, add_generation_prompt=True, tokenize=False)

    def _prompts(self, batch: list[_Request]) -> Any:
        """The prompts of ``batch`` as one left-padded batch, as the processor would pad them: put
        together from each request's own reading, or read together here when one has none."""
        torch = _torch()
        from transformers import BatchFeature

        parts = [r.inputs for r in batch]
        if any(p is None for p in parts) or len({tuple(p) for p in parts}) > 1:
            texts = [self._template(r.chat, batch[0].options.get("tools")) for r in batch]
            images = [r.images for r in batch] if batch[0].images else None
            with self._processing:
                return self.processor(text=texts, images=images, return_tensors="pt", padding=True)
        width = max(p["input_ids"].shape[1] for p in parts)
        pads = {**PADDED, "input_ids": self._pad_id}

        def padded(value: Any, pad: int) -> Any:
            return torch.nn.functional.pad(value, (width - value.shape[1], 0), value=pad)

        return BatchFeature(
            {
                key: torch.cat([padded(p[key], pads[key]) if key in PADDED else p[key] for p in parts])
                for key in parts[0]
            }
        )

    async def _drain(self) -> None:
        """Continuous batching: the rows running decode ``chunk_tokens`` at a time while the
        waiting requests that join next are read beside them; a chunk ends early once they are
        read, and they join, or, with none being read, once rows have left room for a waiting
        one. Finished rows leave at once. A prompt that fails to read fails its own requests; a
        decode that fails fails the rows running."""
        reading: asyncio.Future[_Read] | None = None
        batch: list[_Request] = []
        read = threading.Event()  # set once ``reading`` is done: the chunk decoding stops for it to join
        while self._pending or self._running or reading:
            if reading is None and (batch := self._joining()):
                self._pending = [r for r in self._pending if all(r is not j for j in batch)]
                read = threading.Event()
                threads = self.threads if self._running is None else self.threads - self.threads // 2
                reading = asyncio.ensure_future(asyncio.to_thread(self._read_prompts, batch, threads, read))
            if self._running and not (reading and read.is_set()):
                try:
                    until = read.is_set if reading else lambda: bool(self._joining())
                    self._settle(await asyncio.to_thread(self._decode, self.chunk_tokens, until))
                except Exception as error:
                    self._fail(self._running.requests, error)
                    self._running = None
            elif reading is not None:
                await asyncio.wait({reading})
            if reading is not None and reading.done():
                try:
                    self._settle(await asyncio.to_thread(self._join, reading.result()))
                except Exception as error:
                    self._fail(batch, error)
                reading = None

    @staticmethod
    def _settle(done: list[tuple[_Request, Completion]]) -> None:
        for request, completion in done:
            if not request.future.done():
                request.future.set_result(completion)

    @staticmethod
    def _fail(requests: list[_Request], error: Exception) -> None:
        for request in requests:
            if not request.future.done():
                request.future.set_exception(error)

    def _joining(self) -> list[_Request]:
        """The waiting requests that join the rows now. While rows run, those of their kind, as
        long as the request that has waited longest is of their kind (once it is not, none join,
        and it goes next when the rows finish); with no rows running, the longest-waiting
        request and those of its kind nearest it in length, a batch's worth."""
        if not self._pending:
            return []
        first = self._pending[0]
        if self._running is None:
            return self._next_batch(first.batch_key, self.batch_size)
        if first.batch_key != self._running.key:
            return []
        return self._next_batch(first.batch_key, self.batch_size - len(self._running.requests))

    def _next_batch(self, key: str, room: int) -> list[_Request]:
        """Up to ``room`` waiting requests of kind ``key``: the first waiting one and those
        nearest it in length, since rows are left-padded to the longest prompt."""
        alike = sorted((r for r in self._pending if r.batch_key == key), key=lambda r: r.size)
        if room <= 0 or not alike:
            return []
        at = next((i for i, r in enumerate(alike) if r is self._pending[0]), 0)
        start = min(max(0, at - room // 2), max(0, len(alike) - room))
        return alike[start : start + room]

    def _threads(self, count: int) -> None:
        """Let this thread's forwards use ``count`` CPU threads (OpenMP's count is the calling
        thread's own, so a read and a decode running together each keep theirs)."""
        if self.device == "cpu":
            _torch().set_num_threads(max(1, count))

    def _read_prompts(self, batch: list[_Request], threads: int, read: threading.Event) -> _Read:
        """Read the prompts of ``batch`` (one forward, with their images, on ``threads`` CPU
        threads), beside the rows decoding; ``read`` is set when done, however it ends."""
        torch = _torch()
        from roadthink.models.kv_rows import Rows, roomy

        try:
            self._threads(threads)
            inputs = self._prompts(batch).to(self.device)
            keys = [key for r in batch for key in r.image_keys or []]
            if self.images.room and len(keys) == len(inputs.get("image_grid_thw", ())) > 0:
                with self._reading, torch.inference_mode():
                    features = self.images.features(inputs.pop("pixel_values"), inputs["image_grid_thw"], keys)
                inputs["mm_encoder_outputs"] = {"image": features}
            mask = inputs["attention_mask"]
            for request, tokens in zip(batch, mask.sum(1).tolist(), strict=True):
                request.prompt_tokens = int(tokens)
            if not self._continuous:
                return _Read(batch, done=self._one_go(batch, inputs))
            with self._reading, torch.inference_mode():
                # generate() places the prompt as the model wants it (M-RoPE positions for Qwen-VL)
                output = self.model.generate(
                    **inputs,
                    max_new_tokens=1,
                    do_sample=False,
                    use_cache=True,
                    return_dict_in_generate=True,
                    output_logits=True,
                    pad_token_id=self._pad_id,
                )
                # the next token's position: one past the prompt's, shifted by Qwen-VL's M-RoPE offset
                deltas = getattr(getattr(self.model, "model", None), "rope_deltas", None)
            if not roomy(output.cache):  # a cache rows cannot join (sliding windows…): whole batches from now on
                self._continuous = False
                return _Read(batch, done=self._one_go(batch, inputs))
            positions = mask.sum(1) + (deltas.view(-1).to(mask.device) if deltas is not None else 0)
            seen = None
            if self._penalty != 1.0:
                seen = torch.zeros(len(batch), output.logits[0].shape[-1], dtype=torch.bool, device=self.device)
                seen.scatter_(1, inputs["input_ids"], True)
            rows = Rows(batch[0].batch_key, batch, output.cache, mask, positions, None, None, seen)
            return _Read(batch, rows=rows, logits=output.logits[0])
        finally:
            read.set()

    def _join(self, read: _Read) -> list[tuple[_Request, Completion]]:
        """Put the rows just read beside the running ones and pick their first tokens; returns
        the requests already done (one-token replies, or whole replies of a model whose rows
        cannot join)."""
        torch = _torch()
        from roadthink.models.kv_rows import beside

        if read.rows is None:
            return read.done
        options = read.batch[0].options
        if self._running is None and (options.get("temperature") or 0.0) > 0:
            # rows joining running ones draw from their stream
            read.rows.generator = generator = torch.Generator(device=self.device)
            if options.get("seed") is not None:  # rows share one stream: a seed fixes a batch, not a row
                generator.manual_seed(int(options["seed"]))
        self._running = read.rows if self._running is None else beside(self._running, read.rows)
        return self._advance(read.logits, first=len(self._running.requests) - len(read.batch))

    def _one_go(self, batch: list[_Request], inputs: Any) -> list[tuple[_Request, Completion]]:
        """The whole replies of ``batch`` in one ``generate()``, for models whose KV cache rows
        cannot join (no request joins these rows; the batch waits for its longest reply)."""
        torch = _torch()
        options = batch[0].options
        temperature = options.get("temperature") or 0.0
        sampling: dict[str, Any] = {"do_sample": temperature > 0}
        if temperature > 0:
            sampling.update(temperature=temperature, top_p=options.get("top_p") or 1.0)
            if options.get("seed") is not None:
                torch.manual_seed(int(options["seed"]))
        with self._reading, torch.inference_mode():
            output = self.model.generate(
                **inputs,
                max_new_tokens=int(options.get("max_tokens") or 256),
                pad_token_id=self._pad_id,
                output_scores=True,
                return_dict_in_generate=True,
                **sampling,
            )
        new = output.sequences[:, inputs["input_ids"].shape[1] :]
        if options.get("logprobs"):
            top = int(options.get("top_logprobs") or 5)
            for step, scores in enumerate(output.scores):
                picked = step_logprobs(self.tokenizer, scores, new[:, step], top)
                for request, logprob in zip(batch, picked, strict=True):
                    request.steps.append(logprob)
        done = []
        for request, row in zip(batch, new.tolist(), strict=True):
            used = next((i for i, token in enumerate(row) if token in self._stop_ids), len(row))
            request.generated = row[:used]
            done.append((request, self._completion(request, stopped=used < len(row))))
        return done

    def _decode(self, steps: int, until: Callable[[], bool] | None = None) -> list[tuple[_Request, Completion]]:
        """Up to ``steps`` more tokens for every running row, on half the CPU threads, stopping
        early once ``until()`` (prompts read that join, or room for waiting ones); returns the
        requests done."""
        torch = _torch()
        self._threads(self.threads // 2)
        done: list[tuple[_Request, Completion]] = []
        for _ in range(steps):
            rows = self._running
            if rows is None or (until is not None and until()):
                break
            rows.mask = torch.cat([rows.mask, rows.mask.new_ones((len(rows.requests), 1))], dim=1)
            with self._decoding, torch.inference_mode():
                logits = self.model(
                    input_ids=rows.tokens[:, None],
                    attention_mask=rows.mask,
                    position_ids=rows.positions[:, None],
                    cache=rows.cache,
                    use_cache=True,
                ).logits[:, -1]
            rows.positions = rows.positions + 1
            done += self._advance(logits, first=0)
        return done

    def _advance(self, logits: Any, first: int) -> list[tuple[_Request, Completion]]:
        """Pick the next token of the running rows from ``first`` on (``logits``, one row each),
        and let the rows whose reply has ended (stop token or ``max_tokens``) leave."""
        torch = _torch()
        from roadthink.models.kv_rows import select

        rows = self._running
        assert rows is not None
        options = rows.requests[0].options
        logits = logits.float()
        if rows.seen is not None:  # as transformers' RepetitionPenaltyLogitsProcessor
            seen = rows.seen[first:]
            logits = torch.where(seen, torch.where(logits < 0, logits * self._penalty, logits / self._penalty), logits)
        scores = processed_scores(logits, options)
        tokens = (
            torch.multinomial(scores.softmax(-1), 1, generator=rows.generator).view(-1)
            if rows.generator is not None
            else scores.argmax(-1)
        )
        if options.get("logprobs"):
            picked = step_logprobs(self.tokenizer, scores, tokens, int(options.get("top_logprobs") or 5))
            for request, step in zip(rows.requests[first:], picked, strict=True):
                request.steps.append(step)
        rows.tokens = tokens if first == 0 else torch.cat([rows.tokens[:first], tokens])
        if rows.seen is not None:
            rows.seen[first:].scatter_(1, tokens[:, None], True)
        limit = int(options.get("max_tokens") or 256)
        done, keep = [], []
        for index, (request, token) in enumerate(zip(rows.requests, rows.tokens.tolist(), strict=True)):
            if index < first:
                keep.append(index)
                continue
            stopped = token in self._stop_ids
            if not stopped:
                request.generated.append(token)
            if stopped or len(request.generated) >= limit:
                done.append((request, self._completion(request, stopped)))
            else:
                keep.append(index)
        if len(keep) < len(rows.requests):
            self._running = select(rows, keep) if keep else None
        return done

    def _completion(self, request: _Request, stopped: bool) -> Completion:
        with self._processing:
            text = self.processor.decode(request.generated, skip_special_tokens=True)
        tools = request.options.get("tools")
        text, calls, _ = split_tool_calls(text) if tools else (text, [], [])
        return Completion(
            text=text,
            tool_calls=calls,
            logprobs=request.steps[: len(request.generated)] if request.options.get("logprobs") else None,
            prompt_tokens=request.prompt_tokens,
            completion_tokens=len(request.generated) + stopped,  # the stop token counts
            latency_s=time.perf_counter() - request.start,
        )


def processed_scores(logits: Any, options: dict[str, Any]) -> Any:
    """Next-token scores as sampled from: the logits over the temperature, those outside the
    ``top_p`` nucleus at -inf; greedy decoding (no temperature) keeps the logits."""
    temperature = options.get("temperature") or 0.0
    if temperature <= 0:
        return logits
    scores = logits / temperature
    top_p = options.get("top_p") or 1.0
    if top_p < 1.0:
        ordered, order = scores.sort(dim=-1, descending=True)
        chances = ordered.softmax(-1)
        before = chances.cumsum(-1) - chances  # mass of the likelier tokens
        drop = (before > top_p).scatter(-1, order, before > top_p)
        scores = scores.masked_fill(drop, float("-inf"))
    return scores


def step_logprobs(tokenizer: Any, scores: Any, tokens: Any, top: int) -> list[TokenLogprob]:
    """Per row, the picked token's log-probability and the ``top`` likeliest tokens, from one
    step's processed scores."""
    steps = scores.log_softmax(-1)
    best = steps.topk(top, dim=-1)
    out = []
    for b, token in enumerate(tokens.tolist()):
        ids, values = best.indices[b].tolist(), best.values[b].tolist()
        alternatives = {tokenizer.decode([i]): v for i, v in zip(ids, values, strict=True)}
        out.append(TokenLogprob(token=tokenizer.decode([token]), logprob=float(steps[b, token]), top=alternatives))
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
