"""What a camera shows, in the terms questions use: who is visible, how to name them."""

from __future__ import annotations

import math
from collections.abc import Iterator

from roadthink.scene.types import Agent, Category, Scene
from roadthink.tasks.sample import Fact, Step, View

VISIBLE = 0.25  # an agent counts as seen when this share of it is on screen and unoccluded
MOVING, STILL = 1.0, 0.2  # m/s: clearly moving, clearly standing; in between is not asked
FRONT = "CAM_FRONT"
HISTORY = (View(camera=FRONT, t=-1.0), View(camera=FRONT, t=-0.5), View(camera=FRONT))  # motion from frames
SHOWN = "The images are the front camera 1 s ago, 0.5 s ago and now."
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


def named(scene: Scene, camera: str = FRONT) -> Iterator[tuple[Agent, str, Step]]:
    """Clearly seen agents that colour and category single out, with the step naming them."""
    visible = seen(scene, camera)
    for agent in visible:
        name = describe(agent, visible)
        if name is not None:
            yield agent, name, identified(agent, name, camera)


def identified(agent: Agent, name: str, camera: str = FRONT) -> Step:
    """The reasoning step that says which agent ``name`` is."""
    return Step(text=f"{name.capitalize()} is {agent.id}.", facts=[Fact(type="visible", agent=agent.id, camera=camera)])


def centre_x(agent: Agent, camera: str) -> float:
    """Horizontal pixel position of the box centre in ``camera``."""
    x1, _, x2, _ = agent.cameras[camera].bbox
    return (x1 + x2) / 2
