"""Harness overhead per sample: everything the evaluation does besides the model's own time
(prompt, images, parsing, scoring, writing, metrics), with the oracle over ~1,000 samples.

Goal (issue: evaluation harness): <= 2 ms per sample. Run:
``.venv/bin/python benchmarks/eval_overhead.py [--bench DIR]`` (builds a 35-per-task test split
into a temporary folder when no --bench is given).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from roadthink.eval.bench import load_bench
from roadthink.eval.runner import RunConfig, read_results, run
from roadthink.models.base import resolve_model
from roadthink.tasks import select_tasks
from roadthink.tasks.build import build


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bench", type=Path, help="a built split (default: build one)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        bench = args.bench
        if bench is None:
            bench = Path(tmp) / "bench"
            build(bench, select_tasks(), "test", 35)
        split = load_bench(bench)
        out = Path(tmp) / "run"
        start = time.perf_counter()
        asyncio.run(run(resolve_model("oracle"), split, out, RunConfig("oracle", bench, ["clean"]), False))
        wall = time.perf_counter() - start
        results = read_results(out / "samples.jsonl")
    model_time = sum(r.latency_s for r in results)
    n = len(results)
    print(f"{n} samples in {wall:.2f} s; the oracle itself {model_time:.2f} s")
    print(f"harness overhead: {1000 * (wall - model_time) / n:.2f} ms/sample (goal <= 2 ms)")


if __name__ == "__main__":
    main()
