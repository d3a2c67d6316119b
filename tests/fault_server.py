"""A fault-injecting OpenAI-compatible server for tests: every request to
``/v1/chat/completions`` takes the next fault from a script (a queue), so a test decides
exactly which requests fail and how, and counts what arrived.

Faults (``name`` or ``name:argument``): ``ok``; ``429:S`` (Retry-After S seconds); ``500``;
``401``; ``404``; ``slow:S`` (answer after S seconds); ``malformed`` (JSON cut short, sent as
JSON); ``truncated`` (the connection closes before the declared body length); ``html`` (an
HTML page with status 200); ``tool`` (an answer calling a tool); ``nochoices``; ``echo``
(a 400 whose body repeats the request's Authorization header, as a careless proxy might).
An empty script answers ``ok``.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from roadthink.eval.prompt import FORMATS
from roadthink.tasks.sample import AnswerType

# A well-formed answer to each kind of question the prompt can ask.
ANSWERS = {
    AnswerType.CHOICE: "<answer>A</answer>",
    AnswerType.YES_NO: "<answer>yes</answer>",
    AnswerType.NUMBER: "<answer>2</answer>",
    AnswerType.META_ACTION: "<answer>keep, straight</answer>",
    AnswerType.BOX: "<answer>[10, 20, 110, 220]</answer>",
    AnswerType.WAYPOINTS: "<answer>[[1, 0], [2, 0], [3, 0], [4, 0], [5, 0], [6, 0]]</answer>",
    AnswerType.TEXT: "<answer>a car</answer>",
}


@dataclass
class Arrival:
    """One request as the server saw it."""

    fault: str
    at: float  # time.perf_counter() on arrival
    body: dict[str, Any]
    authorization: str | None
    port: int  # the client's end of the connection it came on


@dataclass
class Faults:
    """The script the next requests follow, and the log of those that came."""

    script: deque[str] = field(default_factory=deque)
    arrivals: list[Arrival] = field(default_factory=list)

    def plan(self, *faults: str) -> None:
        self.script.extend(faults)


def answer_for(body: dict[str, Any]) -> str:
    """A correctly formatted answer to the question in the last message."""
    content = body["messages"][-1]["content"]
    text = content if isinstance(content, str) else " ".join(p.get("text", "") for p in content)
    return next((ANSWERS[kind] for kind, wording in FORMATS.items() if wording in text), "<answer>A</answer>")


def completion(body: dict[str, Any], tool: bool = False) -> dict[str, Any]:
    """An OpenAI chat.completion object answering ``body``."""
    message: dict[str, Any] = {"role": "assistant", "content": answer_for(body)}
    if tool:
        message["content"] = None
        message["tool_calls"] = [
            {"id": "call_1", "type": "function", "function": {"name": "zoom", "arguments": '{"camera": "front"}'}}
        ]
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": body.get("model"),
        "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls" if tool else "stop"}],
        "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18},
    }


async def _cut_short() -> AsyncIterator[bytes]:
    yield b'{"choices": [{"message": '


def respond(fault: str, body: dict[str, Any], authorization: str | None) -> Response:
    """The response a (non-slow) fault calls for."""
    name, _, argument = fault.partition(":")
    if name == "ok":
        return JSONResponse(completion(body))
    if name == "tool":
        return JSONResponse(completion(body, tool=True))
    if name == "429":
        return JSONResponse({"error": {"message": "slow down"}}, 429, {"Retry-After": argument or "0"})
    if name in ("500", "401", "404"):
        return JSONResponse({"error": {"message": f"fault {name}"}}, int(name))
    if name == "malformed":
        return Response('{"choices": [{"message": {"content": "A"', media_type="application/json")
    if name == "truncated":
        return StreamingResponse(_cut_short(), media_type="application/json", headers={"Content-Length": "4096"})
    if name == "html":
        return Response("<html><body>502 Bad Gateway</body></html>", media_type="text/html")
    if name == "nochoices":
        return JSONResponse({"id": "chatcmpl-1", "object": "chat.completion", "choices": []})
    if name == "echo":
        return JSONResponse({"error": {"message": f"bad request; you sent Authorization: {authorization}"}}, 400)
    raise ValueError(f"unknown fault {fault!r}")


def make_app(faults: Faults) -> FastAPI:
    app = FastAPI()

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Response:
        body = await request.json()
        fault = faults.script.popleft() if faults.script else "ok"
        authorization = request.headers.get("authorization")
        port = request.client.port if request.client else 0
        faults.arrivals.append(Arrival(fault, time.perf_counter(), body, authorization, port))
        name, _, argument = fault.partition(":")
        if name == "slow":
            await asyncio.sleep(float(argument))
            return JSONResponse(completion(body))
        return respond(fault, body, authorization)

    return app


@contextmanager
def serving(faults: Faults) -> Iterator[str]:
    """Serve ``faults`` on a free port of 127.0.0.1 in a background thread; yields the
    base URL (``http://127.0.0.1:PORT/v1``)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(make_app(faults), log_level="critical", timeout_graceful_shutdown=1))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the fault server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        server.should_exit = True
        thread.join(5)
        sock.close()
