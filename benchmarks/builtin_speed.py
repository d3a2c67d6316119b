"""Answers per second of a small VLM on CPU through the ``hf:`` backend, batched: the speed
the built-in model must keep (goal, issue: built-in VLM: >= 20 answers/s on 2 cores).

Run: ``.venv/bin/python benchmarks/builtin_speed.py [--model builtin|hf:DIR|recipe]
[--samples 145] [--max-tokens 256] [--batch-size 16]``, on test samples of every task. The
default is the shipped model, whose replies end where it ends them; ``recipe`` is a model of
the CPU training recipe's size with random weights, whose replies run to ``--max-tokens``.
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
    parser.add_argument("--samples", type=int, default=145)
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args()
    tasks = select_tasks()
    settings = {"max_tokens": args.max_tokens, "batch_size": args.batch_size, "device": "cpu"}
    with tempfile.TemporaryDirectory() as tmp:
        bench = Path(tmp) / "bench"
        build(bench, tasks, "test", -(-args.samples // len(tasks)))
        split = load_bench(bench)
        if args.model == "recipe":
            from roadthink.models.tiny import build_tiny_qwen2vl
            from roadthink.train.sft import RECIPE

            model = resolve_model(f"hf:{build_tiny_qwen2vl(Path(tmp) / 'recipe', None, RECIPE)}", **settings)
        else:
            model = resolve_model(args.model, **settings)
        warm = RunConfig(model.name, bench, ["clean"], limit=args.batch_size, concurrency=args.batch_size)
        asyncio.run(run(model, split, Path(tmp) / "warm", warm, show_progress=False))
        config = RunConfig(model.name, bench, ["clean"], limit=args.samples, concurrency=2 * args.batch_size)
        start = time.perf_counter()
        metrics = asyncio.run(run(model, split, Path(tmp) / "run", config, show_progress=False))
        elapsed = time.perf_counter() - start
    n = metrics["overall"]["n"]
    tokens = metrics["overall"]["tokens"]["completion_mean"] or 0
    print(f"{model.name}: {n} answers in {elapsed:.1f} s, {tokens:.0f} tokens each on average")
    print(f"answers/s: {n / elapsed:.1f} (goal >= 20 on 2 cores)")


if __name__ == "__main__":
    main()
