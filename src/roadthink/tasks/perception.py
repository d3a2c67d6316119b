"""Perception: what is there, how many, what kind, what colour, what the light shows."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from roadthink.scene.catalog import COLOURS
from roadthink.scene.types import VEHICLES, Agent, Category, LightState, Scene
from roadthink.tasks.facts import agent_by_id, checker
from roadthink.tasks.registry import choice_sample, make_sample, task
from roadthink.tasks.sample import AnswerType, Fact, Sample, Step
from roadthink.tasks.views import ASKED_CATEGORIES, centre_x, distance, glimpsed, noun, plural, seen

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


KINDS = (*ASKED_CATEGORIES, Category.ANIMAL, Category.DEBRIS)  # barriers stand behind cones: never singled out
NEAREST_MARGIN = 2.0  # metres the nearest must beat the runner-up by
IMAGE_MARGIN = 30.0  # pixels the leftmost/rightmost must beat the runner-up by
LATERAL_MARGIN = 0.5  # metres either side of a side or lane boundary that are too close to call
LANE_HALF = 1.2  # metres either side of the ego's heading line that count as "directly ahead"


def _nearest_in(members: list[Agent], unsure: list[Agent]) -> Agent | None:
    """The nearest of ``members`` when it beats every other member and every agent that may or
    may not belong (``unsure``) by NEAREST_MARGIN."""
    if not members:
        return None
    target = min(members, key=distance)
    rivals = [a for a in [*members, *unsure] if a is not target]
    return target if all(distance(a) - distance(target) >= NEAREST_MARGIN for a in rivals) else None


def _zone(agents: list[Agent], inside, outside) -> Agent | None:
    """Nearest of the agents ``inside`` a zone, against those not clearly ``outside`` it."""
    members = [a for a in agents if inside(a)]
    unsure = [a for a in agents if not inside(a) and not outside(a)]
    return _nearest_in(members, unsure)


def _extreme(agents: list[Agent], camera: str, sign: float) -> Agent | None:
    """The agent furthest to one side of the image (sign -1 left, +1 right), by IMAGE_MARGIN."""
    ranked = sorted(agents, key=lambda a: sign * centre_x(a, camera), reverse=True)
    if len(ranked) > 1 and sign * (centre_x(ranked[0], camera) - centre_x(ranked[1], camera)) < IMAGE_MARGIN:
        return None
    return ranked[0] if ranked else None


def _left(agents: list[Agent], camera: str) -> Agent | None:
    return _zone(agents, lambda a: a.box.center[1] > LATERAL_MARGIN, lambda a: a.box.center[1] < -LATERAL_MARGIN)


def _right(agents: list[Agent], camera: str) -> Agent | None:
    return _zone(agents, lambda a: a.box.center[1] < -LATERAL_MARGIN, lambda a: a.box.center[1] > LATERAL_MARGIN)


def _ahead(agents: list[Agent], camera: str) -> Agent | None:
    return _zone(
        agents,
        lambda a: a.box.center[0] > 0 and abs(a.box.center[1]) < LANE_HALF,
        lambda a: abs(a.box.center[1]) > LANE_HALF + LATERAL_MARGIN,
    )


# description -> who it names among every agent with pixels in the camera (None: nobody for sure)
SINGLED_OUT = {
    "the road user nearest to the ego vehicle": lambda agents, camera: _nearest_in(agents, []),
    "the nearest road user to the left of the ego vehicle's heading": _left,
    "the nearest road user to the right of the ego vehicle's heading": _right,
    f"the nearest road user directly ahead (within {LANE_HALF} m of the ego vehicle's heading line)": _ahead,
    "the leftmost road user in the image": lambda agents, camera: _extreme(agents, camera, -1.0),
    "the rightmost road user in the image": lambda agents, camera: _extreme(agents, camera, 1.0),
}


def singled_out(scene: Scene, description: str, camera: str = CAMERA) -> Agent | None:
    """The clearly seen agent ``description`` names, or None when it names nobody for sure
    (a half-hidden agent counts as a rival: it might be the one meant)."""
    target = SINGLED_OUT[description]([*seen(scene, camera), *glimpsed(scene, camera)], camera)
    return target if target in seen(scene, camera) else None


@checker("singled_out")
def _singled_out(scene: Scene, f: dict) -> bool:
    target = singled_out(scene, f["description"], f["camera"])
    return target is not None and target.id == f["agent"]


@checker("agent_category")
def _category(scene: Scene, f: dict) -> bool | None:
    agent = agent_by_id(scene, f["agent"])
    return None if agent is None else agent.category == f["value"]


@task("category", FAMILY, AnswerType.CHOICE, buckets=[noun(c) for c in KINDS])
def category(scene: Scene, rng: np.random.Generator) -> Iterator[Sample]:
    """What kind of road user one described by position alone (nearest, leftmost...) is."""
    for description in SINGLED_OUT:
        target = singled_out(scene, description)
        if target is None or target.category not in KINDS:
            continue
        x, y, _ = target.box.center
        answer = noun(target.category)
        wrong = [noun(c) for c in KINDS if c is not target.category]
        decoys = [wrong[i] for i in rng.choice(len(wrong), 3, replace=False)]
        steps = [
            Step(
                text=f"{description.capitalize()} is {target.id}: {x:.1f} m ahead, {y:+.1f} m to the side, "
                f"{distance(target):.1f} m away, around x {centre_x(target, CAMERA):.0f} px in the image.",
                facts=[
                    Fact(type="visible", agent=target.id, camera=CAMERA),
                    Fact(type="distance", agent=target.id, value=round(distance(target), 1)),
                    Fact(type="singled_out", agent=target.id, camera=CAMERA, description=description),
                ],
            ),
            Step(
                text=f"Its shape and size are those of a {answer}.",
                facts=[Fact(type="agent_category", agent=target.id, value=target.category.value)],
            ),
        ]
        question = f"In the front camera image, what kind of road user is {description}?"
        yield choice_sample(scene, FAMILY, "category", description, question, [answer, *decoys], answer, steps, rng)
