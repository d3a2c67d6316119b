"""Evaluation throughput against a server: roadthink's samples/s ÷ the server's maximum.

A local OpenAI-compatible server answers every request after a fixed 100 ms and serves at
most 16 at once, so it can do at most 160 requests/s; roadthink evaluates 400 samples
through the ``openai:`` backend (cache off) at concurrency 16, as many requests in flight as
the server serves, and at 32, which keeps a queue at the server. Goal (issue: model backends):
ratio >= 0.9 for the whole ``run()``, metrics and report.html included. Where inspect-ai
(with openai) is installed, the same samples, images and prompt go through its openai-api
provider at 16 connections to the same server (goal: roadthink >= inspect).
Run: ``.venv/bin/python benchmarks/eval_throughput.py [--samples 400]``.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from roadthink.eval.bench import Bench, load_bench
from roadthink.eval.prompt import messages_for
from roadthink.eval.runner import RunConfig, run, summarize
from roadthink.models.base import resolve_model
from roadthink.models.types import TextPart
from roadthink.tasks import select_tasks
from roadthink.tasks.build import build
from roadthink.tasks.sample import Sample as BenchSample

LATENCY_S = 0.1
SERVER_SLOTS = 16
BEST = SERVER_SLOTS / LATENCY_S  # requests/s the server can answer


# A stand-in for a VLM server (which would run on hardware of its own): it reads each whole
# request but does not parse it, as it shares the client's two cores.
SERVER = f"""
import asyncio, sys
import uvicorn
from fastapi import FastAPI, Request

app = FastAPI()
slots = asyncio.Semaphore({SERVER_SLOTS})

@app.post("/v1/chat/completions")
async def complete(request: Request) -> dict:
    await request.body()
    async with slots:
        await asyncio.sleep({LATENCY_S})
    message = {{"role": "assistant", "content": "<answer>A</answer>"}}
    return {{"id": "bench", "object": "chat.completion", "created": 0, "model": "bench",
            "choices": [{{"index": 0, "message": message, "finish_reason": "stop"}}],
            "usage": {{"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}}}

uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
"""


def start_server() -> tuple[subprocess.Popen, str]:
    """The server in its own process, so that it does not share roadthink's interpreter."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen([sys.executable, "-c", SERVER, str(port)])
    deadline = time.time() + 30
    while time.time() < deadline:
        with socket.socket() as client:
            if client.connect_ex(("127.0.0.1", port)) == 0:
                return process, f"http://127.0.0.1:{port}/v1"
        time.sleep(0.05)
    process.kill()
    raise RuntimeError("the benchmark server did not start")


def time_roadthink(split: Bench, url: str, tmp: Path, samples: int, concurrency: int) -> tuple[float, float]:
    """Seconds of the whole ``run()`` over ``samples`` samples, and of its end (``summarize``:
    metrics and report.html) redone on the finished run, so that the loop can be told apart."""
    model = resolve_model("openai:bench", base_url=url, cache=False, api_key="unused")
    warm_up = RunConfig("openai:bench", split.path, ["clean"], limit=SERVER_SLOTS, concurrency=concurrency)
    asyncio.run(run(model, split, tmp / f"warm-up-{concurrency}", warm_up, False))  # imports, caches
    config = RunConfig("openai:bench", split.path, ["clean"], limit=samples, concurrency=concurrency)
    start = time.perf_counter()
    asyncio.run(run(model, split, tmp / f"run-{concurrency}", config, False))
    whole = time.perf_counter() - start
    start = time.perf_counter()
    summarize(tmp / f"run-{concurrency}", split)
    return whole, time.perf_counter() - start


def time_inspect(split: Bench, url: str, tmp: Path, samples: int) -> float:
    """Seconds inspect-ai's ``eval()`` takes for the same samples through its openai-api
    provider at 16 connections (its defaults otherwise: logs, retries, a scorer)."""
    from inspect_ai import Task
    from inspect_ai import eval as inspect_eval
    from inspect_ai.scorer import includes
    from inspect_ai.solver import generate

    dataset = [inspect_sample(split, sample) for sample in split.samples[:samples]]

    def evaluate(n: int) -> float:
        start = time.perf_counter()
        (log,) = inspect_eval(
            Task(dataset=dataset[:n], solver=generate(), scorer=includes()),
            model="openai-api/bench/bench",
            model_base_url=url,
            model_args={"api_key": "unused"},
            max_connections=SERVER_SLOTS,
            display="none",
            log_dir=str(tmp / "inspect-logs"),
        )
        if log.status != "success":
            raise RuntimeError(f"inspect-ai's run failed: {log.error.message if log.error else log.status}")
        return time.perf_counter() - start

    evaluate(SERVER_SLOTS)  # imports, model set-up
    return evaluate(samples)


def inspect_sample(split: Bench, sample: BenchSample) -> Any:
    """``sample`` as roadthink asks it (the same prompt, the same image files, which inspect
    reads and encodes itself) in inspect-ai's form."""
    from inspect_ai.dataset import Sample
    from inspect_ai.model import ChatMessageSystem, ChatMessageUser, ContentImage, ContentText

    system, user = messages_for(sample, [str(split.path / rel) for rel in sample.images])
    parts = [
        ContentText(text=p.text) if isinstance(p, TextPart) else ContentImage(image=p.image_url.url)
        for p in user.content
    ]
    messages = [ChatMessageSystem(content=system.text), ChatMessageUser(content=parts)]
    return Sample(id=sample.id, input=messages, target=str(sample.answer))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=400)
    args = parser.parse_args()
    missing = [name for name in ("inspect_ai", "openai") if importlib.util.find_spec(name) is None]
    with tempfile.TemporaryDirectory() as tmp:
        bench = Path(tmp) / "bench"
        build(bench, select_tasks(["side", "motion", "color", "exists"]), "test", args.samples // 4)
        split = load_bench(bench)
        n = min(args.samples, len(split.samples))
        server, url = start_server()
        try:
            for concurrency in (SERVER_SLOTS, 2 * SERVER_SLOTS):  # as many in flight as the server serves, and more
                print_roadthink(n, concurrency, *time_roadthink(split, url, Path(tmp), n, concurrency))
            if missing:
                print(f"inspect-ai: skipped, {' and '.join(missing)} not installed (pip install inspect-ai openai)")
            else:
                seconds = time_inspect(split, url, Path(tmp), n)
                ratio = n / seconds / BEST
                print(f"inspect-ai: {n} samples in {seconds:.2f} s: ratio {ratio:.2f} (goal: roadthink's >= this)")
        finally:
            server.terminate()


def print_roadthink(n: int, concurrency: int, whole: float, end: float) -> None:
    print(f"roadthink at concurrency {concurrency}: {n} samples in {whole:.2f} s: {n / whole:.1f} samples/s; ", end="")
    print(f"the server's maximum is {BEST:.0f}/s")
    print(f"throughput ratio: {n / whole / BEST:.2f} (goal >= 0.9): the whole run(), metrics and report.html included")
    print(f"  the evaluation loop alone: {n / (whole - end) / BEST:.2f} (metrics and report.html: {end:.2f} s)")


if __name__ == "__main__":
    main()
