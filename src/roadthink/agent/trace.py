"""The record of an episode: every model turn and every tool call, with what it cost. It is
stored with the result (RUN/samples.jsonl), drawn in the report, and is the material that
training on tool use learns from."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Stop = Literal["answer", "turns", "tool_calls", "tokens", "time"]


class ToolStep(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    name: str
    arguments: str  # as the model wrote them
    observation: str  # what the model was told
    images: list[str] = Field(default_factory=list)  # files shown to the model, relative to the run folder
    data: dict[str, Any] = Field(default_factory=dict)
    error: str | None = None  # one line, when the call failed
    seconds: float = 0.0


class Turn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str
    calls: list[ToolStep] = Field(default_factory=list)
    call_format: Literal["native", "text"] | None = None  # how the model asked for tools
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0
    note: str | None = None  # e.g. why the loop forced an answer before this turn


class Trace(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: str
    turns: list[Turn] = Field(default_factory=list)
    stopped: Stop = "answer"
    route: str | None = None  # auto mode: which way it went and why
    verdict: dict[str, Any] | None = None  # the traffic-rule check of the final action, when made

    @property
    def model_calls(self) -> int:
        return len(self.turns)

    @property
    def tokens(self) -> int:
        return sum(t.prompt_tokens + t.completion_tokens for t in self.turns)

    @property
    def tool_calls(self) -> list[ToolStep]:
        return [c for t in self.turns for c in t.calls]

    @property
    def tool_errors(self) -> int:
        return sum(c.error is not None for c in self.tool_calls)
