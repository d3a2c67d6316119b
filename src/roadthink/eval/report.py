"""RUN/report.html: a run's results as one self-contained page, and several runs side by side.

The page must open anywhere, offline and years later, so nothing is linked: the CSS is
inline, the charts are SVG written here, and every image is an embedded JPEG thumbnail. It
is made from the run folder alone (samples.jsonl, metrics.json, config.json) plus the bench
that config.json names, for the questions and images of the sample cards; without that
bench the page still shows every number, only the cards lose their pictures and questions.

Everything a model wrote is escaped: a reply is data, never markup.
"""

from __future__ import annotations

import base64
import json
from collections import defaultdict
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from html import escape
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from roadthink.errors import RoadthinkError
from roadthink.eval.bench import Bench, load_bench
from roadthink.eval.metrics import CLEAN, HORIZONS
from roadthink.eval.result import Result, finished_results
from roadthink.eval.trace_view import trace_html
from roadthink.parallel import default_workers
from roadthink.render.raster import SHIFT, fixed
from roadthink.scene.io import load_scene, write_atomic
from roadthink.scene.types import FUTURE_STEPS
from roadthink.tasks.preview import answer_text
from roadthink.tasks.sample import AnswerType, Sample

REPORT = "report.html"
CARDS_PER_TASK = 3  # cards are for looking, not for counting: a few per task, the worst first
CAMERA_STRIP = 560  # px: the cameras of one card share this width (the model saw them at full size)
BEV_WIDTH = 320
JPEG_QUALITY = 80
MAX_TEXT = 6000  # characters of a reply shown: a model stuck in a loop must not bloat the page
HISTOGRAM_BINS = 20
LATENCY_AXIS = 99  # percentile where the latency axis ends
PREDICTION = (235, 40, 40)  # RGB: what the model said
TRUTH = (40, 220, 60)  # RGB: the exact answer
LINE = 2  # px: stroke of drawn boxes and trajectories
DOT = 3  # px: radius of a drawn waypoint
PLAN_MARGIN = 6.0  # metres of BEV shown beyond the farthest waypoint
PLAN_MIN_HALF = 15.0  # metres: a plan of a stopped ego still shows its surroundings
PLAN_CAPTION = "BEV: plan vs reference"
SERIES = ("#3b6fb6", "#e07b39", "#4f9d69", "#b0499b", "#8c6d31", "#5aa9c9", "#c94f4f", "#777777")


Thumbnail = Callable[[Path, int], str | None]


@dataclass(frozen=True)
class Run:
    """What a run folder holds."""

    path: Path
    config: dict[str, Any]
    metrics: dict[str, Any]
    results: list[Result]

    @property
    def label(self) -> str:
        """Model and folder: two runs of one model stay apart."""
        model = str(self.config.get("model", "?"))
        return model if self.path.name == model else f"{model} ({self.path.name})"


# --- reading a run ------------------------------------------------------------------------


def load_run(path: Path) -> Run:
    """The run in ``path``; a missing folder or file, or a file that does not read, is an
    error naming it."""
    if not path.is_dir():
        raise RoadthinkError(f"{path}: not a run folder (no such folder)")
    return Run(path, _read_json(path / "config.json"), _read_json(path / "metrics.json"), _read_results(path))


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise RoadthinkError(f"{path}: missing; is {path.parent} a finished `roadthink eval` run?")
    try:
        value = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise RoadthinkError(f"{path}: not JSON ({e})") from None
    if not isinstance(value, dict):
        raise RoadthinkError(f"{path}: not a JSON object")
    return value


def _read_results(run: Path) -> list[Result]:
    """RUN/samples.jsonl, read without touching it (unlike the runner's reader, which trims a
    torn line before it appends): a run still writing may have an unfinished last line."""
    path = run / "samples.jsonl"
    if not path.is_file():
        raise RoadthinkError(f"{path}: missing; is {run} a `roadthink eval` run?")
    return finished_results(path)[0]


def _bench(run: Run) -> tuple[Bench | None, str | None]:
    """The bench the run evaluated, or why it cannot be read (the cards then say so)."""
    try:
        return load_bench(Path(run.config.get("bench", ""))), None
    except RoadthinkError as e:
        return None, str(e)


# --- drawing ------------------------------------------------------------------------------


def as_points(value: Any, shape: tuple[int, ...]) -> np.ndarray | None:
    """``value`` as a float array of ``shape``, or None when it is not one (a parsed answer
    may be anything a model wrote)."""
    try:
        array = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        return None
    return array if array.shape == shape and np.isfinite(array).all() else None


def draw_boxes(image: np.ndarray, predicted: Any, truth: Any) -> np.ndarray:
    """A copy of ``image`` with the true [x1, y1, x2, y2] box and, when it is a box, the
    predicted one (drawn last: where they coincide the prediction shows)."""
    out = image.copy()
    for box, colour in ((truth, TRUTH), (predicted, PREDICTION)):
        corners = as_points(box, (4,))
        if corners is not None:
            a, b = fixed(corners[:2]).tolist(), fixed(corners[2:]).tolist()
            cv2.rectangle(out, a, b, colour, LINE, cv2.LINE_AA, SHIFT)
    return out


def draw_trajectories(bev: np.ndarray, resolution: float, predicted: Any, truth: Any) -> np.ndarray:
    """A copy of a BEV image with the reference and, when it is a plan, the predicted
    trajectory: a line from the ego (the image centre) through each ego-frame [x, y] point,
    mapped as render/bev.py does: u = W/2 - y/res, v = H/2 - x/res."""
    out = bev.copy()
    centre = np.array([bev.shape[1] / 2, bev.shape[0] / 2])
    for points, colour in ((truth, TRUTH), (predicted, PREDICTION)):
        xy = as_points(points, (FUTURE_STEPS, 2))
        if xy is None:
            continue
        pixels = fixed(centre - np.vstack([np.zeros(2), xy])[:, ::-1] / resolution)
        cv2.polylines(out, [pixels], False, colour, LINE, cv2.LINE_AA, SHIFT)
        for dot in pixels[1:].tolist():
            cv2.circle(out, dot, DOT << SHIFT, colour, -1, cv2.LINE_AA, SHIFT)
    return out


def _data_uri(image: np.ndarray, width: int) -> str:
    """An RGB image as an embedded JPEG no wider than ``width`` (never enlarged)."""
    if image.shape[1] > width:
        height = max(1, round(image.shape[0] * width / image.shape[1]))
        image = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
    ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise ValueError(f"cannot encode a {image.shape} image as JPEG")
    return "data:image/jpeg;base64," + base64.b64encode(jpeg.tobytes()).decode()


def _read_rgb(path: Path) -> np.ndarray | None:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    return None if bgr is None else cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def seen_image(run: Path, bench: Path, condition: str, rel: str) -> Path:
    """The image the model saw under ``condition``: the bench's own when clean, else the
    corrupted copy the runner makes once under RUN/images/<condition>/."""
    return bench / rel if condition == CLEAN else run / "images" / condition.replace(":", "-") / rel


def thumbnail(path: Path, width: int) -> str | None:
    """The image at ``path`` as an embedded JPEG no wider than ``width``; None when it does
    not read."""
    image = _read_rgb(path)
    return None if image is None else _data_uri(image, width)


def card_images(
    run: Run, bench: Bench, sample: Sample, result: Result, thumb: Thumbnail = thumbnail
) -> list[tuple[str, str | None]]:
    """(caption, data URI or None when unreadable) of each image of a card: what the model
    saw, the box answer drawn on the last (the image the box is in), and for a plan the
    scene's BEV with both trajectories. ``thumb`` makes the plain thumbnails (a cached one
    when many cards show the same frames)."""
    shown = []
    width = CAMERA_STRIP // max(1, len(sample.images))
    for rel in sample.images:
        path = seen_image(run.path, bench.path, result.condition, rel)
        if sample.answer_type is AnswerType.BOX and rel == sample.images[-1]:
            image = _read_rgb(path)
            uri = None if image is None else _data_uri(draw_boxes(image, result.parsed, sample.answer), width)
        else:
            uri = thumb(path, width)
        shown.append((Path(rel).stem, uri))
    if sample.answer_type is AnswerType.WAYPOINTS:
        shown.append((PLAN_CAPTION, _plan_uri(bench, sample, result)))
    return shown


def _plan_uri(bench: Bench, sample: Sample, result: Result) -> str | None:
    bev = _read_rgb(bench.path / "images" / sample.scene_id / "BEV.png")
    try:
        resolution = load_scene(bench.path / sample.scene).bev.resolution
    except RoadthinkError:
        return None
    if bev is None:
        return None
    plans = [p for p in (as_points(v, (FUTURE_STEPS, 2)) for v in (result.parsed, sample.answer)) if p is not None]
    view, view_resolution = zoom(bev, resolution, max((float(np.abs(p).max()) for p in plans), default=0.0))
    return _data_uri(draw_trajectories(view, view_resolution, result.parsed, sample.answer), BEV_WIDTH)


def zoom(bev: np.ndarray, resolution: float, reach: float) -> tuple[np.ndarray, float]:
    """The square of the BEV around the ego that holds points ``reach`` metres away (plus a
    margin, at least PLAN_MIN_HALF metres each way), enlarged to BEV_WIDTH, and its metres
    per pixel: a 3 s plan spans a few metres of a 100 m view. Centred on the ego, so the
    mapping around the image centre still holds."""
    half = min(round(max(reach + PLAN_MARGIN, PLAN_MIN_HALF) / resolution), *(n // 2 for n in bev.shape[:2]))
    cy, cx = bev.shape[0] // 2, bev.shape[1] // 2
    square = bev[cy - half : cy + half, cx - half : cx + half]
    return cv2.resize(square, (BEV_WIDTH, BEV_WIDTH), interpolation=cv2.INTER_LINEAR), resolution * 2 * half / BEV_WIDTH


# --- numbers as text ----------------------------------------------------------------------


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def _ci(ci: Iterable[float] | None) -> str:
    if not ci:
        return "–"
    low, high = ci
    return f"{100 * low:.1f}–{100 * high:.1f}"


def _num(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _seconds(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{1000 * value:.3g} ms" if value < 1 else f"{value:.3g} s"


def _conditions(names: list[str]) -> str:
    """A run's conditions, shortened when it is a robustness run of many."""
    return ", ".join(names) if len(names) <= 3 else f"{names[0]} + {len(names) - 1} more"


def _value(value: Any) -> str:
    """A parsed value, an answer or a measure as one short line."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3g}"
    return value if isinstance(value, str) else json.dumps(value)


def measures(block: dict[str, Any]) -> str:
    """The task-specific figures of a metrics block, as one line."""
    parts = []
    if "number" in block:
        parts.append(f"MAE {_num(block['number']['mae'])}")
    if "grounding" in block:
        g = block["grounding"]
        parts.append(f"mean IoU {_num(g['mean_iou'])}, acc@IoU≥0.5 {_pct(g['acc_iou50'])}")
    if "meta_action" in block:
        m = block["meta_action"]
        parts.append(f"speed {_pct(m['speed_accuracy'])}, direction {_pct(m['direction_accuracy'])}")
    if "waypoints" in block:
        w = block["waypoints"]
        parts.append(f"plan score {_num(w['score'])}, collision 3 s {_pct(w['collision_3s'])}")
    for part in ("number", "waypoints"):
        if block.get(part, {}).get("n_unparsed"):
            parts.append(f"{block[part]['n_unparsed']} unparsed")
    if "reasoning" in block:
        r = block["reasoning"]
        parts.append(f"steps: precision {_pct(r['precision'])}, coverage {_pct(r['coverage'])}")
    return "; ".join(parts) or "–"


# --- HTML pieces --------------------------------------------------------------------------


def _table(head: list[str], rows: Iterable[Iterable[str]], numeric: range) -> str:
    """An HTML table of already-escaped cells; the ``numeric`` columns align right."""

    def cells(tag: str, row: Iterable[str]) -> str:
        return "".join(f"<{tag}{' class=num' if i in numeric else ''}>{cell}</{tag}>" for i, cell in enumerate(row))

    body = "".join(f"<tr>{cells('td', row)}</tr>" for row in rows)
    return f"<table><thead><tr>{cells('th', head)}</tr></thead><tbody>{body}</tbody></table>"


def _section(title: str, body: str) -> str:
    return f"<section><h2>{escape(title)}</h2>{body}</section>"


def _svg(width: int, height: int, label: str, body: str) -> str:
    """Inline SVG (no namespace URL needed inside HTML: the page links nothing)."""
    size = f'width="{width}" height="{height}" viewBox="0 0 {width} {height}"'
    return f'<svg {size} role="img" aria-label="{escape(label)}">{body}</svg>'


def _line(x1: float, y1: float, x2: float, y2: float, css: str) -> str:
    return f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" class="{css}"/>'


def _text(x: float, y: float, text: str, anchor: str = "start", extra: str = "") -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" {extra}>{escape(text)}</text>'


def headline_table(runs: list[Run]) -> str:
    """One row per run: what it was and its overall numbers."""
    rows = []
    for run in runs:
        o = run.metrics.get("overall", {})
        errors, latency, tokens = o.get("errors", {}), o.get("latency_s", {}), o.get("tokens", {})
        reasoning = o.get("reasoning")
        rows.append(
            [
                escape(run.label),
                escape(Path(run.config.get("bench", "?")).name),
                escape(_conditions(run.config.get("conditions", []))),
                str(o.get("n", 0)),
                f"<b>{_pct(o.get('accuracy'))}</b>",
                _ci(o.get("ci95")),
                _pct(o.get("format_compliance")),
                f"{errors.get('count', 0)} ({_pct(errors.get('rate'))})",
                f"{_seconds(latency.get('p50'))} / {_seconds(latency.get('p95'))}",
                f"{_num(tokens.get('prompt_mean'), 0)} / {_num(tokens.get('completion_mean'), 0)}",
                "–" if reasoning is None else f"{_pct(reasoning['precision'])} / {_pct(reasoning['coverage'])}",
            ]
        )
    head = [
        "run",
        "bench",
        "conditions",
        "n",
        "accuracy",
        "95% CI",
        "format compliance",
        "errors",
        "latency p50 / p95",
        "tokens in / out (mean)",
        "reasoning precision / coverage",
    ]
    return _table(head, rows, range(3, len(head)))


def agent_table(runs: list[Run]) -> str:
    """One row per agent run: its mode, how it used tools (the headline: models drift to never
    calling them, or call them badly), and what a sample cost; then each tool's calls."""
    rows, tools = [], []
    for run in runs:
        a = run.metrics.get("overall", {}).get("agent")
        if not a:
            continue
        mode = (run.config.get("agent") or {}).get("mode", "?")
        rows.append(
            [
                escape(run.label),
                escape(mode),
                _pct(run.metrics["overall"].get("accuracy")),
                f"<b>{_pct(a['tool_use_rate'])}</b>",
                f"<b>{_pct(a['tool_success_rate'])}</b>",
                _num(a["tool_calls_per_sample"]),
                _num(a["model_calls_per_sample"]),
                _num(a["tokens_per_sample"], 0),
                "–" if a.get("slow_share") is None else _pct(a["slow_share"]),
                escape(", ".join(f"{k} {v}" for k, v in sorted(a["stopped"].items()))),
            ]
        )
        tools += [
            [escape(run.label), escape(name), str(c.get("calls", 0)), str(c.get("errors", 0))]
            for name, c in a["by_tool"].items()
        ]
    head = ["run", "mode", "accuracy", "tool use", "tool success", "tool calls", "model calls", "tokens", "slow"]
    table = _table([*head, "ended by"], rows, range(2, len(head)))
    if tools:
        table += _table(["run", "tool", "calls", "failed"], tools, range(2, 4))
    return table


def rules_table(runs: list[Run]) -> str:
    """Planned actions against the traffic rules (judged on the true scene): proposed by the
    model, and final (after the verifier's veto when the run enforced the rules)."""
    rows = []
    for run in runs:
        r = run.metrics.get("overall", {}).get("rules")
        if r:
            broken = ", ".join(f"{escape(rule)} {n}" for rule, n in r["broken_rules"].items()) or "–"
            enforced = "yes" if run.config.get("enforce_rules") else "no"
            rows.append(
                [
                    escape(run.label),
                    enforced,
                    str(r["n"]),
                    _pct(r["proposed_violation_rate"]),
                    f"<b>{_pct(r['violation_rate'])}</b>",
                    str(r["vetoed"]),
                    broken,
                ]
            )
    head = ["run", "verifier enforced", "actions", "proposed: break a rule", "final: break a rule", "vetoed"]
    return _table([*head, "rules broken (proposed)"], rows, range(2, len(head)))


def accuracy_bars(groups: list[str], series: list[tuple[str, dict[str, dict[str, Any]]]]) -> str:
    """Horizontal bars of accuracy with their 95 % CI whiskers: one group per family, one
    bar per series (a run), each series in its own colour."""
    left, scale, bar, gap = 130, 320, 14, 12
    group_h = bar * len(series) + gap
    height = 24 + group_h * len(groups) + 18
    body = [
        _line(left + scale * t / 4, 20, left + scale * t / 4, height - 18, "grid")
        + _text(left + scale * t / 4, height - 4, f"{25 * t}%", "middle", 'class="axis"')
        for t in range(5)
    ]
    for g, name in enumerate(groups):
        top = 24 + g * group_h
        body.append(_text(left - 8, top + bar * len(series) / 2 + 4, name, "end"))
        for s, (_, blocks) in enumerate(series):
            block = blocks.get(name, {})
            accuracy, y = block.get("accuracy"), top + s * bar
            colour = SERIES[s % len(SERIES)]
            if accuracy is None:
                body.append(_text(left + 4, y + bar - 3, "n/a", extra='class="axis"'))
                continue
            body.append(
                f'<rect x="{left}" y="{y + 1}" width="{scale * accuracy:.1f}" height="{bar - 2}" fill="{colour}"/>'
            )
            if block.get("ci95"):
                low, high = block["ci95"]
                mid = y + bar / 2
                body.append(_line(left + scale * low, mid, left + scale * high, mid, "ci"))
            body.append(_text(left + scale + 6, y + bar - 3, _pct(accuracy), extra='class="axis"'))
    legend = "".join(
        f'<span class="key" style="background:{SERIES[s % len(SERIES)]}"></span>{escape(label)} '
        for s, (label, _) in enumerate(series)
    )
    return f'<div class="legend">{legend}</div>' + _svg(left + scale + 60, height, "accuracy per family", "".join(body))


def task_table(run: Run) -> str:
    """Per task: family, n, accuracy with its CI and the task's own measures."""
    families = {r.task: r.family for r in run.results}
    rows = [
        [
            escape(families.get(task, "?")),
            escape(task),
            str(block.get("n", 0)),
            _pct(block.get("accuracy")),
            _ci(block.get("ci95")),
            escape(measures(block)),
        ]
        for task, block in sorted(run.metrics.get("by_task", {}).items(), key=lambda kv: (families.get(kv[0]), kv[0]))
    ]
    return _table(["family", "task", "n", "accuracy", "95% CI", "task-specific measures"], rows, range(2, 5))


def trajectory_table(rows: list[tuple[str, dict[str, Any]]]) -> str:
    """Waypoint L2 under both conventions the literature mixes up, and collision rates,
    at 1, 2 and 3 s; one block of rows per (label, waypoints metrics)."""
    head = ["", "measure", *(f"{h} s" for h in HORIZONS), "plans read"]
    body = []
    for label, w in rows:
        read = f"{w['n'] - w['n_unparsed']} / {w['n']}"
        for name, key, fmt in (
            ("L2 (m), UniAD (at horizon)", "l2_uniad", _num),
            ("L2 (m), ST-P3 (mean to horizon)", "l2_stp3", _num),
            ("collision rate", "collision", _pct),
        ):
            body.append([escape(label), name, *(fmt(w.get(f"{key}_{h}s")) for h in HORIZONS), read])
    return _table(head, body, range(2, len(head)))


def heat_map(robustness: dict[str, dict[str, float | None]]) -> str:
    """Conditions × families, each cell the accuracy drop from clean in points: red where
    the condition hurts, blue where it helps, grey where it cannot be measured."""
    families = sorted({f for row in robustness.values() for f in row})
    left, cell_w, cell_h, top = 150, 92, 26, 22
    body = [_text(left + (j + 0.5) * cell_w, 15, f, "middle") for j, f in enumerate(families)]
    for i, (condition, row) in enumerate(robustness.items()):
        y = top + i * cell_h
        body.append(_text(left - 8, y + cell_h / 2 + 4, condition, "end"))
        for j, family in enumerate(families):
            drop = row.get(family)
            x = left + j * cell_w
            body.append(
                f'<rect x="{x}" y="{y}" width="{cell_w - 2}" height="{cell_h - 2}" fill="{_heat(drop)}"/>'
                + _text(x + cell_w / 2, y + cell_h / 2 + 3, "n/a" if drop is None else f"{drop:+.1f}", "middle")
            )
    height = top + cell_h * len(robustness) + 4
    return _svg(left + cell_w * len(families) + 4, height, "accuracy drop per condition and family", "".join(body))


def _heat(drop: float | None) -> str:
    """White at no change, full colour at 25 points or more."""
    if drop is None:
        return "#dddddd"
    strength = min(abs(drop) / 25.0, 1.0)
    target = (214, 60, 50) if drop > 0 else (50, 110, 200)
    r, g, b = (round(255 + (c - 255) * strength) for c in target)
    return f"rgb({r},{g},{b})"


def condition_table(by_condition: dict[str, dict[str, Any]]) -> str:
    """Accuracy under each condition, clean first: the baseline the drops are taken from."""
    rows = [
        [escape(name), str(b.get("n", 0)), _pct(b.get("accuracy")), _ci(b.get("ci95"))]
        for name, b in sorted(by_condition.items(), key=lambda kv: kv[0] != CLEAN)
    ]
    return _table(["condition", "n", "accuracy", "95% CI"], rows, range(1, 4))


def latency_histogram(latencies: list[float], p50: float | None, p95: float | None) -> str:
    """How long the model took per sample, in ms or s, with the median and p95 marked. The
    axis ends at the 99th percentile, slower samples counted in the last bar: one slow first
    call would otherwise squeeze every other sample into a single bar."""
    if not latencies:
        return "<p>No samples.</p>"
    unit, factor = ("ms", 1000.0) if np.percentile(latencies, LATENCY_AXIS) < 1 else ("s", 1.0)
    values = np.asarray(latencies) * factor
    low, high = float(values.min()), float(np.percentile(values, LATENCY_AXIS))
    high = high if high > low else low + 1
    counts, edges = np.histogram(np.minimum(values, high), bins=HISTOGRAM_BINS, range=(low, high))
    slower = int((values > high).sum())
    left, width, plot_h, top = 50, 560, 160, 30
    step = width / HISTOGRAM_BINS
    body = [
        f'<rect x="{left + i * step + 1:.1f}" y="{top + plot_h * (1 - c / counts.max()):.1f}" width="{step - 2:.1f}"'
        f' height="{plot_h * c / counts.max():.1f}" class="bar"><title>{c}</title></rect>'
        for i, c in enumerate(counts)
    ]
    for t in (0, HISTOGRAM_BINS // 2, HISTOGRAM_BINS):
        body.append(_text(left + t * step, top + plot_h + 16, f"{edges[t]:.3g} {unit}", "middle", 'class="axis"'))
    body.append(_text(left - 6, top + 10, str(counts.max()), "end", 'class="axis"'))
    body.append(_text(left - 6, top + plot_h, "0", "end", 'class="axis"'))
    for row, (name, mark) in enumerate((("p50", p50), ("p95", p95))):
        if mark is not None:
            x = left + (mark * factor - edges[0]) / (edges[-1] - edges[0]) * width
            body.append(_line(x, top - 12 * (2 - row), x, top + plot_h, "mark"))
            body.append(_text(x + 3, top - 12 * (2 - row) + 9, f"{name} {_seconds(mark)}", extra='class="axis"'))
    note = f"<p class=sub>{slower} slower samples (up to {_seconds(max(latencies))}) are in the last bar.</p>"
    return _svg(left + width + 40, top + plot_h + 24, "latency histogram", "".join(body)) + (note if slower else "")


def error_table(top: list[list[Any]]) -> str:
    """The most common one-line failure reasons (unread answers, model failures, bad images)."""
    if not top:
        return "<p>No errors: every reply was read.</p>"
    return _table(["reason", "samples"], ([escape(str(reason)), str(count)] for reason, count in top), range(1, 2))


# --- sample cards -------------------------------------------------------------------------


def pick_cards(results: list[Result], per_task: int = CARDS_PER_TASK) -> list[Result]:
    """Up to ``per_task`` results of every task: failed and wrong ones first, then the lowest
    scores (worst plans, loosest boxes), in file order among equals."""
    by_task: dict[tuple[str, str], list[Result]] = defaultdict(list)
    for r in results:
        by_task[(r.family, r.task)].append(r)
    return [
        r
        for key in sorted(by_task)
        for r in sorted(by_task[key], key=lambda x: (x.error is None and x.correct is not False, x.score))[:per_task]
    ]


def _verdict(result: Result) -> tuple[str, str]:
    """(CSS class, badge text) of a card."""
    if result.error is not None:
        return "wrong", "error"
    if result.correct is None:
        return "scored", f"score {result.score:.2f}"
    return ("right", "right") if result.correct else ("wrong", "wrong")


def _clip(text: str) -> str:
    return text if len(text) <= MAX_TEXT else f"{text[:MAX_TEXT]}\n… ({len(text) - MAX_TEXT} more characters)"


def _options(sample: Sample, result: Result) -> str:
    """The options, the right one and the model's pick marked."""
    items = []
    for option in sample.choices or []:
        letter = option.split(".", 1)[0]
        marks = [m for m, on in (("truth", letter == sample.answer), ("picked", letter == result.parsed)) if on]
        items.append(f'<li class="{" ".join(marks)}">{escape(option)}</li>')
    return f'<ul class="options">{"".join(items)}</ul>' if items else ""


def _answer(sample: Sample, value: Any) -> str:
    """An answer as a person reads it: the option's text for choice questions."""
    if value is None:
        return "– (nothing read)"
    return answer_text({"choices": sample.choices, "answer": value}) if sample.choices else _value(value)


def card(run: Run, bench: Bench | None, sample: Sample | None, result: Result, thumb: Thumbnail = thumbnail) -> str:
    """One sample as the model met it: images, question, options, the reply and its reading,
    the ground truth and the verdict."""
    kind, badge = _verdict(result)
    head = (
        f'<header><span class="badge {kind}">{escape(badge)}</span> <b>{escape(result.family)} / '
        f"{escape(result.task)}</b> · {escape(result.id)} · {escape(result.condition)}</header>"
    )
    facts: list[tuple[str, str]] = []
    if sample is None or bench is None:
        body = "<p class=note>No images or question: the sample is not in the bench config.json names.</p>"
        facts.append(("parsed", escape(_value(result.parsed))))
    else:
        figures = "".join(_figure(caption, uri) for caption, uri in card_images(run, bench, sample, result, thumb))
        legend = (
            '<p class="legend"><span class="key pred"></span>prediction <span class="key truth"></span>ground truth</p>'
            if sample.answer_type in (AnswerType.BOX, AnswerType.WAYPOINTS)
            else ""
        )
        body = f'<div class="figures">{figures}</div>{legend}<p class="q">{escape(sample.question)}</p>'
        body += _options(sample, result)
        facts += [
            ("parsed", escape(_answer(sample, result.parsed))),
            ("ground truth", escape(_answer(sample, sample.answer))),
        ]
    if result.error:
        facts.append(("error", escape(result.error)))
    if result.details:
        facts.append(("measures", escape(_measured_text(result.details))))
    if result.rules:
        facts.append(("traffic rules", escape(_rules_text(result.rules))))
    facts.append(
        ("format", "kept" if result.strict else "rescued by lenient reading" if result.parsed is not None else "–")
    )
    listed = "".join(f"<dt>{name}</dt><dd>{value}</dd>" for name, value in facts)
    reply = _details("model reply", result.prediction or "(empty)", opened=True)
    trace = trace_html(result.trace, run.path, _data_uri) if result.trace else ""
    return f'<article class="card {kind}">{head}{body}<dl>{listed}</dl>{reply}{trace}</article>'


def _rules_text(check: dict[str, Any]) -> str:
    """A planned action's rule check in a line: the verdict, and the veto when there was one."""
    line = check["explanation"]
    if check["vetoed"]:
        after = ", ".join(check["final_violations"]) or "no rule"
        line += f" Vetoed: the verifier chose {check['final']!r} instead (breaks {after})."
    return line


def _figure(caption: str, uri: str | None) -> str:
    kind = "plan" if caption == PLAN_CAPTION else ""
    if uri is None:
        return f"<figure class='missing {kind}'><figcaption>{escape(caption)}: no readable image</figcaption></figure>"
    return f"<figure class='{kind}'><img src='{uri}' alt=''><figcaption>{escape(caption)}</figcaption></figure>"


def _measured_text(details: dict[str, Any]) -> str:
    """A result's measures as one line, the reasoning-step counts as fractions."""
    parts = [f"{k} {_value(v)}" for k, v in details.items() if not k.startswith("facts_")]
    if "facts_stated" in details:
        true, stated, unverifiable = (details[k] for k in ("facts_true", "facts_stated", "facts_unverifiable"))
        parts.append(
            f"stated facts {true}/{stated} true ({unverifiable} unverifiable), "
            f"reference facts {details['facts_covered']}/{details['facts_reference']} covered"
        )
    return ", ".join(parts)


def _details(summary: str, text: str, opened: bool = False) -> str:
    """Escaped (and clipped) text in a fold."""
    return f"<details{' open' if opened else ''}><summary>{summary}</summary><pre>{escape(_clip(text))}</pre></details>"


def cards(run: Run, per_task: int = CARDS_PER_TASK, bench: Bench | None = None) -> str:
    """The sample cards of a run, with the bench's questions and images when it can be read
    (``bench``: the split config.json names, when the caller has it loaded already)."""
    bench, problem = (bench, None) if bench is not None else _bench(run)
    samples = {s.id: s for s in bench.samples} if bench else {}
    note = f"<p class=note>Bench unavailable ({escape(problem)}): cards without images.</p>" if problem else ""
    chosen = pick_cards(run.results, per_task)
    thumb = cache(thumbnail)  # cards of one scene share frames: each is read and encoded once
    with ThreadPoolExecutor(default_workers()) as pool:  # decoding and encoding images let go of the GIL
        shown = pool.map(lambda r: card(run, bench, samples.get(r.id), r, thumb), chosen)
        return note + '<div class="cards">' + "".join(shown) + "</div>"


# --- pages --------------------------------------------------------------------------------

CSS = """
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0 auto;max-width:1360px;
padding:16px 24px;color:#1d1d1f;background:#fafafa}
h1{font-size:22px;margin:4px 0}h2{font-size:17px;margin:22px 0 8px;border-bottom:1px solid #ddd;padding-bottom:3px}
.sub{color:#666;margin:0 0 8px}
table{border-collapse:collapse;margin:4px 0;background:#fff}th,td{padding:3px 9px;border-bottom:1px solid #e5e5e5;
text-align:left;vertical-align:top}th{background:#f0f0f2;font-weight:600}.num{text-align:right;white-space:nowrap}
tbody tr:nth-child(even){background:#f8f8fa}
svg{font-size:12px;display:block;margin:4px 0}svg .grid{stroke:#e3e3e3}svg .axis{fill:#555;font-size:11px}
svg .ci{stroke:#222;stroke-width:1.5}svg .bar{fill:#3b6fb6}svg .mark{stroke:#c33;stroke-dasharray:3 2}
.legend{margin:2px 0;color:#444}.key{display:inline-block;width:11px;height:11px;margin:0 4px 0 8px;
vertical-align:-1px;border-radius:2px}.key.pred{background:rgb(235,40,40)}.key.truth{background:rgb(40,220,60)}
.row{display:flex;gap:32px;flex-wrap:wrap;align-items:flex-start}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(600px,1fr));gap:14px}
.card{background:#fff;border:1px solid #ddd;border-left:5px solid #999;border-radius:4px;padding:8px 10px;
overflow:hidden}.card.right{border-left-color:#3a9d4f}.card.wrong{border-left-color:#d0453b}
.card.scored{border-left-color:#3b6fb6}
.badge{display:inline-block;padding:0 7px;border-radius:9px;color:#fff;font-size:12px;background:#3b6fb6}
.badge.right{background:#3a9d4f}.badge.wrong{background:#d0453b}
.figures{display:flex;flex-wrap:wrap;gap:4px;margin:6px 0}figure{margin:0;flex:0 1 auto;min-width:0}
figure img{display:block;max-width:100%}figure.plan{flex-basis:100%}
figcaption{font-size:11px;color:#666}figure.missing{padding:20px;background:#eee}
.q{font-weight:600;margin:6px 0 4px}.options{margin:0 0 4px;padding-left:18px}
.options .truth{color:#1f7a35;font-weight:600}.options .truth::after{content:'  ✓ answer'}
.options .picked::after{content:'  ← model'}.options .picked:not(.truth){color:#b3261e}
.options .truth.picked::after{content:'  ✓ answer ← model'}
dl{display:grid;grid-template-columns:max-content 1fr;gap:1px 10px;margin:4px 0}dt{color:#666}dd{margin:0;
word-break:break-word}
.trace .turn{border-left:3px solid #c9d3e6;padding-left:8px;margin:6px 0}.trace .call{margin:4px 0 4px 10px}
.trace pre.bad{background:#fbe9e9}.trace .verdict ul{margin:2px 0}.route{color:#555;font-style:italic}
pre{white-space:pre-wrap;word-break:break-word;background:#f4f4f6;padding:6px;margin:2px 0;font-size:12px;
max-height:260px;overflow:auto}summary{cursor:pointer;color:#444}.note{color:#8a5a00}
"""


def _page(title: str, subtitle: str, sections: list[str]) -> str:
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
        f"<style>{CSS}</style></head><body><h1>{escape(title)}</h1><p class=sub>{escape(subtitle)}</p>"
        + "".join(sections)
        + "</body></html>"
    )


def render_report(run: Run, bench: Bench | None = None) -> str:
    """The HTML page of one run (``bench`` as for :func:`cards`)."""
    m = run.metrics
    overall = m.get("overall", {})
    families = sorted(m.get("by_family", {}))
    sections = [
        _section("Headline", headline_table([run])),
        '<div class="row">'
        + _section("Accuracy per family (bars: 95% CI)", accuracy_bars(families, [(run.label, m.get("by_family", {}))]))
        + _section("Per task", task_table(run))
        + "</div>",
    ]
    plans = [(task, b["waypoints"]) for task, b in m.get("by_task", {}).items() if "waypoints" in b]
    if plans:
        sections.append(_section("Trajectories", trajectory_table(plans)))
    if "agent" in overall:
        sections.append(_section("Agent: tool use and cost", agent_table([run])))
    if "rules" in overall:
        sections.append(_section("Traffic rules: planned actions", rules_table([run])))
    if len(m.get("by_condition", {})) > 1:
        body = f"<div>{condition_table(m['by_condition'])}</div>"
        if m.get("robustness"):
            body += f"<div><h3>Accuracy drop vs clean, in points</h3>{heat_map(m['robustness'])}</div>"
        sections.append(_section("Conditions", f'<div class="row">{body}</div>'))
    latency = overall.get("latency_s", {})
    sections.append(
        '<div class="row">'
        + _section(
            "Latency", latency_histogram([r.latency_s for r in run.results], latency.get("p50"), latency.get("p95"))
        )
        + _section("Most common errors", error_table(overall.get("errors", {}).get("top", [])))
        + "</div>"
    )
    sections.append(_section(f"Samples (up to {CARDS_PER_TASK} per task, wrong ones first)", cards(run, bench=bench)))
    return _page(f"roadthink report: {run.label}", _provenance(run.config), sections)


def _provenance(config: dict[str, Any]) -> str:
    return (
        f"bench {config.get('bench', '?')} · roadthink {config.get('roadthink_version', '?')} · "
        f"commit {(config.get('git_commit') or '?')[:10]} · seed {config.get('seed', '?')}"
    )


def side_by_side(runs: list[Run], key: str) -> str:
    """Accuracy (and CI) of each family or task (``key``: by_family or by_task), one column per run."""
    names = sorted({name for run in runs for name in run.metrics.get(key, {})})
    rows = [
        [escape(name)]
        + [
            "–" if not b else f"{_pct(b.get('accuracy'))} <small>({_ci(b.get('ci95'))}, n={b.get('n', 0)})</small>"
            for b in (run.metrics.get(key, {}).get(name) for run in runs)
        ]
        for name in names
    ]
    return _table([key.removeprefix("by_"), *(escape(run.label) for run in runs)], rows, range(1, len(runs) + 1))


def render_comparison(runs: list[Run]) -> str:
    """The HTML page comparing several runs."""
    families = sorted({f for run in runs for f in run.metrics.get("by_family", {})})
    series = [(run.label, run.metrics.get("by_family", {})) for run in runs]
    sections = [
        _section("Runs", headline_table(runs)),
        _section("Accuracy per family (bars: 95% CI)", accuracy_bars(families, series)),
        _section("Per family", side_by_side(runs, "by_family")),
        _section("Per task", side_by_side(runs, "by_task")),
    ]
    plans = [
        (run.label, run.metrics["overall"]["waypoints"])
        for run in runs
        if "waypoints" in run.metrics.get("overall", {})
    ]
    if plans:
        sections.append(_section("Trajectories", trajectory_table(plans)))
    if any("agent" in run.metrics.get("overall", {}) for run in runs):
        sections.append(_section("Agents: tool use and cost", agent_table(runs)))
    if any("rules" in run.metrics.get("overall", {}) for run in runs):
        sections.append(_section("Traffic rules: planned actions", rules_table(runs)))
    return _page(f"roadthink comparison of {len(runs)} runs", " · ".join(run.label for run in runs), sections)


def _write(path: Path, page: str) -> Path:
    write_atomic(path, page.encode())
    return path


def write_report(run: Path, out: Path | None = None, bench: Bench | None = None) -> Path:
    """Write the report of the run in ``run`` (default RUN/report.html); returns its path.
    ``bench``: the split config.json names, when the caller has it loaded (reading it again
    would cost more than the rest of the page)."""
    return _write(out or run / REPORT, render_report(load_run(run), bench))


def write_comparison(runs: list[Path], out: Path) -> Path:
    """Write the page comparing ``runs``; returns its path."""
    return _write(out, render_comparison([load_run(run) for run in runs]))
