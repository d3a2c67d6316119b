"""Checking facts against the scene: the deterministic judge of reasoning steps.

Each fact type has one checker. A fact of an unknown type, or about an agent or light the
scene does not have, cannot be verified (None) rather than being called false.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from roadthink.scene.types import Scene
from roadthink.tasks.corner_cases import ON_ROAD, UNUSUAL, response
from roadthink.tasks.planning import meta_action_of
from roadthink.tasks.sample import Fact, Step
from roadthink.tasks.views import VISIBLE, distance, seen

DISTANCE_TOLERANCE = 1.0  # metres
SPEED_TOLERANCE = 0.5  # m/s
BOX_TOLERANCE = 2.0  # pixels per edge


def _agent(scene: Scene, agent_id: str):
    return next((a for a in scene.agents if a.id == agent_id), None)


def _light(scene: Scene, light_id: str):
    return next((lt for lt in scene.map.lights if lt.id == light_id), None)


def _visible(scene: Scene, f: dict) -> bool | None:
    agent = _agent(scene, f["agent"])
    if agent is None:
        return None
    ann = agent.cameras.get(f["camera"])
    return ann is not None and ann.visible_fraction >= VISIBLE


def _count(scene: Scene, f: dict) -> bool:
    categories = f["categories"] if "categories" in f else [f["category"]]
    return sum(a.category in categories for a in seen(scene, f["camera"])) == f["value"]


def _exists(scene: Scene, f: dict) -> bool:
    return any(a.category == f["category"] for a in seen(scene, f["camera"])) == f["value"]


def _controls(scene: Scene, f: dict) -> bool | None:
    light = _light(scene, f["light"])
    return None if light is None else f["lane"] in light.lane_ids


def _light_state(scene: Scene, f: dict) -> bool | None:
    light = _light(scene, f["light"])
    return None if light is None else light.state == f["value"]


def _nearest(scene: Scene, f: dict) -> bool:
    same = [a for a in seen(scene, f["camera"]) if a.category == f["category"]]
    return bool(same) and min(same, key=distance).id == f["agent"]


def _color(scene: Scene, f: dict) -> bool | None:
    agent = _agent(scene, f["agent"])
    return None if agent is None else agent.color.name == f["value"]


def _side(scene: Scene, f: dict) -> bool | None:
    agent = _agent(scene, f["agent"])
    return None if agent is None else ("left" if agent.box.center[1] > 0 else "right") == f["value"]


def _distance(scene: Scene, f: dict) -> bool | None:
    agent = _agent(scene, f["agent"])
    return None if agent is None else abs(distance(agent) - float(f["value"])) <= DISTANCE_TOLERANCE


def _unusual_ahead(scene: Scene, f: dict) -> bool:
    ahead = [a for a in seen(scene, f["camera"]) if a.category in UNUSUAL and abs(a.box.center[1]) < ON_ROAD]
    return bool(ahead) == f["value"]


def _ego_response(scene: Scene, f: dict) -> bool:
    return response(scene) == f["value"]


def _bbox(scene: Scene, f: dict) -> bool | None:
    agent = _agent(scene, f["agent"])
    ann = None if agent is None else agent.cameras.get(f["camera"])
    return None if ann is None else all(abs(a - b) <= BOX_TOLERANCE for a, b in zip(ann.bbox, f["value"], strict=True))


def _ego_point(scene: Scene, t: float):
    return next((p for p in scene.ego.future if abs(p.t - t) < 1e-6), None)


def _ego_speed(scene: Scene, f: dict) -> bool | None:
    if float(f["t"]) == 0.0:
        return abs(scene.ego.speed - float(f["value"])) <= SPEED_TOLERANCE
    point = _ego_point(scene, float(f["t"]))
    return None if point is None else abs(point.speed - float(f["value"])) <= SPEED_TOLERANCE


def _ego_position(scene: Scene, f: dict) -> bool | None:
    point = _ego_point(scene, float(f["t"]))
    if point is None:
        return None
    return float(np.hypot(point.center[0] - f["value"][0], point.center[1] - f["value"][1])) <= DISTANCE_TOLERANCE


def _speed(scene: Scene, f: dict) -> bool | None:
    agent = _agent(scene, f["agent"])
    return None if agent is None else abs(agent.speed - float(f["value"])) <= SPEED_TOLERANCE


def _meta_action(scene: Scene, f: dict) -> bool:
    return meta_action_of(scene) == f["value"]


CHECKERS: dict[str, Callable[[Scene, dict], bool | None]] = {
    "visible": _visible,
    "count": _count,
    "exists": _exists,
    "controls": _controls,
    "light_state": _light_state,
    "nearest": _nearest,
    "color": _color,
    "side": _side,
    "distance": _distance,
    "unusual_ahead": _unusual_ahead,
    "ego_response": _ego_response,
    "bbox": _bbox,
    "ego_speed": _ego_speed,
    "ego_position": _ego_position,
    "meta_action": _meta_action,
    "speed": _speed,
}


def check_fact(fact: Fact, scene: Scene) -> bool | None:
    """True or false against ``scene``; None when the fact cannot be verified."""
    checker = CHECKERS.get(fact.type)
    if checker is None:
        return None
    try:
        return checker(scene, fact.model_dump())
    except (KeyError, TypeError, ValueError):
        return None  # a fact missing a field or with a malformed value is unverifiable


def check_steps(steps: list[Step], scene: Scene) -> list[bool | None]:
    """The verdict on every fact of ``steps``, in order."""
    return [check_fact(fact, scene) for step in steps for fact in step.facts]
