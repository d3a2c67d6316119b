"""Honest baselines: what a score means is judged against them.

- ``random``: uniform over the valid answers of the question (its options, yes/no, the
  counts asked, the ten meta-actions; a random box in the image, a random drive).
- ``blind``: never sees pixels; answers with the prior learned from a train split: the most
  common answer for the same wording, else the option text most often right, else the
  task's most common answer (the mean box or trajectory for open answers).

Both read the benchmark Sample from ``options["sample"]``, and reply in words, so the
evaluation parses them like any model.
"""

from __future__ import annotations

import json
import time
import zlib
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from roadthink.errors import RoadthinkError
from roadthink.models.base import register
from roadthink.models.types import Completion, Message
from roadthink.tasks.build import load_rows
from roadthink.tasks.planning import META_ACTIONS
from roadthink.tasks.registry import TASKS, option_text
from roadthink.tasks.sample import AnswerType, Sample

DEFAULT_IMAGE = (640, 360)
HORIZON_STEPS = 6  # waypoints at 0.5 s steps over 3 s


def reply(sample: Sample, value: Any) -> str:
    """``value`` written the way the question asks for it."""
    if sample.answer_type in (AnswerType.BOX, AnswerType.WAYPOINTS):
        return json.dumps(value)
    return f"The answer is {value}."


def _sample(options: dict[str, Any]) -> Sample:
    sample = options.get("sample")
    if not isinstance(sample, Sample):
        raise RoadthinkError("baseline models answer benchmark samples: call generate(..., sample=Sample)")
    return sample


def _completion(text: str, start: float) -> Completion:
    return Completion(text=text, latency_s=time.perf_counter() - start)


class RandomModel:
    """Uniform over valid answers; the same seed and sample give the same answer."""

    def __init__(self, seed: int = 0) -> None:
        self.name = "random"
        self.seed = seed

    async def generate(self, messages: list[Message], **options: Any) -> Completion:
        start = time.perf_counter()
        sample = _sample(options)
        rng = np.random.default_rng([self.seed, zlib.crc32(sample.id.encode())])
        return _completion(reply(sample, self.answer(sample, rng)), start)

    @staticmethod
    def answer(sample: Sample, rng: np.random.Generator) -> Any:
        kind = sample.answer_type
        if sample.choices:
            return sample.choices[int(rng.integers(len(sample.choices)))][0]
        if kind is AnswerType.YES_NO:
            return "yes" if rng.random() < 0.5 else "no"
        if kind is AnswerType.NUMBER:
            buckets = TASKS[sample.task].buckets if sample.task in TASKS else ("0", "1", "2", "3", "4")
            return int(buckets[int(rng.integers(len(buckets)))])
        if kind is AnswerType.META_ACTION:
            return META_ACTIONS[int(rng.integers(len(META_ACTIONS)))]
        if kind is AnswerType.BOX:
            width, height = DEFAULT_IMAGE
            xs, ys = np.sort(rng.uniform(0, width, 2)), np.sort(rng.uniform(0, height, 2))
            return [round(float(v), 1) for v in (xs[0], ys[0], xs[1], ys[1])]
        if kind is AnswerType.WAYPOINTS:
            speed, bend = rng.uniform(0.0, 15.0), rng.uniform(-0.3, 0.3)
            t = 0.5 * np.arange(1, HORIZON_STEPS + 1)
            return [[round(float(speed * s), 1), round(float(bend * (speed * s) ** 2 / 30), 1)] for s in t]
        return ""


class BlindModel:
    """The text-only prior of a train split: it reads the question, never the images."""

    def __init__(self, train_rows: list[dict]) -> None:
        self.name = "blind"
        self.by_question: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
        self.by_task: dict[str, Counter[str]] = defaultdict(Counter)
        self.option_right: Counter[tuple[str, str]] = Counter()
        self.option_offered: Counter[tuple[str, str]] = Counter()
        self.open_answers: dict[str, list] = defaultdict(list)  # boxes and trajectories per task
        for row in train_rows:
            self._learn(row)

    @classmethod
    def from_split(cls, train: Path) -> BlindModel:
        path = train / "samples.jsonl"
        if not path.is_file():
            raise RoadthinkError(
                f"{path}: no train split for the blind model (build one: roadthink bench build --split train --out DIR)"
            )
        return cls(load_rows(train))

    def _learn(self, row: dict) -> None:
        task, answer = row["task"], row["answer"]
        if row["answer_type"] in (AnswerType.BOX, AnswerType.WAYPOINTS):
            self.open_answers[task].append(answer)
            return
        content = option_text(row["choices"], answer) if row.get("choices") else str(answer)
        self.by_question[(task, row["question"])][content] += 1
        self.by_task[task][content] += 1
        for option in row.get("choices") or []:
            self.option_offered[(task, option[3:])] += 1
            self.option_right[(task, option[3:])] += option[0] == answer

    async def generate(self, messages: list[Message], **options: Any) -> Completion:
        start = time.perf_counter()
        sample = _sample(options)
        return _completion(reply(sample, self.answer(sample)), start)

    def answer(self, sample: Sample) -> Any:
        if sample.answer_type in (AnswerType.BOX, AnswerType.WAYPOINTS):
            seen = self.open_answers.get(sample.task)
            if not seen:
                return RandomModel.answer(sample, np.random.default_rng(0))
            return np.round(np.mean(np.asarray(seen, float), axis=0), 1).tolist()
        prior = self.by_question.get((sample.task, sample.question)) or self.by_task.get(sample.task, Counter())
        if sample.choices:
            texts = {c[3:]: c[0] for c in sample.choices}
            known = [(n, text) for text, n in prior.most_common() if text in texts]
            if known and self.by_question.get((sample.task, sample.question)):
                return texts[known[0][1]]
            n = len(sample.choices)

            def score(text: str) -> float:  # how often this option's text was right, smoothed
                return (self.option_right[(sample.task, text)] + 1) / (self.option_offered[(sample.task, text)] + n)

            return texts[max(texts, key=score)]
        if not prior:
            return RandomModel.answer(sample, np.random.default_rng(0))
        best = prior.most_common(1)[0][0]
        return int(best) if sample.answer_type is AnswerType.NUMBER else best


def _random(argument: str, settings: dict[str, Any]) -> RandomModel:
    return RandomModel(seed=int(settings.get("seed", 0)))


def _blind(argument: str, settings: dict[str, Any]) -> BlindModel:
    """``blind`` learns from ``settings["train"]`` (a train split folder), or ``blind:DIR``."""
    train = argument or settings.get("train")
    if not train:
        raise RoadthinkError("the blind model needs a train split: blind:DIR or --train DIR")
    return BlindModel.from_split(Path(train))


register("random", _random)
register("blind", _blind)
