"""Deterministic scoring: one parsed answer against its sample (``score``), and a run's
results summed up into RUN/metrics.json (``aggregate``). No judge model: every measure is
computed from the exact answer, the ground-truth scene and the fact checkers.

Unparsable answers are never dropped. A question with a right answer counts them wrong. A
trajectory has no right or wrong: an unread one scores 0 and is counted in ``n_unparsed``
beside the L2 and collision figures, which can only be measured over the plans that were
read (likewise the MAE of numbers).
"""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import shapely

from roadthink.agent.trace import Trace
from roadthink.eval.result import Parsed, Result, Scored
from roadthink.scene.types import FUTURE_STEPS, TRACK_DT, Scene
from roadthink.tasks import AnswerType, Fact, Sample, Step  # the package import registers every fact checker
from roadthink.tasks.facts import check_facts
from roadthink.tasks.lanes import rectangles

HORIZONS = (1, 2, 3)  # seconds at which trajectories are measured
IOU_HIT = 0.5  # a box at least this close counts as found (the usual grounding threshold)
MIN_MOVE = 0.1  # metres: a shorter step gives no heading, so the ego keeps the one it had
TOUCH = 1e-6  # m^2: boxes that share no more than an edge do not collide (as in the scene checks)
Z95 = 1.959963984540054  # standard normal quantile of a two-sided 95 % interval
TOP_ERRORS = 5  # error reasons listed in a block
CLEAN = "clean"

# --- one answer ---------------------------------------------------------------------------

AnswerScorer = Callable[[Any, Any, Scene | None], Scored]


def score(sample: Sample, parsed: Parsed, scene: Scene | None = None, stated_facts: list[Fact] | None = None) -> Scored:
    """How good ``parsed`` is as an answer to ``sample``; with ``stated_facts`` (the facts the
    model's reasoning rests on) also how true and complete that reasoning is. ``scene`` is
    needed for trajectories (collisions) and facts."""
    scorer = SCORERS.get(sample.answer_type)
    if scorer is None:
        raise ValueError(f"no deterministic score for {sample.answer_type.value!r} answers")
    scored = _unparsed(sample.answer_type) if parsed.value is None else scorer(sample.answer, parsed.value, scene)
    if stated_facts is not None:
        scored.details.update(score_facts(stated_facts, sample.reference_steps, _needed(scene, "facts")))
    return scored


def _unparsed(answer_type: AnswerType) -> Scored:
    """Nothing read: wrong where there is a right answer; a trajectory has none, so it stays
    out of accuracy (where False would penalise only models whose plans fail to parse) and is
    counted as unparsed in the trajectory block instead."""
    return Scored(correct=None if answer_type is AnswerType.WAYPOINTS else False, score=0.0, details={"unparsed": True})


def _needed(scene: Scene | None, what: str) -> Scene:
    if scene is None:
        raise ValueError(f"scoring {what} needs the sample's scene")
    return scene


def _same(a: Any, b: Any) -> bool:
    """Equal as words: "B" and "b ", "Yes" and "yes" are one answer."""
    return str(a).strip().lower() == str(b).strip().lower()


def _score_exact(answer: Any, value: Any, scene: Scene | None) -> Scored:
    correct = _same(value, answer)
    return Scored(correct=correct, score=float(correct))


def _score_meta_action(answer: Any, value: Any, scene: Scene | None) -> Scored:
    """Right when speed and direction both are; each part is also reported on its own."""
    said, truth = (str(v).split(",", 1) for v in (value, answer))
    speed_ok = _same(said[0], truth[0])
    direction_ok = len(said) == 2 and _same(said[1], truth[1])
    correct = speed_ok and direction_ok
    return Scored(correct=correct, score=float(correct), details={"speed_ok": speed_ok, "direction_ok": direction_ok})


def _score_number(answer: Any, value: Any, scene: Scene | None) -> Scored:
    """Exact, as every number question is a count; how far off is kept for the MAE."""
    error = abs(float(value) - float(answer))
    return Scored(correct=error == 0.0, score=float(error == 0.0), details={"abs_error": error})


def _score_box(answer: Any, value: Any, scene: Scene | None) -> Scored:
    overlap = iou(value, answer)
    return Scored(correct=overlap >= IOU_HIT, score=overlap, details={"iou": overlap})


def _score_waypoints(answer: Any, value: Any, scene: Scene | None) -> Scored:
    """L2 under both conventions and collisions; score 1 / (1 + mean L2 over 3 s), which is 1
    for a perfect plan, 0.5 at 1 m of mean error and falls smoothly towards the 0 that an
    unparsed plan gets, with no threshold to tune. The ST-P3 3 s error is the one that uses
    all six points."""
    details = {**l2_errors(value, answer), **collisions(value, _needed(scene, "a trajectory"))}
    return Scored(correct=None, score=plan_score(details), details=details)


def plan_score(l2: dict[str, float]) -> float:
    """A plan's score from its L2 errors: 1 / (1 + ST-P3's mean L2 over 3 s)."""
    return 1.0 / (1.0 + l2["l2_stp3_3s"])


SCORERS: dict[AnswerType, AnswerScorer] = {
    AnswerType.CHOICE: _score_exact,
    AnswerType.YES_NO: _score_exact,
    AnswerType.META_ACTION: _score_meta_action,
    AnswerType.NUMBER: _score_number,
    AnswerType.BOX: _score_box,
    AnswerType.WAYPOINTS: _score_waypoints,
}


def iou(a: Iterable[float], b: Iterable[float]) -> float:
    """Intersection over union of two [x1, y1, x2, y2] boxes."""
    ax1, ay1, ax2, ay2 = _span(a)
    bx1, by1, bx2, by2 = _span(b)
    inter = max(0.0, min(ax2, bx2) - max(ax1, bx1)) * max(0.0, min(ay2, by2) - max(ay1, by1))
    union = (ax2 - ax1) * (ay2 - ay1) + (bx2 - bx1) * (by2 - by1) - inter
    return inter / union if union > 0 else 0.0


def _span(box: Iterable[float]) -> tuple[float, float, float, float]:
    """A box as (left, top, right, bottom), whichever order its corners came in: a box is the
    rectangle its two corners span."""
    x1, y1, x2, y2 = (float(v) for v in box)
    return min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2)


def l2_errors(predicted: Any, truth: Any) -> dict[str, float]:
    """Euclidean error of six [x, y] points (0.5 s apart) at 1, 2 and 3 s under both
    conventions the literature mixes up: UniAD's, the error AT the horizon, and ST-P3's, the
    mean error over the points UP TO it."""
    errors = np.linalg.norm(_points(predicted) - _points(truth), axis=1)
    out = {}
    for h in HORIZONS:
        k = round(h / TRACK_DT)
        out[f"l2_uniad_{h}s"] = float(errors[k - 1])
        out[f"l2_stp3_{h}s"] = float(errors[:k].mean())
    return out


def _points(value: Any) -> np.ndarray:
    points = np.asarray(value, dtype=float)
    if points.shape != (FUTURE_STEPS, 2):
        raise ValueError(f"a trajectory is {FUTURE_STEPS} [x, y] points, not an array of shape {points.shape}")
    return points


def headings(points: np.ndarray) -> np.ndarray:
    """The ego's heading at each point: the direction of the step that reached it from the
    one before (the origin first); a step under MIN_MOVE keeps the heading before it, so a
    stopped ego does not spin. The ego faces +x at the start, in its own frame."""
    steps = np.diff(np.vstack([np.zeros(2), points]), axis=0)
    out, heading = [], 0.0
    for dx, dy in steps:
        if math.hypot(dx, dy) >= MIN_MOVE:
            heading = math.atan2(dy, dx)
        out.append(heading)
    return np.array(out)


def collisions(predicted: Any, scene: Scene) -> dict[str, bool]:
    """Whether the ego's box on the predicted trajectory overlaps any agent's ground-truth
    future box at the same moment (by more than TOUCH), checked at each of the six steps as
    UniAD and ST-P3 do; ``collision_Ns`` is any overlap up to N s. Every agent carries its
    future at the ego's times (0.5 s to 3 s), so steps pair by index."""
    points = _points(predicted)
    length, width, _ = scene.ego.size
    ego = shapely.polygons(rectangles(points[:, 0], points[:, 1], headings(points), length, width))
    hit = np.zeros(FUTURE_STEPS, dtype=bool)
    if scene.agents:
        track = np.array([[(*p.center[:2], p.yaw) for p in a.future[:FUTURE_STEPS]] for a in scene.agents])
        size = np.array([a.box.size[:2] for a in scene.agents])[:, None, :]
        boxes = shapely.polygons(rectangles(track[..., 0], track[..., 1], track[..., 2], size[..., 0], size[..., 1]))
        hit = (shapely.area(shapely.intersection(boxes, ego[None])) > TOUCH).any(axis=0)
    return {f"collision_{h}s": bool(hit[: round(h / TRACK_DT)].any()) for h in HORIZONS}


def score_facts(stated: list[Fact], reference_steps: list[Step], scene: Scene) -> dict[str, int]:
    """Counts for the reasoning-step score: how many stated facts check true, how many cannot
    be checked, and how many of the reference facts a true stated fact covers."""
    verdicts = check_facts(stated, scene)
    true = [fact for fact, verdict in zip(stated, verdicts, strict=True) if verdict is True]
    reference = _unique(fact for step in reference_steps for fact in step.facts)
    return {
        "facts_stated": len(stated),
        "facts_true": len(true),
        "facts_unverifiable": sum(verdict is None for verdict in verdicts),
        "facts_reference": len(reference),
        "facts_covered": sum(any(covers(fact, ref) for fact in true) for ref in reference),
    }


def _unique(facts: Iterable[Fact]) -> list[Fact]:
    """Each fact once: a fact two reference steps restate is one fact to cover."""
    return list({json.dumps(f.model_dump(), sort_keys=True): f for f in facts}.values())


def covers(stated: Fact, reference: Fact) -> bool:
    """Whether ``stated`` is a claim about the same thing as ``reference``: same type and the
    same value in every field of the reference but ``value``. The value itself is not
    compared: called on facts that checked true, whose values therefore agree with the scene,
    and so with the reference, within the checker's tolerance. Extra stated fields are
    ignored."""
    said, ref = stated.model_dump(), reference.model_dump()
    return all(key in said and said[key] == wanted for key, wanted in ref.items() if key != "value")


# --- a run --------------------------------------------------------------------------------


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    """Wilson score interval of ``k`` successes in ``n`` trials: unlike the normal
    approximation it stays inside [0, 1] and is honest for small n and 0 % or 100 %."""
    if n == 0:
        return None
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def aggregate(results: list[Result]) -> dict[str, Any]:
    """RUN/metrics.json: an ``overall`` block over every result, the same block per family,
    task and condition, and — when a run holds clean and other conditions — ``robustness``:
    per condition and family, the accuracy drop from clean in points (DriveBench's table)."""
    out: dict[str, Any] = {
        "overall": block(results),
        "by_family": {name: block(group) for name, group in _groups(results, "family").items()},
        "by_task": {name: block(group) for name, group in _groups(results, "task").items()},
        "by_condition": {name: block(group) for name, group in _groups(results, "condition").items()},
    }
    if len(out["by_condition"]) > 1 and CLEAN in out["by_condition"]:
        out["robustness"] = robustness(results)
    return out


def _groups(results: list[Result], field: str) -> dict[str, list[Result]]:
    groups: dict[str, list[Result]] = defaultdict(list)
    for r in results:
        groups[getattr(r, field)].append(r)
    return dict(sorted(groups.items()))


def robustness(results: list[Result]) -> dict[str, dict[str, float | None]]:
    """Per condition other than clean and per family: clean accuracy minus the accuracy
    under the condition, in percentage points (positive: the condition hurts); None where
    either side has no question with a right answer."""
    by_condition = _groups(results, "condition")
    clean = {name: _accuracy(group) for name, group in _groups(by_condition.pop(CLEAN), "family").items()}
    table = {}
    for condition, group in by_condition.items():
        accuracies = {name: _accuracy(g) for name, g in _groups(group, "family").items()}
        table[condition] = {
            name: None if clean.get(name) is None or acc is None else 100.0 * (clean[name] - acc)
            for name, acc in accuracies.items()
        }
    return table


def _accuracy(results: list[Result]) -> float | None:
    judged = [r.correct for r in results if r.correct is not None]
    return _share(sum(judged), len(judged))


def _share(part: float, whole: float) -> float | None:
    """``part / whole``, or None when there is nothing to share out (not 0, which would read
    as a measured zero)."""
    return part / whole if whole else None


def block(results: list[Result]) -> dict[str, Any]:
    """Every measure of one group of results; the task-specific parts only where the group
    holds such tasks."""
    judged = [r for r in results if r.correct is not None]
    k = sum(r.correct is True for r in judged)
    errors = Counter(r.error for r in results if r.error is not None)
    latencies = [r.latency_s for r in results]
    out: dict[str, Any] = {
        "n": len(results),
        "n_judged": len(judged),  # results with a right answer: the accuracy's denominator
        "accuracy": _share(k, len(judged)),
        "ci95": wilson(k, len(judged)),
        "format_compliance": _mean(r.strict for r in results),
        "errors": {
            "count": errors.total(),
            "rate": _share(errors.total(), len(results)),
            "top": errors.most_common(TOP_ERRORS),
        },
        "latency_s": {
            "mean": _mean(latencies),
            "p50": _percentile(latencies, 50),
            "p95": _percentile(latencies, 95),
        },
        "tokens": {
            "prompt_mean": _mean(r.prompt_tokens for r in results),
            "completion_mean": _mean(r.completion_tokens for r in results),
        },
    }
    for answer_type, (name, part) in PARTS.items():
        own = [r for r in results if r.answer_type == answer_type]
        if own:
            out[name] = part(own)
    with_facts = [r for r in results if "facts_stated" in r.details]
    if with_facts:
        out["reasoning"] = _reasoning(with_facts)
    traced = [r.trace for r in results if r.trace is not None]
    if traced:
        out["agent"] = agent_measures(traced)
    checked = [r.rules for r in results if r.rules is not None]
    if checked:
        out["rules"] = rule_measures(checked)
    return out


def agent_measures(traces: list[Trace]) -> dict[str, Any]:
    """How an agent worked: how often it used tools at all (models drift to never calling
    them), how often a call succeeded, its cost per sample, each tool's calls and failures,
    what ended its episodes, and, in auto mode, how often it thought slowly."""
    calls = [c for t in traces for c in t.tool_calls]
    by_tool: dict[str, Counter[str]] = defaultdict(Counter)
    for call in calls:
        by_tool[call.name]["calls"] += 1
        by_tool[call.name]["errors"] += call.error is not None
    routed = [t.route for t in traces if t.route]
    return {
        "n": len(traces),
        "tool_use_rate": _share(sum(bool(t.tool_calls) for t in traces), len(traces)),
        "tool_success_rate": _share(sum(c.error is None for c in calls), len(calls)),
        "tool_calls_per_sample": _share(len(calls), len(traces)),
        "model_calls_per_sample": _share(sum(t.model_calls for t in traces), len(traces)),
        "tokens_per_sample": _share(sum(t.tokens for t in traces), len(traces)),
        "by_tool": {name: dict(counts) for name, counts in sorted(by_tool.items())},
        "stopped": dict(Counter(t.stopped for t in traces)),
        "slow_share": _share(sum(r.startswith("slow") for r in routed), len(routed)) if routed else None,
    }


def rule_measures(checks: list[dict[str, Any]]) -> dict[str, Any]:
    """Planned actions against the traffic rules, judged on the true scene: the share the
    model proposed that break a rule, and the share of final actions (after the verifier's
    veto, when the run enforced the rules)."""
    broken = Counter(v["rule"] for c in checks for v in c["violations"])
    return {
        "n": len(checks),
        "violation_rate": _share(sum(not c["final_legal"] for c in checks), len(checks)),
        "proposed_violation_rate": _share(sum(not c["legal"] for c in checks), len(checks)),
        "vetoed": sum(c["vetoed"] for c in checks),
        "broken_rules": dict(broken.most_common()),
    }


def _mean(values: Iterable[float]) -> float | None:
    values = list(values)
    return _share(sum(values), len(values))


def _percentile(values: list[float], q: float) -> float | None:
    """Linear-interpolation percentile (numpy's default)."""
    return float(np.percentile(values, q)) if values else None


def _measured(results: list[Result], key: str) -> tuple[list[Result], dict[str, Any]]:
    """The results that carry measure ``key``, and the counts that keep the rest in view: an
    unparsed answer, or a failure the runner recorded without scoring, has no measure."""
    read = [r for r in results if key in r.details]
    missing = len(results) - len(read)
    return read, {"n": len(results), "n_unparsed": missing, "unparsed_rate": _share(missing, len(results))}


def _numbers(results: list[Result]) -> dict[str, Any]:
    """MAE over the numbers read (an unread number has no error to average)."""
    read, counts = _measured(results, "abs_error")
    return {**counts, "mae": _mean(r.details["abs_error"] for r in read)}


def _waypoints(results: list[Result]) -> dict[str, Any]:
    """L2 (both conventions, labelled by key) and collision rates over the trajectories read;
    ``score`` averages over all of them, unread ones as 0."""
    read, counts = _measured(results, "l2_stp3_3s")
    keys = [f"{measure}_{h}s" for measure in ("l2_uniad", "l2_stp3", "collision") for h in HORIZONS]
    return {
        **counts,
        "score": _mean(r.score for r in results),
        **{key: _mean(r.details[key] for r in read) for key in keys},
    }


def _meta_actions(results: list[Result]) -> dict[str, Any]:
    """Accuracy and its speed and direction parts; an unread answer gets neither part."""
    return {
        "n": len(results),
        "accuracy": _accuracy(results),
        "speed_accuracy": _mean(bool(r.details.get("speed_ok")) for r in results),
        "direction_accuracy": _mean(bool(r.details.get("direction_ok")) for r in results),
    }


def _grounding(results: list[Result]) -> dict[str, Any]:
    """Mean IoU over every box question (an unread box covers nothing: IoU 0) and accuracy
    at IoU >= IOU_HIT."""
    return {"n": len(results), "mean_iou": _mean(r.score for r in results), "acc_iou50": _accuracy(results)}


def _reasoning(results: list[Result]) -> dict[str, Any]:
    """Step precision (true / stated) and coverage (covered / reference), pooled over facts."""
    total = {key: sum(r.details[key] for r in results) for key in FACT_KEYS}
    return {
        "n": len(results),
        **total,
        "precision": _share(total["facts_true"], total["facts_stated"]),
        "unverifiable_rate": _share(total["facts_unverifiable"], total["facts_stated"]),
        "coverage": _share(total["facts_covered"], total["facts_reference"]),
    }


FACT_KEYS = ("facts_stated", "facts_true", "facts_unverifiable", "facts_reference", "facts_covered")
PARTS: dict[AnswerType, tuple[str, Callable[[list[Result]], dict[str, Any]]]] = {
    AnswerType.NUMBER: ("number", _numbers),
    AnswerType.WAYPOINTS: ("waypoints", _waypoints),
    AnswerType.META_ACTION: ("meta_action", _meta_actions),
    AnswerType.BOX: ("grounding", _grounding),
}
