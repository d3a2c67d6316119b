"""Perception: what is there, how many, what colour, what the light shows."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from roadthink.scene.catalog import COLOURS
from roadthink.scene.types import VEHICLES, Category, LightState, Scene
from roadthink.tasks.registry import FRONT, as_choice, task
from roadthink.tasks.sample import AnswerType, Fact, Sample, Step
from roadthink.tasks.views import ASKED_CATEGORIES, distance, glimpsed, noun, plural, seen

CAMERA = "CAM_FRONT"
MAX_COUNT = 4  # larger counts are not asked
COUNTED = {
    "cars": frozenset({Category.CAR}),
    "vehicles": VEHICLES,
    "pedestrians": frozenset({Category.PEDESTRIAN}),
}


def _sample(scene: Scene, task_name: str, key: str, bucket: str, **fields) -> Sample:
    return Sample(
        id=f"{scene.scene_id}-{task_name}",
        family="perception",
        task=task_name,
        scene_id=scene.scene_id,
        views=list(FRONT),
        meta={"key": key, "bucket": bucket},
        **fields,
    )


def _seen_step(agents, what: str) -> Step:
    names = ", ".join(f"{a.id} ({a.color.name} {noun(a.category)}, {distance(a):.0f} m away)" for a in agents)
    facts = [Fact(type="visible", agent=a.id, camera=CAMERA) for a in agents]
    return Step(text=f"{what.capitalize()} visible in the front camera: {names or 'none'}.", facts=facts)


@task("count", "perception", AnswerType.NUMBER, buckets=[str(n) for n in range(MAX_COUNT + 1)])
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
        yield _sample(
            scene,
            "count",
            kind,
            str(n),
            question=f"How many {kind} can you see in the front camera image? Answer with a number.",
            answer=n,
            answer_type=AnswerType.NUMBER,
            reference_steps=[
                _seen_step(agents, kind),
                Step(
                    text=f"So there are {n}.",
                    facts=[Fact(type="count", categories=sorted(c.value for c in members), camera=CAMERA, value=n)],
                ),
            ],
        )


@task("exists", "perception", AnswerType.YES_NO, buckets=["yes", "no"])
def exists(scene: Scene, rng: np.random.Generator) -> Iterator[Sample]:
    """Whether the front camera shows any road user of a category."""
    visible, hidden = seen(scene, CAMERA), glimpsed(scene, CAMERA)
    for category in ASKED_CATEGORIES:
        if any(a.category is category for a in hidden):
            continue
        agents = [a for a in visible if a.category is category]
        answer = "yes" if agents else "no"
        yield _sample(
            scene,
            "exists",
            category.value,
            answer,
            question=f"Is there a {noun(category)} in the front camera image? Answer yes or no.",
            answer=answer,
            answer_type=AnswerType.YES_NO,
            reference_steps=[
                _seen_step(agents, plural(category)),
                Step(
                    text=f"So the answer is {answer}.",
                    facts=[Fact(type="exists", category=category.value, camera=CAMERA, value=bool(agents))],
                ),
            ],
        )


@task("light_state", "perception", AnswerType.CHOICE, buckets=[s.value for s in LightState])
def light_state(scene: Scene, rng: np.random.Generator) -> Iterator[Sample]:
    """The state of the traffic light that controls the ego's lane."""
    light = next((lt for lt in scene.map.lights if scene.ego.lane_id in lt.lane_ids), None)
    if light is None:
        return
    options, letter = as_choice([s.value for s in LightState], light.state.value, rng)
    yield _sample(
        scene,
        "light_state",
        "ego_light",
        light.state.value,
        question="What is the state of the traffic light that controls the ego vehicle's lane?",
        choices=options,
        answer=letter,
        answer_type=AnswerType.CHOICE,
        reference_steps=[
            Step(
                text=f"The light facing the ego lane ({light.id}) is ahead over the junction.",
                facts=[Fact(type="controls", light=light.id, lane=scene.ego.lane_id)],
            ),
            Step(
                text=f"Its {light.state.value} lamp is lit.",
                facts=[Fact(type="light_state", light=light.id, value=light.state.value)],
            ),
        ],
    )


@task("color", "perception", AnswerType.CHOICE, buckets=sorted(COLOURS[Category.CAR]))
def color(scene: Scene, rng: np.random.Generator) -> Iterator[Sample]:
    """The colour of the vehicle nearest to the ego among those the front camera shows."""
    vehicles = [a for a in seen(scene, CAMERA) if a.category is Category.CAR]
    if not vehicles:
        return
    target = min(vehicles, key=distance)
    palette = sorted(COLOURS[Category.CAR])
    wrong = [c for c in palette if c != target.color.name]
    decoys = [wrong[i] for i in rng.choice(len(wrong), 3, replace=False)]
    options, letter = as_choice([target.color.name, *decoys], target.color.name, rng)
    yield _sample(
        scene,
        "color",
        "nearest_car",
        target.color.name,
        question="What colour is the nearest car visible in the front camera image?",
        choices=options,
        answer=letter,
        answer_type=AnswerType.CHOICE,
        reference_steps=[
            Step(
                text=f"The nearest visible car is {target.id}, {distance(target):.0f} m away.",
                facts=[Fact(type="nearest", agent=target.id, category="car", camera=CAMERA)],
            ),
            Step(
                text=f"It is {target.color.name}.",
                facts=[Fact(type="color", agent=target.id, value=target.color.name)],
            ),
        ],
    )
