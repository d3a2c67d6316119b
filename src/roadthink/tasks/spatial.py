"""Spatial: where things are relative to the ego."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from roadthink.scene.types import Scene
from roadthink.tasks.registry import FRONT, as_choice, task
from roadthink.tasks.sample import AnswerType, Fact, Sample, Step
from roadthink.tasks.views import describe, distance, seen

CAMERA = "CAM_FRONT"
DISTANCE_BINS = (
    (0.0, 10.0, "under 10 m"),
    (10.0, 20.0, "10 to 20 m"),
    (20.0, 40.0, "20 to 40 m"),
    (40.0, 1e9, "over 40 m"),
)
MARGIN = 0.5  # metres: too close to a boundary to call is not asked


def _sample(scene: Scene, task_name: str, key: str, bucket: str, **fields) -> Sample:
    return Sample(
        id=f"{scene.scene_id}-{task_name}",
        family="spatial",
        task=task_name,
        scene_id=scene.scene_id,
        views=list(FRONT),
        meta={"key": key, "bucket": bucket},
        **fields,
    )


@task("side", "spatial", AnswerType.CHOICE, buckets=["left", "right"])
def side(scene: Scene, rng: np.random.Generator) -> Iterator[Sample]:
    """Whether a described road user is to the left or the right of the ego's heading."""
    visible = seen(scene, CAMERA)
    for agent in visible:
        name = describe(agent, visible)
        lateral = agent.box.center[1]
        if name is None or abs(lateral) < MARGIN:
            continue
        answer = "left" if lateral > 0 else "right"
        options, letter = as_choice(["left", "right"], answer, rng)
        yield _sample(
            scene,
            "side",
            agent.category.value,
            answer,
            question=f"Is {name} to the left or to the right of the ego vehicle's direction of travel?",
            choices=options,
            answer=letter,
            answer_type=AnswerType.CHOICE,
            reference_steps=[
                Step(
                    text=f"{name.capitalize()} is {agent.id}.",
                    facts=[Fact(type="visible", agent=agent.id, camera=CAMERA)],
                ),
                Step(
                    text=f"It is {abs(lateral):.1f} m to the {answer} of the ego's heading line.",
                    facts=[Fact(type="side", agent=agent.id, value=answer)],
                ),
            ],
        )


def distance_bin(metres: float) -> str | None:
    """The bin of ``metres``, or None within MARGIN of a bin edge."""
    for low, high, label in DISTANCE_BINS:
        if low + MARGIN <= metres < high - MARGIN or (low == 0.0 and metres < high - MARGIN):
            return label
    return None


@task("distance", "spatial", AnswerType.CHOICE, buckets=[label for _, _, label in DISTANCE_BINS])
def distance_to(scene: Scene, rng: np.random.Generator) -> Iterator[Sample]:
    """How far a described road user is from the ego, in bins."""
    visible = seen(scene, CAMERA)
    for agent in visible:
        name = describe(agent, visible)
        metres = distance(agent)
        label = distance_bin(metres)
        if name is None or label is None:
            continue
        options, letter = as_choice([b for _, _, b in DISTANCE_BINS], label, rng)
        yield _sample(
            scene,
            "distance",
            agent.category.value,
            label,
            question=f"How far is {name} from the ego vehicle (centre to centre)?",
            choices=options,
            answer=letter,
            answer_type=AnswerType.CHOICE,
            reference_steps=[
                Step(
                    text=f"{name.capitalize()} is {agent.id}.",
                    facts=[Fact(type="visible", agent=agent.id, camera=CAMERA)],
                ),
                Step(
                    text=f"It is {metres:.1f} m away, so {label}.",
                    facts=[Fact(type="distance", agent=agent.id, value=round(metres, 1))],
                ),
            ],
        )
