"""Reading a built split for evaluation: checked before anything runs, and a broken sample
line becomes a recorded error instead of a crash or a silent skip."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from roadthink.errors import RoadthinkError
from roadthink.tasks.build import BENCH_NAME
from roadthink.tasks.sample import Sample


@dataclass(frozen=True)
class BadLine:
    """A samples.jsonl line that is not a sample: evaluated as an error, never skipped."""

    id: str
    error: str


@dataclass
class Bench:
    path: Path
    info: dict
    samples: list[Sample] = field(default_factory=list)
    bad: list[BadLine] = field(default_factory=list)


def load_bench(path: Path) -> Bench:
    """The split in ``path``; a missing folder or one of another benchmark version is an
    error naming the folder."""
    info_path = path / "bench.json"
    if not (path / "samples.jsonl").is_file():
        raise RoadthinkError(
            f"{path}: not a benchmark split (no samples.jsonl); build one with `roadthink bench build`"
        )
    if not info_path.is_file():
        raise RoadthinkError(f"{path}: no bench.json; rebuild the split with this roadthink version")
    try:
        info = json.loads(info_path.read_text())
    except json.JSONDecodeError as e:
        raise RoadthinkError(f"{info_path}: not JSON ({e.msg})") from None
    if info.get("name") != BENCH_NAME:
        raise RoadthinkError(f"{path}: benchmark {info.get('name')!r}, this roadthink evaluates {BENCH_NAME!r}")
    bench = Bench(path.resolve(), info)  # absolute: image URLs are made from it for every sample
    for number, line in enumerate((path / "samples.jsonl").read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            bench.samples.append(Sample.model_validate_json(line))
        except ValidationError as e:
            first = e.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "line"
            bench.bad.append(BadLine(f"line-{number}", f"samples.jsonl:{number}: {where}: {first['msg']}"))
    return bench
