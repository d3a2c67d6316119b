"""Tool calls written in a model's text, Qwen/Hermes style: ``<tool_call>{"name": …,
"arguments": {…}}</tool_call>``. Models served without a tool parser (and every model loaded
with transformers) ask for tools this way; this reads them into :class:`ToolCall` objects."""

from __future__ import annotations

import json
import re

from roadthink.models.types import ToolCall

TOOL_CALL = re.compile(r"<tool_call>\s*(.*?)\s*</tool_call>", re.DOTALL)


def split_tool_calls(text: str) -> tuple[str, list[ToolCall], list[str]]:
    """``text`` without its well-formed tool-call blocks, the calls they hold, and a one-line
    reason for every block that is not a call (left in the text, so nothing is lost)."""
    calls: list[ToolCall] = []
    problems: list[str] = []

    def take(match: re.Match[str]) -> str:
        try:
            body = json.loads(match[1])
        except ValueError as e:
            problems.append(f"tool call {len(calls) + len(problems) + 1}: not JSON ({e})")
            return match[0]
        if not isinstance(body, dict) or not isinstance(body.get("name"), str):
            problems.append(f"tool call {len(calls) + len(problems) + 1}: no 'name'")
            return match[0]
        arguments = body.get("arguments", body.get("parameters", {}))
        arguments = arguments if isinstance(arguments, str) else json.dumps(arguments)
        calls.append(ToolCall(id=f"call_{len(calls)}", name=body["name"], arguments=arguments))
        return ""

    rest = TOOL_CALL.sub(take, text)
    return (rest.strip() if calls else text), calls, problems
