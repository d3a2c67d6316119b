"""Grounding: the 2D box of a described road user, scored by IoU."""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np

from roadthink.scene.types import Agent, Scene
from roadthink.tasks.facts import agent_by_id, checker
from roadthink.tasks.registry import make_sample, task
from roadthink.tasks.sample import AnswerType, Fact, Sample, Step
from roadthink.tasks.views import centre_x, describe, glimpsed, identified, noun, seen

CAMERA = "CAM_FRONT"
FAMILY = "grounding"
THIRDS = ("left", "centre", "right")


def _third(agent: Agent, width: int) -> str:
    """The image third of the box centre: the balance bucket, so location is not guessable."""
    return THIRDS[min(int(centre_x(agent, CAMERA) / width * 3), 2)]


@task("box", FAMILY, AnswerType.BOX, buckets=THIRDS)
def box(scene: Scene, rng: np.random.Generator) -> Iterator[Sample]:
    """The 2D box, in front-camera pixels, of a road user named by colour and category."""
    visible = seen(scene, CAMERA)
    for agent in visible:
        name = describe(agent, visible)
        if name is None:
            continue
        yield _box_sample(scene, "box", agent, name, [identified(agent, name)])


def _box_sample(scene: Scene, task_name: str, target: Agent, name: str, steps: list[Step]) -> Sample:
    """The box question about ``target``, called ``name``: ``steps`` say how to find it, a
    last step reads off its box."""
    spec = scene.cameras[CAMERA]
    x1, y1, x2, y2 = target.cameras[CAMERA].bbox
    third = _third(target, spec.width)
    located = Step(
        text=f"It spans x {x1:.0f}-{x2:.0f} and y {y1:.0f}-{y2:.0f} in the {third} of the image.",
        facts=[Fact(type="bbox", agent=target.id, camera=CAMERA, value=[x1, y1, x2, y2])],
    )
    question = (
        f"Give the bounding box of {name} in the front camera image as [x1, y1, x2, y2] in pixels "
        f"(image size {spec.width}x{spec.height})."
    )
    box = [x1, y1, x2, y2]
    return make_sample(scene, FAMILY, task_name, name, third, question, box, AnswerType.BOX, [*steps, located])


RELATION_IMAGE_MARGIN = 30.0  # pixels between a left/right member and the anchor's centre
RELATION_DISTANCE_MARGIN = 2.0  # metres the nearest member must beat the runner-up by
RELATIONS = {"left_of": "to the left of", "right_of": "to the right of", "nearest_to": "nearest to"}


def _gap(a: Agent, b: Agent) -> float:
    return math.dist(a.box.center[:2], b.box.center[:2])


def _lookalikes(agent: Agent, agents: list[Agent]) -> list[Agent]:
    """Agents of ``agent``'s category and colour: those its name cannot tell apart."""
    return [a for a in agents if a.category is agent.category and a.color.name == agent.color.name]


def related(members: list[Agent], anchor: Agent, relation: str, camera: str) -> Agent | None:
    """The one of ``members`` in ``relation`` to ``anchor``, or None unless exactly one is and
    every other member is clearly not."""
    if relation == "nearest_to":
        ranked = sorted(members, key=lambda a: _gap(a, anchor))
        close = len(ranked) > 1 and _gap(ranked[1], anchor) - _gap(ranked[0], anchor) < RELATION_DISTANCE_MARGIN
        return None if close or not ranked else ranked[0]
    sign = -1.0 if relation == "left_of" else 1.0
    offsets = [sign * (centre_x(a, camera) - centre_x(anchor, camera)) for a in members]
    inside = [a for a, d in zip(members, offsets, strict=True) if d > RELATION_IMAGE_MARGIN]
    unsure = [d for d in offsets if -RELATION_IMAGE_MARGIN <= d <= RELATION_IMAGE_MARGIN]
    return inside[0] if len(inside) == 1 and not unsure else None


@checker("relation_to")
def _relation(scene: Scene, f: dict) -> bool | None:
    """The relation singles the agent out among the seen (and glimpsed) look-alikes."""
    agent, anchor = agent_by_id(scene, f["agent"]), agent_by_id(scene, f["anchor"])
    camera = f["camera"]
    if agent is None or anchor is None or camera not in agent.cameras or camera not in anchor.cameras:
        return None
    members = _lookalikes(agent, [*seen(scene, camera), *glimpsed(scene, camera)])
    return related(members, anchor, f["relation"], camera) is agent


def _group_name(target: Agent, everyone: list[Agent]) -> str:
    """How the question names the look-alikes: "the [colour] category", with the colour only
    when it narrows the category down."""
    same = [a for a in everyone if a.category is target.category]
    colours = {a.color.name for a in same}
    return f"the {noun(target.category)}" if len(colours) == 1 else f"the {target.color.name} {noun(target.category)}"


@task("box_relation", FAMILY, AnswerType.BOX, buckets=THIRDS)
def box_relation(scene: Scene, rng: np.random.Generator) -> Iterator[Sample]:
    """The 2D box of a road user that only a spatial relation to another one singles out."""
    visible = seen(scene, CAMERA)
    everyone = [*visible, *glimpsed(scene, CAMERA)]
    for target in visible:
        if describe(target, visible) is not None:
            continue  # category and colour suffice: the relation would be decoration
        members = _lookalikes(target, everyone)
        group = _group_name(target, everyone)
        for anchor in visible:
            anchor_name = describe(anchor, visible)
            if anchor in members or anchor_name is None:
                continue
            for relation, words in RELATIONS.items():
                if related(members, anchor, relation, CAMERA) is not target:
                    continue
                name = f"{group} {words} {anchor_name}"
                yield _relation_sample(scene, target, anchor, anchor_name, relation, name, members)


def _relation_sample(
    scene: Scene,
    target: Agent,
    anchor: Agent,
    anchor_name: str,
    relation: str,
    name: str,
    members: list[Agent],
) -> Sample:
    others = ", ".join(a.id for a in members if a is not target)
    if relation == "nearest_to":
        how = f"it is {_gap(target, anchor):.1f} m from {anchor.id}, the others farther by at least 2 m"
    else:
        how = f"its centre is at x {centre_x(target, CAMERA):.0f} px, the anchor's at {centre_x(anchor, CAMERA):.0f} px"
    steps = [
        identified(anchor, anchor_name),
        Step(
            text=f"{len(members)} road users look like the one asked about: {target.id}, {others}.",
            facts=[Fact(type="visible", agent=target.id, camera=CAMERA)],
        ),
        Step(
            text=f"Only {target.id} is {RELATIONS[relation]} {anchor.id}: {how}.",
            facts=[Fact(type="relation_to", agent=target.id, anchor=anchor.id, relation=relation, camera=CAMERA)],
        ),
    ]
    return _box_sample(scene, "box_relation", target, name, steps)
