from __future__ import annotations

import re

import numpy as np

from roadthink.models.rules.common import front

KINDS = {
    "vehicles": {"car", "truck", "bus", "motorcycle", "bicycle"},
    "traffic cone": {"traffic_cone"},
    **{c: {c} for c in ("pedestrian", "motorcycle", "bicycle", "truck", "bus", "car")},
}


def _how_many(scene, row) -> int:
    kind = next(k for k in KINDS if k in row["question"])
    return sum(a.category in KINDS[kind] for a in front(scene))


def _nearest_car_colour(scene, row) -> str:
    cars = [a for a in front(scene) if a.category == "car"]
    return min(cars, key=lambda a: np.hypot(*a.box.center[:2])).color.name


ANSWERS = {
    "count": _how_many,
    "exists": lambda scene, row: "yes" if _how_many(scene, row) else "no",
    "light_state": lambda scene, row: next(lt.state for lt in scene.map.lights if scene.ego.lane_id in lt.lane_ids),
    "color": _nearest_car_colour,
}


def _annotated(scene) -> list:
    """Everyone with pixels in the front camera, however hidden: any of them could be meant."""
    return [a for a in scene.agents if "CAM_FRONT" in a.cameras]


def _dist(a) -> float:
    return float(np.hypot(*a.box.center[:2]))


def _clear_nearest(inside: list, rivals: list):
    best = min(inside, key=_dist)
    assert all(_dist(a) >= _dist(best) + 2.0 for a in rivals if a is not best)
    return best


def _picked(scene, description: str):
    everyone = _annotated(scene)
    y = {a.id: a.box.center[1] for a in everyone}
    cx = {a.id: sum(a.cameras["CAM_FRONT"].bbox[::2]) / 2 for a in everyone}
    if "leftmost" in description or "rightmost" in description:
        ranked = sorted(everyone, key=lambda a: cx[a.id], reverse="rightmost" in description)
        assert len(ranked) == 1 or abs(cx[ranked[1].id] - cx[ranked[0].id]) >= 30
        return ranked[0]
    if "left of" in description:
        inside = [a for a in everyone if y[a.id] > 0.5]
        return _clear_nearest(inside, [a for a in everyone if y[a.id] >= -0.5])
    if "right of" in description:
        inside = [a for a in everyone if y[a.id] < -0.5]
        return _clear_nearest(inside, [a for a in everyone if y[a.id] <= 0.5])
    if "directly ahead" in description:
        inside = [a for a in everyone if a.box.center[0] > 0 and abs(y[a.id]) < 1.2]
        return _clear_nearest(inside, [a for a in everyone if abs(y[a.id]) <= 1.7])
    return _clear_nearest(everyone, everyone)


def _category(scene, row) -> str:
    description = re.fullmatch(r"In the front camera image, what kind of road user is (.+)\?", row["question"])[1]
    target = _picked(scene, description)
    assert target in front(scene)
    return target.category.replace("_", " ")


ANSWERS["category"] = _category
