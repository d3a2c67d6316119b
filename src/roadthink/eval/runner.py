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
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import cv2

from roadthink import __version__
from roadthink.errors import FatalModelError, RoadthinkError
from roadthink.eval.bench import BadLine, Bench
from roadthink.eval.metrics import CLEAN, aggregate, score
from roadthink.eval.parsing import parse_answer, parse_facts
from roadthink.eval.prompt import messages_for
from roadthink.eval.report import seen_image, write_report
from roadthink.eval.result import Parsed, Result, finished_results
from roadthink.models.base import Model, reads_scene
from roadthink.parallel import progress_bar
from roadthink.render import save_png
from roadthink.render.corrupt import CORRUPTIONS, DEFAULT_SEVERITY, corrupt, parse_corruption, text_only
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


@dataclass(frozen=True)
class RunConfig:
    model: str
    bench: Path
    conditions: list[str]
    limit: int | None = None
    tasks: list[str] | None = None
    concurrency: int = 8
    seed: int = 0

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
            "roadthink_version": __version__,
            "git_commit": _git_commit(),
        }


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
    for key in ("model", "bench", "conditions", "tasks", "limit", "seed"):
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
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            if condition == TEXT_ONLY:
                changed = text_only(rgb)
            else:
                name, severity = parse_corruption(condition)
                changed = corrupt(rgb, name, severity, seed + zlib.crc32(rel.encode()))
            save_png(target, changed)
        urls.append(target.resolve().as_uri())
    return urls


async def evaluate_one(model: Model, bench: Bench, sample: Sample, condition: str, out: Path, seed: int) -> Result:
    """Ask ``model`` one sample under one condition and score the reply."""
    base = {"id": sample.id, "family": sample.family, "task": sample.task, "answer_type": str(sample.answer_type)}
    try:
        urls = _image_urls(bench, sample, condition, out, seed)
    except ValueError as e:
        return Result(**base, prediction="", error=str(e), condition=condition, correct=False)
    scene = _scene(bench, sample) if reads_scene(model) else None  # parsing one costs more than a request
    try:
        completion = await model.generate(messages_for(sample, urls), sample=sample, scene=scene, seed=seed)
    except FatalModelError:
        raise  # no sample could pass: stop now (finished results are on disk)
    except Exception as e:  # a model failing is a result, not the end of the run
        reason = traceback.format_exception_only(e)[-1].strip().replace("\n", " ")
        return Result(**base, prediction="", error=f"model failed: {reason}", condition=condition, correct=False)
    parsed: Parsed = parse_answer(completion.text, sample.answer_type, sample.choices)
    facts = parse_facts(completion.text)
    if scene is None and (sample.answer_type is AnswerType.WAYPOINTS or facts):  # scoring needs it
        scene = _scene(bench, sample)
    try:
        scored = score(sample, parsed, scene, facts or None)
    except ValueError as e:  # e.g. a trajectory question whose scene file is missing
        return Result(**base, prediction=completion.text, error=f"not scored: {e}", condition=condition, correct=False)
    return Result(
        **base,
        prediction=completion.text,
        parsed=parsed.value,
        correct=scored.correct,
        score=scored.score,
        error=parsed.error,
        strict=parsed.strict,
        details=scored.details,
        latency_s=completion.latency_s,
        prompt_tokens=completion.prompt_tokens,
        completion_tokens=completion.completion_tokens,
        condition=condition,
    )


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
                keep(await evaluate_one(model, bench, sample, condition, out, config.seed))

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
