"""Thinking modes: ``fast`` answers at once, ``slow`` thinks step by step with tools, and
``auto`` decides per sample, paying for slow thinking only where it is likely to matter.

``auto`` looks first at how busy the scene looks to a detector (how many road users, unusual
obstacles, half-hidden things) and at the kind of question; a busy scene goes slow at once.
Otherwise it asks for one short answer with token log-probabilities: a confident answer
stands, an unsure one goes slow. A backend that gives no log-probabilities is asked for a few
more short answers at a sampling temperature instead: if they all agree the answer stands,
else the sample goes slow.
"""

from __future__ import annotations

import asyncio
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from roadthink.agent.loop import Limits, run_episode
from roadthink.agent.registry import select_tools
from roadthink.agent.trace import Trace, Turn
from roadthink.agent.workspace import Workspace
from roadthink.eval.metrics import iou
from roadthink.eval.parsing import parse_answer
from roadthink.models.base import Model
from roadthink.models.types import Completion, Message
from roadthink.scene.cameras import CAMERA_NAMES
from roadthink.scene.types import Category
from roadthink.tasks.sample import AnswerType, Sample

Mode = Literal["fast", "slow", "auto"]
MODES: tuple[Mode, ...] = ("fast", "slow", "auto")
FAST = "Answer at once, without explanation: reply with only <answer>…</answer>."
SLOW = (
    "Think step by step inside <think></think> before you answer. When a detail matters and is small, far, "
    "hidden, moving or outside this image, look again with a tool instead of guessing."
)
UNUSUAL = {Category.TRAFFIC_CONE.value, Category.BARRIER.value, Category.DEBRIS.value, Category.ANIMAL.value}
HARD_FAMILIES = {"prediction", "risk", "planning"}  # questions about motion and decisions


@dataclass(frozen=True)
class AgentConfig:
    mode: Mode = "slow"
    tools: tuple[str, ...] | None = None  # None: every tool
    limits: Limits = field(default_factory=Limits)
    fast_tokens: int = 64
    busy: float = 0.6  # auto: scene complexity from which it thinks slowly at once
    confident: float = 0.8  # auto: probability of the answer's first token above which a short answer stands
    votes: int = 3  # auto, without log-probabilities: short answers that must agree
    vote_temperature: float = 0.8


def with_instruction(messages: list[Message], instruction: str) -> list[Message]:
    """The system message with the mode's instruction appended."""
    if messages and messages[0].role == "system":
        return [Message(role="system", content=f"{messages[0].text}\n{instruction}"), *messages[1:]]
    return [Message(role="system", content=instruction), *messages]


async def solve(
    model: Model,
    messages: list[Message],
    workspace: Workspace,
    config: AgentConfig,
    run_folder: Path | None = None,
    *,
    sample: Sample,
    **options: Any,
) -> tuple[str, Trace]:
    """The final reply to ``sample`` in the configured mode, and how it was reached;
    ``options`` (and ``sample``) go to every model call."""
    options["sample"] = sample
    if config.mode == "fast":
        return await _fast(model, messages, config, options)
    if config.mode == "slow":
        return await _slow(model, messages, workspace, config, run_folder, options)
    busy = complexity(sample, workspace)
    if busy >= config.busy:
        reply, trace = await _slow(model, messages, workspace, config, run_folder, options)
        trace.mode, trace.route = "auto", f"slow: scene complexity {busy:.2f} >= {config.busy:g}"
        return reply, trace
    short = with_instruction(messages, FAST)
    first = await model.generate(short, **{**options, "max_tokens": config.fast_tokens, "logprobs": True})
    trace = Trace(mode="auto", turns=[_turn(first)])
    sure = answer_confidence(first)
    if sure is not None:
        if sure >= config.confident:
            trace.route = f"fast: answer confidence {sure:.2f} >= {config.confident:g} (complexity {busy:.2f})"
            return first.text, trace
        why = f"answer confidence {sure:.2f} < {config.confident:g}"
    else:
        more = await asyncio.gather(
            *(
                model.generate(
                    short,
                    **{**options, "max_tokens": config.fast_tokens, "temperature": config.vote_temperature, "seed": i},
                )
                for i in range(1, config.votes)
            )
        )
        trace.turns += [_turn(c) for c in more]
        answers = [parse_answer(c.text, sample.answer_type, sample.choices).value for c in [first, *more]]
        if agreement(answers, sample.answer_type) is not None:
            trace.route = f"fast: {config.votes} short answers agree (complexity {busy:.2f})"
            return first.text, trace
        why = f"{config.votes} short answers disagree"
    reply, slow = await _slow(model, messages, workspace, config, run_folder, options)
    trace.turns += slow.turns
    trace.stopped = slow.stopped
    trace.route = f"slow: {why} (complexity {busy:.2f})"
    return reply, trace


def answer_confidence(completion: Completion) -> float | None:
    """The probability the model gave the first token of its answer (after ``<answer>``, or
    of its reply when it wrote no tag); None without log-probabilities."""
    if not completion.logprobs:
        return None
    text = ""
    start = None
    for entry in completion.logprobs:
        if start is None and "<answer>" in text:
            start = len(text)
        if start is not None and entry.token.strip():
            return math.exp(entry.logprob)
        text += entry.token
    first = next((e for e in completion.logprobs if e.token.strip()), None)
    return None if first is None else math.exp(first.logprob)


async def _fast(model: Model, messages: list[Message], config: AgentConfig, options: dict) -> tuple[str, Trace]:
    completion = await model.generate(with_instruction(messages, FAST), **{**options, "max_tokens": config.fast_tokens})
    return completion.text, Trace(mode="fast", turns=[_turn(completion)])


async def _slow(
    model: Model, messages: list[Message], workspace: Workspace, config: AgentConfig, run_folder: Path | None, options
) -> tuple[str, Trace]:
    tools = select_tools(config.tools)
    return await run_episode(
        model, with_instruction(messages, SLOW), workspace, tools, config.limits, "slow", run_folder, **options
    )


def _turn(completion: Completion) -> Turn:
    return Turn(
        text=completion.text,
        prompt_tokens=completion.prompt_tokens,
        completion_tokens=completion.completion_tokens,
        latency_s=completion.latency_s,
    )


def complexity(sample: Sample, workspace: Workspace) -> float:
    """How busy the first camera view looks to the detector, 0 (empty road) to about 1: many road
    users, unusual obstacles, half-hidden things; questions about motion, risk and plans add
    to it. Only what a deployed system could know: the detector's output and the question."""
    score = 0.3 if sample.family in HARD_FAMILIES else 0.0
    if workspace.scene is None:
        return score + 0.5  # nothing to look at cheaply: assume the worst
    camera = next((key for key in workspace.images if key in CAMERA_NAMES), "CAM_FRONT")  # cameras, not the BEV
    found = workspace.detector.detect(workspace.image(camera), camera, workspace.scene, workspace.seed)
    score += 0.4 * min(1.0, len(found) / 8)
    score += 0.2 * any(d.category in UNUSUAL for d in found)
    score += 0.1 * any(d.score < 0.7 for d in found)  # partly hidden
    return round(score, 3)


def agreement(answers: list[Any], kind: AnswerType) -> int | None:
    """Index of an answer that all readable answers agree with (the same choice, number or
    action; boxes overlapping at IoU >= 0.5; plans ending within 2 m), or None."""
    if not answers or any(a is None for a in answers):
        return None
    if kind is AnswerType.BOX:
        return 0 if all(iou(answers[0], a) >= 0.5 for a in answers[1:]) else None
    if kind is AnswerType.WAYPOINTS:
        end = answers[0][-1]
        return 0 if all(((a[-1][0] - end[0]) ** 2 + (a[-1][1] - end[1]) ** 2) ** 0.5 <= 2.0 for a in answers) else None
    counts = Counter(str(a) for a in answers)
    top, n = counts.most_common(1)[0]
    return next(i for i, a in enumerate(answers) if str(a) == top) if n == len(answers) else None
