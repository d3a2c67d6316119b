"""What crosses the model interface: chat messages in the OpenAI shape, and completions."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class TextPart(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["text"] = "text"
    text: str


class ImageURL(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str  # "data:image/png;base64,…", "file:///…" or "https://…"
    detail: Literal["auto", "low", "high"] = "auto"


class ImagePart(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["image_url"] = "image_url"
    image_url: ImageURL


class ToolCall(BaseModel):
    """A function call the model asked for (arguments as the JSON text it wrote)."""

    model_config = ConfigDict(extra="forbid")

    id: str
    name: str
    arguments: str


class Message(BaseModel):
    """One chat message: plain text content, or a list of text and image parts."""

    model_config = ConfigDict(extra="forbid")

    role: Literal["system", "user", "assistant", "tool"]
    content: str | list[TextPart | ImagePart] = ""
    tool_calls: list[ToolCall] = Field(default_factory=list)
    tool_call_id: str | None = None

    @property
    def text(self) -> str:
        """The message's text parts joined: what a model that cannot see reads."""
        if isinstance(self.content, str):
            return self.content
        return "\n".join(p.text for p in self.content if isinstance(p, TextPart))

    @property
    def images(self) -> list[str]:
        return (
            [] if isinstance(self.content, str) else [p.image_url.url for p in self.content if isinstance(p, ImagePart)]
        )


class TokenLogprob(BaseModel):
    """One generated token's log-probability and its most likely alternatives (OpenAI's
    ``logprobs.content`` entry), for answer confidence."""

    model_config = ConfigDict(extra="forbid")

    token: str
    logprob: float
    top: dict[str, float] = Field(default_factory=dict)  # alternative token -> log-probability


class Completion(BaseModel):
    """A model's reply with what it cost."""

    model_config = ConfigDict(extra="forbid")

    text: str
    tool_calls: list[ToolCall] = Field(default_factory=list)
    logprobs: list[TokenLogprob] | None = None  # when asked for (generate(..., logprobs=True)) and given
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0
    raw: dict[str, Any] | None = None  # the backend's own response, when there is one
