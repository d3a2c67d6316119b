"""Prediction: how road users move, judged from past frames and the present one."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from roadthink.scene.types import STATIC_OBJECTS, Scene
from roadthink.tasks.registry import choice_sample, task
from roadthink.tasks.sample import AnswerType, Fact, Sample, Step, View
from roadthink.tasks.views import describe, seen

CAMERA = "CAM_FRONT"
FAMILY = "prediction"
HISTORY = (View(camera=CAMERA, t=-1.0), View(camera=CAMERA, t=-0.5), View(camera=CAMERA))
MOVING, STILL = 1.0, 0.2  # m/s: clearly moving, clearly standing; in between is not asked


@task("motion", FAMILY, AnswerType.CHOICE, buckets=["moving", "stationary"])
def motion(scene: Scene, rng: np.random.Generator) -> Iterator[Sample]:
    """Whether a described road user is moving or standing still, from three frames."""
    visible = seen(scene, CAMERA)
    for agent in visible:
        name = describe(agent, visible)
        if name is None or agent.category in STATIC_OBJECTS or STILL <= agent.speed <= MOVING:
            continue  # a cone never moves: asking would give the answer away
        answer = "moving" if agent.speed > MOVING else "stationary"
        steps = [
            Step(
                text=f"{name.capitalize()} is {agent.id}.", facts=[Fact(type="visible", agent=agent.id, camera=CAMERA)]
            ),
            Step(
                text=f"Across the frames from 1 s ago to now it {'moves' if answer == 'moving' else 'stays put'}: "
                f"its speed is {agent.speed:.1f} m/s.",
                facts=[Fact(type="speed", agent=agent.id, value=round(agent.speed, 2))],
            ),
        ]
        question = f"The images are the front camera 1 s ago, 0.5 s ago and now. Is {name} moving or stationary?"
        sample = choice_sample(scene, FAMILY, "motion", name, question, ["moving", "stationary"], answer, steps, rng)
        yield sample.model_copy(update={"views": list(HISTORY)})
