"""Checking facts against the scene: the deterministic judge of reasoning steps.

Each fact type has one checker, registered with ``@checker("type")``: the general ones live
here, the ones that restate a task's own rule live beside that task. A fact of an unknown
type, or about an agent or light the scene does not have, cannot be verified (None) rather
than being called false.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Hashable
from contextvars import ContextVar
from typing import TypeVar

import numpy as np

from roadthink.scene.types import Agent, Scene
from roadthink.tasks.sample import Fact, Step
from roadthink.tasks.views import VISIBLE, distance, seen

DISTANCE_TOLERANCE = 1.0  # metres
SPEED_TOLERANCE = 0.5  # m/s
BOX_TOLERANCE = 2.0  # pixels per edge


R = TypeVar("R")
Checker = Callable[[Scene, dict], bool | None]
CHECKERS: dict[str, Checker] = {}


def checker(fact_type: str) -> Callable[[Checker], Checker]:
    """Register the checker of facts of ``fact_type`` (called with the fact as a dict)."""

    def register(fn: Checker) -> Checker:
        if fact_type in CHECKERS:  # two meanings for one fact type would judge facts wrongly
            raise ValueError(f"fact type {fact_type!r} already has a checker ({CHECKERS[fact_type].__qualname__})")
        CHECKERS[fact_type] = fn
        return fn

    return register


def agent_by_id(scene: Scene, agent_id: str) -> Agent | None:
    return next((a for a in scene.agents if a.id == agent_id), None)


def _light(scene: Scene, light_id: str):
    return next((lt for lt in scene.map.lights if lt.id == light_id), None)


@checker("visible")
def _visible(scene: Scene, f: dict) -> bool | None:
    agent = agent_by_id(scene, f["agent"])
    if agent is None:
        return None
    ann = agent.cameras.get(f["camera"])
    return ann is not None and ann.visible_fraction >= VISIBLE


@checker("count")
def _count(scene: Scene, f: dict) -> bool:
    categories = f["categories"] if "categories" in f else [f["category"]]
    return sum(a.category in categories for a in seen(scene, f["camera"])) == f["value"]


@checker("exists")
def _exists(scene: Scene, f: dict) -> bool:
    return any(a.category == f["category"] for a in seen(scene, f["camera"])) == f["value"]


@checker("controls")
def _controls(scene: Scene, f: dict) -> bool | None:
    light = _light(scene, f["light"])
    return None if light is None else f["lane"] in light.lane_ids


@checker("light_state")
def _light_state(scene: Scene, f: dict) -> bool | None:
    light = _light(scene, f["light"])
    return None if light is None else light.state == f["value"]


@checker("nearest")
def _nearest(scene: Scene, f: dict) -> bool:
    same = [a for a in seen(scene, f["camera"]) if a.category == f["category"]]
    return bool(same) and min(same, key=distance).id == f["agent"]


@checker("color")
def _color(scene: Scene, f: dict) -> bool | None:
    agent = agent_by_id(scene, f["agent"])
    return None if agent is None else agent.color.name == f["value"]


@checker("side")
def _side(scene: Scene, f: dict) -> bool | None:
    agent = agent_by_id(scene, f["agent"])
    return None if agent is None else ("left" if agent.box.center[1] > 0 else "right") == f["value"]


@checker("distance")
def _distance(scene: Scene, f: dict) -> bool | None:
    agent = agent_by_id(scene, f["agent"])
    return None if agent is None else abs(distance(agent) - float(f["value"])) <= DISTANCE_TOLERANCE


@checker("bbox")
def _bbox(scene: Scene, f: dict) -> bool | None:
    agent = agent_by_id(scene, f["agent"])
    ann = None if agent is None else agent.cameras.get(f["camera"])
    return None if ann is None else all(abs(a - b) <= BOX_TOLERANCE for a, b in zip(ann.bbox, f["value"], strict=True))


def _ego_point(scene: Scene, t: float):
    return next((p for p in scene.ego.future if abs(p.t - t) < 1e-6), None)


@checker("ego_speed")
def _ego_speed(scene: Scene, f: dict) -> bool | None:
    if float(f["t"]) == 0.0:
        return abs(scene.ego.speed - float(f["value"])) <= SPEED_TOLERANCE
    point = _ego_point(scene, float(f["t"]))
    return None if point is None else abs(point.speed - float(f["value"])) <= SPEED_TOLERANCE


@checker("ego_position")
def _ego_position(scene: Scene, f: dict) -> bool | None:
    point = _ego_point(scene, float(f["t"]))
    if point is None:
        return None
    return float(np.hypot(point.center[0] - f["value"][0], point.center[1] - f["value"][1])) <= DISTANCE_TOLERANCE


@checker("speed")
def _speed(scene: Scene, f: dict) -> bool | None:
    agent = agent_by_id(scene, f["agent"])
    return None if agent is None else abs(agent.speed - float(f["value"])) <= SPEED_TOLERANCE


def check_fact(fact: Fact, scene: Scene) -> bool | None:
    """True or false against ``scene``; None when the fact cannot be verified."""
    check = CHECKERS.get(fact.type)
    if check is None:
        return None
    try:
        return check(scene, fact.model_dump())
    except (KeyError, TypeError, ValueError):
        return None  # a fact missing a field or with a malformed value is unverifiable


def check_facts(facts: list[Fact], scene: Scene) -> list[bool | None]:
    """The verdict on each of ``facts``, in order; checks of one batch share what they work
    out about the scene (see ``per_batch``)."""
    token = _batch.set({})
    try:
        return [check_fact(fact, scene) for fact in facts]
    finally:
        _batch.reset(token)


def check_steps(steps: list[Step], scene: Scene) -> list[bool | None]:
    """The verdict on every fact of ``steps``, in order."""
    return check_facts([fact for step in steps for fact in step.facts], scene)


_batch: ContextVar[dict | None] = ContextVar("fact_batch", default=None)


def per_batch(fn: Callable[..., R]) -> Callable[..., R]:
    """Compute ``fn(scene, *args)`` once per batch of checks (``check_facts``): several facts
    often rest on one expensive judgement (a manoeuvre rolled out against everyone's future).
    Outside a batch it is a plain call; inside, the scene stays the same object, unchanged."""

    @functools.wraps(fn)
    def wrapper(scene: Scene, *args: Hashable) -> R:
        memo = _batch.get()
        if memo is None:
            return fn(scene, *args)
        key = (fn, id(scene), args)
        if key not in memo:
            memo[key] = fn(scene, *args)
        return memo[key]

    return wrapper
