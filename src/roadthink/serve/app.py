"""An OpenAI-compatible HTTP API over any roadthink model, so other tools (chat UIs, other
harnesses, roadthink's own ``openai:`` backend) can use it.

Routes: ``GET /v1/models`` and ``POST /v1/chat/completions`` (plain, or Server-Sent Events
with ``stream: true``). Every error has OpenAI's body ``{"error": {"message", "type"}}`` and
a one-line message, so clients written for OpenAI show it as it is.

Baselines answer benchmark samples, not chat: they need the Sample (and the oracle its
Scene). A request may carry them in two extension fields, ``roadthink_sample`` (a row of
samples.jsonl) and ``roadthink_scene`` (the scene JSON); without them a baseline gets a 400
that says so.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import time
import traceback
import uuid
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from roadthink.models.base import Model
from roadthink.models.types import Completion, ImagePart, Message, TextPart, ToolCall
from roadthink.scene.types import Scene
from roadthink.tasks.sample import Sample

log = logging.getLogger(__name__)

# What baselines read beyond the messages: request field -> (generate() option, what to send).
EXTENSIONS = {
    "roadthink_sample": ("sample", "a row of samples.jsonl"),
    "roadthink_scene": ("scene", "the sample's scene JSON"),
}
NEEDS: dict[str, tuple[str, ...]] = {
    "random": ("roadthink_sample",),
    "blind": ("roadthink_sample",),
    "oracle": ("roadthink_sample", "roadthink_scene"),
}
PARTS: dict[str, type[TextPart] | type[ImagePart]] = {"text": TextPart, "image_url": ImagePart}
OPTIONS = ("temperature", "top_p", "max_tokens", "seed", "stop", "tools", "tool_choice", "logprobs", "top_logprobs")


class ApiError(Exception):
    """A request the server refuses, answered as an OpenAI error body."""

    def __init__(self, status: int, message: str, kind: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.status, self.message, self.kind = status, message, kind


class ChatRequest(BaseModel):
    """The OpenAI chat request; fields roadthink does not use (n, user, logprobs…) are ignored."""

    model_config = ConfigDict(extra="ignore")

    model: str | None = None
    messages: list[Message]
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    seed: int | None = None
    stop: str | list[str] | None = None
    stream: bool = False
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = None
    roadthink_sample: Sample | None = None
    roadthink_scene: Scene | None = None

    @field_validator("messages", mode="before")
    @classmethod
    def _from_openai(cls, messages: Any) -> Any:
        if not isinstance(messages, list):
            return messages
        converted = []
        for i, message in enumerate(messages):
            try:
                converted.append(from_openai_message(message))
            except PartError as error:
                raise ValueError(f"message {i}: {error}") from None
        return converted

    def options(self) -> dict[str, Any]:
        """The keyword options for ``model.generate``: sampling settings given, and the sample extensions."""
        options = {key: getattr(self, key) for key in OPTIONS if getattr(self, key) is not None}
        if self.max_completion_tokens is not None:  # newer clients' name for max_tokens
            options.setdefault("max_tokens", self.max_completion_tokens)
        options.update({option: getattr(self, field) for field, (option, _) in EXTENSIONS.items()})
        return {key: value for key, value in options.items() if value is not None}


def from_openai_message(message: Any) -> Any:
    """An OpenAI wire message in roadthink's Message shape: assistant turns carry ``content: null``
    and nested ``{"function": {...}}`` tool calls, and any turn may have a ``name``."""
    if not isinstance(message, dict):
        return message
    message = {key: value for key, value in message.items() if key != "name"}
    content = message.get("content")
    if content is None:
        message["content"] = ""
    elif isinstance(content, list):
        message["content"] = [parse_part(part) for part in content]
    message["tool_calls"] = [
        {"id": c.get("id"), **c["function"]} if isinstance(c, dict) and isinstance(c.get("function"), dict) else c
        for c in message.get("tool_calls") or []
    ]
    return message


class PartError(Exception):
    """A content part that is not one roadthink reads, with a one-line reason."""


def parse_part(part: Any) -> TextPart | ImagePart:
    """A content part validated as the class its ``type`` names, so a mistake is reported
    against that class alone instead of against every member of the union."""
    kind = part.get("type") if isinstance(part, dict) else None
    if kind not in PARTS:
        raise PartError(f"content part type {kind!r} is not supported: use 'text' or 'image_url'")
    try:
        return PARTS[kind].model_validate(part)
    except ValidationError as error:
        raise PartError(f"{kind} part: {problem(error.errors()[0])}") from None


def error_body(message: str, kind: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": None, "code": None}}


def one_line(error: Exception) -> str:
    """An exception as one line (type and first line of its message), for an error body."""
    return traceback.format_exception_only(error)[-1].strip().splitlines()[0]


def problem(error: Mapping[str, Any]) -> str:
    """One pydantic or FastAPI validation error as one line naming the field, e.g.
    ``messages.0.role: Input should be 'system', …``."""
    reason = error.get("ctx", {}).get("error")
    if error.get("type") == "json_invalid":
        return f"the body is not valid JSON: {reason}"
    if tuple(error.get("loc", ())) == ("body",):  # a list, a string, or a form post (curl -d without a content type)
        return "the body must be a JSON object sent with Content-Type: application/json"
    message = str(reason if error.get("type") == "value_error" else error.get("msg", "invalid")).splitlines()[0]
    where = ".".join(str(part) for part in error.get("loc", ()) if part != "body")
    return f"{where}: {message}" if where else message


def missing_fields(model: Model, request: ChatRequest) -> list[str]:
    """The extension fields a baseline needs that the request lacks."""
    return [field for field in NEEDS.get(model.name, ()) if getattr(request, field) is None]


def bearer_matches(authorization: str, api_key: str) -> bool:
    """Whether an ``Authorization`` header carries ``api_key``, compared in constant time."""
    scheme, _, given = authorization.partition(" ")
    return scheme.lower() == "bearer" and secrets.compare_digest(given.strip().encode(), api_key.encode())


def openai_tool_calls(calls: list[ToolCall]) -> list[dict[str, Any]]:
    return [{"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}} for c in calls]


def finish_reason(completion: Completion) -> str:
    return "tool_calls" if completion.tool_calls else "stop"


def chat_completion(completion: Completion, model_id: str) -> dict[str, Any]:
    """A Completion as an OpenAI ``chat.completion`` object."""
    message: dict[str, Any] = {"role": "assistant", "content": completion.text}
    if completion.tool_calls:
        message["tool_calls"] = openai_tool_calls(completion.tool_calls)
    usage = {
        "prompt_tokens": completion.prompt_tokens,
        "completion_tokens": completion.completion_tokens,
        "total_tokens": completion.prompt_tokens + completion.completion_tokens,
    }
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model_id,
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": finish_reason(completion),
                "logprobs": openai_logprobs(completion),
            }
        ],
        "usage": usage,
    }


def openai_logprobs(completion: Completion) -> dict[str, Any] | None:
    """Token log-probabilities in OpenAI's ``logprobs.content`` shape, when the model gave them."""
    if completion.logprobs is None:
        return None
    return {
        "content": [
            {
                "token": t.token,
                "logprob": t.logprob,
                "top_logprobs": [{"token": k, "logprob": v} for k, v in t.top.items()],
            }
            for t in completion.logprobs
        ]
    }


def stream_chunks(completion: Completion, model_id: str) -> Iterator[dict[str, Any]]:
    """A Completion as ``chat.completion.chunk`` objects: the role, the text word by word, the
    tool calls, then the finish reason. The model answers whole, so this is for clients that
    only speak streaming."""
    head = {"id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion.chunk", "created": int(time.time())}

    def chunk(delta: dict[str, Any], reason: str | None = None) -> dict[str, Any]:
        return {**head, "model": model_id, "choices": [{"index": 0, "delta": delta, "finish_reason": reason}]}

    yield chunk({"role": "assistant", "content": ""})
    for piece in re.split(r"(?<=\s)", completion.text):
        if piece:
            yield chunk({"content": piece})
    if completion.tool_calls:
        calls = [{"index": i, **call} for i, call in enumerate(openai_tool_calls(completion.tool_calls))]
        yield chunk({"tool_calls": calls})
    yield chunk({}, finish_reason(completion))


def server_sent_events(chunks: Iterator[dict[str, Any]]) -> Iterator[str]:
    for c in chunks:
        yield f"data: {json.dumps(c)}\n\n"
    yield "data: [DONE]\n\n"


def create_app(model: Model, model_id: str | None = None, api_key: str | None = None) -> FastAPI:
    """The API over ``model``, listed as ``model_id`` (default: its name); with ``api_key`` set,
    every request needs ``Authorization: Bearer <api_key>``."""
    served = model_id or model.name
    app = FastAPI(title=f"roadthink: {served}", docs_url=None, redoc_url=None, openapi_url=None)

    @app.middleware("http")
    async def _authorized(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        """Checked before the body is even read, so nothing is told to a caller without the key."""
        if api_key is None or bearer_matches(request.headers.get("authorization", ""), api_key):
            return await call_next(request)
        message = "missing or wrong API key: send 'Authorization: Bearer <key>'"
        return JSONResponse(error_body(message, "authentication_error"), status_code=401)

    @app.exception_handler(ApiError)
    async def _refused(request: Request, error: ApiError) -> JSONResponse:
        return JSONResponse(error_body(error.message, error.kind), status_code=error.status)

    @app.exception_handler(RequestValidationError)
    async def _malformed(request: Request, error: RequestValidationError) -> JSONResponse:
        return JSONResponse(error_body(problem(error.errors()[0]), "invalid_request_error"), status_code=400)

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return {"object": "list", "data": [{"id": served, "object": "model", "owned_by": "roadthink"}]}

    @app.post("/v1/chat/completions", response_model=None)
    async def chat(request: ChatRequest) -> dict[str, Any] | StreamingResponse:
        if request.model is not None and request.model != served:
            raise ApiError(404, f"model {request.model!r} is not served here; this server serves {served!r}")
        missing = missing_fields(model, request)
        if missing:
            wanted = " and ".join(f"{field} ({EXTENSIONS[field][1]})" for field in missing)
            raise ApiError(400, f"model {served!r} answers benchmark samples only, not bare chat: send {wanted}")
        try:
            completion = await model.generate(request.messages, **request.options())
        except Exception as error:  # a failing backend is one 500, not a dead server
            log.exception("model %s failed", served)
            raise ApiError(500, f"model {served!r} failed: {one_line(error)}", "server_error") from None
        if request.stream:
            return StreamingResponse(
                server_sent_events(stream_chunks(completion, served)), media_type="text/event-stream"
            )
        return chat_completion(completion, served)

    return app
