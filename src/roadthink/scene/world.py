"""A map being populated: routes along lanes, and legal, non-overlapping placement."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import shapely

from roadthink.scene.behaviour import Actor, Motion, StopControl
from roadthink.scene.catalog import sample_color, sample_size
from roadthink.scene.paths import Path, smoothstep
from roadthink.scene.types import Category, Intent, Lane, MapData, SignKind, Turn

ROUTE_AHEAD = 160.0  # metres of route built ahead of an actor
PLACEMENT_MARGIN = 0.6  # clearance between boxes when placing, metres
VEHICLE_HEADWAY = 1.2  # extra room ahead of and behind a moving vehicle: queues keep gaps


@dataclass(frozen=True)
class Route:
    path: Path
    lanes: list[str]
    start_s: float  # arc length on ``path`` where the first lane of ``lanes`` begins
    turn: Turn  # the first turn the route makes
    stops: tuple[StopControl, ...]  # stop lines with a light or a stop sign, nearest first

    def next_stop(self, s_now: float) -> StopControl | None:
        """The first controlled stop line not yet behind ``s_now``."""
        return next((stop for stop in self.stops if stop.s >= s_now), None)


# box_corners order (FL, RL, RR, FR), closed: shapely takes a closed ring as it is
_CORNER_ALONG = np.array([0.5, -0.5, -0.5, 0.5, 0.5])
_CORNER_ACROSS = np.array([0.5, 0.5, -0.5, -0.5, 0.5])


def footprints(x: float, y: float, heading: float, width: float, lengths: np.ndarray) -> np.ndarray:
    """Ground rectangles centred at (``x``, ``y``) along ``heading``, one per length; built
    together, as making shapes is what costs."""
    c, s = math.cos(heading), math.sin(heading)
    along = np.multiply.outer(lengths, _CORNER_ALONG)
    across = width * _CORNER_ACROSS
    corners = np.empty((*along.shape, 2))
    corners[..., 0] = x + c * along - s * across
    corners[..., 1] = y + s * along + c * across
    return shapely.polygons(corners)


@dataclass
class World:
    """The map, fast lookups over it, and the actors placed so far (ego first)."""

    map: MapData
    rng: np.random.Generator
    lanes: dict[str, Lane] = field(init=False)
    paths: dict[str, Path] = field(init=False)
    actors: list[Actor] = field(default_factory=list)
    footprints: np.ndarray = field(default_factory=lambda: np.empty(0, object))  # shapely shapes

    def __post_init__(self) -> None:
        self.lanes = {lane.id: lane for lane in self.map.lanes}
        self.paths = {lane.id: Path.from_points(lane.centerline) for lane in self.map.lanes}
        self._routes: dict[tuple[str, Turn], Route] = {}

    # --- routes -----------------------------------------------------------------------
    def route(self, lane_id: str, turn: Turn) -> Route:
        """The lane, one predecessor for history, and successors preferring ``turn``;
        cached, as every vehicle in a lane that turns the same way drives the same route."""
        key = (lane_id, turn)
        if key not in self._routes:
            self._routes[key] = self._build_route(lane_id, turn)
        return self._routes[key]

    def _build_route(self, lane_id: str, turn: Turn) -> Route:
        lanes = [lane_id]
        length = self.paths[lane_id].length
        taken = Turn.STRAIGHT
        while length < ROUTE_AHEAD:
            nexts = self.lanes[lanes[-1]].successors
            if not nexts:
                break
            pick = next((n for n in nexts if self.lanes[n].turn is turn), None)
            pick = pick or next((n for n in nexts if self.lanes[n].turn is Turn.STRAIGHT), nexts[0])
            if self.lanes[pick].turn is not Turn.STRAIGHT and taken is Turn.STRAIGHT:
                taken = self.lanes[pick].turn
            lanes.append(pick)
            length += self.paths[pick].length
        preds = self.lanes[lane_id].predecessors
        prefix = [preds[0]] if preds else []
        points = np.concatenate([self.paths[i].points for i in prefix + lanes])
        start = self.paths[prefix[0]].length if prefix else 0.0
        path = Path.from_points(points)
        return Route(path, lanes, start, taken, self._stops(path, lanes))

    def _stops(self, path: Path, lanes: list[str]) -> tuple[StopControl, ...]:
        """Stop lines on ``lanes`` that a light or a stop sign controls, in route order."""
        stops = []
        for line in self.map.stop_lines:
            if not set(line.lane_ids) & set(lanes):
                continue
            s, lateral = path.project(np.mean(np.asarray(line.points), axis=0)[None])
            if abs(lateral[0]) > 8.0:
                continue
            light = next((lt for lt in self.map.lights if set(lt.lane_ids) & set(line.lane_ids)), None)
            stop_sign = any(sg.kind is SignKind.STOP and set(sg.lane_ids) & set(line.lane_ids) for sg in self.map.signs)
            if light or stop_sign:
                stops.append(StopControl(float(s[0]), light))
        return tuple(sorted(stops, key=lambda stop: stop.s))

    def lane_change(self, route: Route, s_now: float, target_lane: str, start: float, length: float = 22.0) -> Path:
        """``route`` blended into the parallel lane ``target_lane`` between ``start`` and
        ``start + length`` metres ahead of ``s_now``: the path of a smooth lane change."""
        target = self.route(target_lane, route.turn).path
        s_end = s_now + start + length
        grid = np.arange(0.0, s_end, 1.0)
        ax, ay, _ = route.path.pose(grid)
        a = np.stack([ax, ay], -1)
        sb, _ = target.project(a)
        bx, by, _ = target.pose(sb)
        alpha = smoothstep((grid - s_now - start) / length)[:, None]
        blended = (1 - alpha) * a + alpha * np.stack([bx, by], -1)
        rest = target.points[target.s > sb[-1] + 1.0]
        return Path.from_points(np.concatenate([blended, rest]))

    # --- placement --------------------------------------------------------------------
    def keep_clear(self, path: Path, start: float, end: float, width: float) -> None:
        """Reserve the strip of ``path`` between arc lengths ``start`` and ``end``: nothing
        placed later may stand in it (the road between the ego and a scenario's hazard)."""
        x, y, _ = path.pose(np.arange(start, end, 1.0))
        strip = shapely.LineString(np.stack([x, y], -1)).buffer(width / 2, cap_style="flat")
        self.footprints = np.append(self.footprints, strip)

    def fits(self, poly: shapely.Polygon, margin: float = PLACEMENT_MARGIN) -> bool:
        return not shapely.dwithin(poly, self.footprints, margin).any()

    def add(self, actor: Actor, margin: float = PLACEMENT_MARGIN, headway: float = 0.0) -> bool:
        """Place ``actor`` if its box, lengthened by ``headway`` metres front and back, is
        ``margin`` clear of every box placed so far."""
        x, y, h = actor.path.pose(actor.s)
        length, width, _ = actor.size
        lengths = [length, length + 2 * headway] if headway else [length]
        shapes = footprints(float(x), float(y), float(h), width, np.array(lengths))
        box, probe = shapes[0], shapes[-1]  # one shape when there is no headway
        if not self.fits(probe, margin):
            return False
        self.actors.append(actor)
        self.footprints = np.append(self.footprints, box)
        return True

    def static(
        self, category: Category, xy: np.ndarray, heading: float, intent: Intent, margin: float = PLACEMENT_MARGIN
    ) -> bool:
        """Place something that does not move (a cone, debris, a parked car)."""
        path = Path.ray(xy, heading, 1.0)
        actor = Actor(category, sample_size(self.rng, category), path, 0.0, 0.0, Motion.STATIC)
        actor.meta.update(intent=intent, color=sample_color(self.rng, category))
        return self.add(actor, margin)

    def walker(
        self,
        category: Category,
        start: np.ndarray,
        heading: float,
        speed: float,
        intent: Intent,
        careless: bool = False,
    ) -> bool:
        """Place a pedestrian or animal that keeps ``speed`` along ``heading``."""
        path = Path.ray(start, heading, 40.0)
        actor = Actor(
            category,
            sample_size(self.rng, category),
            path,
            0.0,
            speed,
            Motion.WALKER,
            careless=careless or category is Category.ANIMAL,
        )
        actor.meta.update(intent=intent, color=sample_color(self.rng, category))
        return self.add(actor, margin=0.3)

    def vehicle(
        self,
        category: Category,
        lane_id: str,
        s_lane: float,
        speed: float,
        desired: float,
        turn: Turn,
        violator: bool = False,
        size: np.ndarray | None = None,
    ) -> Actor | None:
        """Place a vehicle ``s_lane`` metres along lane ``lane_id``, routed preferring ``turn``."""
        route = self.route(lane_id, turn)
        s = route.start_s + s_lane
        size = sample_size(self.rng, category) if size is None else size
        actor = Actor(category, size, route.path, s, speed, Motion.VEHICLE, desired_speed=desired, violator=violator)
        actor.stop = route.next_stop(s)
        actor.meta.update(lane=lane_id, turn=route.turn, color=sample_color(self.rng, category), route=route)
        return actor if self.add(actor, headway=VEHICLE_HEADWAY) else None
