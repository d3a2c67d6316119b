"""Road layouts: straight multi-lane road, signalised 4-way intersection, T-junction, merge.

Each layout is a function ``(rng, params) -> MapData`` registered by name in ``LAYOUTS``.
Traffic drives on the right. All geometry is in the world frame with the junction (or the
middle of the road) at the origin.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import shapely

from roadthink.scene.paths import bezier
from roadthink.scene.types import (
    Area,
    AreaKind,
    Crosswalk,
    Lane,
    LightState,
    MapData,
    Marking,
    MarkingKind,
    Sign,
    SignKind,
    StopLine,
    TrafficLight,
    Turn,
)

LANE_WIDTH = 3.5
SIDEWALK_WIDTH = 3.0
SHOULDER_WIDTH = 2.5
ROAD_LENGTH = 130.0  # metres from the origin to each end
CROSSWALK = (0.5, 3.5)  # metres beyond the junction edge
STOP_LINE_SETBACK = 4.5
GREEN_S, YELLOW_S, ALL_RED_S = 14.0, 3.0, 1.0
CYCLE_S = 2 * (GREEN_S + YELLOW_S + ALL_RED_S)
KMH = 1 / 3.6


def _pt(v: np.ndarray) -> tuple[float, float]:
    """A map point, rounded to the millimetre: scene files stay small and exact."""
    return (round(float(v[0]), 3), round(float(v[1]), 3))


def _pts(a: np.ndarray) -> list[tuple[float, float]]:
    return [(round(x, 3), round(y, 3)) for x, y in np.asarray(a, dtype=float).tolist()]


def _rect(a: np.ndarray, b: np.ndarray, left: float, right: float) -> list[tuple[float, float]]:
    """Polygon of the strip between lateral offsets ``right`` .. ``left`` along segment a->b."""
    d = (b - a) / np.linalg.norm(b - a)
    n = np.array([-d[1], d[0]])
    return _pts(np.array([a + right * n, b + right * n, b + left * n, a + left * n]))


@dataclass
class Arm:
    """One road leaving a junction: ``incoming`` lanes drive towards the junction."""

    angle: float
    lanes: int
    incoming: list[str] = field(default_factory=list)
    outgoing: list[str] = field(default_factory=list)

    @property
    def u(self) -> np.ndarray:
        return np.array([math.cos(self.angle), math.sin(self.angle)])

    @property
    def n(self) -> np.ndarray:
        return np.array([-math.sin(self.angle), math.cos(self.angle)])


@dataclass
class MapBuilder:
    """Accumulates map elements; ``road`` lays out the lanes of one straight road."""

    lanes: list[Lane] = field(default_factory=list)
    markings: list[Marking] = field(default_factory=list)
    crosswalks: list[Crosswalk] = field(default_factory=list)
    stop_lines: list[StopLine] = field(default_factory=list)
    areas: list[Area] = field(default_factory=list)
    lights: list[TrafficLight] = field(default_factory=list)
    signs: list[Sign] = field(default_factory=list)

    def road(
        self,
        road_id: str,
        a: np.ndarray,
        b: np.ndarray,
        n_fwd: int,
        n_bwd: int,
        speed_limit: float,
        shoulder: bool = False,
        sidewalks: tuple[bool, bool] = (True, True),
        marking_start: float = 0.0,
    ) -> tuple[list[str], list[str]]:
        """Lanes from ``a`` to ``b`` (forward, on the right) and back (backward, on the left).

        Returns forward and backward lane ids, innermost first. ``marking_start`` keeps lane
        markings clear of the last metres before ``b`` (crosswalks, junction).
        """
        d = (b - a) / np.linalg.norm(b - a)
        right = np.array([d[1], -d[0]])
        fwd = [f"{road_id}_f{k}" for k in range(n_fwd)]
        bwd = [f"{road_id}_b{k}" for k in range(n_bwd)]
        for k, lane_id in enumerate(fwd):
            off = (k + 0.5) * LANE_WIDTH * right
            self.lanes.append(self._lane(lane_id, [a + off, b + off], speed_limit, fwd, k))
        for k, lane_id in enumerate(bwd):
            off = -(k + 0.5) * LANE_WIDTH * right
            self.lanes.append(self._lane(lane_id, [b + off, a + off], speed_limit, bwd, k))
        w_r, w_l = n_fwd * LANE_WIDTH, n_bwd * LANE_WIDTH
        self.areas.append(Area(kind=AreaKind.ROAD, polygon=_rect(a, b, w_l, -w_r)))
        edge_r, edge_l = w_r, w_l
        if shoulder:
            self.areas.append(Area(kind=AreaKind.SHOULDER, polygon=_rect(a, b, -w_r, -w_r - SHOULDER_WIDTH)))
            if n_bwd:
                self.areas.append(Area(kind=AreaKind.SHOULDER, polygon=_rect(a, b, w_l + SHOULDER_WIDTH, w_l)))
                edge_l += SHOULDER_WIDTH
            edge_r += SHOULDER_WIDTH
        if sidewalks[0]:
            self.areas.append(Area(kind=AreaKind.SIDEWALK, polygon=_rect(a, b, -edge_r, -edge_r - SIDEWALK_WIDTH)))
        if sidewalks[1]:
            self.areas.append(Area(kind=AreaKind.SIDEWALK, polygon=_rect(a, b, edge_l + SIDEWALK_WIDTH, edge_l)))
        b_mark = b - d * marking_start
        line = lambda off: _pts(np.array([a - off * right, b_mark - off * right]))  # noqa: E731
        if n_bwd:
            self.markings.append(Marking(kind=MarkingKind.DOUBLE_YELLOW, points=line(0.0)))
        for k in range(1, n_fwd):
            self.markings.append(Marking(kind=MarkingKind.DASHED_WHITE, points=line(-k * LANE_WIDTH)))
        for k in range(1, n_bwd):
            self.markings.append(Marking(kind=MarkingKind.DASHED_WHITE, points=line(k * LANE_WIDTH)))
        self.markings.append(Marking(kind=MarkingKind.SOLID_WHITE, points=line(-w_r)))
        self.markings.append(
            Marking(kind=MarkingKind.SOLID_WHITE if n_bwd else MarkingKind.SOLID_YELLOW, points=line(w_l))
        )
        return fwd, bwd

    @staticmethod
    def _lane(lane_id: str, pts: list, speed_limit: float, group: list[str], k: int) -> Lane:
        return Lane(
            id=lane_id,
            centerline=_pts(np.asarray(pts)),
            width=LANE_WIDTH,
            speed_limit=speed_limit,
            left_neighbor=group[k - 1] if k > 0 else None,
            right_neighbor=group[k + 1] if k + 1 < len(group) else None,
        )

    def connect(self, src: str, dst: str) -> None:
        by_id = {lane.id: lane for lane in self.lanes}
        by_id[src].successors.append(dst)
        by_id[dst].predecessors.append(src)

    def build(self) -> MapData:
        return MapData(
            lanes=self.lanes,
            markings=self.markings,
            crosswalks=self.crosswalks,
            stop_lines=self.stop_lines,
            areas=self.areas,
            lights=self.lights,
            signs=self.signs,
        )


@dataclass(frozen=True)
class LayoutParams:
    """Random choices a layout may make, drawn by the generator from its config."""

    lanes_per_direction: int
    speed_limit_kmh: float
    shoulder: bool
    crosswalk: bool


def straight(rng: np.random.Generator, p: LayoutParams) -> MapData:
    """A two-way multi-lane road along +x, optionally with a mid-block crosswalk."""
    mb = MapBuilder()
    a, b = np.array([-ROAD_LENGTH, 0.0]), np.array([ROAD_LENGTH, 0.0])
    limit = p.speed_limit_kmh * KMH
    fwd, bwd = mb.road("r0", a, b, p.lanes_per_direction, p.lanes_per_direction, limit, p.shoulder)
    half = p.lanes_per_direction * LANE_WIDTH
    if p.crosswalk:
        x0 = float(rng.uniform(25.0, 60.0))
        mb.crosswalks.append(
            Crosswalk(id="cw0", polygon=_pts(np.array([[x0, -half], [x0 + 3, -half], [x0 + 3, half], [x0, half]])))
        )
    edge = half + (SHOULDER_WIDTH if p.shoulder else 0.0)
    _speed_sign(mb, "sg0", np.array([-40.0, -edge - 1.0]), 0.0, p.speed_limit_kmh, fwd)
    _speed_sign(mb, "sg1", np.array([40.0, edge + 1.0]), math.pi, p.speed_limit_kmh, bwd)
    return mb.build()


def _speed_sign(mb: MapBuilder, sign_id: str, xy: np.ndarray, facing: float, kmh: float, lanes: list[str]) -> None:
    """A speed-limit plate facing traffic that drives along heading ``facing``."""
    mb.signs.append(
        Sign(
            id=sign_id,
            kind=SignKind.SPEED_LIMIT,
            value=kmh,
            position=(*_pt(xy), 2.2),
            yaw=facing + math.pi,
            lane_ids=lanes,
        )
    )


def _junction(mb: MapBuilder, arms: list[Arm], limit: float, crosswalks: bool, controlled: set[int]) -> float:
    """Lay out the arms' roads, sidewalks, crosswalks, the stop lines of the ``controlled``
    arms (by index) and the turn connectors.

    Returns the junction half-size J (the arms start J metres from the origin).
    """
    n_max = max(arm.lanes for arm in arms)
    half = n_max * LANE_WIDTH
    junction = half
    mb.areas.append(
        Area(kind=AreaKind.ROAD, polygon=_pts(np.array([[-half, -half], [half, -half], [half, half], [-half, half]])))
    )
    setback = STOP_LINE_SETBACK if crosswalks else 1.0
    for i, arm in enumerate(arms):
        outer, inner = arm.u * ROAD_LENGTH, arm.u * junction
        arm.incoming, arm.outgoing = mb.road(
            f"r{i}", outer, inner, arm.lanes, arm.lanes, limit, marking_start=setback - 0.5
        )
        if i in controlled:
            stop = arm.u * (junction + setback)
            mb.stop_lines.append(
                StopLine(
                    id=f"sl{i}",
                    points=(_pt(stop), _pt(stop + arm.n * arm.lanes * LANE_WIDTH)),
                    lane_ids=list(arm.incoming),
                )
            )
        if crosswalks:
            c0, c1 = arm.u * (junction + CROSSWALK[0]), arm.u * (junction + CROSSWALK[1])
            w = arm.lanes * LANE_WIDTH
            mb.crosswalks.append(
                Crosswalk(
                    id=f"cw{i}",
                    polygon=_pts(np.array([c0 - w * arm.n, c1 - w * arm.n, c1 + w * arm.n, c0 + w * arm.n])),
                )
            )
    # sidewalk corners so that walks around the junction are continuous
    for sx in (-1, 1):
        for sy in (-1, 1):
            lo, hi = half, half + SIDEWALK_WIDTH
            corner = np.array([[lo, lo], [hi, lo], [hi, hi], [lo, hi]]) * (sx, sy)
            mb.areas.append(Area(kind=AreaKind.SIDEWALK, polygon=_pts(corner)))
    for arm in arms:
        for other in arms:
            turn = _turn(arm.angle, other.angle)
            if turn is None:
                continue
            for k in _turn_lanes(turn, arm.lanes):
                k_out = min(k, other.lanes - 1) if turn is not Turn.RIGHT else other.lanes - 1
                _connector(mb, arm, k, other, k_out, turn, junction, limit)
    return junction


def _turn(src: float, dst: float) -> Turn | None:
    """Turn taken by traffic arriving on arm ``src`` and leaving on arm ``dst``."""
    diff = round(math.degrees((dst - src) % (2 * math.pi))) % 360
    return {180: Turn.STRAIGHT, 270: Turn.LEFT, 90: Turn.RIGHT}.get(diff)


def _turn_lanes(turn: Turn, lanes: int) -> list[int]:
    """Incoming lanes (0 = innermost) allowed to make ``turn``."""
    if turn is Turn.STRAIGHT:
        return list(range(lanes))
    return [0] if turn is Turn.LEFT else [lanes - 1]


def _connector(
    mb: MapBuilder, src: Arm, k: int, dst: Arm, k_out: int, turn: Turn, junction: float, limit: float
) -> None:
    p0 = src.u * junction + (k + 0.5) * LANE_WIDTH * src.n
    p1 = dst.u * junction - (k_out + 0.5) * LANE_WIDTH * dst.n
    d0, d1 = -src.u, dst.u
    # control point where the lines p0 + t0 d0 and p1 + t1 d1 meet (Cramer's rule)
    det = d1[0] * d0[1] - d0[0] * d1[1]
    if abs(det) < 1e-6:
        control = (p0 + p1) / 2
    else:
        r = p1 - p0
        control = p0 + (d1[0] * r[1] - r[0] * d1[1]) / det * d0
    lane_id = f"{src.incoming[k]}_to_{dst.outgoing[k_out]}"
    lane_limit = limit if turn is Turn.STRAIGHT else min(limit, 25 * KMH)
    mb.lanes.append(
        Lane(
            id=lane_id,
            centerline=_pts(bezier(p0, control, p1, 12)),
            width=LANE_WIDTH,
            speed_limit=lane_limit,
            turn=turn,
            in_junction=True,
        )
    )
    mb.connect(src.incoming[k], lane_id)
    mb.connect(lane_id, dst.outgoing[k_out])


def intersection(rng: np.random.Generator, p: LayoutParams) -> MapData:
    """A signalised 4-way intersection with crosswalks on every arm."""
    mb = MapBuilder()
    lanes = min(p.lanes_per_direction, 2)
    arms = [Arm(angle=a * math.pi / 2, lanes=lanes) for a in range(4)]
    junction = _junction(mb, arms, p.speed_limit_kmh * KMH, crosswalks=True, controlled={0, 1, 2, 3})
    phase = float(rng.uniform(0.0, CYCLE_S))
    for i, arm in enumerate(arms):
        # overhead on the far side of the junction, over the lanes it controls
        pos = -arm.u * (junction + 1.0) + arm.n * arm.lanes * LANE_WIDTH / 2
        mb.lights.append(
            TrafficLight(
                id=f"tl{i}",
                position=(*_pt(pos), 5.0),
                yaw=arm.angle,
                state=LightState.GREEN,
                time_to_change=0.0,
                lane_ids=list(arm.incoming),
            )
        )
    set_phase(mb.lights, phase)
    return mb.build()


def set_phase(lights: list[TrafficLight], phase: float) -> None:
    """Put signal groups ``phase`` seconds into the cycle: lights alternate between the two
    groups in list order, the second running half a cycle behind the first."""
    for i, light in enumerate(lights):
        light.state, remaining = _signal(phase - (i % 2) * CYCLE_S / 2)
        light.time_to_change = round(remaining, 2)


def phase_for(state: LightState, group: int, rng: np.random.Generator) -> float:
    """A cycle phase, uniform over the time in which signal group ``group`` shows ``state``."""
    start, end = {
        LightState.GREEN: (0.0, GREEN_S),
        LightState.YELLOW: (GREEN_S, GREEN_S + YELLOW_S),
        LightState.RED: (GREEN_S + YELLOW_S, CYCLE_S),
    }[state]
    return float(rng.uniform(start, end)) + (group % 2) * CYCLE_S / 2


def _signal(t: float) -> tuple[LightState, float]:
    """State of a signal group ``t`` seconds into its cycle, and the time left in that state.

    One group's cycle is green, yellow, then red while the crossing group has its green,
    yellow and both groups' all-red clearance; the crossing group runs half a cycle behind.
    """
    t %= CYCLE_S
    if t < GREEN_S:
        return LightState.GREEN, GREEN_S - t
    if t < GREEN_S + YELLOW_S:
        return LightState.YELLOW, GREEN_S + YELLOW_S - t
    return LightState.RED, CYCLE_S - t


def light_at(light: TrafficLight, t: float) -> tuple[LightState, float]:
    """State of ``light`` and the time left in it, ``t`` seconds from now (negative: ago)."""
    end_of_state = {LightState.GREEN: GREEN_S, LightState.YELLOW: GREEN_S + YELLOW_S, LightState.RED: CYCLE_S}
    return _signal(end_of_state[light.state] - light.time_to_change + t)


def t_junction(rng: np.random.Generator, p: LayoutParams) -> MapData:
    """A main road along x with a side road from the south controlled by a stop or yield sign."""
    mb = MapBuilder()
    lanes = min(p.lanes_per_direction, 2)
    arms = [Arm(angle=0.0, lanes=lanes), Arm(angle=math.pi, lanes=lanes), Arm(angle=-math.pi / 2, lanes=1)]
    junction = _junction(mb, arms, p.speed_limit_kmh * KMH, crosswalks=p.crosswalk, controlled={2})
    side = arms[2]
    kind = SignKind.STOP if rng.random() < 0.6 else SignKind.YIELD
    setback = STOP_LINE_SETBACK if p.crosswalk else 1.0
    pos = side.u * (junction + setback) + side.n * (LANE_WIDTH + 1.0)
    mb.signs.append(Sign(id="sg0", kind=kind, position=(*_pt(pos), 2.2), yaw=side.angle, lane_ids=list(side.incoming)))
    return mb.build()


def merge(rng: np.random.Generator, p: LayoutParams) -> MapData:
    """A two-way road along x whose eastbound side takes an on-ramp from the south."""
    mb = MapBuilder()
    n = p.lanes_per_direction
    limit = p.speed_limit_kmh * KMH
    m0, m1 = -10.0, 50.0
    a, mid, b = np.array([-ROAD_LENGTH, 0.0]), np.array([m1, 0.0]), np.array([ROAD_LENGTH, 0.0])
    fwd_a, bwd_a = mb.road("r0", a, mid, n, n, limit, sidewalks=(False, True))
    fwd_b, bwd_b = mb.road("r1", mid, b, n, n, limit, sidewalks=(False, True))
    for lanes_a, lanes_b in ((fwd_a, fwd_b), (bwd_b, bwd_a)):
        for la, lb in zip(lanes_a, lanes_b, strict=True):
            mb.connect(la, lb)
    y_acc = -(n + 0.5) * LANE_WIDTH
    y_right = -(n - 0.5) * LANE_WIDTH
    curve = bezier(np.array([-100.0, -45.0]), np.array([-45.0, y_acc]), np.array([m0, y_acc]), 12)
    taper = np.array([[m0 + 10 * i, y_acc] for i in range(1, 4)] + [[m1, y_right]])
    ramp = np.concatenate([curve, taper])
    mb.lanes.append(
        Lane(
            id="ramp",
            centerline=_pts(ramp),
            width=LANE_WIDTH,
            speed_limit=limit,
            right_neighbor=None,
            left_neighbor=fwd_a[-1],
        )
    )
    mb.connect("ramp", fwd_b[-1])
    ramp_area = shapely.LineString(ramp).buffer(LANE_WIDTH / 2, cap_style="flat")
    mb.areas.append(Area(kind=AreaKind.ROAD, polygon=_pts(np.asarray(ramp_area.exterior.coords)[:-1])))
    mb.markings.append(Marking(kind=MarkingKind.SOLID_WHITE, points=_pts(ramp - [0.0, LANE_WIDTH / 2])))
    return mb.build()


Layout = Callable[[np.random.Generator, LayoutParams], MapData]
LAYOUTS: dict[str, Layout] = {
    "straight": straight,
    "intersection": intersection,
    "t_junction": t_junction,
    "merge": merge,
}
