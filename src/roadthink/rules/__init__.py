"""Traffic rules, written once in ``traffic.lp`` and evaluated by clingo: verify a driving
action against a scene or a perceived situation, and find the safest legal action."""

from roadthink.rules.actions import ALL_ACTIONS, Action, ActionParseError, parse_action
from roadthink.rules.situation import (
    Detection,
    RoadUser,
    Situation,
    situation_from_perception,
    situation_from_scene,
)
from roadthink.rules.verifier import RULES, Rule, Verdict, Violation, safest_action, verify

__all__ = [
    "ALL_ACTIONS",
    "RULES",
    "Action",
    "ActionParseError",
    "Detection",
    "RoadUser",
    "Rule",
    "Situation",
    "Verdict",
    "Violation",
    "parse_action",
    "safest_action",
    "situation_from_perception",
    "situation_from_scene",
    "verify",
]
