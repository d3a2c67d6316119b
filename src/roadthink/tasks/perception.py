"""Perception: what is there, how many, what colour, what the light shows."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from roadthink.scene.catalog import COLOURS
from roadthink.scene.types import VEHICLES, Category, LightState, Scene
from roadthink.tasks.registry import choice_sample, make_sample, task
from roadthink.tasks.sample import AnswerType, Fact, Sample, Step
from roadthink.tasks.views import ASKED_CATEGORIES, distance, glimpsed, noun, plural, seen

CAMERA = "CAM_FRONT"
FAMILY = "perception"
MAX_COUNT = 4  # larger counts are not asked
COUNTED = {
    "cars": frozenset({Category.CAR}),
    "vehicles": VEHICLES,
    "pedestrians": frozenset({Category.PEDESTRIAN}),
}


def _seen_step(agents, what: str) -> Step:
    names = ", ".join(f"{a.id} ({a.color.name} {noun(a.category)}, {distance(a):.0f} m away)" for a in agents)
    facts = [Fact(type="visible", agent=a.id, camera=CAMERA) for a in agents]
    return Step(text=f"{what.capitalize()} visible in the front camera: {names or 'none'}.", facts=facts)


@task("count", FAMILY, AnswerType.NUMBER, buckets=[str(n) for n in range(MAX_COUNT + 1)])
def count(scene: Scene, rng: np.random.Generator) -> Iterator[Sample]:
    """How many cars, vehicles or pedestrians the front camera shows (0 to 4).

    Only kinds that are common enough to take every count are asked about, and larger
    counts are not asked: otherwise the question text alone would narrow the answer down.
    """
    visible, hidden = seen(scene, CAMERA), glimpsed(scene, CAMERA)
    for kind, members in COUNTED.items():
        if any(a.category in members for a in hidden):
            continue  # a half-hidden one would make the count a matter of opinion
        agents = [a for a in visible if a.category in members]
        n = len(agents)
        if n > MAX_COUNT:
            continue
        fact = Fact(type="count", categories=sorted(c.value for c in members), camera=CAMERA, value=n)
        yield make_sample(
            scene,
            FAMILY,
            "count",
            kind,
            str(n),
            f"How many {kind} can you see in the front camera image? Answer with a number.",
            n,
            AnswerType.NUMBER,
            [_seen_step(agents, kind), Step(text=f"So there are {n}.", facts=[fact])],
        )


@task("exists", FAMILY, AnswerType.YES_NO, buckets=["yes", "no"])
def exists(scene: Scene, rng: np.random.Generator) -> Iterator[Sample]:
    """Whether the front camera shows any road user of a category."""
    visible, hidden = seen(scene, CAMERA), glimpsed(scene, CAMERA)
    for category in ASKED_CATEGORIES:
        if any(a.category is category for a in hidden):
            continue
        agents = [a for a in visible if a.category is category]
        answer = "yes" if agents else "no"
        fact = Fact(type="exists", category=category.value, camera=CAMERA, value=bool(agents))
        yield make_sample(
            scene,
            FAMILY,
            "exists",
            category.value,
            answer,
            f"Is there a {noun(category)} in the front camera image? Answer yes or no.",
            answer,
            AnswerType.YES_NO,
            [_seen_step(agents, plural(category)), Step(text=f"So the answer is {answer}.", facts=[fact])],
        )


@task("light_state", FAMILY, AnswerType.CHOICE, buckets=[s.value for s in LightState])
def light_state(scene: Scene, rng: np.random.Generator) -> Iterator[Sample]:
    """The state of the traffic light that controls the ego's lane."""
    light = next((lt for lt in scene.map.lights if scene.ego.lane_id in lt.lane_ids), None)
    if light is None:
        return
    steps = [
        Step(
            text=f"The light facing the ego lane ({light.id}) is ahead over the junction.",
            facts=[Fact(type="controls", light=light.id, lane=scene.ego.lane_id)],
        ),
        Step(
            text=f"Its {light.state.value} lamp is lit.",
            facts=[Fact(type="light_state", light=light.id, value=light.state.value)],
        ),
    ]
    question = "What is the state of the traffic light that controls the ego vehicle's lane?"
    yield choice_sample(
        scene,
        FAMILY,
        "light_state",
        "ego_light",
        question,
        [s.value for s in LightState],
        light.state.value,
        steps,
        rng,
    )


@task("color", FAMILY, AnswerType.CHOICE, buckets=sorted(COLOURS[Category.CAR]))
def color(scene: Scene, rng: np.random.Generator) -> Iterator[Sample]:
    """The colour of the car nearest to the ego among those the front camera shows."""
    cars = [a for a in seen(scene, CAMERA) if a.category is Category.CAR]
    if not cars:
        return
    target = min(cars, key=distance)
    wrong = [c for c in sorted(COLOURS[Category.CAR]) if c != target.color.name]
    decoys = [wrong[i] for i in rng.choice(len(wrong), 3, replace=False)]
    steps = [
        Step(
            text=f"The nearest visible car is {target.id}, {distance(target):.0f} m away.",
            facts=[Fact(type="nearest", agent=target.id, category="car", camera=CAMERA)],
        ),
        Step(text=f"It is {target.color.name}.", facts=[Fact(type="color", agent=target.id, value=target.color.name)]),
    ]
    question = "What colour is the nearest car visible in the front camera image?"
    yield choice_sample(
        scene, FAMILY, "color", "nearest_car", question, [target.color.name, *decoys], target.color.name, steps, rng
    )
