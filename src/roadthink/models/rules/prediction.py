from __future__ import annotations

import math
import re
from itertools import pairwise
from pathlib import Path

import numpy as np
import shapely

from roadthink.models.rules.common import described, named

HISTORY = ["CAM_FRONT@-1s.png", "CAM_FRONT@-0.5s.png", "CAM_FRONT.png"]


def _agent(scene, row, pattern: str):
    assert [Path(p).name for p in row["images"]] == HISTORY
    return named(scene, re.search(pattern, row["question"]).group(1))


def _motion(scene, row) -> str:
    assert [Path(p).name for p in row["images"]] == HISTORY
    return "moving" if described(scene, row["question"]).speed > 1.0 else "stationary"


def _direction(scene, row) -> str:
    vx, vy = _agent(scene, row, r"which way is the ([a-z ]+?) moving\?").velocity
    angle = math.degrees(math.atan2(vy, vx))
    if abs(angle) < 45:
        return "same direction as the ego"
    if abs(angle) > 135:
        return "towards the ego (oncoming)"
    return "crossing from left to right" if vy < 0 else "crossing from right to left"


def box(center, size, yaw) -> shapely.Polygon:
    """The ground rectangle of a box, from its centre, length, width and yaw."""
    length, width = size[0], size[1]
    forward, left = np.array([math.cos(yaw), math.sin(yaw)]), np.array([-math.sin(yaw), math.cos(yaw)])
    c = np.array(center[:2])
    return shapely.Polygon(
        [c + sx * length / 2 * forward + sy * width / 2 * left for sx, sy in ((1, 1), (-1, 1), (-1, -1), (1, -1))]
    )


def ego_lane(scene) -> shapely.Geometry:
    """The ego's lane and every lane it continues into straight on, as ground in the ego frame."""
    lanes = {lane.id: lane for lane in scene.map.lanes}
    chain, ground = [scene.ego.lane_id], []
    while True:
        lane = lanes[chain[-1]]
        ground.append(
            shapely.LineString(scene.world_to_ego(np.array(lane.centerline))).buffer(lane.width / 2, cap_style="flat")
        )
        nxt = [lanes[i] for i in lane.successors]
        if len(nxt) > 1:
            nxt = [n for n in nxt if n.turn == "straight"]
        if len(nxt) != 1 or nxt[0].id in chain:
            return shapely.union_all(ground)
        chain.append(nxt[0].id)


def lane_status(scene, agent) -> str:
    """'in' the ego lane now, 'enters' it along the 3 s future (swept between track points), or 'out'."""
    lane = ego_lane(scene)
    boxes = [box(agent.box.center, agent.box.size, agent.box.yaw)]
    boxes += [box(p.center, agent.box.size, p.yaw) for p in agent.future]
    if boxes[0].intersects(lane):
        return "in"
    sweeps = [shapely.MultiPolygon([a, b]).convex_hull for a, b in pairwise(boxes)]
    return "enters" if any(s.intersects(lane) for s in sweeps) else "out"


def _enter(scene, row) -> str:
    agent = _agent(scene, row, r"Will the ([a-z ]+?) enter the ego")
    assert agent.speed > 1.0 and lane_status(scene, agent) != "in"
    return "yes" if lane_status(scene, agent) == "enters" else "no"


def _future(scene, row) -> str:
    end = _agent(scene, row, r"Where will the ([a-z ]+?) be in 3 seconds").future[-1]
    assert end.t == 3.0
    x = end.center[0]
    if x < 0:
        return "behind the ego"
    return (
        "0 to 10 m ahead"
        if x < 10
        else "10 to 20 m ahead"
        if x < 20
        else "20 to 40 m ahead"
        if x < 40
        else "over 40 m ahead"
    )


def ttc(scene, agent) -> float:
    """Seconds until the ego's front meets the agent's nearest point along the ego's heading."""
    nearest = min(x for x, _ in box(agent.box.center, agent.box.size, agent.box.yaw).exterior.coords)
    closing = scene.ego.speed - agent.velocity[0]
    return (nearest - scene.ego.size[0] / 2) / closing if closing > 0 else math.inf


def _ttc(scene, row) -> str:
    agent = _agent(scene, row, r"now\. The ([a-z ]+?) is ahead")
    assert lane_status(scene, agent) != "out"
    t = ttc(scene, agent)
    assert t > 0
    return (
        "under 3 s" if t < 3 else "3 to 5 s" if t < 5 else "5 to 10 s" if t < 10 else "no collision course within 10 s"
    )


ANSWERS = {
    "motion": _motion,
    "direction": _direction,
    "enter_ego_lane": _enter,
    "future_position": _future,
    "ttc": _ttc,
}
