"""Scripted agents: deterministic tool-calling policies that exercise the loop, the tools, the
limits and the report without a VLM. Each turn replays the next step of a script; after the
script the oracle answers (it reads the ground-truth scene), so a run's accuracy shows that
tool use did not get in the way of the answer.

Model strings ``scripted:<policy>``: ``look`` (zoom on the first image's centre with a native
call, then a past frame asked for in text), ``sense`` (detect, measure the first detection,
check the rules), ``clumsy`` (a call that is not JSON, an unknown tool, a box with no area, a
camera that does not exist, then an answer), ``stubborn`` (asks for tools forever: the limits
end it).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from typing import Any

from roadthink.errors import RoadthinkError
from roadthink.models.base import register
from roadthink.models.oracle import OracleModel
from roadthink.models.types import Completion, Message, ToolCall

Step = Callable[[list[Message]], Completion]
CHARS_PER_TOKEN = 4  # a BPE tokenizer's rough rate on English
IMAGE_TOKENS = 256  # what a VLM spends on one image (Qwen2-VL: a 448x448 image)


def prompt_tokens(messages: list[Message]) -> int:
    """What a VLM would count for ``messages``, so scripted episodes cost like real ones:
    longer histories and more images cost more."""
    return sum(len(m.text) // CHARS_PER_TOKEN + IMAGE_TOKENS * len(m.images) for m in messages)


def native(name: str, **arguments: Any) -> Step:
    """A turn that calls ``name`` with OpenAI-style tool calls."""
    return lambda messages: Completion(
        text="", tool_calls=[ToolCall(id=f"call_{_turn(messages)}", name=name, arguments=json.dumps(arguments))]
    )


def written(text: str) -> Step:
    """A turn that writes ``text`` (tool calls in it are Qwen-style ``<tool_call>`` blocks)."""
    return lambda messages: Completion(text=text)


def in_text(name: str, **arguments: Any) -> Step:
    call = json.dumps({"name": name, "arguments": arguments})
    return written(f"<think>I should look again.</think>\n<tool_call>{call}</tool_call>")


def _turn(messages: list[Message]) -> int:
    """How many replies the model has given in this episode: the script's position."""
    return sum(m.role == "assistant" for m in messages)


class ScriptedModel:
    """Plays ``script`` turn by turn, then answers as the oracle (or ``final`` when given)."""

    reads_scene = True

    def __init__(self, name: str, script: Sequence[Step], final: str | None = None, repeat: bool = False) -> None:
        self.name = name
        self.script = list(script)
        self.final = final
        self.repeat = repeat
        self.calls = 0

    async def generate(self, messages: list[Message], **options: Any) -> Completion:
        start = time.perf_counter()
        self.calls += 1
        turn = _turn(messages)
        asked_to_answer = "final answer now" in messages[-1].text
        if not asked_to_answer and options.get("tools") and (self.repeat or turn < len(self.script)):
            step = self.script[turn % len(self.script)]
            completion = step(messages)
        elif self.final is not None:
            completion = Completion(text=self.final)
        else:
            completion = await OracleModel().generate(messages, **options)
        return completion.model_copy(
            update={
                "prompt_tokens": prompt_tokens(messages),
                "completion_tokens": max(1, len(completion.text) // CHARS_PER_TOKEN),
                "latency_s": time.perf_counter() - start,
            }
        )


POLICIES: dict[str, Callable[[], ScriptedModel]] = {
    "look": lambda: ScriptedModel(
        "scripted:look",
        [
            native("zoom", view="CAM_FRONT", bbox=[160, 90, 480, 270]),
            in_text("past_frame", camera="CAM_FRONT", seconds_ago=1),
        ],
    ),
    "sense": lambda: ScriptedModel(
        "scripted:sense",
        [
            native("detect", camera="CAM_FRONT"),
            native("measure", a="d1"),
            native("check_rules", action="keep, straight"),
        ],
    ),
    "clumsy": lambda: ScriptedModel(
        "scripted:clumsy",
        [
            written('<tool_call>{"name": "zoom", "arguments": {bbox: [1, 2]}</tool_call>'),
            native("teleport", to="home"),
            native("zoom", view="CAM_FRONT", bbox=[100, 100, 100, 200]),
            native("view", camera="CAM_ROOF"),
        ],
    ),
    "stubborn": lambda: ScriptedModel("scripted:stubborn", [native("view", camera="BEV")], repeat=True),
}


def _factory(argument: str, settings: dict[str, Any]) -> ScriptedModel:
    if argument not in POLICIES:
        raise RoadthinkError(f"unknown scripted policy {argument!r}; known: {', '.join(POLICIES)}")
    return POLICIES[argument]()


register("scripted", _factory)
