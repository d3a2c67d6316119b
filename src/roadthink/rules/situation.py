"""What the traffic rules reason over: the ego's speed, the rules of the road ahead (limit,
light, stop sign, lanes and lines) and every road user placed against the ego's lane.

A Situation comes from a scene's ground truth (``situation_from_scene``) or from what an
agent perceived (``situation_from_perception``: detections plus whatever it read off lights
and signs). Both go through one builder that only needs lane areas, crosswalks and boxes
with velocities, so a verdict means the same whichever the source. Road users move at
constant velocity in it, as a detector's output has no future.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np
import shapely
from pydantic import BaseModel, ConfigDict, ValidationError

from roadthink.errors import RoadthinkError
from roadthink.scene.catalog import SIZES
from roadthink.scene.generator import EGO_SIZE
from roadthink.scene.layouts import LANE_WIDTH
from roadthink.scene.types import Category, LightState, MarkingKind, Scene, SignKind, StopLine, Turn
from roadthink.tasks.lanes import ego_corridor, ego_lane_area, lane_shapes, rectangles
from roadthink.tasks.planning import HORIZON, SPEED_TOLERANCE, crossed_marking
from roadthink.tasks.prediction import LANE_MARGIN
from roadthink.tasks.views import STILL

LaneSide = Literal["ego", "left", "right"]
JUNCTION_REACH = 50.0  # metres: a junction this near ahead is where a plain "left"/"right" means a turn
LINE_REACH = 30.0  # metres ahead over which the line a lane change would cross is read
BRAKING = 1.0  # m/s^2 of deceleration from which a road user counts as braking
FAR = 200.0  # metres: how far ahead and behind a perceived lane strip reaches


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RoadUser(_Frozen):
    """A road user or obstacle as the rules see it (ego frame: x forward, y left, metres)."""

    id: str
    category: Category
    x: float
    y: float
    vx: float = 0.0
    vy: float = 0.0
    accel: float = 0.0  # m/s^2 along its heading (negative: braking)
    gap: float  # clearance along the ego's heading: > 0 ahead of its front, < 0 behind its rear, 0 alongside
    closing: float  # m/s at which that clearance shrinks (0 alongside)
    lanes: frozenset[LaneSide] = frozenset()  # lanes its footprint is in now, by more than LANE_MARGIN
    entering: bool = False  # out of the ego's lane now, in it within HORIZON at its current velocity
    crosswalk: float | None = None  # on a crosswalk the ego's path crosses: metres from the ego's front to it

    @property
    def ttc(self) -> float | None:
        """Seconds until the clearance closes at constant speeds; None when it does not."""
        return abs(self.gap) / self.closing if self.gap != 0 and self.closing > 0 else None

    @property
    def stops_at(self) -> float | None:
        """Metres from the ego's front to where it comes to rest braking on as now; None
        unless it is ahead and braking (by more than BRAKING)."""
        if self.gap <= 0 or self.accel > -BRAKING:
            return None
        return self.gap + max(self.vx, 0.0) ** 2 / (2 * -self.accel)


class Situation(_Frozen):
    """The ego's situation; None means unknown, and a rule with an unknown premise stays silent."""

    ego_speed: float  # m/s
    has_stopped: bool = False  # the ego stood still (SPEED_TOLERANCE at most) now or within the last 2 s
    ego_length: float = float(EGO_SIZE[0])
    speed_limit: float | None = None  # m/s
    left_lane: bool | None = None  # a lane to the left runs the ego's way
    right_lane: bool | None = None
    left_line: MarkingKind | None = None  # the line a lane change to the left crosses
    right_line: MarkingKind | None = None
    turns: frozenset[Turn] | None = None  # turns a junction within JUNCTION_REACH offers
    stop_line: float | None = None  # metres from the ego's front to the next stop line ahead
    light: LightState | None = None  # the light at that stop line
    stop_sign: bool = False  # a stop sign at that stop line
    users: tuple[RoadUser, ...] = ()


class Detection(_Frozen):
    """One perceived object: what a detector reports (ego-frame centre, optional velocity and size)."""

    category: Category
    x: float
    y: float
    vx: float = 0.0
    vy: float = 0.0
    accel: float = 0.0  # m/s^2 along its heading, when tracked
    length: float | None = None  # default: the category's nominal size
    width: float | None = None
    yaw: float | None = None  # default: along its velocity when it moves, else along the road
    id: str | None = None


@dataclass(frozen=True)
class _Road:
    """Ego-frame geometry the builder places road users on."""

    lanes: dict[LaneSide, shapely.Geometry]  # lane areas that exist: the ego's corridor and its neighbours
    crosswalks: list[tuple[shapely.Geometry, float]]  # crossed by the ego's path ahead, with metres to each


def _users(detections: list[Detection], ego_speed: float, ego_length: float, road: _Road) -> tuple[RoadUser, ...]:
    """Place the detections, all at once: clearance and closing speed along the ego's heading,
    the lanes each is in (by more than LANE_MARGIN), whether it enters the ego's lane within
    HORIZON, and the crosswalk it stands on."""
    if not detections:
        return ()
    nominal = np.array([SIZES[d.category][:2] for d in detections])
    x, y, vx, vy, length, width, yaw = np.array(
        [
            (d.x, d.y, d.vx, d.vy, d.length or np.nan, d.width or np.nan, d.yaw if d.yaw is not None else np.nan)
            for d in detections
        ]
    ).T
    length, width = np.where(np.isnan(length), nominal[:, 0], length), np.where(np.isnan(width), nominal[:, 1], width)
    heading = np.where(np.hypot(vx, vy) > STILL, np.arctan2(vy, vx), 0.0)  # standing: along the road
    yaw = np.where(np.isnan(yaw), heading, yaw)
    now = shapely.polygons(rectangles(x, y, yaw, length, width))
    later = shapely.polygons(rectangles(x + vx * HORIZON, y + vy * HORIZON, yaw, length, width))
    bounds, half = shapely.bounds(now), ego_length / 2
    x_min, x_max = bounds[:, 0], bounds[:, 2]
    gap = np.where(x_min > half, x_min - half, np.where(x_max < -half, x_max + half, 0.0))
    closing = np.where(gap > 0, ego_speed - vx, np.where(gap < 0, vx - ego_speed, 0.0))
    inner = {side: area.buffer(-LANE_MARGIN) for side, area in road.lanes.items()}
    within = {side: shapely.intersects(now, area) for side, area in inner.items()}
    entering = np.zeros(len(detections), bool)
    if "ego" in inner:
        path = shapely.convex_hull(shapely.union(now, later))
        entering = ~within["ego"] & shapely.intersects(path, inner["ego"])
    on = [shapely.intersects(now, area) for area, _ in road.crosswalks]
    return tuple(
        RoadUser(
            id=d.id or f"u{i}",
            category=d.category,
            x=d.x,
            y=d.y,
            vx=d.vx,
            vy=d.vy,
            accel=d.accel,
            gap=float(gap[i]),
            closing=float(closing[i]),
            lanes=frozenset(side for side, hit in within.items() if hit[i]),
            entering=bool(entering[i]),
            crosswalk=next((ahead for hit, (_, ahead) in zip(on, road.crosswalks, strict=True) if hit[i]), None),
        )
        for i, d in enumerate(detections)
    )


# --- from a scene ---------------------------------------------------------------------------


def _corridor_line(scene: Scene, chain: list[str]) -> shapely.LineString:
    shapes = lane_shapes(scene)
    return shapely.LineString(np.concatenate([np.asarray(shapes[i].line.coords) for i in chain]))


def _stop(scene: Scene, chain: list[str], line: shapely.LineString, s_front: float) -> tuple[float, StopLine] | None:
    """The nearest stop line on the corridor that the ego's front has not passed (by half a
    metre, as ``judge`` counts it): metres to it, and the stop line."""
    found = []
    for stop in scene.map.stop_lines:
        if not set(chain) & set(stop.lane_ids):
            continue
        hit = line.intersection(shapely.LineString(scene.world_to_ego(np.asarray(stop.points))))
        if not hit.is_empty and (ahead := line.project(hit.centroid) - s_front) >= -0.5:
            found.append((max(ahead, 0.0), stop))
    return min(found, key=lambda f: f[0], default=None)


def _turns(scene: Scene, chain: list[str], line: shapely.LineString, s_front: float) -> frozenset[Turn]:
    """Turns offered at the first junction of the corridor within JUNCTION_REACH; inside a
    junction, the turn the ego is making."""
    first = scene.map.lane(chain[0])
    if first.in_junction:
        return frozenset({first.turn} - {Turn.STRAIGHT})
    for lane_id in chain:
        lane = scene.map.lane(lane_id)
        after = [scene.map.lane(i) for i in lane.successors]
        if any(a.in_junction for a in after):
            end = scene.world_to_ego(np.asarray(lane.centerline[-1:]))[0]
            near = line.project(shapely.Point(end)) - s_front <= JUNCTION_REACH
            return frozenset({a.turn for a in after} - {Turn.STRAIGHT}) if near else frozenset()
    return frozenset()


def _line_to(scene: Scene, own: shapely.LineString, neighbour: str | None, s_ego: float) -> MarkingKind | None:
    """The line between the ego's lane and ``neighbour`` over the next LINE_REACH metres."""
    if neighbour is None:
        return None
    s = s_ego + np.arange(0.0, LINE_REACH, 1.0)
    s = s[s <= own.length]
    if len(s) < 2:
        return None
    centres = shapely.get_coordinates(shapely.line_interpolate_point(own, s))
    other = lane_shapes(scene)[neighbour].line
    across = shapely.get_coordinates(
        shapely.line_interpolate_point(other, shapely.line_locate_point(other, shapely.points(centres)))
    )
    return crossed_marking(scene, centres, across)


def situation_from_scene(scene: Scene, perceived: Iterable[Detection | Mapping] | None = None) -> Situation:
    """The ground truth of ``scene``: the map's lanes, lines, lights and signs, and every agent;
    or, given ``perceived``, the map (what an HD map and a light detector give) with the road
    users an agent perceived instead of the true ones."""
    ego = scene.ego
    detections = (
        [_detection(d, i) for i, d in enumerate(perceived)]
        if perceived is not None
        else [
            Detection(
                id=a.id,
                category=a.category,
                x=a.box.center[0],
                y=a.box.center[1],
                vx=a.velocity[0],
                vy=a.velocity[1],
                accel=a.accel,
                length=a.box.size[0],
                width=a.box.size[1],
                yaw=a.box.yaw,
            )
            for a in scene.agents
        ]
    )
    length = ego.size[0]
    if ego.lane_id is None:
        return Situation(
            ego_speed=ego.speed, ego_length=length, users=_users(detections, ego.speed, length, _Road({}, []))
        )
    lane, shapes, chain = scene.map.lane(ego.lane_id), lane_shapes(scene), ego_corridor(scene)
    line = _corridor_line(scene, chain)
    s_ego = line.project(shapely.Point(0.0, 0.0))
    s_front = s_ego + length / 2
    areas: dict[LaneSide, shapely.Geometry] = {"ego": ego_lane_area(scene)}
    for side, neighbour in (("left", lane.left_neighbor), ("right", lane.right_neighbor)):
        if neighbour is not None:
            areas[side] = shapes[neighbour].area
    crosswalks = []
    for cw in scene.map.crosswalks:
        polygon = shapely.Polygon(scene.world_to_ego(np.asarray(cw.polygon)))
        crossed = polygon.intersection(areas["ego"])
        if crossed.is_empty:
            continue
        along = [line.project(shapely.Point(p)) - s_front for p in shapely.get_coordinates(crossed)]
        if max(along) > 0:
            crosswalks.append((polygon, max(min(along), 0.0)))
    stop = _stop(scene, chain, line, s_front)
    light, stop_sign = None, False
    if stop is not None:
        lanes = set(stop[1].lane_ids)
        light = next((lt.state for lt in scene.map.lights if lanes & set(lt.lane_ids)), None)
        stop_sign = any(s.kind is SignKind.STOP and lanes & set(s.lane_ids) for s in scene.map.signs)
    own = shapes[ego.lane_id].line
    s_own = own.project(shapely.Point(0.0, 0.0))
    return Situation(
        ego_speed=ego.speed,
        has_stopped=min(p.speed for p in [*ego.past, ego]) <= SPEED_TOLERANCE,
        ego_length=length,
        speed_limit=lane.speed_limit,
        left_lane=lane.left_neighbor is not None,
        right_lane=lane.right_neighbor is not None,
        left_line=_line_to(scene, own, lane.left_neighbor, s_own),
        right_line=_line_to(scene, own, lane.right_neighbor, s_own),
        turns=_turns(scene, chain, line, s_front),
        stop_line=None if stop is None else stop[0],
        light=light,
        stop_sign=stop_sign,
        users=_users(detections, ego.speed, length, _Road(areas, crosswalks)),
    )


# --- from perception ------------------------------------------------------------------------


def _detection(item: Detection | Mapping, index: int) -> Detection:
    """A detection as given, or read from a dict; a bad one is a one-line error saying which."""
    if isinstance(item, Detection):
        return item
    try:
        return Detection.model_validate(item)
    except ValidationError as e:
        first = e.errors()[0]
        field = ".".join(map(str, first["loc"])) or "value"
        raise RoadthinkError(f"detection {index}: {field}: {first['msg']}") from None


def situation_from_perception(
    detections: Iterable[Detection | Mapping],
    ego_speed: float,
    *,
    has_stopped: bool = False,
    speed_limit: float | None = None,
    light: LightState | str | None = None,
    stop_line: float | None = None,
    stop_sign: bool = False,
    crosswalk: tuple[float, float] | None = None,
    left_lane: bool | None = None,
    right_lane: bool | None = None,
    left_line: MarkingKind | str | None = None,
    right_line: MarkingKind | str | None = None,
    turns: Iterable[Turn | str] | None = None,
    lane_width: float = LANE_WIDTH,
    ego_length: float = float(EGO_SIZE[0]),
) -> Situation:
    """What an agent perceived, in the ego frame: detections (dicts or Detection), and where
    it saw them, the stop line's and a crosswalk's (near, far) x in metres ahead of the ego's
    centre, like the detections. Lanes are straight strips ``lane_width`` wide centred on the
    ego; a neighbour strip is left out only when the agent says there is no such lane.
    Anything not given is unknown, and the rules that need it stay silent."""
    w = lane_width
    strips: dict[LaneSide, tuple[float, float]] = {"ego": (-w / 2, w / 2)}
    if left_lane is not False:
        strips["left"] = (w / 2, 3 * w / 2)
    if right_lane is not False:
        strips["right"] = (-3 * w / 2, -w / 2)
    areas = {side: shapely.box(-FAR, low, FAR, high) for side, (low, high) in strips.items()}
    half = ego_length / 2
    crosswalks = []
    if crosswalk is not None and crosswalk[1] > half:
        crosswalks.append((shapely.box(crosswalk[0], -FAR, crosswalk[1], FAR), max(crosswalk[0] - half, 0.0)))
    ahead = None if stop_line is None or stop_line - half < -0.5 else max(stop_line - half, 0.0)
    dets = [_detection(d, i) for i, d in enumerate(detections)]
    return Situation(
        ego_speed=ego_speed,
        has_stopped=has_stopped or ego_speed <= SPEED_TOLERANCE,
        ego_length=ego_length,
        speed_limit=speed_limit,
        left_lane=left_lane,
        right_lane=right_lane,
        left_line=None if left_line is None else MarkingKind(left_line),
        right_line=None if right_line is None else MarkingKind(right_line),
        turns=None if turns is None else frozenset(Turn(t) for t in turns) - {Turn.STRAIGHT},
        stop_line=ahead,
        light=None if ahead is None or light is None else LightState(light),
        stop_sign=ahead is not None and stop_sign,
        users=_users(dets, ego_speed, ego_length, _Road(areas, crosswalks)),
    )
