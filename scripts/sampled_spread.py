"""Has GRPO anything to learn from? A model's greedy answers beside K sampled ones per prompt,
per task: the accuracy of each, pass@K, the share of prompts whose K samples are neither all
right nor all wrong (the groups in which GRPO's advantages are not zero), and how much more the
count of right samples varies from prompt to prompt than K coin flips at the task's rate would
(1: the rewards are noise to the model, the right sample a lucky draw; above 1: some prompts
it gets right more often than others, which GRPO can reinforce).

Measured on the shipped SFT model (2026-12-07), 20 val samples a task of perception and spatial,
K = 8 at temperature 0.8: greedy 35.8 %, sampled 35.1 %, pass@8 89.6 %, mixed groups 88.3 %; the
spread is 2.5 for colour and 2.3 for perspective, 0.86–0.99 for side, distance and lane (rough,
from 20 prompts a task): there a right answer is a lucky draw, and GRPO's reward is noise.

``.venv/bin/python scripts/sampled_spread.py [MODEL] [--bench DIR] [--k 8] [--temperature 0.8]
[--families perception,spatial] [--size 20] [--out runs/spread]`` (resumes; a few minutes on 2
CPU cores for the built-in model).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
from collections import defaultdict
from pathlib import Path

from roadthink.eval.bench import load_bench
from roadthink.eval.result import finished_results
from roadthink.eval.runner import RunConfig, run
from roadthink.models.base import resolve_model
from roadthink.tasks import select_tasks
from roadthink.tasks.build import build


def answers(model: str, bench: Path, out: Path, temperature: float | None, seed: int) -> dict[str, tuple[str, bool]]:
    """Each sample's task and whether ``model``'s answer was right (greedy when ``temperature``
    is None), from the run at ``out`` (resumed when it is there)."""
    backend = resolve_model(model, max_tokens=256, batch_size=32, device="cpu", temperature=temperature)
    config = RunConfig(model, bench, ["clean"], concurrency=64, seed=seed)
    asyncio.run(run(backend, load_bench(bench), out, config, show_progress=False))
    return {r.id: (r.task, bool(r.correct)) for r in finished_results(out / "samples.jsonl")[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?", default="builtin", help="builtin or hf:<folder>")
    parser.add_argument("--bench", type=Path, help="a bench split (default: a val split built into OUT)")
    parser.add_argument("--families", default="perception,spatial", help="families of the split built")
    parser.add_argument("--size", type=int, default=20, help="samples per task of the split built")
    parser.add_argument("--k", type=int, default=8, help="samples per prompt (GRPO's group)")
    parser.add_argument("--temperature", type=float, default=0.8)
    parser.add_argument("--out", type=Path, default=Path("runs/spread"))
    args = parser.parse_args()
    bench = args.bench or args.out / "bench"
    if args.bench is None and not (bench / "bench.json").is_file():
        build(bench, select_tasks(families=args.families.split(",")), "val", args.size)
    greedy = answers(args.model, bench, args.out / "greedy", None, 0)
    sampled = [answers(args.model, bench, args.out / f"sampled-{k}", args.temperature, k) for k in range(args.k)]
    rights: dict[str, list[int]] = defaultdict(list)  # task → right samples of each prompt
    first: dict[str, int] = defaultdict(int)  # task → greedy answers right
    for sample, (task, right) in greedy.items():
        rights[task].append(sum(run[sample][1] for run in sampled if sample in run))
        first[task] += right
    passed = f"pass@{args.k}"
    print(f"{'task':20s} {'n':>4s} {'greedy':>7s} {'sampled':>8s} {passed:>7s} {'mixed':>6s} {'spread':>7s}")
    spreads = {task: spread(counts, args.k) for task, counts in rights.items()}
    for task, counts in sorted(rights.items()):
        print(row(task, counts, first[task], args.k, spreads[task]))
    every = [c for counts in rights.values() for c in counts]
    print(row("all (mean spread)", every, sum(first.values()), args.k, statistics.fmean(spreads.values())))


def spread(counts: list[int], k: int) -> float:
    """The variance of the right samples per prompt over that of ``k`` coin flips at their rate."""
    rate = sum(counts) / (k * len(counts))
    flips = k * rate * (1 - rate)
    return statistics.pvariance(counts) / flips if flips else float("nan")


def row(label: str, counts: list[int], greedy_right: int, k: int, spread: float) -> str:
    """One line of the table: ``counts``, each prompt's right samples of ``k``."""
    n, rate = len(counts), sum(counts) / (k * len(counts))
    mixed = sum(0 < c < k for c in counts) / n
    right_once = sum(c > 0 for c in counts) / n
    return (
        f"{label:20s} {n:4d} {100 * greedy_right / n:7.1f} {100 * rate:8.1f} {100 * right_once:7.1f} "
        f"{100 * mixed:6.1f} {spread:7.2f}"
    )


if __name__ == "__main__":
    main()
