from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import shapely

from roadthink.models.rules.common import front, named

ODD = {"debris", "animal", "traffic_cone", "barrier"}


def _response(scene, row) -> str:
    slowdown = scene.ego.speed - min(p.speed for p in scene.ego.future)
    if scene.ego.intent.startswith("changing_lane"):
        return "change lanes to pass it"
    return "slow down, stopping if needed" if slowdown > 1.5 else "continue at the same speed"


ANSWERS = {
    "unusual_obstacle": lambda scene, row: (
        "yes" if any(a.category in ODD and abs(a.box.center[1]) < 6 for a in front(scene)) else "no"
    ),
    "obstacle_response": _response,
}


def _offset(scene, agent) -> float | None:
    """Signed (left +) distance from the ego lane's centreline, None off either end of it."""
    line = shapely.LineString(scene.world_to_ego(np.array(scene.map.lane(scene.ego.lane_id).centerline)))
    point = shapely.Point(agent.box.center[:2])
    s = line.project(point)
    if s <= 0 or s >= line.length:
        return None
    (x0, y0), (x1, y1) = line.interpolate(s - 0.05).coords[0], line.interpolate(s + 0.05).coords[0]
    side = np.sign((x1 - x0) * (point.y - y0) - (y1 - y0) * (point.x - x0))
    return float(side * line.distance(point))


def _blocked_lane(scene, row) -> str:
    """Lanes by offset in lane widths: within half a width the ego's, then one each side; the
    asked scenes have every obstacle clear of lane edges and at most one lane blocked."""
    width = scene.map.lane(scene.ego.lane_id).width
    lanes = set()
    for a in scene.agents:
        if "CAM_FRONT" not in a.cameras or a.category not in ODD:
            continue
        offset = _offset(scene, a)
        assert offset is not None and a.box.center[0] > 0
        assert min(abs(abs(offset) - width / 2), abs(abs(offset) - 1.5 * width)) >= 0.25
        if abs(offset) < 1.5 * width:
            assert a.category != "animal"
            lanes.add(
                "the ego's lane" if abs(offset) < width / 2 else f"the lane to the {'left' if offset > 0 else 'right'}"
            )
    assert len(lanes) <= 1
    return lanes.pop() if lanes else "none"


def _animal_action(scene, row) -> str:
    assert [Path(p).name for p in row["images"]] == ["CAM_FRONT@-1s.png", "CAM_FRONT@-0.5s.png", "CAM_FRONT.png"]
    animal = named(scene, re.search(r"What is the ([a-z ]+?) on the road doing", row["question"])[1])
    vx, vy = animal.velocity
    if np.hypot(vx, vy) < 0.2:
        return "standing still"
    assert np.hypot(vx, vy) >= 0.5 and abs(vy) >= 2 * abs(vx)
    return "crossing from left to right" if vy < 0 else "crossing from right to left"


ANSWERS["blocked_lane"] = _blocked_lane
ANSWERS["animal_action"] = _animal_action
