"""The multi-turn loop: the model answers or asks for tools; tools run and their results
(text and images) go back; until an answer or a limit.

Tool calls are read in both forms models use: native OpenAI ``tool_calls``, and Qwen/Hermes
``<tool_call>{json}</tool_call>`` in the text. A call that cannot run (unknown tool, text
that is not JSON, bad arguments, a view that does not exist) is answered with an error
observation and the episode goes on: one slip does not end it. When a limit is reached
(turns, tool calls, tokens, wall time) the model is asked once, without tools, for its
answer. Everything is recorded in the :class:`Trace`.
"""

from __future__ import annotations

import asyncio
import json
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from roadthink.agent.registry import Tool, ToolError, call_tool
from roadthink.agent.trace import Stop, ToolStep, Trace, Turn
from roadthink.agent.workspace import Workspace
from roadthink.models.base import Model
from roadthink.models.toolcalls import split_tool_calls
from roadthink.models.types import Completion, ImagePart, ImageURL, Message, TextPart, ToolCall

ANSWER_NOW = "{why} Do not call tools any more: give your final answer now, inside <answer></answer>."


@dataclass(frozen=True)
class Limits:
    """Per sample. Exceeding any of them ends the tool phase with one forced answer."""

    turns: int = 6  # model calls that may ask for tools
    tool_calls: int = 8
    tokens: int = 16_000  # prompt + completion, summed over turns
    seconds: float = 120.0


def tool_instructions(tools: list[Tool]) -> str:
    """The tools as text, for models that have no native tool calling (and as a reminder
    for those that do)."""
    listing = "\n".join(json.dumps(t.schema()["function"], separators=(",", ":")) for t in tools)
    return (
        "You can use tools to look again before answering. To call one, write\n"
        '<tool_call>{"name": NAME, "arguments": {...}}</tool_call>\n'
        "and wait for the result. Available tools:\n" + listing
    )


async def run_episode(
    model: Model,
    messages: list[Message],
    workspace: Workspace,
    tools: list[Tool],
    limits: Limits = Limits(),
    mode: str = "slow",
    run_folder: Path | None = None,
    **options: Any,
) -> tuple[str, Trace]:
    """Drive ``model`` from ``messages`` to a final reply; returns it and the trace.
    ``options`` go to every ``generate`` call (the runner's sample, scene, seed…)."""
    trace = Trace(mode=mode)
    history = list(messages)
    if tools:
        history = _with_instructions(history, tool_instructions(tools))
    schemas = [t.schema() for t in tools]
    deadline = time.monotonic() + limits.seconds
    note: str | None = None
    while True:
        stop = _limit_reached(trace, limits, deadline) if tools else None
        if stop is not None:
            return await _forced_answer(model, history, trace, stop, deadline, options)
        try:
            completion = await _generate(model, history, deadline, tools=schemas or None, **options)
        except TimeoutError:
            trace.stopped = "time"
            return "", trace
        text, calls, problems = _calls_in(completion)
        turn = _turn(completion, text, note)
        trace.turns.append(turn)
        note = None
        if not tools or (not calls and not problems):
            return completion.text, trace
        turn.call_format = "native" if completion.tool_calls else "text"
        history.append(Message(role="assistant", content=text, tool_calls=calls))
        room = limits.tool_calls - len(trace.tool_calls)
        for call in calls[:room]:
            step = await _run_tool(workspace, tools, call, run_folder)
            turn.calls.append(step)
            history += _observation(step, run_folder)
        if len(calls) > room:
            note = f"{len(calls) - room} tool calls over the limit were not run"
        if problems:
            history.append(Message(role="user", content="Your tool call could not be read: " + "; ".join(problems)))
            turn.calls.append(
                ToolStep(id="unreadable", name="?", arguments="", observation=problems[0], error=problems[0])
            )


def _with_instructions(messages: list[Message], instructions: str) -> list[Message]:
    """The system message (made if missing) with the tool instructions appended."""
    if messages and messages[0].role == "system":
        return [Message(role="system", content=f"{messages[0].text}\n\n{instructions}"), *messages[1:]]
    return [Message(role="system", content=instructions), *messages]


def _limit_reached(trace: Trace, limits: Limits, deadline: float) -> Stop | None:
    if trace.model_calls >= limits.turns:
        return "turns"
    if len(trace.tool_calls) >= limits.tool_calls:
        return "tool_calls"
    if trace.tokens >= limits.tokens:
        return "tokens"
    if time.monotonic() >= deadline:
        return "time"
    return None


async def _generate(model: Model, history: list[Message], deadline: float, **options: Any) -> Completion:
    """One model call, given only the time the episode has left."""
    async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
        return await model.generate(history, **options)


def _calls_in(completion: Completion) -> tuple[str, list[ToolCall], list[str]]:
    """The reply's text, its tool calls (native first, else written in the text), and a
    reason for each written call that could not be read."""
    if completion.tool_calls:
        return completion.text, completion.tool_calls, []
    return split_tool_calls(completion.text)


def _turn(completion: Completion, text: str, note: str | None) -> Turn:
    return Turn(
        text=text,
        prompt_tokens=completion.prompt_tokens,
        completion_tokens=completion.completion_tokens,
        latency_s=completion.latency_s,
        note=note,
    )


async def _run_tool(workspace: Workspace, tools: list[Tool], call: ToolCall, run_folder: Path | None) -> ToolStep:
    """Run one call off the event loop (tools render and crop); its failure is an observation."""
    start = time.perf_counter()
    step = ToolStep(id=call.id, name=call.name, arguments=call.arguments, observation="")
    try:
        result = await asyncio.to_thread(call_tool, workspace, tools, call.name, call.arguments)
    except ToolError as e:
        step.observation = step.error = str(e)
    except Exception as e:  # a tool's own failure is the episode's observation, not the run's end
        reason = traceback.format_exception_only(e)[-1].strip().replace("\n", " ")
        step.observation = step.error = f"{call.name} failed: {reason}"
    else:
        step.observation = result.text
        step.data = result.data
        seen = workspace.images.get(result.data.get("view", ""))
        if seen is not None:  # the picture the tool worked on, for the report to draw on
            step.data["view_image"] = str(_relative(seen, run_folder))
        paths = [workspace.save(image, call.name) for image in result.images]
        step.images = [str(_relative(p, run_folder)) for p in paths]
    step.seconds = round(time.perf_counter() - start, 4)
    return step


def _relative(path: Path, root: Path | None) -> Path:
    return path.relative_to(root) if root is not None and path.is_relative_to(root) else path


def _observation(step: ToolStep, run_folder: Path | None) -> list[Message]:
    """The tool's answer: its text as the tool message, and its images in a user message
    after it (OpenAI-style tool messages carry text only)."""
    prefix = "error: " if step.error else ""
    messages = [Message(role="tool", tool_call_id=step.id, content=prefix + step.observation)]
    if step.images:
        root = run_folder if run_folder is not None else Path()
        parts: list[TextPart | ImagePart] = [TextPart(text=f"Result of {step.name} ({step.id}):")]
        parts += [ImagePart(image_url=ImageURL(url=(root / p).resolve().as_uri())) for p in step.images]
        messages.append(Message(role="user", content=parts))
    return messages


async def _forced_answer(
    model: Model, history: list[Message], trace: Trace, stop: Stop, deadline: float, options: dict[str, Any]
) -> tuple[str, Trace]:
    """One last call without tools, after a limit; with no time left, no call at all."""
    trace.stopped = stop
    if stop == "time":
        return (trace.turns[-1].text if trace.turns else ""), trace
    why = {"turns": "You have used all your turns.", "tool_calls": "You have used all your tool calls."}.get(
        stop, "You have used your token budget."
    )
    history = [*history, Message(role="user", content=ANSWER_NOW.format(why=why))]
    try:
        completion = await _generate(model, history, deadline, **options)
    except TimeoutError:
        trace.stopped = "time"
        return "", trace
    trace.turns.append(_turn(completion, completion.text, f"limit: {stop}"))
    return completion.text, trace
