"""Bench builds as files: loadable with `datasets`, a self-contained Parquet export, a card,
rebuilds that leave nothing stale, and clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from datasets import load_dataset
from PIL import Image, ImageFont
from typer.testing import CliRunner

from roadthink.cli import app
from roadthink.errors import RoadthinkError
from roadthink.scene.types import Scene
from roadthink.tasks import select_tasks
from roadthink.tasks.build import build
from roadthink.tasks.preview import sample_card

TASKS = ["count", "side", "motion", "box"]  # numbers, choices, past frames and boxes


@pytest.fixture(scope="module")
def bench(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bench")
    build(out, select_tasks(TASKS), "val", 3, workers=1, fmt="parquet")
    return out


def _rows(bench: Path) -> list[dict]:
    return [json.loads(line) for line in (bench / "samples.jsonl").read_text().splitlines()]


def test_jsonl_loads_with_datasets_and_keeps_every_answer(bench):
    ds = load_dataset("json", data_files=str(bench / "samples.jsonl"), split="train")
    rows = _rows(bench)
    assert len(ds) == len(rows) == 3 * len(TASKS)
    assert ds["answer"] == [r["answer"] for r in rows]  # numbers, letters and boxes alike
    assert ds["id"] == [r["id"] for r in rows] and len(set(ds["id"])) == len(rows)


def test_parquet_embeds_images_and_scenes(bench):
    ds = load_dataset("parquet", data_files=str(bench / "samples.parquet"), split="train")
    rows = _rows(bench)
    assert ds["id"] == [r["id"] for r in rows]
    for sample, row in zip(ds, rows, strict=True):
        assert len(sample["images"]) == len(row["images"])
        for image, path in zip(sample["images"], row["images"], strict=True):
            assert image.size == ((400, 400) if path.endswith("BEV.png") else (640, 360))
        scene = Scene.model_validate_json(sample["scene_json"])
        assert scene.scene_id == row["scene_id"] and sample["answer"] == row["answer"]
    motion = next(r for r in ds if r["task"] == "motion")
    assert len(motion["images"]) == 3  # two past frames and now


def test_card_counts_every_task_and_says_how_to_load(bench):
    card = (bench / "README.md").read_text()
    for name in TASKS:
        assert f"| {name} | " in card
    assert 'load_dataset("json", data_files="samples.jsonl"' in card
    assert 'load_dataset("parquet", data_files="samples.parquet"' in card
    assert "roadthink-bench-v1" in card and "base seed 2000" in card


def test_a_smaller_rebuild_leaves_nothing_stale(tmp_path):
    tasks = select_tasks(["side"])
    build(tmp_path, tasks, "val", 6, workers=1)
    build(tmp_path, tasks, "val", 2, workers=1)
    used = {r["scene_id"] for r in _rows(tmp_path)}
    assert {p.stem for p in (tmp_path / "scenes").glob("*.json")} == used
    assert {p.name for p in (tmp_path / "images").iterdir()} == used


def test_bad_options_are_one_line_errors(tmp_path):
    with pytest.raises(RoadthinkError, match=r"unknown format 'csv'; known: jsonl, parquet"):
        build(tmp_path, select_tasks(["side"]), "val", 1, fmt="csv")
    result = CliRunner().invoke(app, ["bench", "build", "--out", str(tmp_path), "--tasks", "nope"])
    assert result.exit_code == 2 and "unknown task 'nope'" in result.output
    assert not (tmp_path / "samples.jsonl").exists()


def test_bench_show_tabulates_and_draws_a_card_per_task(bench, tmp_path):
    picture = tmp_path / "cards.png"
    result = CliRunner().invoke(app, ["bench", "show", str(bench), "--image", str(picture)])
    assert result.exit_code == 0, result.output
    for name in TASKS:
        assert f"/ {name}" in result.output
    image = np.asarray(Image.open(picture))
    assert image.shape[1] >= 2 * 560 and image.std() > 20  # a grid of cards with images in them


def test_preview_draws_the_answer_box(bench):
    row = next(r for r in _rows(bench) if r["task"] == "box")
    plain = np.asarray(sample_card(bench, {**row, "answer_type": "choice"}, ImageFont.load_default(size=13)))
    boxed = np.asarray(sample_card(bench, row, ImageFont.load_default(size=13)))
    ys, xs = np.nonzero((plain != boxed).any(axis=2))
    x1, y1, x2, y2 = row["answer"]
    scale, left = 170 / 360, (560 - 640 * 170 / 360) / 2  # the card's image strip, centred
    assert len(xs) > 50  # the outline is drawn, and only around the answer
    assert x1 * scale + left - 4 <= xs.min() and xs.max() <= x2 * scale + left + 4
    assert y1 * scale - 4 <= ys.min() and ys.max() <= y2 * scale + 4


def test_bench_show_reports_a_broken_line(tmp_path):
    (tmp_path / "samples.jsonl").write_text('{"id": 1}\n{not json\n')
    result = CliRunner().invoke(app, ["bench", "show", str(tmp_path)])
    assert result.exit_code == 2 and "samples.jsonl:2: not a JSON object" in result.output
