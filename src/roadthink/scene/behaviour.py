"""Behaviour models and the joint rollout that gives every actor its past and future.

Vehicles follow their route polyline with the Intelligent Driver Model (IDM); their leader
is whatever box blocks the corridor ahead (a car, a crossing pedestrian, a cone), and a red
light or a stop sign is a virtual stationary leader at its stop line. Walkers and animals
keep their pace; static objects stay put. All actors advance together in small steps so
that they react to each other, vectorised over actors.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum

import numpy as np

from roadthink.scene.layouts import light_at
from roadthink.scene.paths import Path, wrap_angle
from roadthink.scene.types import Category, LightState, TrafficLight

SIM_DT = 0.25
PAD_BEHIND = 80.0  # metres of path kept behind an actor's start, for its past
LOOKAHEAD = 60.0  # corridor length checked for a leader, metres
LOOK_STEP = 1.5
GHOST_TIMES = np.array([1.0, 2.0])  # where crossing traffic is anticipated, seconds ahead
CROSSING_ANGLE = np.radians(30.0)  # heading difference beyond which traffic is crossing
LATERAL_ACCEL = 2.5  # comfortable cornering, m/s^2
B_COMFORT = 3.0
B_MAX = 8.0
ACCEL_BACK = 3.0  # fastest speed-up out of a bend behind: caps how fast one may be just after it
AHEAD = np.arange(0.0, LOOKAHEAD, 2.0)  # where bends are looked for
BEHIND = -np.arange(0.0, 40.0, 2.0)


class Motion(StrEnum):
    VEHICLE = "vehicle"  # IDM along a route
    WALKER = "walker"  # constant pace along a path
    STATIC = "static"


@dataclass(frozen=True)
class IDMParams:
    a_max: float
    time_headway: float = 1.3
    min_gap: float = 2.0
    b_max: float = B_MAX  # hardest braking


IDM_BY_CATEGORY: dict[Category, IDMParams] = {
    Category.CAR: IDMParams(2.0),
    Category.TRUCK: IDMParams(1.2, 1.6),
    Category.BUS: IDMParams(1.2, 1.6),
    Category.MOTORCYCLE: IDMParams(2.8, 1.1),
    Category.BICYCLE: IDMParams(1.0, 1.0, 1.5),
}


@dataclass
class StopControl:
    """A stop line on an actor's route, at arc length ``s``, with what it obeys."""

    s: float
    light: TrafficLight | None  # None: a stop sign


@dataclass
class Actor:
    """Simulation state of one road user; index 0 of a rollout is the ego."""

    category: Category
    size: np.ndarray  # length, width, height
    path: Path
    s: float
    speed: float
    motion: Motion
    desired_speed: float = 0.0
    forced_accel: float | None = None  # scripted, e.g. a lead car braking hard
    violator: bool = False
    careless: bool = False  # does not anticipate crossing traffic (an animal, a distracted walker)
    time_reversed: bool = False  # simulated backwards to make up its past
    stop: StopControl | None = None
    meta: dict = field(default_factory=dict)  # generator bookkeeping (lane, intent, colour)


def _idm(actor: Actor) -> IDMParams:
    """The actor's driver. With time reversed, speeding up backwards is slowing down
    forwards, so it is limited to comfortable braking; braking backwards keeps the full
    limit, as keeping histories apart matters more than a gentle start."""
    p = IDM_BY_CATEGORY.get(actor.category, IDM_BY_CATEGORY[Category.CAR])
    return replace(p, a_max=B_COMFORT) if actor.time_reversed else p


def reversed_actor(actor: Actor) -> Actor:
    """The same road user with time running backwards: its path reversed, its present pace
    as its wish, no script and no stop lines (rules of the past are not replayed)."""
    path = Path.from_points(actor.path.points[::-1])
    return replace(
        actor,
        path=path,
        s=path.length - actor.s,
        desired_speed=actor.speed,
        forced_accel=None,
        stop=None,
        time_reversed=True,
    )


@dataclass(frozen=True)
class Rollout:
    """Poses of every actor at ``times`` (N, T) in the world frame, plus accel at t=0."""

    times: np.ndarray
    x: np.ndarray
    y: np.ndarray
    yaw: np.ndarray
    speed: np.ndarray
    accel0: np.ndarray


class _Paths:
    """All actors' paths resampled on one uniform grid so that poses are looked up for all
    actors at once (index arithmetic instead of a search per actor)."""

    def __init__(self, actors: list[Actor], ds: float = 1.0, ahead: float = 100.0):
        self.ds = ds
        self.offset = PAD_BEHIND
        grid = np.arange(-PAD_BEHIND, max(a.s for a in actors) + ahead + LOOKAHEAD, ds)
        xs, ys, hs = zip(*(a.path.pose(grid) for a in actors), strict=True)
        self.xy = np.stack([np.stack(xs), np.stack(ys)], -1)  # (N, M, 2)
        self.heading = np.unwrap(np.stack(hs), axis=1)
        self._x, self._y, self._h = (a.ravel() for a in (self.xy[..., 0], self.xy[..., 1], self.heading))
        self._dx, self._dy, self._dh = (
            np.diff(a, axis=1, append=a[:, -1:]).ravel() for a in (self.xy[..., 0], self.xy[..., 1], self.heading)
        )
        curv = np.abs(np.gradient(self.heading, ds, axis=1))
        self.v_curve = np.sqrt(LATERAL_ACCEL / np.maximum(curv, 1e-4))  # (N, M)

    def pose(self, s: np.ndarray, rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Positions (..., 2) and headings at arc lengths ``s`` (R,) or (R, K) of actors
        ``rows`` (default: all actors, in order)."""
        rows = np.arange(len(self.xy)) if rows is None else rows
        m = self.xy.shape[1]
        f = (s + self.offset) / self.ds
        i = np.minimum(np.maximum(f.astype(int), 0), m - 2)  # f >= 0 in practice: truncation is floor
        frac = f - i
        flat = rows.reshape((-1,) + (1,) * (s.ndim - 1)) * m + i  # flat indices: np.take is fast
        x = np.take(self._x, flat) + np.take(self._dx, flat) * frac
        y = np.take(self._y, flat) + np.take(self._dy, flat) * frac
        heading = np.take(self._h, flat) + np.take(self._dh, flat) * frac
        return np.stack([x, y], -1), heading

    def speed_cap(self, s: np.ndarray, look: np.ndarray, accel: float = B_COMFORT) -> np.ndarray:
        """Highest speed from which every bend ``look`` metres away (ahead; behind when
        ``look`` is negative) is reached or was left at ``accel`` within comfort."""
        f = np.minimum(np.maximum(((s[:, None] + look[None]) + self.offset) / self.ds, 0), self.xy.shape[1] - 1).astype(
            int
        )
        v_bend = self.v_curve[np.arange(len(s))[:, None], f]
        return np.sqrt(v_bend**2 + 2 * accel * np.abs(look[None])).min(1)


class Simulation:
    """Actors advancing together; index 0 is the ego."""

    def __init__(self, actors: list[Actor]):
        self.actors = actors
        self.paths = _Paths(actors)
        self.sizes = np.stack([a.size for a in actors])
        self.movers = np.array([a.motion is Motion.VEHICLE for a in actors])
        self.walkers = np.array([a.motion is Motion.WALKER for a in actors])
        # whoever moves looks ahead: drivers to follow, walkers so as not to walk into things
        self.sensing = self.movers | (self.walkers & np.array([a.speed > 0 for a in actors]))
        self.heeds = np.array([not a.careless for a in actors])
        self.params = [_idm(a) for a in actors]
        self.sign_stop = np.array([a.stop is not None and a.stop.light is None for a in actors])

    def state(self) -> tuple[np.ndarray, np.ndarray]:
        return np.array([a.s for a in self.actors], float), np.array([a.speed for a in self.actors], float)

    def corridor(self, s: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Free distance ahead of each mover and the speed of what blocks it (inf, 0 if free).

        A box blocks a mover when it overlaps the strip the mover's body sweeps along its
        path. Crossing traffic is also seen where it will be in 1 and 2 s (a "ghost" box at
        its present speed and heading), so that drivers and walkers yield instead of meeting
        it in the middle; careless actors (a pedestrian stepping out) ignore the ghosts.
        """
        n = len(s)
        xy, heading = self.paths.pose(s)
        gap = np.full(n, np.inf)
        lead_v = np.zeros(n)
        movers = np.flatnonzero(self.sensing)
        moving = np.flatnonzero(v > 0.3)
        owner = np.concatenate([np.arange(n), np.repeat(moving, len(GHOST_TIMES))])
        tau = np.concatenate([np.zeros(n), np.tile(GHOST_TIMES, len(moving))])
        direction = np.stack([np.cos(heading), np.sin(heading)], -1)
        obstacle = xy[owner] + (v[owner] * tau)[:, None] * direction[owner]
        # coarse pass: obstacles within reach of a probe every 6 m along each mover's path
        coarse_s = s[movers, None] + np.arange(0.0, LOOKAHEAD + 6.0, 6.0)[None]
        coarse, _ = self.paths.pose(coarse_s, movers)
        reach = 3.5 + np.hypot(self.sizes[owner, 0], self.sizes[owner, 1]) / 2
        dx = coarse[..., 0, None] - obstacle[:, 0]
        dy = coarse[..., 1, None] - obstacle[:, 1]
        near = (dx * dx + dy * dy).min(1) < reach**2
        near &= owner[None] != movers[:, None]
        crossing = np.abs(wrap_angle(heading[owner][None] - heading[movers][:, None])) > CROSSING_ANGLE
        near &= (tau[None] == 0) | (crossing & self.heeds[movers][:, None])
        mi, oj = np.nonzero(near)
        pi, pj = movers[mi], owner[oj]
        if len(pi) == 0:
            return gap, lead_v
        look = np.arange(0.0, LOOKAHEAD, LOOK_STEP)
        probe_s = s[pi, None] + self.sizes[pi, 0, None] / 2 + look[None]  # (P, K)
        probe_xy, probe_heading = self.paths.pose(probe_s, pi)
        rel = probe_xy - obstacle[oj, None, :]
        c, sn = direction[pj, 0, None], direction[pj, 1, None]
        along = rel[..., 0] * c + rel[..., 1] * sn
        across = -rel[..., 0] * sn + rel[..., 1] * c
        hit = (np.abs(along) < self.sizes[pj, 0, None] / 2 + 0.3) & (
            np.abs(across) < (self.sizes[pj, 1] + self.sizes[pi, 1])[:, None] / 2 + 0.2
        )
        has = hit.any(1)
        pi, pj, oj, k = pi[has], pj[has], oj[has], hit[has].argmax(1)
        order = np.lexsort((k, pi))  # per mover, its nearest blocker first
        pi, pj, oj, k = pi[order], pj[order], oj[order], k[order]
        first = np.concatenate([[True], pi[1:] != pi[:-1]]) if len(pi) else np.zeros(0, bool)
        pi, pj, oj, k = pi[first], pj[first], oj[first], k[first]
        gap[pi] = look[k]
        probe_h = probe_heading[has][order][first, k] if len(pi) else np.zeros(0)
        real = tau[oj] == 0  # a ghost is where something will be: stop short of it
        lead_v[pi] = np.where(real, np.maximum(v[pj] * np.cos(heading[pj] - probe_h), 0.0), 0.0)
        return gap, lead_v

    def stop_gaps(self, s: np.ndarray, v: np.ndarray, t: float, released: np.ndarray) -> np.ndarray:
        """Distance to a stop line each vehicle must stop at now (inf where it may go)."""
        gaps = np.full(len(s), np.inf)
        for i, actor in enumerate(self.actors):
            stop = actor.stop
            if stop is None or not self.movers[i] or released[i]:
                continue
            gap = stop.s - (s[i] + actor.size[0] / 2)
            if gap < -0.5:
                continue
            if stop.light is None:
                must = True
            elif actor.violator:
                must = False
            else:
                state, _ = light_at(stop.light, t)
                must = state is LightState.RED or (state is LightState.YELLOW and gap > v[i] ** 2 / (2 * B_COMFORT))
            if must:
                gaps[i] = max(gap, 0.0)
        return gaps

    def leaders(
        self, s: np.ndarray, v: np.ndarray, t: float, released: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Gap and leader speed for IDM, a stop line being a leader standing still."""
        gap, lead_v = self.corridor(s, v)
        stop_gap = self.stop_gaps(s, v, t, released)
        use_stop = stop_gap < gap
        return np.where(use_stop, stop_gap, gap), np.where(use_stop, 0.0, lead_v), use_stop

    def settle(self, passes: int = 2) -> None:
        """Lower starting speeds until no vehicle needs more than comfortable braking at
        t=0 and none is faster than it could have left a bend behind it: nobody starts the
        scene already committed to an emergency stop, or just out of an impossible turn.
        Repeated because slowing one car changes what the car behind it sees."""
        s, _ = self.state()
        desired = np.array([a.desired_speed for a in self.actors])
        v0 = np.minimum(desired, self.paths.speed_cap(s, AHEAD))
        v_behind = self.paths.speed_cap(s, BEHIND, accel=ACCEL_BACK / 2)
        scale = np.linspace(1.0, 0.0, 21)
        for _ in range(passes):
            _, v = self.state()
            gap, lead_v, _ = self.leaders(s, v, 0.0, np.zeros(len(s), bool))
            for i, actor in enumerate(self.actors):
                if not self.movers[i] or actor.forced_accel is not None:
                    continue
                candidates = min(v[i], v_behind[i], v0[i]) * scale
                n = len(candidates)
                accel = idm_accel(
                    candidates, np.full(n, v0[i]), np.full(n, gap[i]), np.full(n, lead_v[i]), [self.params[i]] * n
                )
                ok = np.flatnonzero(accel >= -B_COMFORT)
                actor.speed = float(candidates[ok[0]] if len(ok) else 0.0)

    def run(self, horizon: float, record_dt: float, past: float) -> Rollout:
        """Poses every ``record_dt`` from ``past`` seconds ago to ``horizon`` seconds ahead.

        The future is simulated forward. The past is simulated too, backwards in time:
        every actor runs its path in reverse at its present pace, with the same rules, so
        the histories respect each other (nobody drove through the car ahead) and the bends.
        """
        future_s, future_v, accel0 = self._advance(horizon, record_dt)
        back_s, back_v, _ = Simulation([reversed_actor(a) for a in self.actors])._advance(past, record_dt)
        lengths = np.array([a.path.length for a in self.actors])
        past_s = (lengths[:, None] - back_s[:, 1:])[:, ::-1]
        past_v = back_v[:, 1:][:, ::-1]
        all_s = np.concatenate([past_s, future_s], 1)
        xy, heading = self.paths.pose(all_s)
        times = np.arange(-past_s.shape[1], future_s.shape[1]) * record_dt
        return Rollout(
            times, xy[..., 0], xy[..., 1], wrap_angle(heading), np.concatenate([past_v, future_v], 1), accel0
        )

    def _advance(self, horizon: float, record_dt: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Arc lengths and speeds (N, T + 1) every ``record_dt`` from now to ``horizon``,
        and each actor's acceleration at t=0."""
        n = len(self.actors)
        s, v = self.state()
        pace = v.copy()
        forced = np.array([np.nan if a.forced_accel is None else a.forced_accel for a in self.actors])
        desired = np.array([a.desired_speed for a in self.actors])
        released = np.zeros(n, bool)
        every = round(record_dt / SIM_DT)
        rec_s, rec_v = [s.copy()], [v.copy()]
        accel0 = np.zeros(n)
        for step in range(round(horizon / SIM_DT)):
            gap, lead_v, at_stop = self.leaders(s, v, step * SIM_DT, released)
            v0 = np.minimum(desired, self.paths.speed_cap(s, AHEAD))
            a = idm_accel(v, v0, gap, lead_v, self.params)
            # IDM brakes gently above v0; a bend ahead is a hard limit, so track its cap
            cap_next = self.paths.speed_cap(s + v * SIM_DT, AHEAD)
            b_max = np.array([q.b_max for q in self.params])
            a = np.where(self.movers, np.maximum(np.minimum(a, (cap_next - v) / SIM_DT), -b_max), 0.0)
            # a stop sign is passed once the vehicle has (nearly) stopped at it
            released |= self.sign_stop & at_stop & (v < 0.5) & (gap < 4.0)
            a = np.where(np.isnan(forced), a, forced)
            v_new = np.maximum(v + a * SIM_DT, 0.0)
            # walkers keep their pace, but wait while something stands right in their way
            v_new = np.where(self.walkers, np.where(gap <= LOOK_STEP, 0.0, pace), v_new)
            if step == 0:  # what the actor actually does: a car at rest brakes at 0, not -8
                accel0 = np.where(self.walkers, 0.0, (v_new - v) / SIM_DT)
            s = s + (v + v_new) / 2 * SIM_DT
            v = v_new
            if (step + 1) % every == 0:
                rec_s.append(s.copy())
                rec_v.append(v.copy())
        return np.stack(rec_s, 1), np.stack(rec_v, 1), accel0


def idm_accel(v: np.ndarray, v0: np.ndarray, gap: np.ndarray, lead_v: np.ndarray, p: list[IDMParams]) -> np.ndarray:
    a = np.array([q.a_max for q in p])
    b_max = np.array([q.b_max for q in p])
    headway = np.array([q.time_headway for q in p])
    min_gap = np.array([q.min_gap for q in p])
    desired = min_gap + v * headway + v * (v - lead_v) / (2 * np.sqrt(a * B_COMFORT))
    free = 1 - (v / np.maximum(v0, 0.1)) ** 4
    interaction = (np.maximum(desired, 0.0) / np.maximum(gap, 0.1)) ** 2
    return np.maximum(np.minimum(a * (free - interaction), a), -b_max)
