"""Spatial: where things are relative to the ego."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from roadthink.scene.types import Agent, Scene
from roadthink.tasks.registry import choice_sample, task
from roadthink.tasks.sample import AnswerType, Fact, Sample, Step
from roadthink.tasks.views import describe, distance, seen

CAMERA = "CAM_FRONT"
FAMILY = "spatial"
DISTANCE_BINS = (
    (0.0, 10.0, "under 10 m"),
    (10.0, 20.0, "10 to 20 m"),
    (20.0, 40.0, "20 to 40 m"),
    (40.0, 1e9, "over 40 m"),
)
MARGIN = 0.5  # metres: too close to a boundary to call is not asked


def _described(scene: Scene) -> Iterator[tuple[Agent, str, Step]]:
    """Visible agents that colour and category single out, with the step naming them."""
    visible = seen(scene, CAMERA)
    for agent in visible:
        name = describe(agent, visible)
        if name is not None:
            facts = [Fact(type="visible", agent=agent.id, camera=CAMERA)]
            yield agent, name, Step(text=f"{name.capitalize()} is {agent.id}.", facts=facts)


@task("side", FAMILY, AnswerType.CHOICE, buckets=["left", "right"])
def side(scene: Scene, rng: np.random.Generator) -> Iterator[Sample]:
    """Whether a described road user is to the left or the right of the ego's heading."""
    for agent, name, identified in _described(scene):
        lateral = agent.box.center[1]
        if abs(lateral) < MARGIN:
            continue
        answer = "left" if lateral > 0 else "right"
        located = Step(
            text=f"It is {abs(lateral):.1f} m to the {answer} of the ego's heading line.",
            facts=[Fact(type="side", agent=agent.id, value=answer)],
        )
        question = f"Is {name} to the left or to the right of the ego vehicle's direction of travel?"
        yield choice_sample(
            scene, FAMILY, "side", name, question, ["left", "right"], answer, [identified, located], rng
        )


def distance_bin(metres: float) -> str | None:
    """The bin of ``metres``, or None within MARGIN of a bin edge."""
    for low, high, label in DISTANCE_BINS:
        if low + MARGIN <= metres < high - MARGIN or (low == 0.0 and metres < high - MARGIN):
            return label
    return None


@task("distance", FAMILY, AnswerType.CHOICE, buckets=[label for _, _, label in DISTANCE_BINS])
def distance_to(scene: Scene, rng: np.random.Generator) -> Iterator[Sample]:
    """How far a described road user is from the ego, in bins."""
    for agent, name, identified in _described(scene):
        metres = distance(agent)
        label = distance_bin(metres)
        if label is None:
            continue
        measured = Step(
            text=f"It is {metres:.1f} m away, so {label}.",
            facts=[Fact(type="distance", agent=agent.id, value=round(metres, 1))],
        )
        question = f"How far is {name} from the ego vehicle (centre to centre)?"
        bins = [b for _, _, b in DISTANCE_BINS]
        yield choice_sample(scene, FAMILY, "distance", name, question, bins, label, [identified, measured], rng)
