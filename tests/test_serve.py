"""``roadthink serve`` end to end: a real uvicorn server on 127.0.0.1, spoken to over HTTP."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import cv2
import httpx
import numpy as np
import pytest
import uvicorn
from fastapi import FastAPI
from typer.testing import CliRunner

from roadthink.cli import app as cli
from roadthink.models.base import register, resolve_model
from roadthink.models.types import Completion, Message, ToolCall
from roadthink.serve import create_app
from servers import running


class EchoModel:
    """Replies with what it was given, so a test can see the request reached the model intact."""

    name = "echo-test"

    async def generate(self, messages: list[Message], **options: Any) -> Completion:
        last = messages[-1]
        if last.text == "crash":
            raise RuntimeError("GPU fell off\nsecond line")
        if options.get("tools"):
            call = ToolCall(id="call_1", name=options["tools"][0]["function"]["name"], arguments='{"lane": 2}')
            return Completion(text="", tool_calls=[call])
        images = sum(len(m.images) for m in messages)
        text = f"images={images} turns={len(messages)} temperature={options.get('temperature')} text={last.text}"
        return Completion(text=text, prompt_tokens=7, completion_tokens=3)


register("echo-test", lambda argument, settings: EchoModel())


@pytest.fixture(scope="module")
def echo() -> Iterator[str]:
    with running(create_app(resolve_model("echo-test"), "echo-test")) as url:
        yield url


def png_data_url() -> str:
    ok, png = cv2.imencode(".png", np.zeros((4, 6, 3), np.uint8))
    assert ok
    return "data:image/png;base64," + base64.b64encode(png.tobytes()).decode()


def ask(text: str, image: bool = False, **extra: Any) -> dict[str, Any]:
    parts: list[dict[str, Any]] = [{"type": "text", "text": text}]
    if image:
        parts.append({"type": "image_url", "image_url": {"url": png_data_url()}})
    return {"model": "echo-test", "messages": [{"role": "user", "content": parts}], **extra}


def test_models_lists_the_served_model(echo):
    response = httpx.get(f"{echo}/models")
    assert response.status_code == 200
    assert response.json() == {
        "object": "list",
        "data": [{"id": "echo-test", "object": "model", "owned_by": "roadthink"}],
    }


def test_chat_completion_with_an_image(echo):
    response = httpx.post(f"{echo}/chat/completions", json=ask("what is ahead?", image=True, temperature=0.2))
    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "chat.completion" and body["model"] == "echo-test"
    assert body["id"].startswith("chatcmpl-") and isinstance(body["created"], int)
    choice = body["choices"][0]
    assert choice["message"] == {"role": "assistant", "content": "images=1 turns=1 temperature=0.2 text=what is ahead?"}
    assert choice["finish_reason"] == "stop"
    assert body["usage"] == {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}


def test_openai_shaped_history_and_tool_calls(echo):
    """Assistant turns as OpenAI clients send them (content null, nested function calls, a name) are accepted,
    and the model's tool call comes back in OpenAI's shape."""
    history = [
        {"role": "system", "content": "You drive.", "name": "rules"},
        {"role": "user", "content": "change lane?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": "c0", "type": "function", "function": {"name": "look", "arguments": "{}"}}],
        },
        {"role": "tool", "tool_call_id": "c0", "content": "clear"},
        {"role": "user", "content": "so?"},
    ]
    plain = httpx.post(f"{echo}/chat/completions", json={"messages": history}).json()
    assert plain["choices"][0]["message"]["content"] == "images=0 turns=5 temperature=None text=so?"
    tools = [{"type": "function", "function": {"name": "change_lane", "parameters": {"type": "object"}}}]
    called = httpx.post(f"{echo}/chat/completions", json={"messages": history, "tools": tools}).json()
    choice = called["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["tool_calls"] == [
        {"id": "call_1", "type": "function", "function": {"name": "change_lane", "arguments": '{"lane": 2}'}}
    ]


def sse_events(response: httpx.Response) -> list[str]:
    return [line.removeprefix("data: ") for line in response.iter_lines() if line.startswith("data: ")]


def test_streaming_chunks_reassemble_to_the_same_text(echo):
    request = ask("is the light red?", image=True)
    whole = httpx.post(f"{echo}/chat/completions", json=request).json()["choices"][0]["message"]["content"]
    with httpx.stream("POST", f"{echo}/chat/completions", json={**request, "stream": True}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = sse_events(response)
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" and c["model"] == "echo-test" for c in chunks)
    assert len({c["id"] for c in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    pieces = [c["choices"][0]["delta"].get("content", "") for c in chunks]
    assert "".join(pieces) == whole == "images=1 turns=1 temperature=None text=is the light red?"
    assert sum(1 for p in pieces if p) == 7  # word by word: 7 words
    assert [c["choices"][0]["finish_reason"] for c in chunks][-1] == "stop"


def test_streaming_tool_calls(echo):
    tools = [{"type": "function", "function": {"name": "brake"}}]
    with httpx.stream("POST", f"{echo}/chat/completions", json=ask("stop", stream=True, tools=tools)) as response:
        events = sse_events(response)
    chunks = [json.loads(e) for e in events[:-1]]
    calls = [call for c in chunks for call in c["choices"][0]["delta"].get("tool_calls", [])]
    assert calls == [
        {"index": 0, "id": "call_1", "type": "function", "function": {"name": "brake", "arguments": '{"lane": 2}'}}
    ]
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


def test_api_key_is_enforced():
    with running(create_app(EchoModel(), api_key="s3cret")) as url:
        good = {"Authorization": "Bearer s3cret"}
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret"}):
            refused = httpx.get(f"{url}/models", headers=headers)
            assert refused.status_code == 401
            assert refused.json()["error"]["type"] == "authentication_error"
            assert "s3cret" not in refused.text
        # refused before the body is read: a malformed body without the key is a 401, not a 400
        assert httpx.post(f"{url}/chat/completions", content=b"{oops").status_code == 401
        assert httpx.get(f"{url}/models", headers=good).status_code == 200
        answered = httpx.post(f"{url}/chat/completions", json=ask("hi"), headers=good)
        assert answered.json()["choices"][0]["message"]["content"] == "images=0 turns=1 temperature=None text=hi"


SAMPLE = {  # a one-option question, so the random baseline's answer is known: A
    "id": "t-1",
    "family": "spatial",
    "task": "lane_choice",
    "question": "Which lane?",
    "choices": ["A. left"],
    "answer": "A",
    "answer_type": "choice",
    "scene_id": "s0-0",
    "reference_steps": [],
}


def test_baselines_explain_they_need_a_sample_and_answer_with_one():
    with running(create_app(resolve_model("random"), "random")) as url:
        bare = httpx.post(f"{url}/chat/completions", json={"messages": [{"role": "user", "content": "hi"}]})
        assert bare.status_code == 400
        error = bare.json()["error"]
        assert error["type"] == "invalid_request_error"
        assert error["message"] == (
            "model 'random' answers benchmark samples only, not bare chat: "
            "send roadthink_sample (a row of samples.jsonl)"
        )
        request = {"messages": [{"role": "user", "content": "Which lane?"}], "roadthink_sample": SAMPLE}
        answered = httpx.post(f"{url}/chat/completions", json=request)
        assert answered.status_code == 200
        assert answered.json()["choices"][0]["message"]["content"] == "The answer is A."
    with running(create_app(resolve_model("oracle"), "oracle")) as url:
        request = {"messages": [{"role": "user", "content": "Which lane?"}], "roadthink_sample": SAMPLE}
        no_scene = httpx.post(f"{url}/chat/completions", json=request)
        assert no_scene.status_code == 400
        assert no_scene.json()["error"]["message"].endswith("send roadthink_scene (the sample's scene JSON)")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "the body is not valid JSON: Expecting property name enclosed in double quotes"),
        (b"[]", "the body must be a JSON object sent with Content-Type: application/json"),
        (b'{"model": "echo-test"}', "messages: Field required"),
        (
            b'{"messages": [{"role": "robot", "content": "hi"}]}',
            "messages.0.role: Input should be 'system', 'user', 'assistant' or 'tool'",
        ),
        (
            b'{"messages": [{"role": "user", "content": "hi"}, {"role": "user", "content": [{"type": "audio"}]}]}',
            "messages: message 1: content part type 'audio' is not supported: use 'text' or 'image_url'",
        ),
        (
            b'{"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"uri": "x"}}]}]}',
            "messages: message 0: image_url part: image_url.url: Field required",
        ),
        (b'{"messages": "hello"}', "messages: Input should be a valid list"),
        (b'{"messages": [], "roadthink_sample": {"id": 1}}', "roadthink_sample.id: Input should be a valid string"),
    ],
)
def test_malformed_requests_get_a_one_line_400(echo, body, message):
    response = httpx.post(f"{echo}/chat/completions", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["message"] == message


def test_another_model_name_is_a_404(echo):
    response = httpx.post(f"{echo}/chat/completions", json={**ask("hi"), "model": "gpt-4o"})
    assert response.status_code == 404
    assert response.json()["error"]["message"] == "model 'gpt-4o' is not served here; this server serves 'echo-test'"


def test_a_failing_backend_is_a_500_and_the_server_keeps_serving(echo):
    failed = httpx.post(f"{echo}/chat/completions", json=ask("crash"))
    assert failed.status_code == 500
    assert failed.json()["error"] == {
        "message": "model 'echo-test' failed: RuntimeError: GPU fell off",
        "type": "server_error",
        "param": None,
        "code": None,
    }
    streamed = httpx.post(f"{echo}/chat/completions", json=ask("crash", stream=True))
    assert streamed.status_code == 500  # the model runs before the stream starts, so the status is honest
    after = httpx.post(f"{echo}/chat/completions", json=ask("still there?"))
    assert after.status_code == 200
    assert after.json()["choices"][0]["message"]["content"].endswith("text=still there?")


def test_cli_binds_localhost_by_default(monkeypatch):
    calls: list[tuple[FastAPI, dict[str, Any]]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: calls.append((app, kwargs)))
    result = CliRunner().invoke(cli, ["serve", "--model", "echo-test"])
    assert result.exit_code == 0, result.output
    [(served, kwargs)] = calls
    assert kwargs == {"host": "127.0.0.1", "port": 8000}
    assert isinstance(served, FastAPI)
    unknown = CliRunner().invoke(cli, ["serve", "--model", "nonesuch:x"])
    assert unknown.exit_code == 2 and "unknown model 'nonesuch:x'" in unknown.output
    assert len(calls) == 1  # an unknown model never starts a server
