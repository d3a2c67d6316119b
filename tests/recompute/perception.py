from __future__ import annotations

import numpy as np

from recompute.common import front

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
