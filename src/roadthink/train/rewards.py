"""Verifiable rewards for GRPO, in TRL's form: a plain function per reward that takes the
batch's completions (and the dataset's columns as keyword lists) and returns one float per
completion, or None where it does not apply (TRL leaves those out). TRL logs each by its
function name, so the names say what they reward.

Every reward reads the answer with the evaluation's own parser and scores it with the
evaluation's own measures: what training pays for is what the benchmark counts. The dataset
carries each sample as JSON (``sample``) and, for plans, the scene file (``scene_file``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from functools import lru_cache, wraps
from pathlib import Path
from typing import Any

from roadthink.errors import RoadthinkError
from roadthink.eval.metrics import collisions, l2_errors, plan_score, score
from roadthink.eval.parsing import parse_answer
from roadthink.eval.result import Parsed
from roadthink.models.toolcalls import TOOL_CALL
from roadthink.scene.io import load_scene
from roadthink.scene.types import Scene
from roadthink.tasks.sample import AnswerType, Sample
from roadthink.train.captions import seen_in, sight_score

Reward = Callable[..., list[float | None]]
FORMAT = re.compile(r"<think>.+?</think>\s*<answer>.+?</answer>", re.DOTALL)
BREVITY_BUDGET = 200  # characters a fast answer may take before the brevity reward falls off


def text_of(completion: Any) -> str:
    """A completion as text: TRL passes strings, or (conversational data) a list of messages
    whose content is a string or text parts."""
    if isinstance(completion, str):
        return completion
    parts = []
    for message in completion:
        content = message.get("content", "") if isinstance(message, dict) else str(message)
        if isinstance(content, list):
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        parts.append(content or "")
    return "\n".join(parts)


@lru_cache(maxsize=256)
def _sample(json_text: str) -> Sample:
    return Sample.model_validate_json(json_text)


@lru_cache(maxsize=64)
def _scene(path: str) -> Scene:
    return load_scene(Path(path))


def _graded(completions: Sequence[Any], sample: Sequence[str]) -> list[tuple[Sample, Parsed]]:
    """(sample, the answer as the evaluation reads it) per completion."""
    out = []
    for completion, row in zip(completions, sample, strict=True):
        s = _sample(row)
        out.append((s, parse_answer(text_of(completion), s.answer_type, s.choices)))
    return out


def accuracy_reward(completions: Sequence[Any], sample: Sequence[str], **kwargs: Any) -> list[float | None]:
    """The evaluation's score of the answer: 1 or 0 for choices, yes/no, counts and
    meta-actions, the IoU for boxes; None for plans (waypoint_reward scores those)."""
    return [
        None if s.answer_type is AnswerType.WAYPOINTS else score(s, parsed).score
        for s, parsed in _graded(completions, sample)
    ]


def format_reward(completions: Sequence[Any], **kwargs: Any) -> list[float | None]:
    """1 when the completion is reasoning then an answer: ``<think>…</think><answer>…</answer>``."""
    return [1.0 if FORMAT.fullmatch(text_of(c).strip()) else 0.0 for c in completions]


def waypoint_reward(completions: Sequence[Any], sample: Sequence[str], **kwargs: Any) -> list[float | None]:
    """For plans: the evaluation's plan score, 1 / (1 + mean L2 over 3 s), 1 for a perfect plan,
    0.5 at 1 m of error; 0 for a plan that does not parse; None for other questions."""
    rewards: list[float | None] = []
    for s, parsed in _graded(completions, sample):
        if s.answer_type is not AnswerType.WAYPOINTS:
            rewards.append(None)
        else:
            rewards.append(0.0 if parsed.value is None else plan_score(l2_errors(parsed.value, s.answer)))
    return rewards


def collision_free_reward(
    completions: Sequence[Any], sample: Sequence[str], scene_file: Sequence[str], **kwargs: Any
) -> list[float | None]:
    """For plans: 1 when the ego's planned boxes touch no road user's true future box over
    3 s, else 0 (also for a plan that does not parse); None for other questions."""
    rewards: list[float | None] = []
    for (s, parsed), path in zip(_graded(completions, sample), scene_file, strict=True):
        if s.answer_type is not AnswerType.WAYPOINTS:
            rewards.append(None)
        elif parsed.value is None:
            rewards.append(0.0)
        else:
            rewards.append(float(not collisions(parsed.value, _scene(path))["collision_3s"]))
    return rewards


def meta_action_reward(completions: Sequence[Any], sample: Sequence[str], **kwargs: Any) -> list[float | None]:
    """Partial credit for meta-actions: half for the right speed, half for the right
    direction; None for other questions."""
    rewards: list[float | None] = []
    for s, parsed in _graded(completions, sample):
        if s.answer_type is not AnswerType.META_ACTION:
            rewards.append(None)
        else:
            parts = score(s, parsed).details  # the evaluation's own speed and direction checks
            rewards.append(0.5 * parts.get("speed_ok", False) + 0.5 * parts.get("direction_ok", False))
    return rewards


def sight_reward(
    completions: Sequence[Any], sample: Sequence[str], scene_file: Sequence[str], **kwargs: Any
) -> list[float | None]:
    """For replies that open with what the image shows (``I see: …``, SFT's ``--look-first``):
    how right that line is about what the question rests on, checked against the scene
    (``captions.sight_score``: a side question's road user is paid for its side, distance and
    lane alike); None where no caption fact answers the question. Verifiable like the answer,
    and paid on the reading itself: the answer reward pays a lucky guess as much as a reading."""
    return [
        sight_score(text_of(c), _seen(row, path)) for c, row, path in zip(completions, sample, scene_file, strict=True)
    ]


@lru_cache(maxsize=256)
def _seen(row: str, path: str) -> tuple[str, str] | None:
    """What a sample's opening line should say, once for its group of completions (it places
    road users among the scene's lanes)."""
    return seen_in(_sample(row), _scene(path))


def brevity_reward(completions: Sequence[Any], **kwargs: Any) -> list[float | None]:
    """For fast thinking: 1 up to BREVITY_BUDGET characters, then falling as the budget over
    the length (0.5 at twice the budget)."""
    return [min(1.0, BREVITY_BUDGET / max(1, len(text_of(c)))) for c in completions]


def tool_bonus_reward(completions: Sequence[Any], sample: Sequence[str], **kwargs: Any) -> list[float | None]:
    """1 when the completion used a tool and its answer is right, else 0: looking again is
    paid only when it helped, so a policy cannot farm the bonus with idle calls."""
    right = accuracy_reward(completions, sample)
    return [float(bool(_tool_calls(c)) and r is not None and r >= 1.0) for c, r in zip(completions, right, strict=True)]


def _tool_calls(completion: Any) -> int:
    """Tool calls in a completion: native ones in its messages, or written ``<tool_call>`` blocks."""
    native = (
        sum(len(m.get("tool_calls") or []) for m in completion if isinstance(m, dict))
        if not isinstance(completion, str)
        else 0
    )
    return native + len(TOOL_CALL.findall(text_of(completion)))


REWARDS: dict[str, Reward] = {
    fn.__name__.removesuffix("_reward"): fn
    for fn in (
        accuracy_reward,
        format_reward,
        waypoint_reward,
        collision_free_reward,
        meta_action_reward,
        sight_reward,
        brevity_reward,
        tool_bonus_reward,
    )
}


def checked(reward: Reward) -> Reward:
    """``reward`` that refuses to return NaN or infinity (which would silently poison the
    advantages) with one line naming the reward and the completion; None stays allowed."""

    @wraps(reward)
    def run(completions: Sequence[Any], **kwargs: Any) -> list[float | None]:
        values = reward(completions, **kwargs)
        if len(values) != len(completions):
            raise RoadthinkError(f"reward {reward.__name__}: {len(values)} values for {len(completions)} completions")
        for i, value in enumerate(values):
            if value is not None and not math.isfinite(value):
                raise RoadthinkError(f"reward {reward.__name__} returned {value} for completion {i}")
        return values

    return run


def select_rewards(names: Sequence[str]) -> list[Reward]:
    """Rewards by name (``accuracy``, ``format``, …), each NaN-checked; an unknown name is a
    one-line error listing the known ones."""
    unknown = [n for n in names if n not in REWARDS]
    if unknown:
        raise RoadthinkError(f"unknown reward {unknown[0]!r}; known: {', '.join(REWARDS)}")
    return [checked(REWARDS[n]) for n in names]
