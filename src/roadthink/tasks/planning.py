"""Planning: the ego's next manoeuvre as a meta-action, and its 3 s trajectory."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from roadthink.scene.types import Scene
from roadthink.tasks.facts import checker
from roadthink.tasks.registry import make_sample, task
from roadthink.tasks.sample import AnswerType, Fact, Sample, Step

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
