"""Driving actions the rules judge: the bench's meta-actions (speed × direction), with a
turn told apart from a lane change, and a reader for the bench's strings and free wording."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, model_validator

from roadthink.errors import RoadthinkError
from roadthink.tasks.planning import SPEEDS

Speed = Literal["accelerate", "keep", "decelerate", "stop"]
Direction = Literal["straight", "left", "right"]


class ActionParseError(RoadthinkError, ValueError):
    """Text that names no action, or contradicts itself: the message quotes it on one line."""


class Action(BaseModel):
    """A speed action and a direction over the next 3 s.

    ``lane_change`` tells a left/right lane change (True) from a turn (False); None is the
    bench's plain "left"/"right", which the verifier reads as a turn where a junction ahead
    offers that turn and as a lane change elsewhere, as a person would."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    speed: Speed
    direction: Direction = "straight"
    lane_change: bool | None = None

    @model_validator(mode="before")
    @classmethod
    def _straight_is_no_lane_change(cls, data: object) -> object:
        if (
            isinstance(data, dict)
            and data.get("direction", "straight") == "straight"
            and data.get("lane_change") is None
        ):
            return {**data, "lane_change": False}
        return data

    @model_validator(mode="after")
    def _consistent(self) -> Action:
        if self.direction == "straight" and self.lane_change:
            raise ValueError("a lane change goes left or right, not straight")
        if self.speed == "stop" and self.direction != "straight":
            raise ValueError("'stop' goes only with 'straight'")
        return self

    @property
    def meta_action(self) -> str:
        """The bench's wording ("keep, left"), which does not tell a turn from a lane change."""
        return f"{self.speed}, {self.direction}"

    def __str__(self) -> str:
        if self.direction == "straight":
            return self.meta_action
        kind = {True: " lane change", False: " turn", None: ""}[self.lane_change]
        return f"{self.speed}, {self.direction}{kind}"


ALL_ACTIONS: tuple[Action, ...] = tuple(
    Action(speed=s, direction=d, lane_change=change)
    for s in SPEEDS
    for d, change in (("straight", False), ("left", False), ("left", True), ("right", False), ("right", True))
    if s != "stop" or d == "straight"
)

_META = re.compile(rf"^\s*({'|'.join(SPEEDS)})\s*(?:,\s*(straight|left|right))?\s*\.?\s*$")
_SPEED_WORDS: dict[str, str] = {
    "stop": r"\bstop(?:s|ping|ped)?\b(?! sign| line)|\bhalt\b|\bstandstill\b",
    "decelerate": r"\bdecelerat\w*|\bslow(?:s|ing)?\b|\bbrak(?:e|es|ing)\b|\breduce\w* (?:the |its |my )?speed|\byield",
    "accelerate": r"\baccelerat\w*|\bspeed(?:s|ing)? up\b|\bfaster\b|\bincrease\w* (?:the |its |my )?speed",
    "keep": r"\bkeep(?:s|ing)?\b|\bmaintain\w*|\bsame speed\b|\bconstant speed\b|\bcontinu\w*|\bcruis\w*|\bproceed\w*",
}
_LANE_CHANGE = (
    r"\blane change|\bchang\w* (?:\w+ ){0,3}lanes?\b|\b(?:left|right) lane\b|\bmerg\w*|\bovertak\w*|\bswerv\w*"
)
_STRAIGHT = r"\bstraight\b|\bahead\b"
_TURN = r"\bturn(?:s|ing)?\b"
_SIDES = ("left", "right")


def _fail(text: str, why: str) -> ActionParseError:
    shown = text if len(text) <= 80 else text[:77] + "..."
    return ActionParseError(f"cannot read a driving action from {shown!r}: {why}")


def _speed(text: str, lowered: str) -> Speed | None:
    """The one speed the wording names: stopping outranks slowing down ("slow down and stop"),
    and "keep"/"continue" yields to a more specific word ("continue, slowing down")."""
    found = {speed for speed, pattern in _SPEED_WORDS.items() if re.search(pattern, lowered)}
    if {"stop", "decelerate"} <= found:
        found.discard("decelerate")
    if len(found) > 1:
        found.discard("keep")
    if len(found) > 1:
        raise _fail(text, f"it names conflicting speeds ({', '.join(sorted(found))})")
    return found.pop() if found else None


def parse_action(text: str) -> Action:
    """An Action from a bench meta-action ("keep, straight", "stop") or free wording ("slow
    down and change to the left lane", "turn right"); ActionParseError (a ValueError) when the
    text names no action or contradicts itself."""
    if not isinstance(text, str):
        raise _fail(repr(text), "an action is text such as 'keep, straight'")
    lowered = " ".join(text.lower().split())
    if match := _META.match(lowered):
        speed, direction = match.group(1), match.group(2) or "straight"
        try:
            return Action(speed=speed, direction=direction)
        except ValueError:
            raise _fail(text, "'stop' goes only with 'straight'") from None
    speed = _speed(text, lowered)
    sides = [side for side in _SIDES if re.search(rf"\b{side}\b", lowered)]
    if len(sides) > 1:
        raise _fail(text, "it names both left and right")
    change, turn = bool(re.search(_LANE_CHANGE, lowered)), bool(re.search(_TURN, lowered))
    if change and turn:
        raise _fail(text, "it names both a turn and a lane change")
    if (change or turn) and not sides:
        raise _fail(text, f"it names a {'turn' if turn else 'lane change'} but not which side")
    if speed is None and not sides and not re.search(_STRAIGHT, lowered):
        raise _fail(text, f"it names no speed action ({', '.join(SPEEDS)}) and no direction")
    if speed == "stop" and sides:
        raise _fail(text, "'stop' goes only with 'straight'")
    direction = sides[0] if sides else "straight"
    lane_change = None if direction == "straight" or not (change or turn) else change
    return Action(speed=speed or "keep", direction=direction, lane_change=lane_change)
