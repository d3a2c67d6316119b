"""What an evaluation records: a parsed answer, its score, and one line per sample in
``RUN/samples.jsonl`` (fields of ../shared/DESIGN.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from roadthink.agent.trace import Trace
from roadthink.errors import RoadthinkError


class Parsed(BaseModel):
    """A model's answer read leniently: the value in the sample's answer form, or why not.

    ``value`` is a letter for choice questions, "yes"/"no", a number, "speed, direction" for
    meta-actions, [x1, y1, x2, y2] for boxes, six [x, y] pairs for waypoints. ``strict`` says
    whether the reply kept to the requested format (format compliance), as opposed to being
    rescued by lenient reading."""

    model_config = ConfigDict(extra="forbid")

    value: Any = None
    error: str | None = None  # one line: why nothing could be read
    strict: bool = False


class Scored(BaseModel):
    """How good one parsed answer is: ``correct`` is None where right/wrong does not apply
    (trajectories); ``details`` holds the task-specific measures (IoU, L2 at each horizon,
    collision, speed/direction parts, fact counts, absolute error)."""

    model_config = ConfigDict(extra="forbid")

    correct: bool | None
    score: float
    details: dict[str, Any] = Field(default_factory=dict)


class Result(BaseModel):
    """One line of RUN/samples.jsonl."""

    model_config = ConfigDict(extra="forbid")

    id: str
    family: str
    task: str
    answer_type: str
    prediction: str  # the model's raw text
    parsed: Any = None
    correct: bool | None = None
    score: float = 0.0
    error: str | None = None  # one line: unparsable answer, model failure, unreadable image
    strict: bool = False
    details: dict[str, Any] = Field(default_factory=dict)
    latency_s: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    condition: str = "clean"  # "clean", "<corruption>:<severity>" or "text_only"
    trace: Trace | None = None  # the agent's episode, when there is an agent
    rules: dict[str, Any] | None = None  # a planned action's traffic-rule check (eval.runner.check_action)


def finished_results(path: Path) -> tuple[list[Result], int]:
    """The finished lines of RUN/samples.jsonl and how many bytes they take: a torn last line
    (a run still writing, or killed mid-write) is left out; any other line that is not a
    result is an error naming file and line."""
    raw = path.read_bytes()
    finished = raw[: raw.rfind(b"\n") + 1]
    results = []
    for number, line in enumerate(finished.decode(errors="replace").splitlines(), 1):
        try:
            results.append(Result.model_validate_json(line))
        except ValueError:
            raise RoadthinkError(f"{path}:{number}: not a result line") from None
    return results, len(finished)
