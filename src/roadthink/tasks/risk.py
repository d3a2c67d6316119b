"""Risk: how dangerous a road user is to the ego, judged from three frames.

One rule grades every road user (``risk_level``): what is ahead in the ego's lane, or about
to enter it, is graded by its time to collision at constant velocities; anything else only
by whether it is near and closing in. Questions near a threshold of the rule are not asked.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import shapely

from roadthink.scene.types import CORNER_CASES, VEHICLES, Agent, Scene
from roadthink.tasks.facts import SPEED_TOLERANCE, agent_by_id, checker
from roadthink.tasks.lanes import ego_lane_area
from roadthink.tasks.prediction import (
    TTC_MARGIN,
    gap_ahead,
    lane_status,
    shown_history,
    time_to_collision,
    ttc_steps,
)
from roadthink.tasks.registry import choice_sample, task
from roadthink.tasks.sample import AnswerType, Fact, Sample, Step
from roadthink.tasks.views import SHOWN, describe, distance, identified, noun, plural, seen

CAMERA = "CAM_FRONT"
FAMILY = "risk"
LEVELS = ("0 (none)", "1 (low)", "2 (medium)", "3 (high)")
HIGH_TTC, MEDIUM_TTC = 4.0, 8.0  # seconds to collision for high and medium risk
NEAR, NEAR_MARGIN = 20.0, 1.0  # metres: low risk needs this close (and closing in)
CLOSING, CLOSING_MARGIN = 1.0, 0.5  # m/s the distance must shrink by for "closing in"
RULE = (
    "Risk levels: 3 (high) if it is ahead in the ego's lane, or entering it, with under 4 s to collision if both "
    "keep their speed and direction; 2 (medium) the same with 4 to 8 s; otherwise 1 (low) if it is within 20 m and "
    "getting closer by more than 1 m/s; otherwise 0 (none)."
)
OPTIONS = 2  # road users compared in one question: always as many, so every letter can be the answer


def range_rate(scene: Scene, agent: Agent) -> float:
    """How fast the centre-to-centre distance changes (m/s, negative: closing) at current velocities."""
    x, y = agent.box.center[0], agent.box.center[1]
    vx, vy = agent.velocity[0] - scene.ego.speed, agent.velocity[1]
    return (x * vx + y * vy) / max(math.hypot(x, y), 1e-6)


def _ttc_level(ttc: float) -> int | None:
    """3 or 2 by time to collision, 0 beyond MEDIUM_TTC (left to the proximity rule), None near an edge."""
    for level, edge in ((3, HIGH_TTC), (2, MEDIUM_TTC)):
        if ttc < edge * (1 - TTC_MARGIN):
            return level
        if ttc < edge * (1 + TTC_MARGIN):
            return None
    return 0


def risk_level(scene: Scene, agent: Agent, lane: shapely.Geometry | None = None) -> int | None:
    """The risk ``agent`` poses to the ego, 0-3 (see RULE), or None when a margin makes it unclear.

    Time to collision comes first, for what is ahead in the ego's lane or enters it within
    3 s (exact futures); then nearness and closing speed, for everything else."""
    lane = ego_lane_area(scene) if lane is None else lane
    status = lane_status(scene, agent, lane)
    if status is None:
        return None
    if status != "stays out" and gap_ahead(scene, agent) > 0:
        level = _ttc_level(time_to_collision(scene, agent))
        if level != 0:
            return level
    metres, rate = distance(agent), range_rate(scene, agent)
    near, far = metres < NEAR - NEAR_MARGIN, metres > NEAR + NEAR_MARGIN
    closing, opening = rate < -(CLOSING + CLOSING_MARGIN), rate > -(CLOSING - CLOSING_MARGIN)
    if near and closing:
        return 1
    return 0 if far or opening else None


@checker("risk")
def _risk(scene: Scene, f: dict) -> bool | None:
    agent = agent_by_id(scene, f["agent"])
    return None if agent is None else risk_level(scene, agent) == f["value"]


@checker("range_rate")
def _range_rate(scene: Scene, f: dict) -> bool | None:
    agent = agent_by_id(scene, f["agent"])
    return None if agent is None else abs(range_rate(scene, agent) - float(f["value"])) <= SPEED_TOLERANCE


def _why(scene: Scene, agent: Agent, level: int, lane: shapely.Geometry) -> list[Step]:
    """The reference reasoning behind ``level``: time to collision for high and medium,
    distance and closing speed otherwise."""
    if level >= 2:
        return ttc_steps(scene, agent, lane_status(scene, agent, lane))
    rate = range_rate(scene, agent)
    return [
        Step(
            text=f"It is {distance(agent):.1f} m away and the distance changes by {rate:+.1f} m/s; it is not on a "
            "collision course within 8 s.",
            facts=[
                Fact(type="distance", agent=agent.id, value=round(distance(agent), 2)),
                Fact(type="range_rate", agent=agent.id, value=round(rate, 2)),
            ],
        )
    ]


def _graded(scene: Scene) -> list[tuple[Agent, str, int]]:
    """Seen agents that can be named, with their risk level where it is clear. Debris and
    animals are left out: scenarios put them in the ego's lane ahead, so naming one would
    give its (high) level away."""
    visible, lane = seen(scene, CAMERA), ego_lane_area(scene)
    graded = []
    for agent in visible:
        name = None if agent.category in CORNER_CASES else describe(agent, visible)
        level = None if name is None else risk_level(scene, agent, lane)
        if level is not None:
            graded.append((agent, name, level))
    return graded


@task("risk_level", FAMILY, AnswerType.CHOICE, buckets=list(LEVELS))
def risk(scene: Scene, rng: np.random.Generator) -> Iterator[Sample]:
    """The risk a described road user or barrier poses to the ego, 0-3, by one stated rule."""
    if scene.ego.lane_id is None:
        return
    lane = ego_lane_area(scene)
    for agent, name, level in _graded(scene):
        steps = [
            identified(agent, name),
            *_why(scene, agent, level, lane),
            Step(text=f"So its risk is {LEVELS[level]}.", facts=[Fact(type="risk", agent=agent.id, value=level)]),
        ]
        question = f"{SHOWN} What risk does {name} pose to the ego vehicle? {RULE}"
        sample = choice_sample(
            scene, FAMILY, "risk_level", noun(agent.category), question, list(LEVELS), LEVELS[level], steps, rng
        )
        yield shown_history(sample)


def _kind(agent: Agent) -> str:
    """What the options of a most-dangerous question have in common."""
    return "vehicles" if agent.category in VEHICLES else plural(agent.category)


@task("most_dangerous", FAMILY, AnswerType.CHOICE, buckets=list(LEVELS[1:]))
def most_dangerous(scene: Scene, rng: np.random.Generator) -> Iterator[Sample]:
    """Which of two vehicles, or two other road users of one kind, poses the higher risk to the ego.

    Options of mixed kinds would let a model guess from the names alone (a barrier named
    beside cars is nearly always the answer). The balance bucket is the winner's risk level,
    so easy "one is about to be hit" questions do not crowd out the subtler ones where the
    winner is only near and closing in."""
    if scene.ego.lane_id is None:
        return
    graded = _graded(scene)
    for target, name, level in graded:
        lower = [g for g in graded if g[2] < level and _kind(g[0]) == _kind(target)]
        if level == 0 or len(lower) < OPTIONS - 1:
            continue
        picked = [lower[i] for i in rng.choice(len(lower), OPTIONS - 1, replace=False)]
        options = [(target, name, level), *picked]
        steps = [
            Step(
                text=", ".join(f"{n} ({a.id}): risk {LEVELS[lv]}" for a, n, lv in options) + ".",
                facts=[
                    f
                    for a, _, lv in options
                    for f in (
                        Fact(type="visible", agent=a.id, camera=CAMERA),
                        Fact(type="risk", agent=a.id, value=lv),
                    )
                ],
            ),
            *_why(scene, target, level, ego_lane_area(scene)),
            Step(text=f"So {name} poses the higher risk.", facts=[Fact(type="risk", agent=target.id, value=level)]),
        ]
        kind = _kind(target)
        question = f"{SHOWN} Which of these two {kind} poses the higher risk to the ego vehicle? {RULE}"
        sample = choice_sample(
            scene, FAMILY, "most_dangerous", kind, question, [n for _, n, _ in options], name, steps, rng
        )
        yield shown_history(sample).model_copy(update={"meta": {"key": kind, "bucket": LEVELS[level]}})
