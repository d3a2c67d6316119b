"""Corner-case scenarios: what is placed around the ego before background traffic.

Each scenario names the layouts it fits and may fix layout parameters (a parked car needs
a shoulder). ``place`` gets the world with the ego placed (``world.actors[0]``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from roadthink.scene.behaviour import Actor, Motion
from roadthink.scene.catalog import sample_color, sample_size
from roadthink.scene.layouts import LANE_WIDTH, SHOULDER_WIDTH
from roadthink.scene.types import Category, Intent, Turn
from roadthink.scene.world import World


def _ahead(world: World, distance: float, lateral: float = 0.0) -> tuple[np.ndarray, float]:
    """World point ``distance`` ahead of the ego along its path, ``lateral`` to the left."""
    ego = world.actors[0]
    x, y, h = ego.path.pose(ego.s + distance)
    h = float(h)
    return np.array([x, y]) + lateral * np.array([-math.sin(h), math.cos(h)]), h


def _clear_ahead(world: World, distance: float) -> None:
    """Keep background traffic off the ego's path up to ``distance`` metres ahead, so that
    the hazard the scenario is about is the ego's to face."""
    ego = world.actors[0]
    world.keep_clear(ego.path, ego.s + ego.size[0] / 2, ego.s + distance, LANE_WIDTH)


def _dodge(world: World, distance: float) -> None:
    """Plan the ego around a blocked lane: change to a free neighbour lane before
    ``distance`` metres, or, with none, keep the lane and let the rollout stop it."""
    ego = world.actors[0]
    lane = world.lanes[ego.meta["lane"]]
    for target, intent in (
        (lane.left_neighbor, Intent.CHANGING_LANE_LEFT),
        (lane.right_neighbor, Intent.CHANGING_LANE_RIGHT),
    ):
        if target is None:
            continue
        start = max(2.0, distance - 30.0)
        ego.path = world.lane_change(ego.meta["route"], ego.s, target, start)
        ego.meta["intent"] = intent
        return


def occluded_pedestrian(world: World, rng: np.random.Generator) -> None:
    """A pedestrian about to step out from in front of a vehicle parked on the right."""
    d = float(rng.uniform(14.0, 26.0))
    lane = world.lanes[world.actors[0].meta["lane"]]
    lanes_right = 1 + _count(world, lane.id, "right_neighbor")
    offset = -(lanes_right - 0.5) * LANE_WIDTH - SHOULDER_WIDTH / 2
    category = [Category.CAR, Category.TRUCK, Category.BUS][int(rng.choice(3, p=[0.4, 0.4, 0.2]))]
    xy, h = _ahead(world, d, offset)
    _placed(world.static(category, xy, h, Intent.PARKED, margin=0.2))
    parked = world.actors[-1]
    step_xy = xy + (parked.size[0] / 2 + 0.9) * np.array([math.cos(h), math.sin(h)])
    step_xy += 0.6 * np.array([-math.sin(h), math.cos(h)])
    _placed(
        world.walker(
            Category.PEDESTRIAN, step_xy, h + math.pi / 2, float(rng.uniform(1.3, 1.9)), Intent.CROSSING, careless=True
        )
    )


def _placed(ok: bool) -> None:
    """Scenario actors are placed first, clear of everything: a refusal is a bug."""
    if not ok:
        raise AssertionError("a scenario actor could not be placed")


def _count(world: World, lane_id: str, side: str) -> int:
    n, lane = 0, world.lanes[lane_id]
    while getattr(lane, side):
        n, lane = n + 1, world.lanes[getattr(lane, side)]
    return n


def lane_closure(world: World, rng: np.random.Generator) -> None:
    """Cones tapering across a lane and a barrier behind them: the ego's own lane or a
    neighbour, each as likely."""
    ego = world.actors[0]
    lane = world.lanes[ego.meta["lane"]]
    closed = [lane.id, *(n for n in (lane.left_neighbor, lane.right_neighbor) if n)]
    side = closed[int(rng.integers(len(closed)))]
    own = side == lane.id
    lateral = 0.0 if own else LANE_WIDTH if side == lane.left_neighbor else -LANE_WIDTH
    d0 = float(rng.uniform(20.0, 35.0))
    for k in range(5):  # taper from the right edge to the left edge of the closed lane
        xy, h = _ahead(world, d0 + 3.0 * k, lateral - 1.4 + 0.7 * k)
        _placed(world.static(Category.TRAFFIC_CONE, xy, h, Intent.STATIC, margin=0.1))
    xy, h = _ahead(world, d0 + 15.0, lateral)
    _placed(world.static(Category.BARRIER, xy, h, Intent.STATIC, margin=0.1))
    for k in range(5):
        xy, h = _ahead(world, d0 + 18.0 + 4.0 * k, lateral + 1.4)
        _placed(world.static(Category.TRAFFIC_CONE, xy, h, Intent.STATIC, margin=0.1))
    if own:
        _dodge(world, d0)
    _clear_ahead(world, d0)


def road_debris(world: World, rng: np.random.Generator) -> None:
    """Something lost from a load, lying in the ego lane."""
    d = float(rng.uniform(18.0, 45.0))
    xy, h = _ahead(world, d, float(rng.uniform(-0.6, 0.6)))
    _placed(world.static(Category.DEBRIS, xy, h + float(rng.uniform(-1.0, 1.0)), Intent.STATIC))
    _dodge(world, d)
    _clear_ahead(world, d - 2.0)


def animal_on_road(world: World, rng: np.random.Generator) -> None:
    """An animal crossing or standing in the ego lane."""
    d = float(rng.uniform(15.0, 40.0))
    xy, h = _ahead(world, d, float(rng.uniform(-1.0, 1.0)))
    if rng.random() < 0.6:
        side = 1.0 if rng.random() < 0.5 else -1.0
        _placed(
            world.walker(Category.ANIMAL, xy, h + side * math.pi / 2, float(rng.uniform(0.8, 2.5)), Intent.CROSSING)
        )
    else:
        _placed(world.walker(Category.ANIMAL, xy, h + float(rng.uniform(-math.pi, math.pi)), 0.0, Intent.STANDING))
    _clear_ahead(world, d - 2.0)


def lead_braking(world: World, rng: np.random.Generator) -> None:
    """The car ahead in the ego lane brakes hard."""
    ego = world.actors[0]
    ego.speed = ego.desired_speed = float(rng.uniform(10.0, 15.0))
    size = sample_size(rng, Category.CAR)
    gap = float(rng.uniform(9.0, 18.0))
    lead = Actor(
        Category.CAR,
        size,
        ego.path,
        ego.s + ego.size[0] / 2 + gap + size[0] / 2,
        ego.speed + float(rng.uniform(-1.0, 1.0)),
        Motion.VEHICLE,
        desired_speed=ego.desired_speed,
        forced_accel=float(rng.uniform(-7.5, -5.0)),
    )
    lead.meta.update(
        lane=ego.meta["lane"], turn=Turn.STRAIGHT, color=sample_color(rng, Category.CAR), intent=Intent.BRAKING
    )
    _placed(world.add(lead))


@dataclass(frozen=True)
class Scenario:
    place: Callable[[World, np.random.Generator], None]
    layouts: tuple[str, ...]
    params: dict = field(default_factory=dict)  # LayoutParams fields it fixes
    ego_lane: str = "any"  # "any" or "rightmost"


SCENARIOS: dict[str, Scenario] = {
    "normal": Scenario(lambda world, rng: None, ("straight", "intersection", "t_junction", "merge")),
    "occluded_pedestrian": Scenario(occluded_pedestrian, ("straight",), {"shoulder": True}, ego_lane="rightmost"),
    "lane_closure": Scenario(lane_closure, ("straight",), {"lanes_per_direction": 2}),
    "road_debris": Scenario(road_debris, ("straight", "intersection", "merge")),
    "animal_on_road": Scenario(animal_on_road, ("straight", "t_junction", "merge")),
    "lead_braking": Scenario(lead_braking, ("straight", "merge")),
}
