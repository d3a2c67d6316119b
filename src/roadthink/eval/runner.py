"""Running a model over a split: bounded concurrency, one flushed line per finished sample,
and resumption that neither redoes nor loses work.

Each (sample, condition) pair is one unit of work. A finished unit is appended to
``RUN/samples.jsonl`` and flushed at once, so a run killed at any moment keeps everything it
finished; starting it again skips those and does the rest. Every failure (an unreadable
image, a model that raises, an answer that cannot be read) is recorded against its sample
with a one-line reason and counted wrong: nothing is ever skipped silently.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
import traceback
import zlib
from dataclasses import asdict, dataclass, field
from functools import lru_cache, partial
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from roadthink import __version__
from roadthink.agent.modes import AgentConfig, solve
from roadthink.agent.tools import situation_for_rules
from roadthink.agent.trace import Trace
from roadthink.agent.workspace import AgentSettings, Workspace, sample_images
from roadthink.errors import FatalModelError, RoadthinkError
from roadthink.eval.bench import BadLine, Bench
from roadthink.eval.metrics import CLEAN, aggregate, score
from roadthink.eval.parsing import parse_answer, parse_facts
from roadthink.eval.prompt import messages_for
from roadthink.eval.report import seen_image, write_report
from roadthink.eval.result import Parsed, Result, finished_results
from roadthink.models.base import Model, reads_scene
from roadthink.models.types import Message
from roadthink.parallel import progress_bar
from roadthink.render import save_png
from roadthink.render.corrupt import CORRUPTIONS, DEFAULT_SEVERITY, corrupt, parse_corruption, text_only
from roadthink.rules import situation_from_scene, verify
from roadthink.scene.io import load_scene
from roadthink.scene.types import Scene
from roadthink.tasks.sample import AnswerType, Sample

TEXT_ONLY = "text_only"


def conditions_for(corruption: str | None, text: bool) -> list[str]:
    """The image conditions a run covers: ``all`` is clean, every corruption at its default
    severity, and text-only (DriveBench's robustness table); otherwise one condition."""
    if corruption == "all":
        return [CLEAN, *(f"{name}:{DEFAULT_SEVERITY}" for name in CORRUPTIONS), TEXT_ONLY]
    conditions = []
    if corruption:
        try:
            name, severity = parse_corruption(corruption)
        except ValueError as e:
            raise RoadthinkError(str(e)) from None
        conditions.append(f"{name}:{severity}")
    if text:
        conditions.append(TEXT_ONLY)
    return conditions or [CLEAN]


def fitting_concurrency(model: Any) -> int:
    """Requests in flight that keep ``model`` busy: twice its batch (an ``hf:`` model batches
    continuously, so rows must be waiting to join), else 8."""
    batch = getattr(model, "batch_size", None)
    return 2 * batch if isinstance(batch, int) else 8


@dataclass(frozen=True)
class RunConfig:
    model: str
    bench: Path
    conditions: list[str]
    limit: int | None = None
    tasks: list[str] | None = None
    concurrency: int = 8
    seed: int = 0
    agent: AgentConfig | None = None  # None: one model call per sample, no tools
    enforce_rules: bool = False  # veto a planned action that breaks a traffic rule: the safest one instead
    tools: AgentSettings = field(default_factory=AgentSettings)  # what the agent's tools and the veto perceive

    def record(self, bench: Bench) -> dict[str, Any]:
        """RUN/config.json: enough to know what a run was and to reproduce it."""
        return {
            "model": self.model,
            "bench": str(self.bench.resolve()),
            "bench_info": bench.info,
            "conditions": self.conditions,
            "limit": self.limit,
            "tasks": self.tasks,
            "concurrency": self.concurrency,
            "seed": self.seed,
            "agent": None if self.agent is None else _plain(self.agent),
            "enforce_rules": self.enforce_rules,
            "tools": _plain(self.tools) if self.agent is not None or self.enforce_rules else None,
            "roadthink_version": __version__,
            "git_commit": _git_commit(),
        }


def _plain(settings: Any) -> dict[str, Any]:
    """A settings dataclass as JSON values."""
    return json.loads(json.dumps(asdict(settings), default=str))


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None


def select(bench: Bench, config: RunConfig) -> tuple[list[Sample], list[BadLine]]:
    """The samples a run asks about (``--tasks``, then ``--limit`` per run, in file order)."""
    samples = [s for s in bench.samples if not config.tasks or s.task in config.tasks]
    if config.tasks:
        unknown = sorted(set(config.tasks) - {s.task for s in bench.samples})
        if unknown:
            known = ", ".join(sorted({s.task for s in bench.samples}))
            raise RoadthinkError(f"task {unknown[0]!r} is not in {bench.path}; it has: {known}")
    bad = [] if config.tasks else list(bench.bad)
    if config.limit is not None:
        samples = samples[: config.limit]
    return samples, bad


def read_results(path: Path) -> list[Result]:
    """The finished results of a run; a torn last line (the run was killed mid-write) is
    dropped from the file, so the next append starts on a clean line."""
    if not path.is_file():
        return []
    results, size = finished_results(path)
    if size < path.stat().st_size:
        with path.open("r+b") as f:
            f.truncate(size)
    return results


def _check_same_run(out: Path, record: dict[str, Any]) -> None:
    """A run folder holds one run: resuming with another model or bench would mix them."""
    path = out / "config.json"
    if not path.is_file():
        return
    before = json.loads(path.read_text())
    for key in ("model", "bench", "conditions", "tasks", "limit", "seed", "agent", "enforce_rules", "tools"):
        if before.get(key) != record[key]:
            raise RoadthinkError(
                f"{out} holds a run with {key}={before.get(key)!r}, not {record[key]!r}: use another --out"
            )


@lru_cache(maxsize=64)
def _load_scene(path: Path) -> Scene:
    return load_scene(path)


def _scene(bench: Bench, sample: Sample) -> Scene | None:
    """The sample's ground-truth scene; None when it has no scene file."""
    path = bench.path / sample.scene if sample.scene else None
    return _load_scene(path) if path is not None and path.is_file() else None


def condition_image(rgb: np.ndarray, key: str, condition: str, seed: int) -> np.ndarray:
    """``rgb`` as the model sees it under ``condition`` (clean, a corruption, text-only),
    deterministic per run seed and image ``key``."""
    if condition == CLEAN:
        return rgb
    if condition == TEXT_ONLY:
        return text_only(rgb)
    name, severity = parse_corruption(condition)
    return corrupt(rgb, name, severity, seed + zlib.crc32(key.encode()))


def _image_urls(bench: Bench, sample: Sample, condition: str, out: Path, seed: int) -> list[str]:
    """file:// URLs of what the model is shown under ``condition``: the split's own images
    when clean, else corrupted (or blacked-out) copies made once under RUN/images/."""
    urls = []
    for rel in sample.images:
        source = bench.path / rel
        if condition == CLEAN:
            if not source.is_file():
                raise ValueError(f"image {rel} is missing")
            urls.append(source.as_uri())
            continue
        target = seen_image(out, bench.path, condition, rel)
        if not target.is_file():
            bgr = cv2.imread(str(source), cv2.IMREAD_COLOR)
            if bgr is None:
                raise ValueError(f"image {rel} is missing or does not decode")
            save_png(target, condition_image(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), rel, condition, seed))
        urls.append(target.resolve().as_uri())
    return urls


def _workspace(
    sample: Sample, scene: Scene | None, urls: list[str], condition: str, out: Path, config: RunConfig
) -> Workspace:
    """The agent's tools' world for one sample: the images it was shown, the scene behind them,
    RUN/traces/<condition>/<sample>/ for what tools draw; views it asks for later get the
    same condition."""
    return Workspace(
        scene=scene,
        images=sample_images(urls),
        out=out / "traces" / condition.replace(":", "-") / sample.id,
        condition=partial(condition_image, condition=condition, seed=config.seed),
        settings=config.tools,
        seed=config.seed + zlib.crc32(sample.id.encode()),
    )


async def evaluate_one(
    model: Model, bench: Bench, sample: Sample, condition: str, out: Path, config: RunConfig
) -> Result:
    """Ask ``model`` one sample under one condition (one call, or an agent's episode) and
    score the reply; a planned action is checked against the traffic rules (and vetoed when
    the run enforces them)."""
    base = {"id": sample.id, "family": sample.family, "task": sample.task, "answer_type": str(sample.answer_type)}
    try:
        urls = _image_urls(bench, sample, condition, out, config.seed)
    except ValueError as e:
        return Result(**base, prediction="", error=str(e), condition=condition, correct=False)
    tools = config.agent is not None or config.enforce_rules
    scene = _scene(bench, sample) if reads_scene(model) or tools else None  # parsing one costs more than a request
    workspace = _workspace(sample, scene, urls, condition, out, config) if tools else None
    options = {"sample": sample, "scene": scene if reads_scene(model) else None, "seed": config.seed}
    try:
        text, trace, latency, tokens = await _reply(model, messages_for(sample, urls), workspace, config, out, options)
    except FatalModelError:
        raise  # no sample could pass: stop now (finished results are on disk)
    except Exception as e:  # a model failing is a result, not the end of the run
        reason = traceback.format_exception_only(e)[-1].strip().replace("\n", " ")
        return Result(**base, prediction="", error=f"model failed: {reason}", condition=condition, correct=False)
    parsed: Parsed = parse_answer(text, sample.answer_type, sample.choices)
    facts = parse_facts(text)
    if scene is None and (sample.answer_type in (AnswerType.WAYPOINTS, AnswerType.META_ACTION) or facts):
        scene = _scene(bench, sample)  # scoring or the rule check needs it
    rules = None
    if sample.answer_type is AnswerType.META_ACTION and parsed.value is not None and scene is not None:
        rules, final = check_action(parsed.value, scene, workspace if config.enforce_rules else None)
        parsed = parsed.model_copy(update={"value": final})
        if trace is not None:
            trace.verdict = rules
    try:
        scored = score(sample, parsed, scene, facts or None)
    except ValueError as e:  # e.g. a trajectory question whose scene file is missing
        return Result(**base, prediction=text, error=f"not scored: {e}", condition=condition, correct=False)
    return Result(
        **base,
        prediction=text,
        parsed=parsed.value,
        correct=scored.correct,
        score=scored.score,
        error=parsed.error,
        strict=parsed.strict,
        details=scored.details,
        latency_s=latency,
        prompt_tokens=tokens[0],
        completion_tokens=tokens[1],
        condition=condition,
        trace=trace,
        rules=rules,
    )


async def _reply(
    model: Model,
    messages: list[Message],
    workspace: Workspace | None,
    config: RunConfig,
    out: Path,
    options: dict[str, Any],
) -> tuple[str, Trace | None, float, tuple[int, int]]:
    """The final reply, the agent's trace (None without an agent), the model's seconds and
    (prompt, completion) tokens summed over its calls."""
    if config.agent is None:
        completion = await model.generate(messages, **options)
        return completion.text, None, completion.latency_s, (completion.prompt_tokens, completion.completion_tokens)
    text, trace = await solve(model, messages, workspace, config.agent, out, **options)
    tokens = (sum(t.prompt_tokens for t in trace.turns), sum(t.completion_tokens for t in trace.turns))
    return text, trace, sum(t.latency_s for t in trace.turns), tokens


def check_action(action: str, scene: Scene, shield: Workspace | None) -> tuple[dict[str, Any], str]:
    """The traffic-rule check of a planned action, judged on the true scene, and the action
    that stands: the model's own, or, when ``shield`` is given (the run enforces the rules)
    and the verifier finds it illegal in what the shield perceives, the safest legal one."""
    truth = situation_from_scene(scene)
    verdict = verify(truth, action)
    final, vetoed = action, False
    if shield is not None:
        seen = verify(situation_for_rules(shield), action)
        if not seen.legal:
            final, vetoed = seen.safest.meta_action, True
    after = verify(truth, final) if vetoed else verdict
    record = {
        "action": action,
        "legal": verdict.legal,
        "violations": [v.model_dump() for v in verdict.violations],
        "explanation": verdict.explanation,
        "vetoed": vetoed,
        "final": final,
        "final_legal": after.legal,
        "final_violations": [v.rule for v in after.violations],
    }
    return record, final


def _bad_line_result(bad: BadLine, condition: str) -> Result:
    return Result(
        id=bad.id,
        family="?",
        task="?",
        answer_type="?",
        prediction="",
        error=bad.error,
        condition=condition,
        correct=False,
    )


async def run(model: Model, bench: Bench, out: Path, config: RunConfig, show_progress: bool = True) -> dict[str, Any]:
    """Evaluate, resuming whatever ``out`` already holds; returns the metrics (also written
    to RUN/metrics.json)."""
    out.mkdir(parents=True, exist_ok=True)
    record = config.record(bench)
    _check_same_run(out, record)
    (out / "config.json").write_text(json.dumps(record, indent=2))
    samples, bad = select(bench, config)
    path = out / "samples.jsonl"
    done = {(r.id, r.condition) for r in read_results(path)}
    todo = [(s, c) for c in config.conditions for s in samples if (s.id, c) not in done]
    broken = [(b, c) for c in config.conditions for b in bad if (b.id, c) not in done]
    with path.open("a") as sink, progress_bar(shown=show_progress) as bar:
        task = bar.add_task(f"{model.name}", total=len(todo) + len(broken), rate="")
        tally = _Tally()

        def keep(result: Result) -> None:
            sink.write(result.model_dump_json() + "\n")
            sink.flush()  # on disk before the next one starts: a kill loses at most what is in flight
            tally.add(result)
            bar.update(task, advance=1, rate=tally.line())

        for b, c in broken:
            keep(_bad_line_result(b, c))
        queue = iter(todo)

        async def worker() -> None:  # a few workers drawing from one queue: no task waits per sample
            for sample, condition in queue:
                keep(await evaluate_one(model, bench, sample, condition, out, config))

        await asyncio.gather(*(worker() for _ in range(max(1, config.concurrency))))
    return summarize(out, bench)


def summarize(out: Path, bench: Bench) -> dict[str, Any]:
    """RUN/metrics.json and RUN/report.html from the results RUN/samples.jsonl holds;
    returns the metrics."""
    metrics = aggregate(read_results(out / "samples.jsonl"))
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    write_report(out, bench=bench)
    return metrics


class _Tally:
    """Running accuracy for the progress bar."""

    def __init__(self) -> None:
        self.right = self.judged = self.errors = 0
        self.start = time.perf_counter()

    def add(self, result: Result) -> None:
        self.errors += result.error is not None
        if result.correct is not None:
            self.judged += 1
            self.right += result.correct

    def line(self) -> str:
        accuracy = f"{100 * self.right / self.judged:5.1f}%" if self.judged else "  -  "
        return f"acc {accuracy}  errors {self.errors}"
