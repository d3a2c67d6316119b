"""Check a driving action against the traffic rules of ``traffic.lp`` with clingo, and find
the safest legal action: what an agent calls as a tool, and what a runner may enforce (veto
the proposal, drive the safest action instead).

A Situation becomes ground facts in integer units (decimetres, deciseconds); one solve
derives every candidate action's broken rules and picks, by the program's own #minimize,
the action with the least total weight of broken rules, nearest to the proposal.
"""

from __future__ import annotations

import math
import re
import string
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import clingo
import clingo.ast
from pydantic import BaseModel

from roadthink.errors import RoadthinkError
from roadthink.rules.actions import ALL_ACTIONS, Action, parse_action
from roadthink.rules.situation import RoadUser, Situation, situation_from_scene
from roadthink.scene.behaviour import B_COMFORT, B_MAX
from roadthink.scene.types import MarkingKind, Scene
from roadthink.tasks.planning import ACCEL, HORIZON, SPEEDS

PROGRAM_PATH = Path(__file__).with_name("traffic.lp")
KINDS = {True: "lane_change", False: "turn", None: "either"}


@dataclass(frozen=True)
class Rule:
    """One rule of traffic.lp: its name, what it says, why it is broken (a template), its weight."""

    name: str
    statement: str
    because: str
    weight: int


def _read_rules(text: str) -> dict[str, Rule]:
    """Every rule's header comments and weight, read from the program itself."""
    said = dict(re.findall(r"^% rule (\w+): (.+)$", text, re.M))
    because = dict(re.findall(r"^% because (\w+): (.+)$", text, re.M))
    weights = {name: int(w) for name, w in re.findall(r"^weight\((\w+), (\d+)\)\.", text, re.M)}
    return {name: Rule(name, said[name], because[name], weights[name]) for name in said}


PROGRAM = PROGRAM_PATH.read_text()
RULES: dict[str, Rule] = _read_rules(PROGRAM)


class Violation(BaseModel):
    rule: str
    weight: int
    explanation: str


class Verdict(BaseModel):
    """Whether ``action`` keeps every rule, which it breaks and why, and the safest action
    (``action`` itself when it is legal)."""

    action: Action
    legal: bool
    violations: list[Violation]
    explanation: str
    safest: Action


# --- facts ----------------------------------------------------------------------------------


def _dm(value: float) -> int:
    """Metres (or m/s, or s) in tenths: clingo counts in integers."""
    return round(value * 10)


def plan(speed: str, v0: float, limit: float | None) -> tuple[float, float]:
    """(metres from the ego's front to where it can be at rest, speed after HORIZON) for a
    speed action held over HORIZON, then comfortable braking. Speeding up is at ACCEL, by at
    least 1 m/s and otherwise up to the limit; "decelerate" brakes comfortably and "stop" as
    hard as the car can, so each is legal wherever that way of stopping in time exists."""
    if speed == "stop":
        return v0**2 / (2 * B_MAX), 0.0
    if speed == "decelerate":
        return v0**2 / (2 * B_COMFORT), max(v0 - B_COMFORT * HORIZON, 0.0)
    end = v0 if speed == "keep" else max(v0 + 1.0, min(v0 + ACCEL * HORIZON, math.inf if limit is None else limit))
    t = (end - v0) / ACCEL
    return (v0 + end) / 2 * t + end * (HORIZON - t) + end**2 / (2 * B_COMFORT), end


def _term(action: Action) -> str:
    kind = "none" if action.direction == "straight" else KINDS[action.lane_change]
    return f"a({action.speed},{action.direction},{kind})"


def _user_facts(i: int, user: RoadUser) -> list[str]:
    facts = [f"user({i},{user.category.value})."]
    facts += [f"in_lane({i},{lane})." for lane in sorted(user.lanes)]
    if user.entering:
        facts.append(f"entering({i}).")
    if user.gap > 0:
        facts.append(f"ahead({i},{_dm(user.gap)}).")
    elif user.gap < 0:
        facts.append(f"behind({i},{_dm(-user.gap)}).")
    else:
        facts.append(f"alongside({i}).")
    facts.append(f"closing({i},{_dm(user.closing)}).")
    if user.ttc is not None:
        facts.append(f"ttc({i},{_dm(user.ttc)}).")
    if user.crosswalk is not None:
        facts.append(f"crosswalk({i},{_dm(user.crosswalk)}).")
    if user.stops_at is not None:
        facts.append(f"stops_at({i},{_dm(user.stops_at)}).")
    return facts


def facts(situation: Situation, proposed: Action) -> str:
    """The situation, the speed actions' plans and the candidates as ASP facts."""
    s, v = situation, situation.ego_speed
    out = [f"braking({_dm(v**2 / (2 * B_COMFORT))})."]
    if s.has_stopped:
        out.append("has_stopped.")
    if s.speed_limit is not None:
        out.append(f"limit({_dm(s.speed_limit)}).")
    if s.stop_line is not None:
        out.append(f"stop_line({_dm(s.stop_line)}).")
        if s.light is not None:
            out.append(f"light({s.light.value}).")
        if s.stop_sign:
            out.append("stop_sign.")
    for side, exists, line in (("left", s.left_lane, s.left_line), ("right", s.right_lane, s.right_line)):
        if exists is False:
            out.append(f"no_lane({side}).")
        if line is not None and line is not MarkingKind.DASHED_WHITE:
            out.append(f"solid_line({side}).")
    if s.turns is not None:
        out += ["turns_known.", *(f"turn_offered({t.value})." for t in sorted(s.turns))]
    for i, user in enumerate(s.users):
        out += _user_facts(i, user)
    for speed in SPEEDS:
        reach, end = plan(speed, v, s.speed_limit)
        out.append(f"plan({speed},{_dm(reach)},{_dm(end)}).")
    out += [f"cand({_term(a)})." for a in {*ALL_ACTIONS, proposed}]
    out.append(f"proposed({_term(proposed)}).")
    return "\n".join(out)


# --- solving --------------------------------------------------------------------------------


@cache
def _rules_ast() -> tuple[clingo.ast.AST, ...]:
    """traffic.lp parsed once: each verify call only adds its facts."""
    parsed: list[clingo.ast.AST] = []
    clingo.ast.parse_string(PROGRAM, parsed.append)
    return tuple(parsed)


def _solve(program_facts: str) -> list[clingo.Symbol]:
    """The shown atoms of the optimal answer set."""
    ctl = clingo.Control(["--opt-mode=opt"])
    with clingo.ast.ProgramBuilder(ctl) as builder:
        for statement in _rules_ast():
            builder.add(statement)
    ctl.add("base", [], program_facts)
    ctl.ground([("base", [])])
    best: list[clingo.Symbol] = []

    def keep(model: clingo.Model) -> None:
        best[:] = model.symbols(shown=True)

    ctl.solve(on_model=keep)
    return best


def _action_of(term: clingo.Symbol) -> Action:
    speed, direction, kind = (a.name for a in term.arguments)
    change = {"lane_change": True, "turn": False, "either": None, "none": False}[kind]
    return Action(speed=speed, direction=direction, lane_change=change)


def _value(arg: clingo.Symbol) -> int | str:
    return arg.number if arg.type is clingo.SymbolType.Number else arg.name


class _Say(string.Formatter):
    """Fills a rule's "because" template: tenths back to units, user indices to names."""

    def __init__(self, users: tuple[RoadUser, ...]) -> None:
        self.users = users

    def format_field(self, value: Any, format_spec: str) -> str:
        if format_spec == "m":
            return f"{value / 10:.1f} m"
        if format_spec == "s":
            return f"{value / 10:.1f} s"
        if format_spec == "kmh":
            return f"{value * 0.36:.0f} km/h"
        if format_spec == "gap":
            return "alongside the ego" if value == 0 else f"{value / 10:.1f} m away"
        if format_spec == "user":
            user = self.users[value]
            return f"the {user.category.value.replace('_', ' ')} {user.id}"
        return super().format_field(value, format_spec)


def _violations(symbols: list[clingo.Symbol], action: Action, users: tuple[RoadUser, ...]) -> list[Violation]:
    """The rules ``action`` breaks, heaviest first, each with every reason found."""
    say, term = _Say(users), _term(action)
    reasons: dict[str, list[str]] = {}
    for sym in symbols:
        if sym.name == "because" and str(sym.arguments[1]) == term:
            rule = RULES[sym.arguments[0].name]
            args = [_value(a) for a in sym.arguments[2].arguments]
            reasons.setdefault(rule.name, []).append(say.format(rule.because, *args))
    found = [
        Violation(rule=r, weight=RULES[r].weight, explanation="; ".join(sorted(set(w)))) for r, w in reasons.items()
    ]
    return sorted(found, key=lambda v: (-v.weight, v.rule))


def _paragraph(action: Action, violations: list[Violation], safest: Action, safest_broken: list[Violation]) -> str:
    if not violations:
        return f'"{action}" breaks no traffic rule here.'
    broken = "; ".join(f"{v.explanation} ({v.rule.replace('_', ' ')})" for v in violations)
    text = f'"{action}" is not allowed: {broken}.'
    if not safest_broken:
        return f'{text} The safest legal action is "{safest}".'
    rules = ", ".join(v.rule.replace("_", " ") for v in safest_broken)
    return f'{text} No action keeps every rule; the least bad is "{safest}" (it breaks: {rules}).'


def _situation(situation_or_scene: Situation | Scene) -> Situation:
    if isinstance(situation_or_scene, Situation):
        return situation_or_scene
    if isinstance(situation_or_scene, Scene):
        return situation_from_scene(situation_or_scene)
    raise RoadthinkError(f"verify needs a Situation or a Scene, not {type(situation_or_scene).__name__}")


def verify(situation_or_scene: Situation | Scene, action: Action | str) -> Verdict:
    """The verdict on ``action`` (an Action, or text parse_action reads; unreadable text
    raises ActionParseError, a ValueError) in the situation or scene."""
    situation = _situation(situation_or_scene)
    action = action if isinstance(action, Action) else parse_action(action)
    symbols = _solve(facts(situation, action))
    chosen = next(_action_of(s.arguments[0]) for s in symbols if s.name == "choose")
    violations = _violations(symbols, action, situation.users)
    safest = action if not violations else chosen
    safest_broken = _violations(symbols, safest, situation.users) if violations else []
    return Verdict(
        action=action,
        legal=not violations,
        violations=violations,
        explanation=_paragraph(action, violations, safest, safest_broken),
        safest=safest,
    )


def safest_action(situation_or_scene: Situation | Scene, proposed: Action | str) -> Action:
    """``proposed`` when it is legal; otherwise the legal action nearest to it, or, when
    every action breaks a rule, the one with the least total weight of broken rules."""
    return verify(situation_or_scene, proposed).safest
