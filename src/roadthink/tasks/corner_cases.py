"""Corner cases: unusual obstacles on the road, and what the ego should do about them."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from roadthink.scene.types import Category, Intent, Scene
from roadthink.tasks.facts import checker
from roadthink.tasks.registry import choice_sample, make_sample, task
from roadthink.tasks.sample import AnswerType, Fact, Sample, Step
from roadthink.tasks.views import distance, glimpsed, noun, seen

CAMERA = "CAM_FRONT"
FAMILY = "corner_case"
UNUSUAL = (Category.DEBRIS, Category.ANIMAL, Category.TRAFFIC_CONE, Category.BARRIER)
ON_ROAD = 6.0  # metres either side of the ego's heading line that count as "the road ahead"
RESPONSES = ("change lanes to pass it", "slow down, stopping if needed", "continue at the same speed")


def _obstacles(scene: Scene, camera: str = CAMERA) -> tuple[list, bool]:
    """Unusual obstacles clearly seen ahead on the road, and whether one is only glimpsed."""
    ahead = [a for a in seen(scene, camera) if a.category in UNUSUAL and abs(a.box.center[1]) < ON_ROAD]
    unsure = any(a.category in UNUSUAL for a in glimpsed(scene, camera))
    return ahead, unsure


@task("unusual_obstacle", FAMILY, AnswerType.YES_NO, buckets=["yes", "no"])
def unusual_obstacle(scene: Scene, rng: np.random.Generator) -> Iterator[Sample]:
    """Whether debris, an animal, or cones and barriers are on the road ahead."""
    ahead, unsure = _obstacles(scene)
    if unsure:
        return
    answer = "yes" if ahead else "no"
    listed = ", ".join(f"{a.id} ({noun(a.category)}, {distance(a):.0f} m ahead)" for a in ahead) or "nothing unusual"
    steps = [
        Step(
            text=f"On the road ahead I see {listed}.",
            facts=[Fact(type="visible", agent=a.id, camera=CAMERA) for a in ahead],
        ),
        Step(
            text=f"So the answer is {answer}.",
            facts=[Fact(type="unusual_ahead", camera=CAMERA, value=bool(ahead))],
        ),
    ]
    question = (
        "Is there an unusual obstacle on the road ahead in the front camera image, such as debris, an animal, "
        "or cones closing a lane? Answer yes or no."
    )
    yield make_sample(scene, FAMILY, "unusual_obstacle", "any", answer, question, answer, AnswerType.YES_NO, steps)


@checker("unusual_ahead")
def _unusual_ahead(scene: Scene, f: dict) -> bool:
    ahead, _ = _obstacles(scene, f["camera"])
    return bool(ahead) == f["value"]


@checker("ego_response")
def _ego_response(scene: Scene, f: dict) -> bool:
    return response(scene) == f["value"]


def response(scene: Scene) -> str | None:
    """What the reference plan does about the road ahead, in words (None if it is unclear)."""
    ego = scene.ego
    if ego.intent in (Intent.CHANGING_LANE_LEFT, Intent.CHANGING_LANE_RIGHT):
        return RESPONSES[0]
    slowdown = ego.speed - min(p.speed for p in ego.future)
    if slowdown > 1.5:
        return RESPONSES[1]
    if slowdown < 0.5:
        return RESPONSES[2]
    return None


@task("obstacle_response", FAMILY, AnswerType.CHOICE, buckets=list(RESPONSES))
def obstacle_response(scene: Scene, rng: np.random.Generator) -> Iterator[Sample]:
    """What the ego should do about the nearest unusual obstacle ahead."""
    ahead, _ = _obstacles(scene)  # a glimpsed one does not matter: the question names what is seen
    answer = response(scene)
    if not ahead or answer is None:
        return
    nearest = min(ahead, key=distance)
    ego = scene.ego
    steps = [
        Step(
            text=f"There is a {noun(nearest.category)} ({nearest.id}) {distance(nearest):.0f} m ahead.",
            facts=[Fact(type="visible", agent=nearest.id, camera=CAMERA)],
        ),
        Step(
            text=f"The safe plan is to {answer}: over the next 3 s the speed goes from {ego.speed:.1f} to "
            f"{ego.future[-1].speed:.1f} m/s.",
            facts=[Fact(type="ego_response", value=answer)],
        ),
    ]
    # the wording names no obstacle: what it is, and where, must come from the image
    question = "There is an unusual obstacle on the road ahead. What should the ego vehicle do about it?"
    yield choice_sample(scene, FAMILY, "obstacle_response", "any", question, list(RESPONSES), answer, steps, rng)
