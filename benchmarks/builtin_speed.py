"""Answers per second of a small VLM on CPU through the ``hf:`` backend, batched: the speed
the built-in model must keep (goal, issue: built-in VLM: >= 20 answers/s on 2 cores).

Run: ``.venv/bin/python benchmarks/builtin_speed.py [--model builtin|hf:DIR|recipe]
[--samples 290] [--max-tokens 256] [--batch-size 32] [--chunk-tokens 32 1000000]``, on test
samples of every task, once per chunk size (the backend batches continuously: requests that
arrive while rows decode join them after that many tokens, finished rows leave at once). The
default is the shipped model, whose replies end where it ends them; ``recipe`` is a model of the
CPU training recipe's size with random weights, whose replies run to ``--max-tokens``.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from roadthink.eval.bench import load_bench
from roadthink.eval.runner import RunConfig, run
from roadthink.models.base import resolve_model
from roadthink.tasks import select_tasks
from roadthink.tasks.build import build


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="builtin", help="builtin, hf:<folder>, or recipe (random weights)")
    parser.add_argument("--samples", type=int, default=290)
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument(
        "--chunk-tokens",
        type=int,
        nargs="+",
        default=[32, 1_000_000],
        help="reply tokens decoded between looks at the queue, where waiting requests join the rows "
        "running (a huge value: none join until all rows are done)",
    )
    args = parser.parse_args()
    tasks = select_tasks()
    with tempfile.TemporaryDirectory() as tmp:
        bench = Path(tmp) / "bench"
        build(bench, tasks, "test", -(-args.samples // len(tasks)))
        split = load_bench(bench)
        name = args.model
        if args.model == "recipe":
            from roadthink.models.tiny import build_tiny_qwen2vl
            from roadthink.train.run import RECIPE

            name = f"hf:{build_tiny_qwen2vl(Path(tmp) / 'recipe', None, RECIPE)}"
        speeds = {}
        for chunk in args.chunk_tokens:
            settings = {"max_tokens": args.max_tokens, "batch_size": args.batch_size, "device": "cpu"}
            model = resolve_model(name, **settings, chunk_tokens=chunk)
            warm = RunConfig(model.name, bench, ["clean"], limit=args.batch_size, concurrency=args.batch_size)
            asyncio.run(run(model, split, Path(tmp) / f"warm-{chunk}", warm, show_progress=False))
            config = RunConfig(model.name, bench, ["clean"], limit=args.samples, concurrency=2 * args.batch_size)
            start = time.perf_counter()
            metrics = asyncio.run(run(model, split, Path(tmp) / f"run-{chunk}", config, show_progress=False))
            elapsed = time.perf_counter() - start
            n = metrics["overall"]["n"]
            tokens = metrics["overall"]["tokens"]["completion_mean"] or 0
            speeds[chunk] = n / elapsed
            print(f"{model.name}, chunks of {chunk} tokens: {n} answers in {elapsed:.1f} s, {tokens:.0f} tokens each")
    for chunk, speed in speeds.items():
        print(f"chunks of {chunk}: {speed:.1f} answers/s (goal >= 20 on 2 cores)")
    if len(speeds) > 1:
        first, *rest = speeds
        print(" ".join(f"x{speeds[first] / speeds[c]:.2f} against chunks of {c}" for c in rest))


if __name__ == "__main__":
    main()
