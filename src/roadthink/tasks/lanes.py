"""Lanes and footprints in the ego frame: the geometry several tasks judge against, so that
"the ego's lane" means the same thing in every question."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely

from roadthink.scene.types import Lane, Scene, Turn, box_corners

_CACHE_SIZE = 8


@dataclass(frozen=True)
class LaneShape:
    """A lane in the ego frame: its centreline and the strip it covers."""

    lane: Lane
    line: shapely.LineString
    area: shapely.Polygon


def _lanes_key(scene: Scene) -> tuple:
    """What the ego-frame lanes depend on: the ego's pose and every lane's geometry."""
    pose = scene.ego.pose
    lanes = tuple((lane.id, lane.width, tuple(map(tuple, lane.centerline))) for lane in scene.map.lanes)
    return pose.x, pose.y, pose.yaw, lanes


_shapes_cache: dict[tuple, dict[str, LaneShape]] = {}


def lane_shapes(scene: Scene) -> dict[str, LaneShape]:
    """Every map lane in the ego frame, by id. Many questions about one scene need them, so
    the last few scenes' lanes are kept (keyed by their geometry, so an edited map is
    never served stale lanes)."""
    key = _lanes_key(scene)
    if key not in _shapes_cache:
        if len(_shapes_cache) >= _CACHE_SIZE:
            _shapes_cache.pop(next(iter(_shapes_cache)))
        shapes = {}
        for lane in scene.map.lanes:
            line = shapely.LineString(scene.world_to_ego(np.asarray(lane.centerline)))
            shapes[lane.id] = LaneShape(lane, line, line.buffer(lane.width / 2, cap_style="flat"))
        _shapes_cache[key] = shapes
    return _shapes_cache[key]


def ego_corridor(scene: Scene) -> list[str]:
    """The ego's lane and its straight-on continuation (through a junction), lane by lane."""
    chain = [scene.ego.lane_id]
    while True:
        successors = [scene.map.lane(i) for i in scene.map.lane(chain[-1]).successors]
        ahead = successors if len(successors) == 1 else [s for s in successors if s.turn is Turn.STRAIGHT]
        if len(ahead) != 1 or ahead[0].id in chain:
            return chain
        chain.append(ahead[0].id)


def ego_lane_area(scene: Scene) -> shapely.Geometry:
    """The ground of the ego's lane and its straight-on continuation, in the ego frame."""
    shapes = lane_shapes(scene)
    return shapely.union_all([shapes[lane_id].area for lane_id in ego_corridor(scene)])


def footprint(center: tuple[float, ...], size: tuple[float, float, float], yaw: float) -> shapely.Polygon:
    """Ground rectangle of a box in the ego frame."""
    return shapely.Polygon(box_corners(np.array([center[0], center[1], 0.0]), np.asarray(size), yaw)[:4, :2])


def rectangles(
    x: np.ndarray, y: np.ndarray, yaw: np.ndarray, length: np.ndarray | float, width: np.ndarray | float
) -> np.ndarray:
    """(..., 4, 2) ground footprints of boxes centred at ``x``, ``y``, vectorised over any leading axes."""
    c, s = np.cos(yaw)[..., None], np.sin(yaw)[..., None]
    a = np.array([0.5, -0.5, -0.5, 0.5]) * np.asarray(length)[..., None]
    b = np.array([0.5, 0.5, -0.5, -0.5]) * np.asarray(width)[..., None]
    return np.stack([x[..., None] + a * c - b * s, y[..., None] + a * s + b * c], -1)
