"""The oracle: reads the ground-truth scene and answers by rules written apart from the
benchmark's task code (``models/rules``), stating the reasoning steps and facts the
benchmark's own reasoning gives. It is the upper bound a report compares against, and a
cross-check: the two restatements of every task must agree, so a score below 98 % on a
deterministic task points at a bug in a task or in the rules.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

import numpy as np

from roadthink.models.base import register
from roadthink.models.baselines import reply
from roadthink.models.rules import ANSWERS
from roadthink.models.types import Completion, Message
from roadthink.scene.types import Scene
from roadthink.tasks.build import task_rng
from roadthink.tasks.registry import TASKS
from roadthink.tasks.sample import Sample, Step


class OracleModel:
    name = "oracle"
    reads_scene = True

    async def generate(self, messages: list[Message], **options: Any) -> Completion:
        start = time.perf_counter()
        sample, scene = options.get("sample"), options.get("scene")
        if not isinstance(sample, Sample) or not isinstance(scene, Scene):
            raise ValueError("the oracle needs the sample and its ground-truth scene")
        value = answer(sample, scene)
        if value is None:
            text = "I cannot tell: my rules do not read this question."
        else:
            steps = reasoning(sample, scene)
            facts = [f.model_dump() for step in steps for f in step.facts]
            lines = "\n".join(f"{i}. {step.text}" for i, step in enumerate(steps, 1))
            text = f"{lines}\n<facts>{json.dumps(facts)}</facts>\n<answer>{reply(sample, value)}</answer>"
        return Completion(text=text, latency_s=time.perf_counter() - start)


def answer(sample: Sample, scene: Scene) -> Any:
    """The answer by the oracle's own rules: the letter of the option they pick for choice
    questions; None when the rules cannot read the question."""
    rule = ANSWERS.get(sample.task)
    if rule is None:
        return None
    row = sample.model_dump(mode="json", exclude={"answer", "meta", "views"})  # what a model may know
    try:
        content = rule(scene, row)
    except (AssertionError, StopIteration, KeyError, AttributeError, ValueError):
        return None
    if not sample.choices:
        return content
    return next((c[0] for c in sample.choices if c[3:] == content), None)


def reasoning(sample: Sample, scene: Scene) -> list[Step]:
    """The benchmark's reasoning for this question: the task asked again with the build's
    random stream for the scene, so the same question comes out with the same options."""
    task = TASKS.get(sample.task)
    if task is None:
        return []
    options = sorted(c[3:] for c in sample.choices or [])
    for candidate in task.propose(scene, _build_rng(scene.scene_id, sample.task)):
        if candidate.question == sample.question and sorted(c[3:] for c in candidate.choices or []) == options:
            return candidate.reference_steps
    return []


def _build_rng(scene_id: str, task_name: str) -> np.random.Generator:
    """The random stream the bench build gave ``task_name`` on this scene ("s<seed>-<index>")."""
    match = re.fullmatch(r"s(\d+)-(\d+)", scene_id)
    return task_rng(int(match[1]), int(match[2]), task_name) if match else np.random.default_rng(0)


register("oracle", lambda argument, settings: OracleModel())
