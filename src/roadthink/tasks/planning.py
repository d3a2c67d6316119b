"""Planning: the ego's next manoeuvre as a meta-action, its 3 s trajectory, and whether a
proposed manoeuvre would be safe and legal."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import shapely

from roadthink.scene.behaviour import B_COMFORT  # at a yellow light, a driver who can stop this gently must
from roadthink.scene.types import Lane, LightState, MarkingKind, Scene, SignKind, Turn
from roadthink.tasks.facts import checker, per_batch
from roadthink.tasks.lanes import rectangles
from roadthink.tasks.registry import make_sample, task
from roadthink.tasks.sample import AnswerType, Fact, Sample, Step
from roadthink.tasks.views import HISTORY, SHOWN, distance

FAMILY = "planning"
SPEEDS = ("accelerate", "keep", "decelerate", "stop")
DIRECTIONS = ("straight", "left", "right")
META_ACTIONS = tuple(f"{s}, {d}" for s in SPEEDS for d in DIRECTIONS if s != "stop" or d == "straight")


def speed_action(v_now: float, v_end: float) -> str | None:
    """Speed part of the plan over 3 s (None near a threshold, where it is a matter of taste)."""
    if v_end < 0.3:
        return "stop"
    change = v_end - v_now
    if abs(abs(change) - 1.0) < 0.3:
        return None
    return "accelerate" if change > 1.0 else "decelerate" if change < -1.0 else "keep"


def direction_action(end_yaw: float, end_lateral: float) -> str | None:
    """Direction part: a turn or lane change to the left or right, or straight on."""
    if end_yaw > 0.35 or (abs(end_yaw) < 0.15 and end_lateral > 2.0):
        return "left"
    if end_yaw < -0.35 or (abs(end_yaw) < 0.15 and end_lateral < -2.0):
        return "right"
    if abs(end_yaw) < 0.15 and abs(end_lateral) < 1.0:
        return "straight"
    return None


def meta_action_of(scene: Scene) -> str | None:
    end = scene.ego.future[-1]
    speed = speed_action(scene.ego.speed, end.speed)
    direction = direction_action(end.yaw, end.center[1])
    if speed is None or direction is None:
        return None
    return f"{speed}, {'straight' if speed == 'stop' else direction}"


@checker("meta_action")
def _meta_action(scene: Scene, f: dict) -> bool:
    return meta_action_of(scene) == f["value"]


@task("meta_action", FAMILY, AnswerType.META_ACTION, buckets=META_ACTIONS)
def meta_action(scene: Scene, rng: np.random.Generator) -> Iterator[Sample]:
    """The ego's next 3 s as speed (accelerate/keep/decelerate/stop) and direction."""
    answer = meta_action_of(scene)
    if answer is None:
        return
    end = scene.ego.future[-1]
    steps = [
        Step(
            text=f"The ego drives at {scene.ego.speed:.1f} m/s; in 3 s the plan reaches {end.speed:.1f} m/s.",
            facts=[
                Fact(type="ego_speed", t=0.0, value=scene.ego.speed),
                Fact(type="ego_speed", t=3.0, value=end.speed),
            ],
        ),
        Step(
            text=f"It ends {end.center[0]:.0f} m ahead, {end.center[1]:+.1f} m to the side, "
            f"heading {np.degrees(end.yaw):+.0f} deg.",
            facts=[Fact(type="ego_position", t=3.0, value=[end.center[0], end.center[1]])],
        ),
        Step(text=f"So: {answer}.", facts=[Fact(type="meta_action", value=answer)]),
    ]
    question = (
        "What should the ego vehicle do over the next 3 seconds? Answer with a speed action "
        "(accelerate, keep, decelerate or stop) and a direction (straight, left or right), e.g. 'keep, straight'."
    )
    yield make_sample(scene, FAMILY, "meta_action", "plan", answer, question, answer, AnswerType.META_ACTION, steps)


# --- waypoints -------------------------------------------------------------------------

MANOEUVRES = ("accelerate", "keep", "decelerate", "turn or lane change")


def manoeuvre(scene: Scene) -> str:
    """A coarse class of the reference plan, for balance only (the answer is the trajectory,
    so no plan is too close to a threshold to ask about): turns and lane changes together,
    as each alone is rare."""
    end = scene.ego.future[-1]
    if abs(end.yaw) > 0.35 or abs(end.center[1]) > 2.0:
        return "turn or lane change"
    change = end.speed - scene.ego.speed
    return "accelerate" if change > 1.0 else "decelerate" if change < -1.0 else "keep"


def waypoints_of(scene: Scene) -> list[list[float]]:
    """The reference plan: ego-frame centres every 0.5 s over 3 s, to 0.1 m."""
    return [[round(p.center[0], 1), round(p.center[1], 1)] for p in scene.ego.future]


@task("waypoints", FAMILY, AnswerType.WAYPOINTS, buckets=MANOEUVRES)
def waypoints(scene: Scene, rng: np.random.Generator) -> Iterator[Sample]:
    """The ego's planned positions every 0.5 s over the next 3 s, in its own frame."""
    answer = waypoints_of(scene)
    future, kind = scene.ego.future, manoeuvre(scene)
    halves = [future[:3], future[3:]]
    steps = [
        Step(
            text=f"The ego drives at {scene.ego.speed:.1f} m/s; over 3 s the plan ({kind}) ends at "
            f"{future[-1].speed:.1f} m/s.",
            facts=[
                Fact(type="ego_speed", t=0.0, value=scene.ego.speed),
                Fact(type="ego_speed", t=3.0, value=future[-1].speed),
            ],
        ),
        *[
            Step(
                text="; ".join(f"at {p.t:g} s it is {p.center[0]:.1f} m ahead, {p.center[1]:+.1f} m left" for p in half)
                + ".",
                facts=[Fact(type="ego_position", t=p.t, value=[p.center[0], p.center[1]]) for p in half],
            )
            for half in halves
        ],
    ]
    # one wording for every scene: a question that stated the ego's speed would let a model
    # that never looks extrapolate it (the ego-status shortcut of open-loop planning)
    question = (
        f"{SHOWN} Plan the ego vehicle's next 3 seconds: give its positions at 0.5, 1.0, 1.5, 2.0, 2.5 and "
        "3.0 s from now in its own frame (x metres forward, y metres to the left, origin at its centre now) "
        "as a JSON list of [x, y] pairs."
    )
    yield make_sample(
        scene, FAMILY, "waypoints", "plan", kind, question, answer, AnswerType.WAYPOINTS, steps, views=HISTORY
    )


# --- action safety -----------------------------------------------------------------------

HORIZON = 3.0  # seconds a proposed manoeuvre is rolled forward
DT = 0.1  # seconds between the poses compared
HEADWAY = 0.5  # seconds of travel kept free in front of everything that moves
CLEAR = 0.5  # metres: a plan this clear of everything is safe, one that touches is not; between is not asked
ACCEL = 1.5  # m/s^2 when speeding up, up to the speed limit
MIN_SPEED = 2.0  # m/s: slower, keeping the speed or changing lanes is no manoeuvre to ask about
CENTRED = 0.5  # metres: an ego farther from its lane centre is between lanes; nothing is asked
YELLOW_MARGIN = 2.0  # metres either side of the comfortable stopping distance at a yellow light: not asked
LIGHT_MARGIN = 1.0  # seconds: a light changing this soon after the ego would cross is not asked
SPEED_TOLERANCE = 0.5  # m/s over the limit that still counts as keeping it
ROUTE_SLACK = 5.0  # metres of route needed beyond the rolled-out plan


@dataclass(frozen=True)
class Proposal:
    """A manoeuvre: how the ego's speed changes, and where it steers."""

    key: str
    text: str  # as the question words it
    accel: float  # m/s^2 up to the speed limit; 0: keep the current speed
    side: str | None = None  # change lanes to "left" or "right"
    through: bool = False  # straight through the junction ahead, instead of staying before it


PROPOSALS = {
    p.key: p
    for p in (
        Proposal("keep", "keep driving in its lane at its current speed", 0.0),
        Proposal("accelerate", "speed up in its lane towards the speed limit", ACCEL),
        Proposal("left", "change lanes to the left, keeping its speed", 0.0, side="left"),
        Proposal("right", "change lanes to the right, keeping its speed", 0.0, side="right"),
        Proposal("junction", "drive straight through the junction ahead without stopping", ACCEL, through=True),
    )
}


@dataclass(frozen=True)
class Verdict:
    """Whether a proposal is legal and safe (None: too close to call), and why."""

    legal: bool | None
    safe: bool | None
    rule: str  # what decides legality, in words
    speeding: bool = False  # the ego is already over the limit
    light: str | None = None  # the light the plan passes, if any
    stop_sign: bool = False  # the plan passes a stop sign's line
    target: str | None = None  # the neighbour lane a lane change goes to
    marking: MarkingKind | None = None  # the line a lane change crosses
    clearance: float = float("inf")  # metres to the nearest road user over the horizon, headway included
    closest: str | None = None  # that road user

    @property
    def answer(self) -> str | None:
        if self.legal is False or self.safe is False:
            return "no"
        return "yes" if self.legal and self.safe else None


def _route(scene: Scene, lane: Lane, through: bool) -> list[Lane]:
    """The lanes ahead, straight on at a junction: up to the junction, or through it."""
    chain = [lane]
    while chain[-1].successors and len(chain) < 4:
        after = [scene.map.lane(i) for i in chain[-1].successors]
        after = [a for a in after if a.turn is Turn.STRAIGHT] if len(after) > 1 else after
        if not after or (after[0].in_junction and not through):
            break
        chain.append(after[0])
    return chain


def _line(scene: Scene, chain: list[Lane]) -> shapely.LineString:
    points = np.concatenate([np.asarray(lane.centerline) for lane in chain])
    return shapely.LineString(scene.world_to_ego(points))


def _swept(x: np.ndarray, y: np.ndarray, yaw: np.ndarray, speed: np.ndarray, size: tuple) -> np.ndarray:
    """Footprints stretched forward by HEADWAY of travel: the room a mover needs."""
    ahead = HEADWAY * speed
    return rectangles(x + np.cos(yaw) * ahead / 2, y + np.sin(yaw) * ahead / 2, yaw, size[0] + ahead, size[1])


def _agent_tracks(scene: Scene, times: np.ndarray) -> tuple[list[str], np.ndarray]:
    """Ids and (N, T, 4, 2) swept footprints of every road user the ego must keep clear of:
    all but those behind it in its own lane, which are to keep clear of the ego."""
    ids, shapes = [], []
    for agent in scene.agents:
        if agent.lane_id == scene.ego.lane_id and agent.box.center[0] < 0:
            continue
        track = [(0.0, *agent.box.center[:2], agent.box.yaw, agent.speed)]
        track += [(p.t, *p.center[:2], p.yaw, p.speed) for p in agent.future]
        t, x, y, yaw, v = np.array(track).T
        at = [np.interp(times, t, q) for q in (x, y, np.unwrap(yaw), v)]
        ids.append(agent.id)
        shapes.append(_swept(*at, agent.box.size))
    return ids, np.array(shapes).reshape(-1, len(times), 4, 2)


def crossed_marking(scene: Scene, own: np.ndarray, target: np.ndarray) -> MarkingKind | None:
    """The line between the lanes that a lane change from ``own`` to ``target`` centres
    (T, 2) crosses: solid lines win over dashed ones."""
    strip = shapely.Polygon(np.concatenate([own, target[::-1]]))
    kinds = [
        m.kind
        for m in scene.map.markings
        if strip.intersection(shapely.LineString(scene.world_to_ego(np.asarray(m.points)))).length > 1.0
    ]
    return next((k for k in kinds if k != MarkingKind.DASHED_WHITE), kinds[0] if kinds else None)


StopRule = tuple[bool | None, str, str | None, bool]  # legal, the rule in words, the light, a stop sign


def _stop_rule(
    scene: Scene, chain: list[Lane], line: shapely.LineString, s_front: np.ndarray, v: np.ndarray
) -> StopRule:
    """What the first stop line the ego's front passes within the horizon says: legal
    (True/False/None), the rule in words, the light, and whether it is a stop sign."""
    lanes = {lane.id for lane in chain}
    for stop in scene.map.stop_lines:
        if not lanes & set(stop.lane_ids):
            continue
        hit = line.intersection(shapely.LineString(scene.world_to_ego(np.asarray(stop.points))))
        if hit.is_empty:
            continue
        s_line = line.project(hit.centroid)
        if s_front[0] > s_line + 0.5 or s_front[-1] < s_line:
            continue  # already past it, or not there yet within the horizon
        k = int(np.argmax(s_front >= s_line))
        t_cross, gap = k * DT, s_line - s_front[0]
        light = next((lt for lt in scene.map.lights if set(lt.lane_ids) & set(stop.lane_ids)), None)
        if light is not None:
            if light.time_to_change < t_cross + LIGHT_MARGIN:
                return None, "the light is about to change", light.id, False
            if light.state is LightState.RED:
                return False, "the light is red", light.id, False
            if light.state is LightState.GREEN:
                return True, "the light is green", light.id, False
            stopping = v[0] ** 2 / (2 * B_COMFORT)
            if abs(gap - stopping) < YELLOW_MARGIN:
                return None, "yellow, about where stopping is still comfortable", light.id, False
            if gap > stopping:
                return False, "the light is yellow and the ego could still stop comfortably", light.id, False
            return True, "the light is yellow but the ego is too close to stop comfortably", light.id, False
        signs = [s for s in scene.map.signs if s.kind is SignKind.STOP and set(s.lane_ids) & set(stop.lane_ids)]
        if signs and v[k] > SPEED_TOLERANCE:
            return False, "a stop sign requires a full stop at the line", None, True
        return True, "nothing forbids passing the line", None, bool(signs)
    return True, "no light, sign or line forbids it", None, False


def _follow(line: shapely.LineString, s: np.ndarray, reach: float) -> tuple[np.ndarray, np.ndarray] | None:
    """Centres (T, 2) and headings (T,) at arc lengths ``s`` along ``line``; None when the
    line ends within ``reach`` metres beyond the last."""
    if s[-1] + reach > line.length:
        return None
    at = shapely.get_coordinates(shapely.line_interpolate_point(line, s))
    ahead = shapely.get_coordinates(shapely.line_interpolate_point(line, s + 0.5))
    return at, np.arctan2(*(ahead - at).T[::-1])


def _blend(
    own: np.ndarray, goal: np.ndarray, yaw: np.ndarray, v: np.ndarray, times: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """A lane change: centres easing from ``own`` to ``goal`` (smoothstep over the horizon)
    and the headings that go with them."""
    u = times / HORIZON
    shift = goal - own
    lateral = shift[:, 1] * np.cos(yaw) - shift[:, 0] * np.sin(yaw)
    centres = own + (3 * u**2 - 2 * u**3)[:, None] * shift
    return centres, yaw + np.arctan2(lateral * (6 * u - 6 * u**2) / HORIZON, np.maximum(v, 0.1))


def _nearest_approach(
    scene: Scene, centres: np.ndarray, yaw: np.ndarray, v: np.ndarray, times: np.ndarray
) -> tuple[float, str | None]:
    """The smallest gap (metres) between the ego's swept footprints and anyone's over the
    horizon, and who that is (inf and None when nobody counts)."""
    ids, others = _agent_tracks(scene, times)
    if not ids:
        return float("inf"), None
    mine = shapely.polygons(_swept(centres[:, 0], centres[:, 1], yaw, v, scene.ego.size))
    gaps = shapely.distance(mine[None], shapely.polygons(others)).min(1)
    i = int(np.argmin(gaps))
    return float(gaps[i]), ids[i]


@per_batch
def judge(scene: Scene, key: str) -> Verdict | None:
    """Whether the ego may, and safely can, do proposal ``key`` over the next HORIZON
    seconds; None where it does not apply (no lane, no junction ahead, too slow, between
    lanes, the route ends within reach).

    The plan is rolled forward with a simple kinematic model: along the lane's centreline
    (straight on at a junction) at the current speed, or speeding up at ACCEL to the limit;
    a lane change eases into the neighbour lane's centreline over the horizon.

    Legal: not over the speed limit; no stop line passed at a red light, at a yellow one the
    ego could stop for comfortably, or at a stop sign without stopping; a lane change only
    into a same-direction neighbour lane and across a dashed line.

    Safe: every DT seconds, the ego's footprint, stretched forward by HEADWAY of travel, keeps
    CLEAR metres from every road user's exact future footprint stretched the same way (those
    behind the ego in its lane excepted); an overlap is unsafe, anything in between is not
    called. Static obstacles are road users that stay put.
    """
    proposal, ego = PROPOSALS[key], scene.ego
    if ego.lane_id is None:
        return None
    lane = scene.map.lane(ego.lane_id)
    chain = _route(scene, lane, proposal.through)
    if proposal.through and (lane.in_junction or len(chain) < 2 or not chain[1].in_junction):
        return None
    if proposal.accel == 0.0 and ego.speed < MIN_SPEED:
        return None  # standing still: no speed to keep, no lane change
    if proposal.accel > 0.0 and not proposal.through and ego.speed > lane.speed_limit - 1.0:
        return None  # already at the limit: speeding up would be keeping the speed
    line, origin = _line(scene, chain), shapely.Point(0.0, 0.0)
    if line.distance(origin) > CENTRED:
        return None
    times = np.arange(0.0, HORIZON + DT / 2, DT)
    v = np.maximum(ego.speed, np.minimum(lane.speed_limit, ego.speed + proposal.accel * times))
    travel = np.concatenate([[0.0], np.cumsum((v[1:] + v[:-1]) / 2 * DT)])
    reach = ego.size[0] / 2 + HEADWAY * v[-1] + ROUTE_SLACK
    s = line.project(origin) + travel
    path = _follow(line, s, reach)
    if path is None:
        return None
    centres, yaw = path
    front = s + ego.size[0] / 2
    entry = line.project(shapely.Point(line.coords[len(chain[0].centerline)])) if proposal.through else 0.0
    if front[-1 - round(0.5 / DT)] < entry:
        return None  # the junction is not reached in time: the question would be about the road before it
    legal, rule, light, stop_sign = _stop_rule(scene, chain, line, front, v)
    target, marking = None, None
    if proposal.side is not None:
        target = lane.left_neighbor if proposal.side == "left" else lane.right_neighbor
        if target is None:
            return Verdict(False, None, f"there is no lane to the {proposal.side} in the ego's direction")
        other = _line(scene, _route(scene, scene.map.lane(target), False))
        goal = _follow(other, other.project(origin) + travel, reach)
        if goal is None:
            return None
        marking = crossed_marking(scene, centres, goal[0])
        centres, yaw = _blend(centres, goal[0], yaw, v, times)
        if legal is not False and marking not in (None, MarkingKind.DASHED_WHITE):
            legal, rule = False, f"the lane change crosses a {marking.value.replace('_', ' ')} line"
    speeding = ego.speed > lane.speed_limit + SPEED_TOLERANCE
    if speeding:
        legal, rule = False, "the ego is over the speed limit"
    clearance, closest = _nearest_approach(scene, centres, yaw, v, times)
    safe = True if clearance >= CLEAR else False if clearance <= 0.0 else None
    return Verdict(legal, safe, rule, speeding, light, stop_sign, target, marking, clearance, closest)


def _legal_step(scene: Scene, proposal: Proposal, verdict: Verdict) -> Step:
    """Which rule applies, with the map facts it rests on."""
    lane, facts = scene.ego.lane_id, []
    if proposal.side is not None:
        facts.append(Fact(type="lane_neighbor", lane=lane, side=proposal.side, value=verdict.target))
        if verdict.target is not None:
            marking = None if verdict.marking is None else verdict.marking.value
            facts.append(Fact(type="marking_crossed", action=proposal.key, value=marking))
    if verdict.light is not None:
        state = next(lt.state for lt in scene.map.lights if lt.id == verdict.light)
        facts += [
            Fact(type="controls", light=verdict.light, lane=lane),
            Fact(type="light_state", light=verdict.light, value=state.value),
        ]
    if verdict.stop_sign:
        facts.append(Fact(type="stop_sign", lane=lane, value=True))
    if verdict.legal is not None:
        facts.append(Fact(type="action_legal", action=proposal.key, value=verdict.legal))
    legality = "" if verdict.legal is None else f": {'allowed' if verdict.legal else 'not allowed'}"
    return Step(text=f"Rules: {verdict.rule}{legality}.", facts=facts)


def _safe_step(proposal: Proposal, verdict: Verdict) -> Step:
    """How close the rolled-out plan comes to anyone."""
    facts = [Fact(type="action_safe", action=proposal.key, value=verdict.safe)]
    if verdict.closest is None:
        return Step(text="Rolled forward for 3 s, the plan meets no road user.", facts=facts)
    facts.insert(
        0, Fact(type="clearance", action=proposal.key, agent=verdict.closest, value=round(verdict.clearance, 2))
    )
    room = "overlaps" if verdict.clearance <= 0.0 else f"keeps {verdict.clearance:.1f} m from"
    return Step(
        text=f"Rolled forward for 3 s with {HEADWAY:g} s of headway, the plan {room} {verdict.closest}: "
        f"{'safe' if verdict.safe else 'not safe'}.",
        facts=facts,
    )


@task("action_safety", FAMILY, AnswerType.YES_NO, buckets=["yes", "no"])
def action_safety(scene: Scene, rng: np.random.Generator) -> Iterator[Sample]:
    """Whether a proposed manoeuvre is safe and legal over the next 3 s.

    Proposals: keep the speed, speed up, change lanes left or right, cross the junction.
    """
    for proposal in PROPOSALS.values():
        verdict = judge(scene, proposal.key)
        if verdict is None or verdict.answer is None or verdict.speeding:
            continue  # too close to call; or decided by a speed limit the model is neither shown nor told
        around = f"The ego drives at {scene.ego.speed:.1f} m/s."
        facts = [Fact(type="ego_speed", t=0.0, value=scene.ego.speed)]
        if verdict.closest is not None:
            agent = scene.agent(verdict.closest)
            around += f" The road user the plan comes closest to is {agent.id}, {distance(agent):.0f} m away now."
            facts.append(Fact(type="distance", agent=agent.id, value=round(distance(agent), 1)))
        steps = [Step(text=around, facts=facts), _legal_step(scene, proposal, verdict)]
        if verdict.safe is not None:
            steps.append(_safe_step(proposal, verdict))
        steps.append(Step(text=f"So the answer is {verdict.answer}."))
        question = (
            f"{SHOWN} Is it safe and legal for the ego vehicle "
            f"to {proposal.text} over the next 3 seconds? Answer yes or no."
        )
        yield make_sample(
            scene,
            FAMILY,
            "action_safety",
            proposal.key,
            verdict.answer,
            question,
            verdict.answer,
            AnswerType.YES_NO,
            steps,
            views=HISTORY,
        )


@checker("lane_neighbor")
def _lane_neighbor(scene: Scene, f: dict) -> bool | None:
    if f["side"] not in ("left", "right"):
        return None
    return getattr(scene.map.lane(f["lane"]), f"{f['side']}_neighbor") == f["value"]


@checker("stop_sign")
def _stop_sign(scene: Scene, f: dict) -> bool:
    return any(s.kind is SignKind.STOP and f["lane"] in s.lane_ids for s in scene.map.signs) == f["value"]


@checker("marking_crossed")
def _marking_crossed(scene: Scene, f: dict) -> bool | None:
    verdict = judge(scene, f["action"])
    return None if verdict is None else verdict.marking == f["value"]


@checker("clearance")
def _clearance(scene: Scene, f: dict) -> bool | None:
    verdict = judge(scene, f["action"])
    if verdict is None:
        return None
    return verdict.closest == f["agent"] and abs(verdict.clearance - float(f["value"])) <= CLEAR


@checker("action_legal")
def _action_legal(scene: Scene, f: dict) -> bool | None:
    verdict = judge(scene, f["action"])
    return None if verdict is None else verdict.legal == f["value"]


@checker("action_safe")
def _action_safe(scene: Scene, f: dict) -> bool | None:
    verdict = judge(scene, f["action"])
    return None if verdict is None else verdict.safe == f["value"]
