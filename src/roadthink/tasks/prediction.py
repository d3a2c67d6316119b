"""Prediction: how road users move, judged from past frames and the present one."""

from __future__ import annotations

import math
from collections.abc import Iterator
from itertools import pairwise

import numpy as np
import shapely

from roadthink.scene.types import STATIC_OBJECTS, Agent, Scene, box_corners
from roadthink.tasks.facts import SPEED_TOLERANCE, agent_by_id, checker
from roadthink.tasks.lanes import ego_lane_area, footprint
from roadthink.tasks.registry import choice_sample, make_sample, task
from roadthink.tasks.sample import AnswerType, Fact, Sample, Step
from roadthink.tasks.views import HISTORY, MOVING, SHOWN, STILL, named, noun

CAMERA = "CAM_FRONT"
FAMILY = "prediction"
HORIZON = 3.0  # seconds of exact future every agent carries
DIRECTIONS = (
    "same direction as the ego",
    "towards the ego (oncoming)",
    "crossing from left to right",
    "crossing from right to left",
)
ANGLE_MARGIN = 10.0  # degrees either side of the 45 and 135 degree boundaries that are not asked
LANE_MARGIN = 0.5  # metres: nearer than this to the ego lane's edge is neither in it nor out of it
AHEAD_BINS = (
    (-math.inf, 0.0, "behind the ego"),
    (0.0, 10.0, "0 to 10 m ahead"),
    (10.0, 20.0, "10 to 20 m ahead"),
    (20.0, 40.0, "20 to 40 m ahead"),
    (40.0, math.inf, "over 40 m ahead"),
)
AHEAD_MARGIN = 1.0  # metres either side of a bin edge
TTC_BINS = (
    (0.0, 3.0, "under 3 s"),
    (3.0, 5.0, "3 to 5 s"),
    (5.0, 10.0, "5 to 10 s"),
    (10.0, math.inf, "no collision course within 10 s"),
)
TTC_MARGIN = 0.1  # share of a bin edge either side of it that is not asked
POSITION_TOLERANCE = 1.0  # metres
TTC_TOLERANCE = 0.05  # share of the time
# lane status of a road user against the ego's lane over the next 3 s
IN, ENTERS, STAYS_OUT = "in it now", "enters it", "stays out"


def shown_history(sample: Sample) -> Sample:
    """``sample`` shown as the front camera 1 s ago, 0.5 s ago and now."""
    return sample.model_copy(update={"views": list(HISTORY)})


# Balance keys of the per-road-user questions are categories, not descriptions: what a road user
# is tells more about how it moves (a car ahead goes the ego's way, a pedestrian crosses) than its
# colour, and a split holds too few questions per description for the balance to act on them.


def _moving(scene: Scene) -> Iterator[tuple[Agent, str, Step]]:
    """Named agents that clearly move: where a standing one goes is no question."""
    for agent, name, step in named(scene):
        if agent.speed > MOVING:
            yield agent, name, step


def _velocity_step(agent: Agent) -> Step:
    vx, vy = agent.velocity
    return Step(
        text=f"Across the three frames it moves at {agent.speed:.1f} m/s: {vx:+.1f} m/s along the ego's heading "
        f"and {vy:+.1f} m/s to its left.",
        facts=[Fact(type="velocity", agent=agent.id, value=[vx, vy])],
    )


@checker("velocity")
def _velocity(scene: Scene, f: dict) -> bool | None:
    agent = agent_by_id(scene, f["agent"])
    if agent is None:
        return None
    return math.dist(agent.velocity, f["value"]) <= SPEED_TOLERANCE


# --- motion -------------------------------------------------------------------------------------


@task("motion", FAMILY, AnswerType.CHOICE, buckets=["moving", "stationary"])
def motion(scene: Scene, rng: np.random.Generator) -> Iterator[Sample]:
    """Whether a described road user is moving or standing still, from three frames."""
    for agent, name, identified in named(scene):
        if agent.category in STATIC_OBJECTS or STILL <= agent.speed <= MOVING:
            continue  # a cone never moves: asking would give the answer away
        answer = "moving" if agent.speed > MOVING else "stationary"
        measured = Step(
            text=f"Across the frames from 1 s ago to now it {'moves' if answer == 'moving' else 'stays put'}: "
            f"its speed is {agent.speed:.1f} m/s.",
            facts=[Fact(type="speed", agent=agent.id, value=round(agent.speed, 2))],
        )
        question = f"{SHOWN} Is {name} moving or stationary?"
        options = ["moving", "stationary"]
        yield shown_history(
            choice_sample(scene, FAMILY, "motion", name, question, options, answer, [identified, measured], rng)
        )


# --- direction of motion ------------------------------------------------------------------------


def direction_of(velocity: tuple[float, float]) -> str | None:
    """DIRECTIONS entry of a velocity in the ego frame, by its angle to the ego's heading
    (within 45 deg: same way; beyond 135: oncoming; else crossing), or None near 45 or 135."""
    angle = math.degrees(math.atan2(velocity[1], velocity[0]))
    if min(abs(abs(angle) - 45.0), abs(abs(angle) - 135.0)) < ANGLE_MARGIN:
        return None
    if abs(angle) < 45.0:
        return DIRECTIONS[0]
    if abs(angle) > 135.0:
        return DIRECTIONS[1]
    return DIRECTIONS[2] if angle < 0 else DIRECTIONS[3]


@checker("direction")
def _direction(scene: Scene, f: dict) -> bool | None:
    agent = agent_by_id(scene, f["agent"])
    return None if agent is None else direction_of(agent.velocity) == f["value"]


@task("direction", FAMILY, AnswerType.CHOICE, buckets=list(DIRECTIONS))
def direction(scene: Scene, rng: np.random.Generator) -> Iterator[Sample]:
    """Which way a described moving road user goes relative to the ego's heading."""
    for agent, name, identified in _moving(scene):
        answer = direction_of(agent.velocity)
        if answer is None:
            continue
        angle = math.degrees(math.atan2(agent.velocity[1], agent.velocity[0]))
        decided = Step(
            text=f"Its motion is {abs(angle):.0f} deg to the {'left' if angle >= 0 else 'right'} of the ego's "
            f"heading, so it is {answer}.",
            facts=[Fact(type="direction", agent=agent.id, value=answer)],
        )
        question = f"{SHOWN} Relative to the ego vehicle's heading, which way is {name} moving?"
        steps = [identified, _velocity_step(agent), decided]
        yield shown_history(
            choice_sample(
                scene, FAMILY, "direction", noun(agent.category), question, list(DIRECTIONS), answer, steps, rng
            )
        )


# --- the ego's lane: who enters it --------------------------------------------------------------


def swept(agent: Agent) -> shapely.Geometry:
    """The ground the agent covers from now along its exact 3 s future: the hulls of its
    footprints at each pair of consecutive track points (so a fast crosser cannot skip a lane)."""
    size = agent.box.size
    prints = [footprint(agent.box.center, size, agent.box.yaw)] + [
        footprint(p.center, size, p.yaw) for p in agent.future
    ]
    return shapely.union_all([shapely.convex_hull(shapely.union(a, b)) for a, b in pairwise(prints)])


def lane_status(scene: Scene, agent: Agent, lane: shapely.Geometry | None = None) -> str | None:
    """IN the ego's lane now, ENTERS it (by LANE_MARGIN) within 3 s, STAYS_OUT (by LANE_MARGIN)
    or None when within LANE_MARGIN of an edge without clearly crossing it."""
    lane = ego_lane_area(scene) if lane is None else lane
    now = footprint(agent.box.center, agent.box.size, agent.box.yaw)
    inner = lane.buffer(-LANE_MARGIN)
    if now.intersects(inner):
        return IN
    if now.distance(lane) <= LANE_MARGIN:
        return None
    path = swept(agent)
    if path.intersects(inner):
        return ENTERS
    return STAYS_OUT if path.distance(lane) > LANE_MARGIN else None


@checker("lane_status")
def _lane_status(scene: Scene, f: dict) -> bool | None:
    agent = agent_by_id(scene, f["agent"])
    return None if agent is None else lane_status(scene, agent) == f["value"]


def _position_at(agent: Agent, t: float) -> tuple[float, float] | None:
    if t == 0.0:
        return agent.box.center[0], agent.box.center[1]
    point = next((p for p in agent.future if abs(p.t - t) < 1e-6), None)
    return None if point is None else (point.center[0], point.center[1])


@checker("agent_position")
def _agent_position(scene: Scene, f: dict) -> bool | None:
    """Where the agent's centre is at time ``t`` (0 or a future track point), ego frame now."""
    agent = agent_by_id(scene, f["agent"])
    where = None if agent is None else _position_at(agent, float(f["t"]))
    return None if where is None else math.dist(where, f["value"]) <= POSITION_TOLERANCE


def _position_step(agent: Agent, t: float, text: str) -> Step:
    x, y = _position_at(agent, t)
    return Step(
        text=text.format(x=f"{abs(x):.1f} m {'ahead' if x >= 0 else 'behind'}", y=f"{y:+.1f} m"),
        facts=[Fact(type="agent_position", agent=agent.id, t=t, value=[round(x, 2), round(y, 2)])],
    )


@task("enter_ego_lane", FAMILY, AnswerType.YES_NO, buckets=["yes", "no"])
def enter_ego_lane(scene: Scene, rng: np.random.Generator) -> Iterator[Sample]:
    """Whether a described moving road user, now outside the ego's lane, enters it within 3 s."""
    if scene.ego.lane_id is None:
        return
    lane = ego_lane_area(scene)
    for agent, name, identified in _moving(scene):
        status = lane_status(scene, agent, lane)
        if status not in (ENTERS, STAYS_OUT):
            continue  # already in the lane, or too near its edge to call
        answer = "yes" if status == ENTERS else "no"
        steps = [
            identified,
            Step(
                text=f"The ego drives in lane {scene.ego.lane_id}; it is clear of that lane now.",
                facts=[Fact(type="ego_lane", value=scene.ego.lane_id)],
            ),
            _velocity_step(agent),
            _position_step(agent, HORIZON, "In 3 s its centre is {x} and {y} to the side of the ego now."),
            Step(
                text=f"So along the way it {'enters' if answer == 'yes' else 'stays out of'} the ego's lane: {answer}.",
                facts=[Fact(type="lane_status", agent=agent.id, value=status)],
            ),
        ]
        question = (
            f"{SHOWN} Will {name} enter the ego vehicle's lane (the lane it drives in, continued straight on) "
            "within the next 3 seconds? Answer yes or no."
        )
        sample = make_sample(
            scene, FAMILY, "enter_ego_lane", noun(agent.category), answer, question, answer, AnswerType.YES_NO, steps
        )
        yield shown_history(sample)


# --- where it will be in 3 s --------------------------------------------------------------------


def _binned(value: float, bins: tuple[tuple[float, float, str], ...], margin: float) -> str | None:
    """The label of the bin holding ``value``, or None within ``margin`` of an inner edge."""
    for low, high, label in bins:
        if low + margin <= value < high - margin or (math.isinf(low) and value < high - margin):
            return label
    return None


@task("future_position", FAMILY, AnswerType.CHOICE, buckets=[label for _, _, label in AHEAD_BINS])
def future_position(scene: Scene, rng: np.random.Generator) -> Iterator[Sample]:
    """How far ahead of the ego's current position a described moving road user will be in 3 s."""
    for agent, name, identified in _moving(scene):
        x, _ = _position_at(agent, HORIZON)
        answer = _binned(x, AHEAD_BINS, AHEAD_MARGIN)
        if answer is None:
            continue
        steps = [
            identified,
            _position_step(agent, 0.0, "Now its centre is {x} and {y} to the side."),
            _velocity_step(agent),
            _position_step(agent, HORIZON, f"In 3 s it is {{x}} of where the ego is now: {answer}."),
        ]
        question = (
            f"{SHOWN} Where will {name} be in 3 seconds, measured along the ego vehicle's current heading "
            "from the ego's current position (centre to centre)?"
        )
        options = [label for _, _, label in AHEAD_BINS]
        yield shown_history(
            choice_sample(scene, FAMILY, "future_position", noun(agent.category), question, options, answer, steps, rng)
        )


# --- time to collision --------------------------------------------------------------------------


def gap_ahead(scene: Scene, agent: Agent) -> float:
    """Metres from the ego's front to the agent's nearest point, along the ego's heading."""
    corners = box_corners(np.asarray(agent.box.center), np.asarray(agent.box.size), agent.box.yaw)
    return float(corners[:, 0].min()) - scene.ego.size[0] / 2


def closing_speed(scene: Scene, agent: Agent) -> float:
    """How fast that gap shrinks (m/s) when both keep their current velocities."""
    return scene.ego.speed - agent.velocity[0]


def time_to_collision(scene: Scene, agent: Agent) -> float:
    """Seconds until the gap ahead closes at constant velocities; inf when it does not close."""
    closing = closing_speed(scene, agent)
    return gap_ahead(scene, agent) / closing if closing > 0 else math.inf


@checker("gap_ahead")
def _gap_ahead(scene: Scene, f: dict) -> bool | None:
    agent = agent_by_id(scene, f["agent"])
    return None if agent is None else abs(gap_ahead(scene, agent) - float(f["value"])) <= POSITION_TOLERANCE


@checker("closing_speed")
def _closing_speed(scene: Scene, f: dict) -> bool | None:
    agent = agent_by_id(scene, f["agent"])
    return None if agent is None else abs(closing_speed(scene, agent) - float(f["value"])) <= SPEED_TOLERANCE


@checker("ttc")
def _ttc(scene: Scene, f: dict) -> bool | None:
    """Time to collision in seconds; None as the value for a gap that does not close."""
    agent = agent_by_id(scene, f["agent"])
    if agent is None:
        return None
    ttc = time_to_collision(scene, agent)
    if f["value"] is None or math.isinf(ttc):
        return f["value"] is None and math.isinf(ttc)
    return abs(ttc - float(f["value"])) <= TTC_TOLERANCE * ttc


def ttc_bin(seconds: float) -> str | None:
    """TTC_BINS label, or None within TTC_MARGIN (relative) of an edge."""
    for low, high, label in TTC_BINS:
        if low * (1 + TTC_MARGIN) <= seconds and (math.isinf(high) or seconds < high * (1 - TTC_MARGIN)):
            return label
    return None


def in_path(scene: Scene, agent: Agent, lane: shapely.Geometry) -> str | None:
    """The agent's lane status when it is ahead and in the ego's lane or entering it, else None."""
    status = lane_status(scene, agent, lane)
    return status if status in (IN, ENTERS) and gap_ahead(scene, agent) > 0 else None


def ttc_steps(scene: Scene, agent: Agent, status: str) -> list[Step]:
    """The reasoning from lane status to time to collision, shared with risk questions."""
    gap, closing, ttc = gap_ahead(scene, agent), closing_speed(scene, agent), time_to_collision(scene, agent)
    where = "is in the ego's lane" if status == IN else "enters the ego's lane within 3 s"
    verdict = f"{ttc:.1f} s to collision" if math.isfinite(ttc) else "the gap does not close"
    return [
        Step(text=f"It {where}.", facts=[Fact(type="lane_status", agent=agent.id, value=status)]),
        Step(
            text=f"Its nearest point is {gap:.1f} m ahead of the ego's front; the gap closes at {closing:.1f} m/s "
            f"(ego {scene.ego.speed:.1f} m/s, it {agent.velocity[0]:+.1f} m/s along the ego's heading): {verdict}.",
            facts=[
                Fact(type="gap_ahead", agent=agent.id, value=round(gap, 2)),
                Fact(type="closing_speed", agent=agent.id, value=round(closing, 2)),
                Fact(type="ttc", agent=agent.id, value=round(ttc, 2) if math.isfinite(ttc) else None),
            ],
        ),
    ]


@task("ttc", FAMILY, AnswerType.CHOICE, buckets=[label for _, _, label in TTC_BINS])
def ttc(scene: Scene, rng: np.random.Generator) -> Iterator[Sample]:
    """Time to collision, at constant velocities, with a road user or obstacle ahead in or entering the ego's lane."""
    if scene.ego.lane_id is None:
        return
    lane = ego_lane_area(scene)
    for agent, name, identified in named(scene):
        status = in_path(scene, agent, lane)
        answer = None if status is None else ttc_bin(time_to_collision(scene, agent))
        if answer is None:
            continue
        question = (
            f"{SHOWN} {name.capitalize()} is ahead, in or about to enter the ego vehicle's lane. If both keep their "
            "current speed and direction, how long until the gap between the ego's front and its nearest point, "
            "along the ego's heading, closes (time to collision)?"
        )
        options = [label for _, _, label in TTC_BINS]
        steps = [identified, *ttc_steps(scene, agent, status)]
        yield shown_history(
            choice_sample(scene, FAMILY, "ttc", noun(agent.category), question, options, answer, steps, rng)
        )
