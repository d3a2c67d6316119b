"""Fixtures shared by test files: a small train and test split with every task."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from roadthink.tasks import select_tasks
from roadthink.tasks.build import build

SIZE = 16  # samples per task and split


@pytest.fixture(scope="session")
def splits(tmp_path_factory) -> dict[str, tuple[Path, list[dict]]]:
    """A train and a test split of every task, built once per test process."""
    built = {}
    for split in ("train", "test"):
        out = tmp_path_factory.mktemp(split)
        build(out, select_tasks(), split, SIZE, workers=2)
        rows = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
        built[split] = (out, rows)
    return built
