"""Does a look-first reply answer with what it saw? For an evaluation run of a model SFT taught
to open its replies with what the image shows (``train sft --look-first``), per task: how often
the opening line (``I see: …``) names the right option, how often the answer is right, and how
often the answer is the option the opening line named, and its mean ``sight_score`` (the
reward GRPO's ``sight`` pays: every statement of the line checked against the scene, for a side
question also the road user's distance and lane).

Measured on the shipped recipe's run (test split, 50 a task): SFT's opening line was right for
64 % of the side questions, 38 % of distance and 28 % of lane, its answer agreed with it for 100,
94 and 100 %; after GRPO (on those three tasks) the opening line was right for 66, 40 and 38 %,
the answer agreeing with it for 98, 100 and 100 %. (The recipe before it, whose GRPO sampled at
temperature 0.6: 66, 42 and 42 % after SFT, 52, 32 and 40 after GRPO.)

``.venv/bin/python scripts/sight_check.py BENCH RUN`` (RUN: an evaluation's output folder).
"""

from __future__ import annotations

import argparse
from collections import Counter, defaultdict
from pathlib import Path

from roadthink.eval.bench import load_bench
from roadthink.eval.parsing import parse_answer
from roadthink.eval.result import finished_results
from roadthink.scene.io import load_scene
from roadthink.tasks.sample import AnswerType
from roadthink.train.captions import opening, seen_in, sight_score


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("bench", type=Path)
    parser.add_argument("run", type=Path)
    args = parser.parse_args()
    samples = {s.id: s for s in load_bench(args.bench).samples}
    counts: dict[str, Counter] = defaultdict(Counter)
    for result in finished_results(args.run / "samples.jsonl")[0]:
        sample = samples[result.id]
        if sample.answer_type is not AnswerType.CHOICE:
            continue  # an opening line names an option only where there are options
        reply = result.prediction or ""
        opened = opening(reply)
        c = counts[sample.task]
        c["n"] += 1
        c["answer right"] += bool(result.correct)
        c["sight"] += sight_score(reply, seen_in(sample, load_scene(args.bench / sample.scene))) or 0.0
        if opened is None:
            continue
        seen = parse_answer(f"<answer>{opened}</answer>", sample.answer_type, sample.choices).value
        c["opened"] += 1
        c["opening right"] += seen == sample.answer
        c["agree"] += seen is not None and seen == parse_answer(reply, sample.answer_type, sample.choices).value
    print(f"{'task':20s} {'n':>4s} {'opened':>7s} {'opening right':>14s} {'answer right':>13s} {'agree':>6s} sight")
    for task, c in sorted(counts.items()):
        if not c["opened"]:
            continue
        n = c["n"]
        print(
            f"{task:20s} {n:4d} {c['opened']:7d} {100 * c['opening right'] / n:13.1f}% "
            f"{100 * c['answer right'] / n:12.1f}% {100 * c['agree'] / c['opened']:5.1f}% {c['sight'] / n:5.2f}"
        )


if __name__ == "__main__":
    main()
