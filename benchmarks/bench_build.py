"""Bench-build throughput: samples per second, images included, on one worker process.

Goal (issue: roadthink-bench): >= 100 samples/s per core. Run:
``.venv/bin/python benchmarks/bench_build.py [--size 20]``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from roadthink.tasks import select_tasks
from roadthink.tasks.build import build


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=20, help="samples per task")
    args = parser.parse_args()
    tasks = select_tasks()
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        report = build(Path(tmp) / "bench", tasks, "val", args.size, workers=1)
        elapsed = time.perf_counter() - start
    samples = sum(report.samples.values())
    print(f"{samples} samples from {report.scenes_tried} scenes in {elapsed:.1f} s on 1 worker")
    print(f"samples/s per core: {samples / elapsed:.1f} (goal >= 100)")
    print(f"scenes/s per core : {report.scenes_tried / elapsed:.1f}")
    print(f"samples per generated scene: {samples / report.scenes_tried:.2f}")
    slowest = sorted(report.filled_at.items(), key=lambda kv: -kv[1])[:5]
    print("scenes needed by the slowest tasks:", ", ".join(f"{name} {n}" for name, n in slowest))
    unfilled = [t.name for t in tasks if t.name not in report.filled_at]
    if unfilled:
        print("never filled:", ", ".join(unfilled))


if __name__ == "__main__":
    main()
