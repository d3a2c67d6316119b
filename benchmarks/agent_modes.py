"""Thinking modes compared: accuracy and cost (model calls, tokens, latency) of ``fast``,
``slow`` and ``auto`` for one model on one split, and auto's share of slow's accuracy and
cost. Goal (issue: visual reasoning agent): auto keeps >= 95 % of slow's accuracy at <= 40 %
of its cost (tokens).

Run: ``.venv/bin/python benchmarks/agent_modes.py [--model M] [--bench DIR] [--limit N]``
(default: the scripted ``look`` agent on a small built split; the figures mean something for
a real VLM, e.g. ``--model openai:qwen2.5-vl --base-url …``).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path

from roadthink.agent.modes import MODES, AgentConfig
from roadthink.eval.bench import load_bench
from roadthink.eval.result import finished_results
from roadthink.eval.runner import RunConfig, run
from roadthink.models.base import resolve_model
from roadthink.tasks import select_tasks
from roadthink.tasks.build import build


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="scripted:look")
    parser.add_argument("--bench", type=Path)
    parser.add_argument("--base-url")
    parser.add_argument("--limit", type=int, default=120)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        bench = args.bench or Path(tmp) / "bench"
        if args.bench is None:
            build(bench, select_tasks(), "test", 4)
        split = load_bench(bench)
        model = resolve_model(args.model, base_url=args.base_url)
        rows = {}
        for mode in MODES:
            config = RunConfig(args.model, bench, ["clean"], limit=args.limit, agent=AgentConfig(mode=mode))
            out = Path(tmp) / mode
            metrics = asyncio.run(run(model, split, out, config, show_progress=False))
            results, _ = finished_results(out / "samples.jsonl")
            traces = [r.trace for r in results if r.trace]
            rows[mode] = {
                "accuracy": metrics["overall"]["accuracy"] or 0.0,
                "calls": sum(t.model_calls for t in traces) / max(1, len(results)),
                "tokens": sum(r.prompt_tokens + r.completion_tokens for r in results) / max(1, len(results)),
                "latency": sum(r.latency_s for r in results) / max(1, len(results)),
            }
    print(f"{args.model} on {len(results)} samples")
    print(f"{'mode':6} {'accuracy':>9} {'calls':>7} {'tokens':>8} {'latency s':>10}")
    for mode, row in rows.items():
        print(f"{mode:6} {row['accuracy']:9.3f} {row['calls']:7.2f} {row['tokens']:8.0f} {row['latency']:10.3f}")
    slow, auto = rows["slow"], rows["auto"]
    kept = auto["accuracy"] / slow["accuracy"] if slow["accuracy"] else float("nan")
    cost = auto["tokens"] / slow["tokens"] if slow["tokens"] else float("nan")
    print(f"auto keeps {kept:.1%} of slow's accuracy (goal >= 95%) at {cost:.1%} of its tokens (goal <= 40%)")


if __name__ == "__main__":
    main()
