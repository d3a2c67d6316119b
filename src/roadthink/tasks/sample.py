"""A benchmark sample: the question, what the model sees, the exact answer, and reference
reasoning whose every fact a checker can verify against the scene."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class AnswerType(StrEnum):
    CHOICE = "choice"
    YES_NO = "yes_no"
    NUMBER = "number"
    WAYPOINTS = "waypoints"
    META_ACTION = "meta_action"
    BOX = "box"
    TEXT = "text"


class Fact(BaseModel):
    """One machine-checkable claim, e.g. ``{"type": "count", "category": "car", "value": 2}``."""

    model_config = ConfigDict(extra="allow")

    type: str


class Step(BaseModel):
    """One reasoning step: what a person would say, and the facts it rests on."""

    model_config = ConfigDict(extra="forbid")

    text: str
    facts: list[Fact] = []


class View(BaseModel):
    """An image the model is shown: a camera (or ``BEV``) at a moment of the scene."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    camera: str
    t: float = 0.0  # seconds relative to the scene; negative: a past frame

    @property
    def key(self) -> str:
        return self.camera if self.t == 0 else f"{self.camera}@{self.t:+g}s"


class Sample(BaseModel):
    """A question about one scene with its exact answer (fields of ../shared/DESIGN.md)."""

    model_config = ConfigDict(extra="forbid")

    id: str
    family: str
    task: str
    question: str
    choices: list[str] | None = None
    answer: Any
    answer_type: AnswerType
    views: list[View] = Field(default_factory=list)
    images: list[str] = Field(default_factory=list)  # paths relative to the bench dir, one per view
    scene: str = ""  # path of the scene file relative to the bench dir
    scene_id: str
    reference_steps: list[Step]
    meta: dict[str, Any] = Field(default_factory=dict)  # what the question is about (balance keys, targets)
