"""What a camera shows, in the terms questions use: who is visible, how to name them."""

from __future__ import annotations

import math

from roadthink.scene.types import Agent, Category, Scene

VISIBLE = 0.25  # an agent counts as seen when this share of it is on screen and unoccluded
PLURALS = {
    Category.BUS: "buses",
    Category.PEDESTRIAN: "pedestrians",
    Category.TRAFFIC_CONE: "traffic cones",
    Category.BARRIER: "barriers",
    Category.DEBRIS: "pieces of debris",
    Category.ANIMAL: "animals",
}
ASKED_CATEGORIES = (
    Category.CAR,
    Category.TRUCK,
    Category.BUS,
    Category.MOTORCYCLE,
    Category.BICYCLE,
    Category.PEDESTRIAN,
    Category.TRAFFIC_CONE,
)


def plural(category: Category) -> str:
    return PLURALS.get(category, f"{category.value.replace('_', ' ')}s")


def noun(category: Category) -> str:
    return category.value.replace("_", " ")


def seen(scene: Scene, camera: str) -> list[Agent]:
    """Agents clearly visible in ``camera``, nearest first."""
    return [a for a in scene.agents if a.cameras.get(camera) and a.cameras[camera].visible_fraction >= VISIBLE]


def glimpsed(scene: Scene, camera: str) -> list[Agent]:
    """Agents with some pixels in ``camera`` but too hidden to count as seen: questions
    that would hinge on them are not asked."""
    return [a for a in scene.agents if a.cameras.get(camera) and a.cameras[camera].visible_fraction < VISIBLE]


def distance(agent: Agent) -> float:
    return math.hypot(*agent.box.center[:2])


def describe(agent: Agent, among: list[Agent]) -> str | None:
    """The shortest unambiguous description of ``agent`` among ``among`` ("the red car"),
    or None when colour and category do not single it out."""
    same = [a for a in among if a.category is agent.category]
    if len(same) == 1:
        return f"the {noun(agent.category)}"
    if sum(a.color.name == agent.color.name for a in same) == 1:
        return f"the {agent.color.name} {noun(agent.category)}"
    return None
