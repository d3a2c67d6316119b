"""Behaviour models and the joint rollout that gives every actor its past and future.

Vehicles follow their route polyline with the Intelligent Driver Model (IDM); their leader
is whatever box blocks the corridor ahead (a car, a crossing pedestrian, a cone), and a red
light or a stop sign is a virtual stationary leader at its stop line. Walkers and animals
keep their pace; static objects stay put. All actors advance together in small steps so
that they react to each other, vectorised over actors.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from enum import StrEnum

import numpy as np

from roadthink.scene.layouts import light_at
from roadthink.scene.paths import Path, poses, wrap_angle
from roadthink.scene.types import Category, LightState, TrafficLight

SIM_DT = 0.25
# metres of path sampled behind and ahead of an actor's start: its past and its future, and
# what it looks ahead at meanwhile (the past is simulated backwards, looking the other way)
WINDOW = (-110.0, 160.0)
LOOKAHEAD = 60.0  # corridor length checked for a leader, metres
LOOK_STEP = 1.5
GHOST_TIMES = np.array([1.0, 2.0])  # where crossing traffic is anticipated, seconds ahead
COS_CROSSING = np.cos(np.radians(30.0))  # heading difference beyond which traffic is crossing
LOOK = np.arange(0.0, LOOKAHEAD, LOOK_STEP)  # fine probes, from a mover's front
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
    """A driver's IDM parameters; ``batch`` stacks drivers into one with arrays as fields."""

    a_max: float | np.ndarray
    time_headway: float | np.ndarray = 1.3
    min_gap: float | np.ndarray = 2.0
    b_max: float | np.ndarray = B_MAX  # hardest braking


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


# With time reversed, speeding up backwards is slowing down forwards, so it is limited to
# comfortable braking; braking backwards keeps the full limit, as keeping histories apart
# matters more than a gentle start.
IDM_REVERSED = {category: replace(p, a_max=B_COMFORT) for category, p in IDM_BY_CATEGORY.items()}


def _idm(actor: Actor) -> IDMParams:
    """The actor's driver (a car's, for what is not a vehicle)."""
    drivers = IDM_REVERSED if actor.time_reversed else IDM_BY_CATEGORY
    return drivers.get(actor.category, drivers[Category.CAR])


def reversed_actor(actor: Actor) -> Actor:
    """The same road user with time running backwards: its path reversed, its present pace
    as its wish, no script and no stop lines (rules of the past are not replayed)."""
    path = actor.path.reversed
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


@dataclass(frozen=True)
class _Paths:
    """All actors' paths sampled every ``ds`` metres over WINDOW around where each starts,
    so that poses are looked up for all actors at once (index arithmetic instead of a search
    per actor). Arc length ``s`` on row ``r`` is ``(base[r] + sign[r] * s) / ds`` samples
    after ``first[r]``: ``with_reversed`` serves the same samples to ``reversed_actor``s."""

    ds: float
    size: int  # samples per path
    first: np.ndarray  # (R,) index of a row's first sample
    lengths: np.ndarray  # (R,) path lengths
    base: np.ndarray  # (R,)
    sign: np.ndarray  # (R,) 1.0, or -1.0 for a path run the other way
    turn: np.ndarray  # (R,) added to headings: 0.0, or pi for a path run the other way
    at: np.ndarray  # (3, N * size) x, y, heading per sample, paths end to end: one np.take per lookup
    step: np.ndarray  # (3, N * size) from each sample to the next (none from a path's last)
    v_curve2: np.ndarray  # (N * size,) squared speed each sample's bend allows

    @classmethod
    def of(cls, actors: list[Actor], ds: float = 1.0) -> _Paths:
        start = np.array([a.s for a in actors]) + WINDOW[0]
        grid = start[:, None] + np.arange(0.0, WINDOW[1] - WINDOW[0], ds)
        at = np.stack(poses([a.path for a in actors], grid))  # (3, N, M)
        step = np.zeros_like(at)
        step[..., :-1] = np.diff(at, axis=-1)
        curv = np.abs(np.gradient(at[2], ds, axis=1))
        return cls(
            ds=ds,
            size=grid.shape[1],
            first=np.arange(len(actors)) * grid.shape[1],
            lengths=np.array([a.path.length for a in actors]),
            base=-start,
            sign=np.ones(len(actors)),
            turn=np.zeros(len(actors)),
            at=at.reshape(3, -1),
            step=step.reshape(3, -1),
            v_curve2=(LATERAL_ACCEL / np.maximum(curv, 1e-4)).ravel(),
        )

    def with_reversed(self) -> _Paths:
        """These rows, then the same paths run the other way (arc length from the other
        end, headings turned around) for the ``reversed_actor``s: the past is simulated on
        the samples of the present."""
        return replace(
            self,
            first=np.tile(self.first, 2),
            lengths=np.tile(self.lengths, 2),
            base=np.concatenate([self.base, self.base + self.sign * self.lengths]),
            sign=np.concatenate([self.sign, -self.sign]),
            turn=np.concatenate([self.turn, self.turn + np.pi]),
        )

    def subset(self, rows: np.ndarray) -> _Paths:
        """Only rows ``rows``, in that order (sharing the samples)."""
        return replace(
            self,
            first=self.first[rows],
            lengths=self.lengths[rows],
            base=self.base[rows],
            sign=self.sign[rows],
            turn=self.turn[rows],
        )

    def pose(self, s: np.ndarray) -> np.ndarray:
        """x, y and heading (3, R) or (3, R, K) at arc lengths ``s`` (R,) or (R, K), a row of
        ``s`` per row."""
        shape = (-1,) + (1,) * (s.ndim - 1)
        f = (self.base.reshape(shape) + self.sign.reshape(shape) * s) / self.ds
        i = f.astype(int)  # f >= 0 within the window: truncation is floor
        np.minimum(np.maximum(i, 0, out=i), self.size - 2, out=i)
        flat = self.first.reshape(shape) + i
        out = np.take(self.at, flat, 1) + np.take(self.step, flat, 1) * (f - i)
        out[2] += self.turn.reshape(shape)
        return out

    def speed_cap(self, s: np.ndarray, look: np.ndarray, accel: float = B_COMFORT) -> np.ndarray:
        """Highest speed from which every bend ``look`` metres away (ahead; behind when
        ``look`` is negative) is reached or was left at ``accel`` within comfort. ``s`` is
        (..., R): an arc length per row."""
        f = ((self.base[:, None] + self.sign[:, None] * (s[..., None] + look)) / self.ds).astype(int)
        np.minimum(np.maximum(f, 0, out=f), self.size - 1, out=f)
        v_bend2 = np.take(self.v_curve2, f + self.first[:, None])
        return np.sqrt((v_bend2 + 2 * accel * np.abs(look)).min(-1))


@dataclass(frozen=True)
class _Obstacles:
    """What may block a mover: every actor's box, then each mover's ghosts, one per
    GHOST_TIMES, with the limits of every (mover, obstacle) pair worked out once, as sizes
    do not change during a rollout. Actors that do not look ahead never move, so have no
    ghosts."""

    movers: np.ndarray  # (Mv,) actors that look ahead
    offsets: np.ndarray  # (Mv, 1 + K) arc lengths ahead of a mover: 0 (where it is), then its probes
    owner: np.ndarray  # (O,) actor each obstacle belongs to: all N actors, then the ghosts
    ghost_of: np.ndarray  # (O - N,) mover row of each ghost
    real: np.ndarray  # (O,) a box, not a ghost
    along: np.ndarray  # (O,) half length of the zone a probe hits, along the obstacle
    across: np.ndarray  # (Mv, O) half width of that zone: both bodies and a margin
    reach: np.ndarray  # (Mv, O) farthest a probe in that zone is from the obstacle's centre
    candidate: np.ndarray  # (Mv, O) not the mover itself, and no ghosts for the careless

    @classmethod
    def of(
        cls, sizes: np.ndarray, sensing: np.ndarray, heeds: np.ndarray, walks: np.ndarray, timeline: np.ndarray
    ) -> _Obstacles:
        n = len(sizes)
        movers = np.flatnonzero(sensing)
        # a walker only waits for what stands in its next step (it follows no one): its
        # probes beyond that stay there, which keeps its corridor short and cheap to check
        look = np.where(walks[movers, None], np.minimum(LOOK, LOOK_STEP), LOOK)
        ghost_of = np.arange(len(GHOST_TIMES) * len(movers)) % len(movers)
        owner = np.concatenate([np.arange(n), movers[ghost_of]])
        real = np.arange(len(owner)) < n
        along = sizes[owner, 0] / 2 + 0.3
        across = (sizes[owner, 1][None] + sizes[movers, 1][:, None]) / 2 + 0.2
        return cls(
            movers=movers,
            offsets=np.concatenate([np.zeros((len(movers), 1)), sizes[movers, 0, None] / 2 + look], 1),
            owner=owner,
            ghost_of=ghost_of,
            real=real,
            along=along,
            across=across,
            reach=np.hypot(along, across),
            candidate=(owner[None] != movers[:, None])
            & (real[None] | heeds[movers][:, None])
            & (timeline[owner][None] == timeline[movers][:, None]),
        )


class Simulation:
    """Actors advancing together; index 0 is the ego."""

    def __init__(self, actors: list[Actor], paths: _Paths | None = None, timeline: np.ndarray | None = None):
        """``timeline`` (one per actor) keeps apart actors that live in different runs of
        time (the future and the past, simulated together): they do not see each other."""
        self.actors = actors
        self.paths = _Paths.of(actors) if paths is None else paths
        self.sizes = np.stack([a.size for a in actors])
        self.movers = np.array([a.motion is Motion.VEHICLE for a in actors])
        self.walkers = np.array([a.motion is Motion.WALKER for a in actors])
        # whoever moves looks ahead: drivers to follow, walkers so as not to walk into things
        sensing = self.movers | (self.walkers & np.array([a.speed > 0 for a in actors]))
        heeds = np.array([not a.careless for a in actors])
        timeline = np.zeros(len(actors)) if timeline is None else timeline
        self.obstacles = _Obstacles.of(self.sizes, sensing, heeds, self.walkers, timeline)
        self.tracks = self.paths.subset(self.obstacles.movers)
        self.start_pose = self.paths.pose(self.state()[0])
        self.idm = batch([_idm(a) for a in actors])
        self.controlled = [i for i, a in enumerate(actors) if a.stop is not None and self.movers[i]]
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
        ob = self.obstacles
        gap = np.full(len(s), np.inf)
        lead_v = np.zeros(len(s))
        track = self.tracks.pose(s[ob.movers, None] + ob.offsets)  # (3, Mv, 1 + K)
        probe = track[:, :, 1:]
        now = self.start_pose.copy()
        now[:, ob.movers] = track[:, :, 0]  # the others stay where they are
        direction = np.array([np.cos(now[2]), np.sin(now[2])])  # (2, N)
        heading = direction[:, ob.movers]
        ghosts = track[:2, None, :, 0] + GHOST_TIMES[:, None] * (v[ob.movers] * heading)[:, None]
        obstacle = np.concatenate([now[:2], ghosts.reshape(2, -1)], 1)  # (2, O)
        yields = (v[ob.movers] > 0.3) & (heading.T @ heading < COS_CROSSING)  # to moving, crossing traffic
        near = ob.candidate.copy()
        near[:, len(s) :] &= yields[:, ob.ghost_of]
        near &= _in_reach(probe[:2], obstacle, ob.reach)
        mi, oj = np.divmod(np.flatnonzero(near), near.shape[1])
        if len(mi) == 0:
            return gap, lead_v
        # the probes of each near pair in the frame of its obstacle
        rel = np.take(probe[:2], mi, 1) - np.take(obstacle, oj, 1)[..., None]  # (2, P, K)
        c, sn = np.take(direction, ob.owner[oj], 1)[..., None]
        along, across = rel[0] * c + rel[1] * sn, rel[1] * c - rel[0] * sn
        hit = (np.abs(along) < ob.along[oj, None]) & (np.abs(across) < ob.across[mi, oj, None])
        m, o, k = _first_hits(near.shape, mi, oj, hit)
        who = ob.owner[o]
        gap[ob.movers[m]] = LOOK[k]
        # a ghost is where something will be: stop short of it
        moving_v = np.maximum(v[who] * np.cos(now[2, who] - probe[2, m, k]), 0.0)
        lead_v[ob.movers[m]] = np.where(ob.real[o], moving_v, 0.0)
        return gap, lead_v

    def stop_gaps(self, s: np.ndarray, v: np.ndarray, t: float, released: np.ndarray) -> np.ndarray:
        """Distance to a stop line each vehicle must stop at now (inf where it may go)."""
        gaps = np.full(len(s), np.inf)
        for i in self.controlled:
            actor = self.actors[i]
            stop = actor.stop
            if released[i]:
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
        scale = np.linspace(1.0, 0.0, 21)[:, None]
        free = [i for i, a in enumerate(self.actors) if self.movers[i] and a.forced_accel is None]
        for _ in range(passes):
            _, v = self.state()
            gap, lead_v, _ = self.leaders(s, v, 0.0, np.zeros(len(s), bool))
            candidates = scale * np.minimum(np.minimum(v, v_behind), v0)  # (21, N), fastest first
            ok = idm_accel(candidates, v0, gap, lead_v, self.idm) >= -B_COMFORT
            speed = np.where(ok.any(0), candidates[ok.argmax(0), np.arange(len(s))], 0.0)
            for i in free:
                self.actors[i].speed = float(speed[i])

    def run(self, horizon: float, record_dt: float, past: float) -> Rollout:
        """Poses every ``record_dt`` from ``past`` seconds ago to ``horizon`` seconds ahead.

        The future is simulated forward. The past is simulated too, backwards in time:
        every actor runs its path in reverse at its present pace, with the same rules, so
        the histories respect each other (nobody drove through the car ahead) and the bends.
        Both are stepped together, for the longer of the two spans (they do not see each
        other), to share the work of a step.
        """
        n = len(self.actors)
        both = Simulation(
            self.actors + [reversed_actor(a) for a in self.actors], self.paths.with_reversed(), np.repeat([0, 1], n)
        )
        s, v, accel0 = both._advance(max(horizon, past), record_dt)
        ahead, behind = round(horizon / record_dt), round(past / record_dt)
        past_s = (self.paths.lengths[:, None] - s[n:, 1 : behind + 1])[:, ::-1]
        past_v = v[n:, 1 : behind + 1][:, ::-1]
        all_s = np.concatenate([past_s, s[:n, : ahead + 1]], 1)
        x, y, heading = self.paths.pose(all_s)
        times = np.arange(-behind, ahead + 1) * record_dt
        return Rollout(times, x, y, wrap_angle(heading), np.concatenate([past_v, v[:n, : ahead + 1]], 1), accel0[:n])

    def _advance(self, horizon: float, record_dt: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Arc lengths and speeds (N, T + 1) every ``record_dt`` from now to ``horizon``,
        and each actor's acceleration at t=0."""
        n = len(self.actors)
        s, v = self.state()
        pace = v.copy()
        forced = np.array([np.nan if a.forced_accel is None else a.forced_accel for a in self.actors])
        scripted = ~np.isnan(forced)
        desired = np.array([a.desired_speed for a in self.actors])
        released = np.zeros(n, bool)
        every = round(record_dt / SIM_DT)
        rec_s, rec_v = [s], [v]  # s and v are replaced, never changed in place
        accel0 = np.zeros(n)
        for step in range(round(horizon / SIM_DT)):
            gap, lead_v, at_stop = self.leaders(s, v, step * SIM_DT, released)
            # IDM brakes gently above v0; a bend ahead is a hard limit, so track its cap
            cap, cap_next = self.paths.speed_cap(np.array([s, s + v * SIM_DT]), AHEAD)
            v0 = np.minimum(desired, cap)
            a = idm_accel(v, v0, gap, lead_v, self.idm)
            a = np.where(self.movers, np.maximum(np.minimum(a, (cap_next - v) / SIM_DT), -self.idm.b_max), 0.0)
            # a stop sign is passed once the vehicle has (nearly) stopped at it
            released |= self.sign_stop & at_stop & (v < 0.5) & (gap < 4.0)
            a = np.where(scripted, forced, a)
            v_new = np.maximum(v + a * SIM_DT, 0.0)
            # walkers keep their pace, but wait while something stands right in their way
            v_new = np.where(self.walkers, np.where(gap <= LOOK_STEP, 0.0, pace), v_new)
            if step == 0:  # what the actor actually does: a car at rest brakes at 0, not -8
                accel0 = np.where(self.walkers, 0.0, (v_new - v) / SIM_DT)
            s = s + (v + v_new) / 2 * SIM_DT
            v = v_new
            if (step + 1) % every == 0:
                rec_s.append(s)
                rec_v.append(v)
        return np.stack(rec_s, 1), np.stack(rec_v, 1), accel0


def _in_reach(probe_xy: np.ndarray, obstacle: np.ndarray, reach: np.ndarray) -> np.ndarray:
    """(Mv, O) pairs whose obstacle (2, O) lies within ``reach`` of the bounding box of the
    mover's probes (2, Mv, K): a cheap, conservative filter, so that only these pairs are
    probed one by one."""
    lo, hi = probe_xy.min(-1), probe_xy.max(-1)
    outside = np.abs(obstacle[:, None] - ((lo + hi) / 2)[..., None]) - ((hi - lo) / 2)[..., None]  # (2, Mv, O)
    return (outside < reach).all(0)


def _first_hits(
    shape: tuple[int, int], mi: np.ndarray, oj: np.ndarray, hit: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per mover with a hit, its nearest blocker: (mover row, obstacle column, probe).

    ``hit`` (P, K) holds the probes of pairs (``mi``, ``oj``) in a (movers, obstacles) grid
    of ``shape``; among blockers at the same probe the lowest column (a real box before a
    ghost) wins."""
    none = hit.shape[1]
    probe = np.full(shape, none)
    probe[mi, oj] = np.where(hit.any(1), hit.argmax(1), none)
    o, k = probe.argmin(1), probe.min(1)
    m = np.flatnonzero(k < none)
    return m, o[m], k[m]


def batch(params: list[IDMParams]) -> IDMParams:
    """One IDMParams holding an array per field, one entry per driver: IDM for all at once."""
    return IDMParams(*(np.array([getattr(p, f.name) for p in params]) for f in fields(IDMParams)))


def idm_accel(v: np.ndarray, v0: np.ndarray, gap: np.ndarray, lead_v: np.ndarray, p: IDMParams) -> np.ndarray:
    """IDM acceleration; ``p`` from ``batch``, its arrays matching the last axis of ``v``."""
    desired = p.min_gap + v * p.time_headway + v * (v - lead_v) / (2 * np.sqrt(p.a_max * B_COMFORT))
    free = 1 - (v / np.maximum(v0, 0.1)) ** 4
    interaction = (np.maximum(desired, 0.0) / np.maximum(gap, 0.1)) ** 2
    return np.maximum(np.minimum(p.a_max * (free - interaction), p.a_max), -p.b_max)
