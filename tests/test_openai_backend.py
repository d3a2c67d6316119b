"""The openai: backend against a real fault-injecting server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import base64
import json
import random
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from fault_server import Faults, serving
from roadthink.cli import app
from roadthink.errors import FatalModelError, RoadthinkError
from roadthink.eval.bench import load_bench
from roadthink.eval.runner import RunConfig, run
from roadthink.models.base import resolve_model
from roadthink.models.openai_backend import (
    ModelError,
    OpenAIModel,
    backoff_delay,
    retry_after,
)
from roadthink.models.types import Completion, ImagePart, ImageURL, Message, TextPart
from roadthink.tasks import select_tasks
from roadthink.tasks.build import build

KEY = "sk-test-SECRET-0123456789"
QUESTION = [Message(role="user", content="How many cars? Answer with a number.")]


@pytest.fixture
def faults() -> Faults:
    return Faults()


@pytest.fixture
def base_url(faults: Faults) -> Iterator[str]:
    with serving(faults) as url:
        yield url


def model(base_url: str, **settings: Any) -> OpenAIModel:
    """A model that retries fast and caches nothing unless told otherwise."""
    return OpenAIModel("fake", **{"base_url": base_url, "backoff": 0.001, "cache": False, **settings})


def ask(m: OpenAIModel, messages: list[Message] = QUESTION, **options: Any) -> Completion:
    return asyncio.run(m.generate(messages, **options))


# --- pure parts ------------------------------------------------------------------------


def test_backoff_is_full_jitter_under_a_growing_cap() -> None:
    rng = random.Random(0)
    for attempt, ceiling in [(0, 0.5), (1, 1.0), (2, 2.0), (6, 10.0)]:
        delays = [backoff_delay(attempt, 0.5, 10.0, rng) for _ in range(200)]
        assert min(delays) >= 0.0 and max(delays) <= ceiling
        assert max(delays) > 0.8 * ceiling  # spread over the whole range, not a fixed step


def test_retry_after_reads_seconds_and_http_dates_and_caps_them() -> None:
    now = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert retry_after("3", now, 60) == 3.0
    assert retry_after("0.25", now, 60) == 0.25
    assert retry_after("Wed, 01 Jan 2025 12:00:07 GMT", now, 60) == 7.0
    assert retry_after("Wed, 01 Jan 2025 11:59:00 GMT", now, 60) == 0.0  # a date in the past: no wait
    assert retry_after("3600", now, 60) == 60  # a server asking for an hour gets the cap
    assert retry_after("soon", now, 60) is None
    assert retry_after(None, now, 60) is None


def test_settings_come_from_the_environment_and_unknown_ones_are_ignored(monkeypatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", "http://example.test:9/v1/")
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    m = resolve_model("openai:gpt-x", train=None, seed=0, base_url=None)
    assert isinstance(m, OpenAIModel)
    assert (m.name, m.base_url, m._headers()) == (
        "openai:gpt-x",
        "http://example.test:9/v1",
        {"Authorization": f"Bearer {KEY}"},
    )
    assert KEY not in repr(m)


def test_bad_model_strings_and_urls_fail_before_any_request() -> None:
    with pytest.raises(RoadthinkError, match="needs a model name"):
        resolve_model("openai:")
    with pytest.raises(RoadthinkError, match="not http"):
        resolve_model("openai:m", base_url="ftp://user:pw@host/v1")


# --- faults against a real server -------------------------------------------------------


@pytest.mark.parametrize("fault", ["500", "429:0", "malformed", "truncated", "html"])
def test_transient_faults_are_retried_until_an_answer(faults: Faults, base_url: str, fault: str) -> None:
    faults.plan(fault, fault, "ok")
    completion = ask(model(base_url))
    assert completion.text == "<answer>2</answer>"
    assert [a.fault for a in faults.arrivals] == [fault, fault, "ok"]
    assert (completion.prompt_tokens, completion.completion_tokens) == (11, 7)
    assert 0 < completion.latency_s < 5


def test_retries_run_out_with_one_line_naming_model_server_and_reason(faults: Faults, base_url: str) -> None:
    faults.plan("500", "500", "500", "ok")
    with pytest.raises(ModelError) as caught:
        ask(model(base_url, max_retries=2))
    message = str(caught.value)
    assert len(faults.arrivals) == 3
    assert "\n" not in message
    assert message.startswith(f"openai:fake at {base_url}: 500 Internal Server Error")
    assert "gave up after 3 attempts" in message


def test_retry_after_is_honoured(faults: Faults, base_url: str) -> None:
    faults.plan("429:0.6", "ok")
    ask(model(base_url))
    first, second = faults.arrivals
    assert 0.6 <= second.at - first.at < 1.5  # the backoff alone would wait about a millisecond


def test_a_slow_answer_times_out_and_is_retried(faults: Faults, base_url: str) -> None:
    faults.plan("slow:2", "ok")
    start = time.perf_counter()
    completion = ask(model(base_url, timeout=0.3))
    assert completion.text == "<answer>2</answer>"
    assert [a.fault for a in faults.arrivals] == ["slow:2", "ok"]
    assert 0.3 <= time.perf_counter() - start < 1.5  # retried on the timeout, not after the slow reply


@pytest.mark.parametrize(
    ("fault", "hint"),
    [
        ("401", "401 Unauthorized — check OPENAI_API_KEY"),
        ("404", "404 Not Found — check the base URL and the model name"),
    ],
)
def test_auth_and_missing_model_are_fatal_at_once(faults: Faults, base_url: str, fault: str, hint: str) -> None:
    faults.plan(fault, "ok")
    with pytest.raises(FatalModelError) as caught:
        ask(model(base_url, api_key=KEY, max_retries=5))
    assert len(faults.arrivals) == 1
    assert str(caught.value) == f"openai:fake at {base_url}: {hint}"
    assert faults.arrivals[0].authorization == f"Bearer {KEY}"


def test_the_api_key_never_appears_in_errors(faults: Faults, base_url: str) -> None:
    faults.plan("echo")
    with pytest.raises(ModelError) as caught:
        ask(model(base_url, api_key=KEY))
    assert faults.arrivals[0].authorization == f"Bearer {KEY}"  # the server did see it…
    assert "you sent Authorization: Bearer ***" in str(caught.value)  # …and echoed it, blanked here
    assert KEY not in str(caught.value)
    faults.plan("401")
    with pytest.raises(FatalModelError) as fatal:
        ask(model(base_url, api_key=KEY))
    assert KEY not in str(fatal.value)


def test_a_response_without_choices_is_one_line_and_not_retried(faults: Faults, base_url: str) -> None:
    faults.plan("nochoices", "ok")
    with pytest.raises(ModelError, match=r"^openai:fake at .*: a response without choices$"):
        ask(model(base_url))
    assert len(faults.arrivals) == 1


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # free, and closed again on return: nobody listens


def test_an_unreachable_server_is_fatal_with_one_line() -> None:
    """Nothing ever answered: no sample could pass, so the run should stop, not fail each one."""
    url = f"http://127.0.0.1:{_closed_port()}/v1"
    with pytest.raises(FatalModelError) as caught:
        ask(model(url, max_retries=2))
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"openai:fake at {url}: cannot reach the server")
    assert "ConnectError" in message and "--base-url" in message


def test_a_server_that_answered_once_and_then_went_away_fails_only_the_sample(faults: Faults, base_url: str) -> None:
    faults.plan("ok")
    m = model(base_url)
    ask(m)
    m.base_url = f"http://127.0.0.1:{_closed_port()}/v1"  # as if it had gone down
    with pytest.raises(ModelError) as caught:
        ask(m)
    assert not isinstance(caught.value, FatalModelError)
    assert "gave up after" in str(caught.value)


def test_native_tool_calls_are_parsed(faults: Faults, base_url: str) -> None:
    tools = [{"type": "function", "function": {"name": "zoom", "parameters": {"type": "object"}}}]
    faults.plan("tool")
    completion = ask(model(base_url, temperature=0.0, max_tokens=64), tools=tools, sample="ignored")
    assert completion.text == ""
    assert [(c.id, c.name, json.loads(c.arguments)) for c in completion.tool_calls] == [
        ("call_1", "zoom", {"camera": "front"})
    ]
    body = faults.arrivals[0].body
    assert (body["model"], body["temperature"], body["max_tokens"], body["tools"]) == ("fake", 0.0, 64, tools)
    assert "sample" not in body


# --- images ---------------------------------------------------------------------------------


def _sent_images(faults: Faults) -> list[str]:
    return [p["image_url"]["url"] for p in faults.arrivals[-1].body["messages"][0]["content"] if "image_url" in p]


def _decode(data_url: str) -> np.ndarray:
    header, payload = data_url.split(",", 1)
    image = cv2.imdecode(np.frombuffer(base64.b64decode(payload), np.uint8), cv2.IMREAD_COLOR)
    assert image is not None, header
    return image


def _look(*urls: str) -> list[Message]:
    parts: list[TextPart | ImagePart] = [ImagePart(image_url=ImageURL(url=u)) for u in urls]
    return [Message(role="user", content=[*parts, TextPart(text="Answer with a number.")])]


def test_images_go_as_base64_data_urls_scaled_to_the_maximum_side(faults: Faults, base_url: str, tmp_path) -> None:
    wide, small, photo = tmp_path / "wide.png", tmp_path / "small.png", tmp_path / "photo.jpg"
    cv2.imwrite(str(wide), np.full((300, 900, 3), 200, np.uint8))
    cv2.imwrite(str(small), np.full((50, 40, 3), 7, np.uint8))
    cv2.imwrite(str(photo), np.full((400, 200, 3), 90, np.uint8))
    remote = "https://example.test/cam.png"
    ask(model(base_url, max_image_side=256), _look(wide.as_uri(), small.as_uri(), photo.as_uri(), remote))
    sent = _sent_images(faults)
    assert [u.split(";")[0] for u in sent[:3]] == ["data:image/png", "data:image/png", "data:image/jpeg"]
    assert [_decode(u).shape[:2] for u in sent[:3]] == [(85, 256), (50, 40), (256, 128)]  # 900x300 → 256x85
    assert base64.b64decode(sent[1].split(",", 1)[1]) == small.read_bytes()  # fits: sent byte for byte
    assert sent[3] == remote


def test_a_file_that_is_not_an_image_is_a_one_line_value_error(faults: Faults, base_url: str, tmp_path) -> None:
    notes = tmp_path / "notes.png"
    notes.write_text("not pixels")
    with pytest.raises(ValueError, match=rf"^{notes}: not an image$"):
        ask(model(base_url), _look(notes.as_uri()))
    with pytest.raises(ValueError, match=r"missing\.png: cannot read image"):
        ask(model(base_url), _look((tmp_path / "missing.png").as_uri()))
    assert faults.arrivals == []


def test_a_torn_png_is_decoded_not_sent_as_it_is(faults: Faults, base_url: str, tmp_path) -> None:
    whole = cv2.imencode(".png", np.random.default_rng(0).integers(0, 255, (60, 80, 3), np.uint8))[1].tobytes()
    torn = tmp_path / "torn.png"
    torn.write_bytes(whole[:-5])  # its header says it fits; its last chunk is cut short
    with pytest.raises(ValueError, match=rf"^{torn}: not an image$"):
        ask(model(base_url), _look(torn.as_uri()))
    assert faults.arrivals == []


def test_an_image_file_rewritten_between_requests_is_read_again(faults: Faults, base_url: str, tmp_path) -> None:
    frame = tmp_path / "frame.png"
    for side in (30, 40):
        cv2.imwrite(str(frame), np.full((side, side, 3), side, np.uint8))
        ask(model(base_url), _look(frame.as_uri()))
        assert _decode(_sent_images(faults)[0]).shape[:2] == (side, side)


def test_requests_in_flight_hold_one_connection_each_and_later_ones_reuse_them(faults: Faults, base_url: str) -> None:
    m = model(base_url)

    async def three_rounds_of_four() -> None:
        for _ in range(3):
            await asyncio.gather(*(m.generate(QUESTION) for _ in range(4)))

    asyncio.run(three_rounds_of_four())
    assert len(faults.arrivals) == 12 and len({a.port for a in faults.arrivals}) == 4


# --- cache ----------------------------------------------------------------------------------


def test_the_cache_answers_a_repeated_request_without_the_server(faults: Faults, base_url: str, tmp_path) -> None:
    m = model(base_url, cache=True, cache_dir=tmp_path / "cache")
    first = ask(m)
    second = ask(m)
    assert len(faults.arrivals) == 1
    assert second == first
    ask(m, temperature=0.5)  # another request body: another entry
    assert len(faults.arrivals) == 2
    assert len(list((tmp_path / "cache").glob("*.json"))) == 2


def test_a_corrupt_cache_file_is_ignored_and_overwritten(faults: Faults, base_url: str, tmp_path) -> None:
    m = model(base_url, cache=True, cache_dir=tmp_path)
    ask(m)
    (entry,) = tmp_path.glob("*.json")
    entry.write_text('{"text": "half')
    assert ask(m).text == "<answer>2</answer>"
    assert len(faults.arrivals) == 2
    assert Completion.model_validate_json(entry.read_text()).text == "<answer>2</answer>"
    assert list(tmp_path.iterdir()) == [entry]  # no temporary files left behind


def test_failures_are_not_cached(faults: Faults, base_url: str, tmp_path) -> None:
    m = model(base_url, cache=True, cache_dir=tmp_path, max_retries=0)
    faults.plan("500")
    with pytest.raises(ModelError):
        ask(m)
    assert ask(m).text == "<answer>2</answer>"
    assert len(faults.arrivals) == 2


# --- end to end -----------------------------------------------------------------------------


def test_an_eval_run_through_a_faulty_server_completes_and_counts_failures(
    faults: Faults, base_url: str, tmp_path
) -> None:
    bench = tmp_path / "bench"
    build(bench, select_tasks(["count", "side"]), "test", 3, workers=1)
    ids = [json.loads(line)["id"] for line in (bench / "samples.jsonl").read_text().splitlines()]
    # Six transient faults (retried away) and two answers without choices (two failed samples),
    # whichever samples they land on.
    faults.plan("500", "429:0", "truncated", "malformed", "html", "slow:1", "nochoices", "nochoices")
    m = resolve_model("openai:fake", base_url=base_url, cache=False, backoff=0.001, timeout=0.4, max_retries=8)
    out = tmp_path / "run"
    metrics = asyncio.run(
        run(m, load_bench(bench), out, RunConfig("openai:fake", bench, ["clean"], concurrency=4), False)
    )
    results = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert sorted(r["id"] for r in results) == sorted(ids)  # each sample once: nothing lost or doubled
    failed = [r for r in results if r["error"]]
    assert len(failed) == 2
    assert all("a response without choices" in r["error"] and r["correct"] is False for r in failed)
    assert metrics["overall"]["n"] == len(ids)
    assert metrics["overall"]["errors"]["count"] == 2
    assert json.loads((out / "metrics.json").read_text())["overall"]["errors"]["count"] == 2
    assert len(faults.arrivals) == len(ids) + 6
    sent = [
        u
        for a in faults.arrivals
        for p in a.body["messages"][-1]["content"]
        if "image_url" in p
        for u in [p["image_url"]["url"]]
    ]
    assert sent and all(u.startswith("data:image/png;base64,") for u in sent)


def test_a_bad_key_stops_the_cli_run_at_once_with_one_line(faults: Faults, base_url: str, tmp_path) -> None:
    bench = tmp_path / "bench"
    build(bench, select_tasks(["count"]), "test", 3, workers=1)
    faults.plan("401", "401", "401")
    out = tmp_path / "run"
    args = ["eval", "--model", "openai:fake", "--bench", str(bench), "--out", str(out)]
    result = CliRunner().invoke(app, [*args, "--base-url", base_url, "--no-cache", "--concurrency", "1"])
    assert result.exit_code == 2, result.output
    assert "401 Unauthorized" in result.output and "OPENAI_API_KEY" in result.output
    assert len(faults.arrivals) == 1  # stopped at the first refusal, not once per sample
    assert (out / "samples.jsonl").read_text() == ""  # nothing recorded as a wrong answer
