"""Training curves: the figures of a log.jsonl picked per panel, drawn, several runs overlaid."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from roadthink.cli import app
from roadthink.errors import RoadthinkError
from roadthink.train.curves import PANELS, draw_curves, draw_log, read_log, series


def write_log(folder: Path, lines: list[dict]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "log.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    return folder


GRPO_LINES = [
    {"step": 10, "loss": 0.5, "rewards/accuracy_reward/mean": 0.2, "rewards/accuracy_reward/std": 0.4, "kl": 0.01},
    {"step": 20, "loss": 0.3, "rewards/accuracy_reward/mean": 0.4, "rewards/format_reward/mean": 1.0},
    {"step": 20, "val_accuracy": 0.31},
    {"step": 30, "loss": math.nan, "val_facts": 0.6, "val_facts_majority": 0.5},
    {"train_runtime": 12.0},  # no step: not a point
]


def test_each_panel_takes_its_own_figures_and_skips_what_is_not_a_number(tmp_path: Path) -> None:
    lines = read_log(write_log(tmp_path / "grpo", GRPO_LINES) / "log.jsonl")
    assert len(lines) == 4
    assert series(lines, PANELS["training loss"]) == {"loss": [(10.0, 0.5), (20.0, 0.3)]}
    assert series(lines, PANELS["rewards (mean per completion)"]) == {
        "accuracy_reward": [(10.0, 0.2), (20.0, 0.4)],
        "format_reward": [(20.0, 1.0)],
    }
    assert series(lines, PANELS["held-out accuracy"]) == {
        "val_accuracy": [(20.0, 0.31)],
        "val_facts": [(30.0, 0.6)],
        "val_facts_majority": [(30.0, 0.5)],
    }


def test_runs_are_drawn_overlaid_and_bad_logs_are_one_line_errors(tmp_path: Path) -> None:
    first = write_log(tmp_path / "sft", [{"step": s, "loss": 3.0 / s} for s in range(1, 30)])
    second = write_log(tmp_path / "grpo", GRPO_LINES)
    out = draw_curves([first, second], tmp_path / "pictures" / "both.png")
    with Image.open(out) as picture:
        wide = picture.width
    alone = draw_curves([first], tmp_path / "sft.png")
    with Image.open(alone) as picture:
        assert picture.width < wide  # one panel (the loss) against four
    (second / "log.jsonl").write_text('{"step": 1, "loss": 2}\n{"step": 2, "loss"\n')
    with pytest.raises(RoadthinkError, match=r"log\.jsonl:2: not a JSON line"):
        draw_curves([second], tmp_path / "x.png")
    with pytest.raises(RoadthinkError, match=r"no log\.jsonl"):
        draw_curves([tmp_path / "nowhere"], tmp_path / "x.png")
    with pytest.raises(RoadthinkError, match="nothing to draw"):
        draw_curves([write_log(tmp_path / "empty", [{"train_runtime": 1.0}])], tmp_path / "x.png")


def test_the_command_draws_the_runs_it_is_given(tmp_path: Path) -> None:
    first = write_log(tmp_path / "a", [{"step": 1, "loss": 2.0}, {"step": 2, "loss": 1.0}])
    second = write_log(tmp_path / "b", [{"step": 1, "loss": 2.5}, {"step": 2, "loss": 1.5}])
    result = CliRunner().invoke(app, ["train", "curves", str(first), str(second), "--out", str(tmp_path / "c.png")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "c.png").stat().st_size > 1000
    missing = CliRunner().invoke(app, ["train", "curves", str(tmp_path / "none"), "--out", str(tmp_path / "d.png")])
    assert missing.exit_code != 0 and "no log.jsonl" in missing.output


def test_a_stage_draws_its_own_log_only_when_there_is_a_figure_in_it(tmp_path: Path) -> None:
    assert draw_log(write_log(tmp_path / "short", [{"step": 1, "train_runtime": 0.2}])) is None
    assert not (tmp_path / "short" / "curves.png").exists()
    assert draw_log(write_log(tmp_path / "long", GRPO_LINES)) == tmp_path / "long" / "curves.png"
    assert (tmp_path / "long" / "curves.png").is_file()
