"""Grounding: the 2D box of a described road user, scored by IoU."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from roadthink.scene.types import Scene
from roadthink.tasks.registry import make_sample, task
from roadthink.tasks.sample import AnswerType, Fact, Sample, Step
from roadthink.tasks.views import describe, seen

CAMERA = "CAM_FRONT"
FAMILY = "grounding"
THIRDS = ("left", "centre", "right")


@task("box", FAMILY, AnswerType.BOX, buckets=THIRDS)
def box(scene: Scene, rng: np.random.Generator) -> Iterator[Sample]:
    """The 2D box, in front-camera pixels, of a road user named by colour and category."""
    visible = seen(scene, CAMERA)
    width = scene.cameras[CAMERA].width
    for agent in visible:
        name = describe(agent, visible)
        if name is None:
            continue
        x1, y1, x2, y2 = agent.cameras[CAMERA].bbox
        third = THIRDS[min(int((x1 + x2) / 2 / width * 3), 2)]  # balanced, so location is not guessable
        steps = [
            Step(
                text=f"{name.capitalize()} is {agent.id}.", facts=[Fact(type="visible", agent=agent.id, camera=CAMERA)]
            ),
            Step(
                text=f"It spans x {x1:.0f}-{x2:.0f} and y {y1:.0f}-{y2:.0f} in the {third} of the image.",
                facts=[Fact(type="bbox", agent=agent.id, camera=CAMERA, value=[x1, y1, x2, y2])],
            ),
        ]
        question = (
            f"Give the bounding box of {name} in the front camera image as [x1, y1, x2, y2] in pixels "
            f"(image size {width}x{scene.cameras[CAMERA].height})."
        )
        yield make_sample(scene, FAMILY, "box", name, third, question, [x1, y1, x2, y2], AnswerType.BOX, steps)
