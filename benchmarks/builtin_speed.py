"""Answers per second of a small VLM on CPU through the ``hf:`` backend, batched: the speed
the built-in model must keep (goal, issue: built-in VLM: >= 20 answers/s on 2 cores).

Run: ``.venv/bin/python benchmarks/builtin_speed.py [--model hf:DIR] [--samples 128]
[--max-tokens 48] [--batch-size 16]``. Without ``--model`` it measures a model of the CPU
training recipe's size (random weights, so replies run to ``--max-tokens``: a worst case).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from roadthink.eval.bench import load_bench
from roadthink.eval.runner import RunConfig, run
from roadthink.models.hf_backend import HFModel
from roadthink.tasks import select_tasks
from roadthink.tasks.build import build


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="hf:<folder> (default: a recipe-sized model built here)")
    parser.add_argument("--samples", type=int, default=128)
    parser.add_argument("--max-tokens", type=int, default=48)
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        bench = Path(tmp) / "bench"
        build(bench, select_tasks(["count", "side", "color", "motion"]), "test", args.samples // 4)
        split = load_bench(bench)
        if args.model:
            folder = args.model.removeprefix("hf:")
        else:
            from roadthink.models.tiny import build_tiny_qwen2vl
            from roadthink.train.sft import RECIPE

            folder = str(build_tiny_qwen2vl(Path(tmp) / "recipe", None, RECIPE))
        model = HFModel(folder, max_tokens=args.max_tokens, batch_size=args.batch_size)
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
