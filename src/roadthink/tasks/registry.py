"""Task generators registered by name, and the balancing that keeps text priors at chance.

A task looks at a scene and proposes every question it could ask there (``candidates``),
each tagged with a balance ``key`` (what the question text varies with, e.g. "the red car")
and an answer ``bucket``. The builder accepts a candidate only while no answer of its key
is more common than chance allows: so a model that reads only the text scores at chance.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np

from roadthink.errors import RoadthinkError
from roadthink.scene.types import Scene
from roadthink.tasks.sample import AnswerType, Sample, Step, View

Propose = Callable[[Scene, np.random.Generator], Iterable[Sample]]


@dataclass(frozen=True)
class Task:
    name: str
    family: str
    answer_type: AnswerType
    buckets: tuple[str, ...]  # every answer bucket a question can have
    propose: Propose
    description: str


TASKS: dict[str, Task] = {}
FAMILIES = ("perception", "spatial", "prediction", "risk", "planning", "corner_case", "grounding")


def task(name: str, family: str, answer_type: AnswerType, buckets: Iterable[str]) -> Callable[[Propose], Propose]:
    """Register ``propose`` as task ``name``; its docstring's first line describes it."""
    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}")

    def register(propose: Propose) -> Propose:
        doc = (propose.__doc__ or name).strip().splitlines()[0]
        TASKS[name] = Task(name, family, answer_type, tuple(buckets), propose, doc)
        return propose

    return register


def select_tasks(names: Iterable[str] | None = None, families: Iterable[str] | None = None) -> list[Task]:
    """Tasks by name and/or family (all when neither is given); unknown names are an error
    that lists the known ones."""
    names, families = list(names or []), list(families or [])
    bad_family = [f for f in families if f not in FAMILIES]
    if bad_family:
        raise RoadthinkError(f"unknown family {bad_family[0]!r}; known: {', '.join(FAMILIES)}")
    bad_task = [n for n in names if n not in TASKS]
    if bad_task:
        raise RoadthinkError(f"unknown task {bad_task[0]!r}; known: {', '.join(sorted(TASKS))}")
    chosen = [t for t in TASKS.values() if (not names or t.name in names) and (not families or t.family in families)]
    return sorted(chosen, key=lambda t: (FAMILIES.index(t.family), t.name))


@dataclass
class Balancer:
    """Per task and key, how many samples each answer bucket has.

    A model that sees only the question text can do no better than the most common answer
    for that text, or for the task when it has not seen the text. So, for each key and for
    the task as a whole, a bucket may take one more sample only while it holds no more than
    ``1 / len(buckets) + excess`` of the samples so far (counting the new one). Rare answers
    may stay rare: they make no answer easier to guess.
    """

    excess: float = 0.03
    counts: dict[tuple[str, str], Counter[str]] = field(default_factory=dict)
    totals: dict[str, Counter[str]] = field(default_factory=dict)

    def allows(self, task: Task, key: str, bucket: str) -> bool:
        """Whether one more ``bucket`` answer keeps this wording balanced, and the task as a
        whole (which is what a blind model falls back on for wordings it has not seen)."""
        share = 1 / len(task.buckets) + self.excess
        counts = self.counts.get((task.name, key), Counter())
        totals = self.totals.get(task.name, Counter())
        return all(c[bucket] <= (c.total() + 1) * share for c in (counts, totals))

    def pick(self, task: Task, candidates: list[Sample], rng: np.random.Generator) -> Sample | None:
        """The allowed candidate whose bucket is emptiest (ties broken at random)."""
        best = [
            (self.counts.get((task.name, s.meta["key"]), Counter())[s.meta["bucket"]], s)
            for s in candidates
            if self.allows(task, s.meta["key"], s.meta["bucket"])
        ]
        if not best:
            return None
        low = min(h for h, _ in best)
        pool = [s for h, s in best if h == low]
        chosen = pool[int(rng.integers(len(pool)))]
        self.counts.setdefault((task.name, chosen.meta["key"]), Counter())[chosen.meta["bucket"]] += 1
        self.totals.setdefault(task.name, Counter())[chosen.meta["bucket"]] += 1
        return chosen


FRONT = (View(camera="CAM_FRONT"),)


def make_sample(
    scene: Scene,
    family: str,
    task_name: str,
    key: str,
    bucket: str,
    question: str,
    answer: object,
    answer_type: AnswerType,
    steps: list[Step],
    choices: list[str] | None = None,
    views: tuple[View, ...] = FRONT,
) -> Sample:
    """A sample of ``task_name`` about ``scene``; ``key`` and ``bucket`` drive the balance."""
    return Sample(
        id=f"{scene.scene_id}-{task_name}",
        family=family,
        task=task_name,
        question=question,
        choices=choices,
        answer=answer,
        answer_type=answer_type,
        views=list(views),
        scene_id=scene.scene_id,
        reference_steps=steps,
        meta={"key": key, "bucket": bucket},
    )


def choice_sample(
    scene: Scene,
    family: str,
    task_name: str,
    key: str,
    question: str,
    options: list[str],
    correct: str,
    steps: list[Step],
    rng: np.random.Generator,
) -> Sample:
    """A multiple-choice sample: options shuffled and lettered, the answer the letter of
    ``correct``, whose text is also the balance bucket."""
    shuffled = [options[i] for i in rng.permutation(len(options))]
    letters = [chr(ord("A") + i) for i in range(len(options))]
    choices = [f"{letter}. {text}" for letter, text in zip(letters, shuffled, strict=True)]
    letter = letters[shuffled.index(correct)]
    return make_sample(scene, family, task_name, key, correct, question, letter, AnswerType.CHOICE, steps, choices)


def answer_at(sample: Sample, position: int) -> Sample:
    """``sample`` with its correct option swapped into ``position`` (0 for A): the builder
    spreads answers evenly over the letters, so no letter is a better blind guess."""
    if not sample.choices:
        return sample
    letters = [c.split(". ", 1)[0] for c in sample.choices]
    texts = [c.split(". ", 1)[1] for c in sample.choices]
    current = letters.index(sample.answer)
    texts[current], texts[position] = texts[position], texts[current]
    choices = [f"{letter}. {text}" for letter, text in zip(letters, texts, strict=True)]
    return sample.model_copy(update={"choices": choices, "answer": letters[position]})


def option_text(choices: list[str], letter: str) -> str:
    """The text of option ``letter`` ("left" for "B" among "A. right", "B. left"); the letter
    itself when no option has it."""
    return next((c[3:] for c in choices if c.startswith(f"{letter}. ")), letter)
