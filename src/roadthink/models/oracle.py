"""The oracle: reads the ground-truth scene and answers by the benchmark's own rules, writing
its reasoning steps and their facts. It is the upper bound a report compares against, and a
check of the whole pipeline: prompt, reply, parsing and scoring must give it (almost) every
point, so a score below 98 % on a deterministic task points at a bug, not at the oracle.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

import numpy as np

from roadthink.models.base import register
from roadthink.models.baselines import reply
from roadthink.models.types import Completion, Message
from roadthink.scene.types import Scene
from roadthink.tasks.build import task_rng
from roadthink.tasks.registry import TASKS
from roadthink.tasks.sample import Sample


class OracleModel:
    name = "oracle"

    async def generate(self, messages: list[Message], **options: Any) -> Completion:
        start = time.perf_counter()
        sample, scene = options.get("sample"), options.get("scene")
        if not isinstance(sample, Sample) or not isinstance(scene, Scene):
            raise ValueError("the oracle needs the sample and its ground-truth scene")
        found = answer(sample, scene)
        if found is None:
            text = "I cannot tell: the scene does not pose this question."
        else:
            value, steps = found
            facts = [f.model_dump() for step in steps for f in step.facts]
            reasoning = "\n".join(f"{i}. {step.text}" for i, step in enumerate(steps, 1))
            text = f"{reasoning}\n<facts>{json.dumps(facts)}</facts>\n<answer>{reply(sample, value)}</answer>"
        return Completion(text=text, latency_s=time.perf_counter() - start)


def answer(sample: Sample, scene: Scene) -> tuple[Any, list] | None:
    """The answer to ``sample``'s question by the task's rules applied to ``scene``, with the
    reasoning. The task is asked again with the build's random stream for that scene, so the
    same questions come out with the same options (in another letter order, which is mapped
    back by the options' texts)."""
    task = TASKS.get(sample.task)
    if task is None:
        return None
    options = sorted(c[3:] for c in sample.choices or [])
    for candidate in task.propose(scene, _build_rng(scene.scene_id, sample.task)):
        if candidate.question != sample.question or sorted(c[3:] for c in candidate.choices or []) != options:
            continue
        if not candidate.choices:
            return candidate.answer, candidate.reference_steps
        text = next(c[3:] for c in candidate.choices if c.startswith(f"{candidate.answer}. "))
        return next(c[0] for c in sample.choices if c[3:] == text), candidate.reference_steps
    return None


def _build_rng(scene_id: str, task_name: str) -> np.random.Generator:
    """The random stream the bench build gave ``task_name`` on this scene ("s<seed>-<index>")."""
    match = re.fullmatch(r"s(\d+)-(\d+)", scene_id)
    return task_rng(int(match[1]), int(match[2]), task_name) if match else np.random.default_rng(0)


register("oracle", lambda argument, settings: OracleModel())
