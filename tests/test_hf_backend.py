"""The ``hf:`` backend end to end on the tiny Qwen2-VL: images in, text out, batching,
sampling, bad input, evaluation and ``roadthink serve`` over it."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from roadthink.cli import app
from roadthink.errors import RoadthinkError
from roadthink.eval.bench import load_bench
from roadthink.eval.prompt import messages_for
from roadthink.eval.result import finished_results
from roadthink.eval.runner import RunConfig, run
from roadthink.models.base import resolve_model
from roadthink.models.hf_backend import HFModel, Kept, _Request, chat_and_images
from roadthink.models.kv_rows import Rows
from roadthink.models.toolcalls import split_tool_calls
from roadthink.models.types import ImagePart, ImageURL, Message, TextPart
from roadthink.serve import create_app
from servers import running


@pytest.fixture(scope="module")
def model(tiny_model: Path) -> HFModel:
    return HFModel(str(tiny_model), max_tokens=8, threads=1)


@pytest.fixture(scope="module")
def bench(splits):
    return load_bench(splits["test"][0])


def ask(bench, index: int) -> list[Message]:
    sample = bench.samples[index]
    return messages_for(sample, [(bench.path / rel).as_uri() for rel in sample.images])


def without_images(messages: list[Message]) -> list[Message]:
    return [Message(role=m.role, content=m.text) for m in messages]


def count_batches(model: HFModel, monkeypatch) -> list[int]:
    """The batch size of every generate() the backend runs from now on."""
    sizes: list[int] = []
    original = model.model.generate

    def counted(**inputs):
        sizes.append(int(inputs["input_ids"].shape[0]))
        return original(**inputs)

    monkeypatch.setattr(model.model, "generate", counted)
    return sizes


def test_image_in_text_out(model: HFModel, bench) -> None:
    start = time.perf_counter()
    seen = asyncio.run(model.generate(ask(bench, 0)))
    assert time.perf_counter() - start < 5
    blind = asyncio.run(model.generate(without_images(ask(bench, 0))))
    assert isinstance(seen.text, str)
    assert 1 <= seen.completion_tokens <= 8
    assert seen.prompt_tokens - blind.prompt_tokens >= 4 + 2  # vision tokens between vision_start and vision_end
    assert seen.latency_s > 0


def test_the_pixels_reach_the_model(model: HFModel, bench) -> None:
    """Different images give different next-token logits; the same image the same."""

    def logits(index: int) -> torch.Tensor:
        chat, images = chat_and_images(ask(bench, index))
        text = model.processor.apply_chat_template(chat, add_generation_prompt=True, tokenize=False)
        inputs = model.processor(text=[text], images=[images], return_tensors="pt")
        with torch.inference_mode():
            return model.model(**inputs).logits[0, -1]

    same_question = [i for i, s in enumerate(bench.samples) if s.question == bench.samples[0].question]
    other = next(i for i in same_question if bench.samples[i].images != bench.samples[0].images)
    assert torch.equal(logits(0), logits(0))
    assert not torch.allclose(logits(0), logits(other), atol=1e-6)


def test_concurrent_requests_are_batched_and_answer_as_alone(model: HFModel, bench, monkeypatch) -> None:
    indices = list(range(0, 96, 8))  # different tasks: prompts of different lengths, left-padded together
    alone = [asyncio.run(model.generate(ask(bench, i))) for i in indices]
    sizes = count_batches(model, monkeypatch)

    async def together():
        return await asyncio.gather(*(model.generate(ask(bench, i)) for i in indices))

    batched = asyncio.run(together())
    assert sum(sizes) == len(indices)
    assert len(sizes) <= 4 and 1 < max(sizes) <= model.batch_size  # 12 requests in a few batches of up to 8
    assert [c.text for c in batched] == [c.text for c in alone]
    assert [c.prompt_tokens for c in batched] == [c.prompt_tokens for c in alone]


def test_requests_join_running_rows_and_answer_as_alone(model: HFModel, tiny_model: Path, bench, monkeypatch) -> None:
    """Requests that wait while rows decode join them between chunks, their KV caches
    left-padded beside the others', and finished rows leave: greedy replies, and their token
    counts, are those of each request alone."""
    chunked = HFModel(
        str(tiny_model), max_tokens=11, threads=1, batch_size=4, chunk_tokens=3, loaded=(model.processor, model.model)
    )
    indices = list(range(0, 60, 6))  # prompts of different lengths
    one_go = [asyncio.run(model.generate(ask(bench, i), max_tokens=11)) for i in indices]
    running_at_join: list[int] = []
    join, decode = chunked._join, chunked._decode
    queued = threading.Event()  # the first rows decode only once the later requests wait

    def counted(read):
        running_at_join.append(len(chunked._running.requests) if chunked._running else 0)
        return join(read)

    def held(steps, until=None):
        assert queued.wait(timeout=60)
        return decode(steps, until)

    monkeypatch.setattr(chunked, "_join", counted)
    monkeypatch.setattr(chunked, "_decode", held)

    async def together():
        first = [asyncio.ensure_future(chunked.generate(ask(bench, i))) for i in indices[:2]]
        while chunked._running is None:
            await asyncio.sleep(0.005)
        rest = [asyncio.ensure_future(chunked.generate(ask(bench, i))) for i in indices[2:]]
        while len(chunked._pending) < len(rest):
            await asyncio.sleep(0.005)
        queued.set()
        return await asyncio.gather(*first, *rest)

    replies = asyncio.run(together())
    assert [c.text for c in replies] == [c.text for c in one_go]
    assert [(c.prompt_tokens, c.completion_tokens) for c in replies] == [
        (c.prompt_tokens, c.completion_tokens) for c in one_go
    ]
    assert any(running_at_join)  # some requests joined rows that were mid-reply
    assert chunked._running is None


def test_a_batch_holds_the_oldest_request_and_those_nearest_it_in_length(tiny_model: Path, model: HFModel) -> None:
    """Rows of a batch are padded to the longest: the batch is taken from requests of like
    length, and always holds the one that has waited longest, so none waits for ever."""
    small = HFModel(str(tiny_model), batch_size=3, loaded=(model.processor, model.model))
    loop = asyncio.new_event_loop()
    lengths = [50, 400, 10, 60, 45, 300, 55]
    small._pending = [_Request([{"role": "user", "content": "x" * n}], [], {}, loop.create_future()) for n in lengths]
    first = small._joining()
    assert sorted(len(r.chat[0]["content"]) for r in first) == [45, 50, 55]
    small._pending = small._pending[1:]  # the 400 one is now the oldest
    assert sorted(len(r.chat[0]["content"]) for r in small._joining()) == [60, 300, 400]
    loop.close()


def test_while_rows_run_only_their_kind_joins_until_another_kind_has_waited_longest(
    tiny_model: Path, model: HFModel
) -> None:
    small = HFModel(str(tiny_model), batch_size=3, loaded=(model.processor, model.model))
    loop = asyncio.new_event_loop()

    def request(max_tokens: int) -> _Request:
        return _Request([{"role": "user", "content": "x"}], [], {"max_tokens": max_tokens}, loop.create_future())

    short, long = request(2), request(6)
    small._running = Rows(short.batch_key, [short], None, None, None, None, None, None)
    more_short, other_short = request(2), request(2)
    small._pending = [more_short, long, other_short]
    assert small._joining() == [more_short, other_short]  # room for two: the short kind runs
    small._pending = [long, more_short]
    assert small._joining() == []  # the long kind has waited longest: it goes when the rows finish
    small._running = None
    assert small._joining() == [long]
    loop.close()


def test_requests_decoding_differently_never_share_a_batch(model: HFModel, bench, monkeypatch) -> None:
    sizes = count_batches(model, monkeypatch)

    async def mixed():
        short = [model.generate(ask(bench, i), max_tokens=2) for i in range(3)]
        long = [model.generate(ask(bench, i), max_tokens=6) for i in range(3)]
        return await asyncio.gather(*short, *long)

    replies = asyncio.run(mixed())
    assert all(c.completion_tokens <= 2 for c in replies[:3])
    assert all(c.completion_tokens <= 6 for c in replies[3:])
    assert len(sizes) >= 2 and sum(sizes) == 6


def test_greedy_is_repeatable_and_sampling_follows_its_seed(model: HFModel, bench) -> None:
    messages = ask(bench, 1)

    def reply(**options) -> str:
        return asyncio.run(model.generate(messages, max_tokens=12, **options)).text

    greedy = reply()
    assert reply() == greedy
    assert reply(temperature=1.0, seed=7) == reply(temperature=1.0, seed=7)
    assert any(reply(temperature=1.5, seed=s) != greedy for s in range(4))
    assert all(reply(temperature=1.5, top_p=1e-6, seed=s) == greedy for s in range(3))  # only the likeliest is left


def test_bad_images_fail_the_request_in_one_line_and_the_model_goes_on(model: HFModel, bench, tmp_path) -> None:
    junk = "data:image/png;base64," + base64.b64encode(b"not an image at all").decode()
    missing = (tmp_path / "gone.png").as_uri()
    for url, reason in ((junk, "not an image"), (missing, "not an image"), ("ftp://x/y.png", "expected a file:")):
        messages = [Message(role="user", content=[TextPart(text="hi"), ImagePart(image_url=ImageURL(url=url))])]
        with pytest.raises(ValueError, match=reason) as caught:
            asyncio.run(model.generate(messages))
        assert "message 0 part 1" in str(caught.value) and "\n" not in str(caught.value)
    assert asyncio.run(model.generate(ask(bench, 0))).completion_tokens >= 1


def test_load_errors_are_one_line(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(RoadthinkError, match="not a model folder"):
        resolve_model(f"hf:{tmp_path / 'empty'}")
    with pytest.raises(RoadthinkError, match="needs a model folder"):
        resolve_model("hf:")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    start = time.perf_counter()
    with pytest.raises(RoadthinkError, match="cannot be reached to download it") as caught:
        resolve_model("hf:someone/some-vlm")
    assert time.perf_counter() - start < 10 and "\n" not in str(caught.value)
    with pytest.raises(RoadthinkError, match="dtype 'float7'"):
        HFModel(str(tmp_path / "empty"), dtype="float7")


def test_tool_calls_in_text_are_read_and_bad_ones_kept() -> None:
    text = 'Let me look.\n<tool_call>\n{"name": "zoom", "arguments": {"camera": "CAM_FRONT"}}\n</tool_call>'
    rest, calls, problems = split_tool_calls(text)
    assert rest == "Let me look."
    assert [(c.name, json.loads(c.arguments)) for c in calls] == [("zoom", {"camera": "CAM_FRONT"})]
    assert problems == []
    broken = "<tool_call>{'name': zoom}</tool_call>"
    rest, calls, problems = split_tool_calls(broken)
    assert rest == broken and calls == [] and "not JSON" in problems[0]
    assert split_tool_calls('<tool_call>{"arguments": {}}</tool_call>')[2] == ["tool call 1: no 'name'"]


def test_tools_reach_the_chat_template(model: HFModel, bench) -> None:
    tool = {"type": "function", "function": {"name": "zoom", "parameters": {"type": "object", "properties": {}}}}
    completion = asyncio.run(model.generate(ask(bench, 0), tools=[tool]))
    assert isinstance(completion.text, str) and completion.completion_tokens >= 1


def test_an_eval_run_through_the_tiny_model(model: HFModel, bench, tmp_path: Path) -> None:
    config = RunConfig(model.name, bench.path, ["clean"], limit=24, concurrency=8)
    metrics = asyncio.run(run(model, bench, tmp_path / "run", config, show_progress=False))
    results, _ = finished_results(tmp_path / "run" / "samples.jsonl")
    assert len(results) == 24 == metrics["overall"]["n"]
    assert not [r.error for r in results if r.error and r.error.startswith("model failed")]
    assert all(r.prompt_tokens > 0 and r.completion_tokens > 0 for r in results)


def test_eval_cli_with_hf_settings(tiny_model: Path, splits, tmp_path: Path) -> None:
    out = tmp_path / "cli-run"
    args = ["eval", "--model", f"hf:{tiny_model}", "--bench", str(splits["test"][0]), "--out", str(out)]
    result = CliRunner().invoke(
        app, [*args, "--limit", "6", "--max-tokens", "4", "--batch-size", "3", "--threads", "1"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads((out / "metrics.json").read_text())["overall"]["n"] == 6
    results, _ = finished_results(out / "samples.jsonl")
    assert all(r.completion_tokens <= 4 for r in results)


def test_served_tiny_model_answers_like_the_backend(model: HFModel, bench, tmp_path: Path) -> None:
    """Through roadthink serve and the openai: backend, greedy answers are the backend's own."""
    direct = asyncio.run(model.generate(ask(bench, 3)))
    with running(create_app(model, "tiny")) as url:
        client = resolve_model("openai:tiny", base_url=url, cache=False, api_key="unused")
        served = asyncio.run(client.generate(ask(bench, 3)))
        assert served.text == direct.text and served.prompt_tokens == direct.prompt_tokens
        config = RunConfig("openai:tiny", bench.path, ["clean"], limit=16, concurrency=8)
        metrics = asyncio.run(run(client, bench, tmp_path / "served", config, show_progress=False))
        assert metrics["overall"]["n"] == 16
        results, _ = finished_results(tmp_path / "served" / "samples.jsonl")
        assert sorted(r.id for r in results) == sorted(s.id for s in bench.samples[:16])
        assert not [r.error for r in results if r.error and r.error.startswith("model failed")]
        body = {"model": "tiny", "stream": True, "messages": [{"role": "user", "content": "hello"}]}
        with httpx.stream("POST", f"{url}/chat/completions", json=body, timeout=30) as response:
            events = [line[6:] for line in response.iter_lines() if line.startswith("data: ")]
        streamed = "".join(json.loads(e)["choices"][0]["delta"].get("content", "") for e in events[:-1])
        plain = asyncio.run(model.generate([Message(role="user", content="hello")])).text
        assert events[-1] == "[DONE]" and streamed == plain


def test_roadthink_serve_command_over_the_tiny_model(tiny_model: Path, splits, tmp_path: Path) -> None:
    """The command a user runs, in its own process, evaluated through with the CLI."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    exe = Path(sys.executable).with_name("roadthink")
    command = [str(exe), "serve", "--model", f"hf:{tiny_model}", "--port", str(port)]
    env = {**os.environ, "ROADTHINK_API_KEY": "secret-key", "OMP_WAIT_POLICY": "PASSIVE"}
    server = subprocess.Popen([*command, "--max-tokens", "6", "--threads", "1"], env=env, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, server.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "roadthink serve did not start"
            try:
                listed = httpx.get(f"{url}/models", headers={"Authorization": "Bearer secret-key"}, timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        assert listed.json()["data"][0]["id"] == f"hf:{tiny_model}"
        out = tmp_path / "through-serve"
        args = ["eval", "--model", f"openai:hf:{tiny_model}", "--base-url", url, "--no-cache"]
        result = CliRunner(env={"OPENAI_API_KEY": "secret-key"}).invoke(
            app, [*args, "--bench", str(splits["test"][0]), "--out", str(out), "--limit", "8"]
        )
        assert result.exit_code == 0, result.output
        results, _ = finished_results(out / "samples.jsonl")
        assert len(results) == 8 and all(r.completion_tokens <= 6 for r in results)
        assert "secret-key" not in (out / "samples.jsonl").read_text() + (out / "config.json").read_text()
    finally:
        server.terminate()
        server.wait(timeout=20)


def test_log_probabilities_from_the_model_and_through_serve(model: HFModel, bench) -> None:
    reply = asyncio.run(model.generate(ask(bench, 2), logprobs=True, top_logprobs=3))
    assert reply.logprobs is not None and 1 <= len(reply.logprobs) <= reply.completion_tokens  # no stop token
    assert "".join(t.token for t in reply.logprobs) == reply.text
    for step in reply.logprobs:
        assert step.logprob <= 0 and len(step.top) == 3
        assert step.logprob == pytest.approx(max(step.top.values()), abs=1e-5)  # greedy: the likeliest token
    assert asyncio.run(model.generate(ask(bench, 2))).logprobs is None
    with running(create_app(model, "tiny")) as url:
        client = resolve_model("openai:tiny", base_url=url, cache=False, api_key="unused")
        served = asyncio.run(client.generate(ask(bench, 2), logprobs=True))
    assert [t.token for t in served.logprobs] == [t.token for t in reply.logprobs]
    assert [t.logprob for t in served.logprobs] == pytest.approx([t.logprob for t in reply.logprobs], abs=1e-5)


def test_the_generation_configs_repetition_penalty_applies_as_in_generate(bench) -> None:
    """On the shipped model (trained: its replies repeat words), a penalty set in the model's
    generation config changes greedy replies exactly as transformers' generate() does."""
    from roadthink.models.builtin import FOLDER

    shipped = HFModel(str(FOLDER), max_tokens=40, threads=1)
    asks = [ask(bench, i) for i in (0, 7, 30)]
    plain = [asyncio.run(shipped.generate(messages)).text for messages in asks]
    shipped.model.generation_config.repetition_penalty = 1.3
    penalised = HFModel(str(FOLDER), max_tokens=40, threads=1, loaded=(shipped.processor, shipped.model))
    replies = [asyncio.run(penalised.generate(messages)).text for messages in asks]
    for messages, reply in zip(asks, replies, strict=True):
        chat, images = chat_and_images(messages)
        text = shipped.processor.apply_chat_template(chat, add_generation_prompt=True, tokenize=False)
        inputs = shipped.processor(text=[text], images=[images], return_tensors="pt")
        with torch.inference_mode():
            expected = shipped.model.generate(**inputs, max_new_tokens=40, do_sample=False)  # reads the config
        assert reply == shipped.processor.decode(expected[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
    assert replies != plain


def test_a_model_whose_cache_rows_cannot_join_answers_whole_batches_alike(
    model: HFModel, tiny_model: Path, bench, monkeypatch
) -> None:
    """A KV cache of another kind (sliding windows…) cannot take rows joining or leaving: such
    a model answers each batch in one generate(), the same replies and log-probabilities."""
    from types import SimpleNamespace

    from roadthink.models import kv_rows

    assert not kv_rows.roomy(SimpleNamespace(layers=[SimpleNamespace()]))
    indices = [0, 7, 30, 41]
    continuous = [asyncio.run(model.generate(ask(bench, i), logprobs=True, top_logprobs=2)) for i in indices]
    monkeypatch.setattr(kv_rows, "roomy", lambda cache: False)
    whole = HFModel(str(tiny_model), max_tokens=8, threads=1, loaded=(model.processor, model.model))

    async def together():
        return await asyncio.gather(*(whole.generate(ask(bench, i), logprobs=True, top_logprobs=2) for i in indices))

    replies = asyncio.run(together())
    assert not whole._continuous and whole._running is None
    assert [c.text for c in replies] == [c.text for c in continuous]
    assert [c.completion_tokens for c in replies] == [c.completion_tokens for c in continuous]
    for reply, alone in zip(replies, continuous, strict=True):
        assert [t.token for t in reply.logprobs] == [t.token for t in alone.logprobs]
        assert [t.logprob for t in reply.logprobs] == pytest.approx([t.logprob for t in alone.logprobs], abs=1e-4)


def test_prompts_read_one_by_one_batch_as_the_processor_batches_them(model: HFModel, bench) -> None:
    """Each request's prompt is read on arrival (beside the decoding); put together, left-padded,
    they are the batch the processor makes of them all at once: the fall-back when one has none."""
    loop = asyncio.new_event_loop()
    indices = (0, 9, 40)  # different tasks and lengths, one or more images
    read = [model._read(ask(bench, i), None) for i in indices]
    ahead = [_Request(chat, images, {}, loop.create_future(), inputs=inputs) for chat, images, inputs, _ in read]
    together = [_Request(chat, images, {}, loop.create_future()) for chat, images, _, _ in read]
    assert all(r.inputs is not None for r in ahead)
    assert len({r.size for r in ahead}) == len(indices)  # sized by their tokens
    joined, whole = model._prompts(ahead), model._prompts(together)
    assert set(joined) == set(whole) >= {"input_ids", "attention_mask", "pixel_values", "image_grid_thw"}
    assert all(torch.equal(joined[key], whole[key]) for key in whole)
    assert (joined["attention_mask"] == 0).any()  # the shorter prompts were padded
    loop.close()


def test_rows_go_on_decoding_while_the_next_prompts_are_read(
    model: HFModel, tiny_model: Path, bench, monkeypatch
) -> None:
    """A read waits here until the rows running have decoded a token: were reading and decoding
    taken in turns, it would wait in vain."""
    overlapped = HFModel(
        str(tiny_model), max_tokens=12, threads=1, batch_size=8, chunk_tokens=4, loaded=(model.processor, model.model)
    )
    alone = [asyncio.run(model.generate(ask(bench, i), max_tokens=12)) for i in (0, 5, 10)]
    read, decode = overlapped._read_prompts, overlapped._decode
    stepped = threading.Condition()
    steps = [0]
    waited: list[bool] = []

    def counted(steps_asked, until=None):
        deadline = time.perf_counter() + 30
        while steps[0] == 0 and len(overlapped._pending) < 2 and time.perf_counter() < deadline:
            time.sleep(0.005)  # the first step waits for the later requests, however slow the machine
        done = decode(1, until)
        with stepped:
            steps[0] += 1
            stepped.notify_all()
        return done

    def slow_read(batch, threads, ready):
        if overlapped._running is not None:  # rows are running: wait for a step they take from now on
            with stepped:
                before = steps[0]
                waited.append(stepped.wait_for(lambda: steps[0] > before, timeout=20))
        return read(batch, threads, ready)

    monkeypatch.setattr(overlapped, "_decode", counted)
    monkeypatch.setattr(overlapped, "_read_prompts", slow_read)

    async def staggered():
        first = asyncio.ensure_future(overlapped.generate(ask(bench, 0)))
        while overlapped._running is None:
            await asyncio.sleep(0.005)
        later = [asyncio.ensure_future(overlapped.generate(ask(bench, i))) for i in (5, 10)]
        return await asyncio.gather(first, *later)

    replies = asyncio.run(staggered())
    assert waited and all(waited)
    assert [c.text for c in replies] == [c.text for c in alone]


def test_an_image_asked_about_again_is_not_encoded_again(model: HFModel, tiny_model: Path, bench, monkeypatch) -> None:
    """The vision tower's features are kept by the image's pixels: a second question on the same
    camera image encodes nothing, and every reply is that of a model that keeps none."""
    keeping = HFModel(str(tiny_model), max_tokens=8, threads=1)
    none_kept = HFModel(str(tiny_model), max_tokens=8, threads=1, image_cache_mb=0)
    first = bench.samples[0]
    again = next(i for i, s in enumerate(bench.samples) if s.images == first.images and s.question != first.question)
    encoded: list[int] = []
    encode = keeping.model.get_image_features

    def counted(pixel_values, grids, **kwargs):
        encoded.append(len(grids))
        return encode(pixel_values, grids, **kwargs)

    monkeypatch.setattr(keeping.model, "get_image_features", counted)
    replies = [asyncio.run(keeping.generate(ask(bench, i))) for i in (0, again, 0)]
    assert encoded == [len(first.images)]
    assert [c.text for c in replies] == [asyncio.run(none_kept.generate(ask(bench, i))).text for i in (0, again, 0)]
    assert none_kept.images.room == 0 and not none_kept.images.kept.values


def test_kept_image_features_stay_within_their_room(model: HFModel, tiny_model: Path, bench) -> None:
    small = HFModel(str(tiny_model), max_tokens=2, threads=1, image_cache_mb=0.01)  # room for a few of them
    asked = range(0, 80, 4)
    for i in asked:
        asyncio.run(small.generate(ask(bench, i)))
    seen = {image for i in asked for image in bench.samples[i].images}
    assert 0 < len(small.images.kept.values) < len(seen) and 0 < small.images.kept.used <= small.images.room
    assert HFModel(str(tiny_model), loaded=(model.processor, model.model)).images.room == 0  # weights may change


def test_an_image_file_changed_since_it_was_read_is_read_again(model: HFModel, bench, tmp_path: Path) -> None:
    sample = bench.samples[0]
    path = tmp_path / "camera.png"
    path.write_bytes((bench.path / sample.images[0]).read_bytes())
    messages = messages_for(sample, [path.as_uri()])
    _, before, _, keys_before = model._read(messages, None)
    read_at = path.stat().st_mtime_ns
    with Image.open(path) as image:
        image.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(path)
    os.utime(path, ns=(read_at + 10**9, read_at + 10**9))  # a second later, whatever the file system's clock
    _, after, _, keys_after = model._read(messages, None)
    assert before[0].tobytes() != after[0].tobytes() and keys_before != keys_after
    assert model._read(messages, None)[1][0] is after[0]  # unchanged since: kept


def test_kept_values_drop_the_least_lately_used_past_their_room() -> None:
    kept = Kept(10, len)
    kept.put("a", "xxxx")
    kept.put("b", "xxxx")
    assert kept.get("a") == "xxxx"  # now the latest used: b goes first
    kept.put("c", "xxx")
    assert kept.get("b") is None and kept.get("a") == "xxxx" and kept.used == 7
    kept.put("a", "x")  # a new value for a key counts once
    assert kept.used == 4 and list(kept.values) == ["c", "a"]
    kept.put("d", "x" * 11)  # more than the room: kept by no one
    assert kept.get("d") is None and kept.used <= 10


def test_a_processor_whose_prompts_do_not_pad_alone_is_read_in_batches(
    model: HFModel, tiny_model: Path, bench, monkeypatch
) -> None:
    """Where one prompt's processor output cannot be batched by padding (SmolVLM's image
    tiles…), prompts are read together when they join, and no longer one by one as well."""
    from roadthink.models import hf_backend

    alone = [asyncio.run(model.generate(ask(bench, i))).text for i in (0, 9, 40)]
    together = HFModel(str(tiny_model), max_tokens=8, threads=1, loaded=(model.processor, model.model))
    monkeypatch.setattr(hf_backend, "pads_alone", lambda keys: False)
    calls = count_batches(together, monkeypatch)

    async def ask_all():
        return await asyncio.gather(*(together.generate(ask(bench, i)) for i in (0, 9, 40)))

    replies = asyncio.run(ask_all())
    assert not together._pads_alone and sum(calls) == 3
    assert [c.text for c in replies] == alone
    assert together._read(ask(bench, 0), None)[2:] == (None, None)
