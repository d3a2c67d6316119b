from __future__ import annotations

import re

import numpy as np
import shapely

from roadthink.models.rules.common import described, named

AXES = {0: "ahead", 1: "left", 2: "behind", 3: "right"}


def _distance_bin(scene, row) -> str:
    d = float(np.hypot(*described(scene, row["question"]).box.center[:2]))
    return "under 10 m" if d < 10 else "10 to 20 m" if d < 20 else "20 to 40 m" if d < 40 else "over 40 m"


def _axis(dx: float, dy: float) -> str:
    """The nearest of ahead / left / behind / right to the direction of (dx, dy)."""
    return AXES[round(np.degrees(np.arctan2(dy, dx)) % 360 / 90) % 4]


def _corners(agent) -> np.ndarray:
    (x, y, _), (length, width, _), yaw = agent.box.center, agent.box.size, agent.box.yaw
    local = np.array([[1, 1], [1, -1], [-1, -1], [-1, 1]]) * (length / 2, width / 2)
    rot = np.array([[np.cos(yaw), -np.sin(yaw)], [np.sin(yaw), np.cos(yaw)]])
    return local @ rot.T + (x, y)


def _half_extent(scene) -> np.ndarray:
    """Metres from the ego to the BEV image's edges: ahead/behind, left/right."""
    return np.array([scene.bev.height, scene.bev.width]) * scene.bev.resolution / 2


def _bev_agent(scene, phrase: str):
    """'[kind]' is the only one of its kind drawn in the BEV; '[kind] nearest to the ego' the nearest."""
    nearest = phrase.endswith(" nearest to the ego")
    kind = phrase.removesuffix(" nearest to the ego").replace(" ", "_")
    drawn = [
        a
        for a in scene.agents
        if a.category == kind and (np.abs(_corners(a)).min(0) < _half_extent(scene)).all()  # overlaps the image at all
    ]
    if not nearest:
        assert len(drawn) == 1, phrase
    return min(drawn, key=lambda a: np.hypot(*a.box.center[:2]))


def _position(scene, row) -> str:
    name = re.search(r"Where is the ([a-z ]+) relative to the ego vehicle\?", row["question"]).group(1)
    agent = _bev_agent(scene, name)
    assert (np.abs(_corners(agent)) <= _half_extent(scene)).all()  # wholly inside the image
    axis = _axis(*agent.box.center[:2])
    return axis if axis in ("ahead", "behind") else f"to the {axis}"


def _relative(scene, row) -> str:
    a, b = re.search(r"is the ([a-z ]+) to the left of the ([a-z ]+), to the right", row["question"]).groups()
    first, second = named(scene, a), named(scene, b)
    axis = _axis(first.box.center[0] - second.box.center[0], first.box.center[1] - second.box.center[1])
    return {"ahead": "further ahead", "behind": "nearer", "left": "to the left", "right": "to the right"}[axis]


def _perspective(scene, row) -> str:
    pattern = r"you are (?:the driver of |the rider of )?the ([a-z ]+), facing .* Is the ([a-z ]+?) on your"
    a, b = re.search(pattern, row["question"]).groups()
    observer, other = named(scene, a), named(scene, b)
    dx, dy = np.subtract(other.box.center[:2], observer.box.center[:2])
    yaw = observer.box.yaw
    return "left" if -np.sin(yaw) * dx + np.cos(yaw) * dy > 0 else "right"


def _lanes(scene) -> dict:
    """Lane id -> (centreline, strip) in the ego frame."""
    out = {}
    for lane in scene.map.lanes:
        line = shapely.LineString(scene.world_to_ego(np.array(lane.centerline)))
        out[lane.id] = (line, line.buffer(lane.width / 2, cap_style="flat"))
    return out


def _lane(scene, row) -> str:
    agent = named(scene, re.search(r"Which lane is the ([a-z ]+) in\?", row["question"]).group(1))
    point = shapely.Point(agent.box.center[:2])
    holding = [i for i, (_, strip) in _lanes(scene).items() if strip.contains(point)]
    if not holding:
        return "not in a driving lane"
    assert len(holding) == 1
    ego = scene.map.lane(scene.ego.lane_id)
    if holding[0] == ego.id:
        return "the ego's lane"
    if holding[0] == ego.left_neighbor:
        return "the lane to the left of the ego's"
    if holding[0] == ego.right_neighbor:
        return "the lane to the right of the ego's"
    line = _lanes(scene)[holding[0]][0]
    s = line.project(point)
    step = np.subtract(line.interpolate(s + 0.5).coords[0], line.interpolate(s - 0.5).coords[0])
    assert step[0] < 0  # against the ego's heading
    return "an oncoming lane"


def _nearest_in_lane(scene, row) -> str:
    lanes = _lanes(scene)
    route = [scene.ego.lane_id]
    while True:  # straight on: the only successor, or the one that does not turn
        nxt = [scene.map.lane(i) for i in scene.map.lane(route[-1]).successors]
        if len(nxt) > 1:
            nxt = [lane for lane in nxt if lane.turn == "straight"]
        if len(nxt) != 1:
            break
        route.append(nxt[0].id)
    line = shapely.LineString([p for i in route for p in lanes[i][0].coords])
    start = line.project(shapely.Point(0, 0))
    ahead = []
    for agent in scene.agents:
        point = shapely.Point(agent.box.center[:2])
        if any(lanes[i][1].contains(point) for i in route) and line.project(point) > start:
            ahead.append((line.project(point), agent.id))
    if not ahead:
        return "nobody: the lane ahead is clear"
    nearest = next(a for a in scene.agents if a.id == min(ahead)[1])
    if nearest.category == "car":
        return "a car"
    if nearest.category in ("traffic_cone", "barrier", "debris", "animal"):
        return "an obstacle (cone, barrier, debris or animal)"
    return "another road user (truck, bus, motorcycle, bicycle or pedestrian)"


ANSWERS = {
    "side": lambda scene, row: "left" if described(scene, row["question"]).box.center[1] > 0 else "right",
    "distance": _distance_bin,
    "position": _position,
    "relative_position": _relative,
    "perspective": _perspective,
    "lane": _lane,
    "nearest_in_lane": _nearest_in_lane,
}
