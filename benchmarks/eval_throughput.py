"""Evaluation throughput against a server: roadthink's samples/s ÷ the server's maximum.

A local OpenAI-compatible server answers every request after a fixed 100 ms and serves at
most 16 at once, so it can do at most 160 requests/s; roadthink evaluates 400 samples
through the ``openai:`` backend at concurrency 16 (cache off). Goal (issue: model backends):
ratio >= 0.9. Run: ``.venv/bin/python benchmarks/eval_throughput.py [--samples 400]``.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from roadthink.eval.bench import load_bench
from roadthink.eval.runner import RunConfig, run
from roadthink.models.base import resolve_model
from roadthink.tasks import select_tasks
from roadthink.tasks.build import build

LATENCY_S = 0.1
SERVER_SLOTS = 16


SERVER = f"""
import asyncio, sys
import uvicorn
from fastapi import FastAPI

app = FastAPI()
slots = asyncio.Semaphore({SERVER_SLOTS})

@app.post("/v1/chat/completions")
async def complete(body: dict) -> dict:
    async with slots:
        await asyncio.sleep({LATENCY_S})
    message = {{"role": "assistant", "content": "<answer>A</answer>"}}
    return {{"id": "bench", "object": "chat.completion", "created": 0, "model": "bench",
            "choices": [{{"index": 0, "message": message}}], "usage": {{"prompt_tokens": 1, "completion_tokens": 1}}}}

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=400)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        bench = Path(tmp) / "bench"
        build(bench, select_tasks(["side", "motion", "color", "exists"]), "test", args.samples // 4)
        split = load_bench(bench)
        server, url = start_server()
        model = resolve_model("openai:bench", base_url=url, cache=False, api_key="unused")
        warm_up = RunConfig("openai:bench", bench, ["clean"], limit=SERVER_SLOTS, concurrency=SERVER_SLOTS)
        asyncio.run(run(model, split, Path(tmp) / "warm-up", warm_up, False))  # imports, connections
        config = RunConfig("openai:bench", bench, ["clean"], limit=args.samples, concurrency=SERVER_SLOTS)
        start = time.perf_counter()
        metrics = asyncio.run(run(model, split, Path(tmp) / "run", config, False))
        elapsed = time.perf_counter() - start
        server.terminate()
    n = metrics["overall"]["n"]
    best = SERVER_SLOTS / LATENCY_S
    print(f"{n} samples in {elapsed:.2f} s: {n / elapsed:.1f} samples/s; the server's maximum is {best:.0f}/s")
    print(f"throughput ratio: {n / elapsed / best:.2f} (goal >= 0.9)")


if __name__ == "__main__":
    main()
