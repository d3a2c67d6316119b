"""An agent's trace as a person reads it in the report: each turn's reasoning, each tool call
with its arguments and what came back, the zoom window drawn on the image it was cut from,
the pictures tools returned (other views, imagined futures, code output), rule verdicts."""

from __future__ import annotations

import json
from html import escape
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from roadthink.agent.trace import ToolStep, Trace

THUMB = 240  # px: width of a tool's picture in a card
WINDOW = (255, 200, 0)  # RGB: the zoom window
CLIP = 600  # characters of a turn's text shown


def trace_html(parsed: Trace, run: Path, encode: Any) -> str:
    """The trace of one result as HTML; ``encode(image, width)`` makes a data URI (the
    report's own JPEG encoder)."""
    calls = parsed.tool_calls
    summary = (
        f"agent ({escape(parsed.mode)}): {parsed.model_calls} model calls, {len(calls)} tool calls "
        f"({parsed.tool_errors} failed), {parsed.tokens} tokens, stopped by {escape(parsed.stopped)}"
    )
    parts = [f"<p class=route>{escape(parsed.route)}</p>"] if parsed.route else []
    for number, turn in enumerate(parsed.turns, 1):
        note = f" <i>({escape(turn.note)})</i>" if turn.note else ""
        text = turn.text if len(turn.text) <= CLIP else turn.text[:CLIP] + " …"
        parts.append(f"<div class=turn><b>turn {number}</b>{note}<pre>{escape(text) or '(no text)'}</pre>")
        parts += [_call(step, run, encode) for step in turn.calls]
        parts.append("</div>")
    if parsed.verdict:
        parts.append(_verdict("final action", parsed.verdict))
    return f"<details class=trace open><summary>{summary}</summary>{''.join(parts)}</details>"


def _call(step: ToolStep, run: Path, encode: Any) -> str:
    kind = "bad" if step.error else "ok"
    head = f"<code>{escape(step.name)}({escape(_arguments(step.arguments))})</code>"
    observation = f"<pre class={kind}>{escape(step.observation)}</pre>"
    figures = []
    window = step.data.get("window")
    if window and step.data.get("view_image"):
        image = _read(run, step.data["view_image"])
        if image is not None:
            x1, y1, x2, y2 = (int(v) for v in window)
            cv2.rectangle(image, (x1, y1), (x2, y2), WINDOW, max(2, image.shape[1] // 200))
            figures.append(_figure(encode(image, THUMB), f"zoom window on {step.data.get('view', '')}"))
    for rel in step.images:
        image = _read(run, rel)
        if image is not None:
            figures.append(_figure(encode(image, THUMB), Path(rel).stem))
    verdict = _verdict("rules", step.data["verdict"]) if "verdict" in step.data else ""
    shown = f"<div class=figures>{''.join(figures)}</div>" if figures else ""
    return f"<div class='call {kind}'>{head}{observation}{shown}{verdict}</div>"


def _arguments(text: str) -> str:
    try:
        return ", ".join(f"{k}={json.dumps(v)}" for k, v in json.loads(text).items())
    except (ValueError, AttributeError):
        return text


def _read(run: Path, rel: str) -> np.ndarray | None:
    bgr = cv2.imread(str(run / rel), cv2.IMREAD_COLOR)
    return None if bgr is None else cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _figure(uri: str, caption: str) -> str:
    return f"<figure><img src='{uri}' alt=''><figcaption>{escape(caption)}</figcaption></figure>"


def _verdict(title: str, verdict: dict[str, Any]) -> str:
    broken = "".join(
        f"<li>{escape(v['rule'])} (weight {v['weight']}): {escape(v['explanation'])}</li>"
        for v in verdict.get("violations", [])
    )
    state = "legal" if verdict.get("legal") else "breaks rules"
    return f"<div class=verdict><b>{escape(title)}: {state}</b><ul>{broken}</ul></div>"
