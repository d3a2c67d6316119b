"""Fixtures shared by test files: a small train and test split with every task."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from roadthink.tasks import select_tasks
from roadthink.tasks.build import build

SIZE = 16  # samples per task and split

# Read once, when torch loads: idle OpenMP threads must not spin while the other test
# process (pytest -n 2) needs the core.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


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


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory, splits) -> Path:
    """A tiny Qwen2-VL (random weights, tokenizer learnt from the train split), saved once per test process."""
    from roadthink.models.tiny import bench_corpus, build_tiny_qwen2vl

    return build_tiny_qwen2vl(tmp_path_factory.mktemp("tiny") / "model", bench_corpus(splits["train"][1]))
