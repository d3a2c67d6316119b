"""The scenes CLI as a user runs it: files written, determinism, clear errors on bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image
from typer.testing import CliRunner

from roadthink.cli import app
from roadthink.scene import load_scene

runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def files_of(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_generate_writes_the_contract_files(tmp_path):
    out = tmp_path / "gen"
    result = run(
        "scenes",
        "generate",
        "--n",
        "3",
        "--seed",
        "5",
        "--out",
        str(out),
        "--cameras",
        "CAM_FRONT,CAM_BACK",
        "--workers",
        "1",
    )
    assert result.exit_code == 0, result.output
    scenes = sorted((out / "scenes").glob("*.json"))
    assert len(scenes) == 3
    for path in scenes:
        scene = load_scene(path)
        assert path.stem == scene.scene_id
        assert set(scene.cameras) == {"CAM_FRONT", "CAM_BACK"}
        raw = json.loads(path.read_text())
        for key in ("schema_version", "scene_id", "seed", "ego", "agents", "cameras"):
            assert key in raw
        assert {"pose", "speed", "past", "future"} <= set(raw["ego"])
        cam = raw["cameras"]["CAM_FRONT"]
        assert len(cam["intrinsics"]) == 3 and len(cam["extrinsics"]) == 4
        for name in ("BEV", "CAM_FRONT", "CAM_BACK"):
            image = Image.open(out / "images" / scene.scene_id / f"{name}.png")
            assert image.mode == "RGB"
            if name != "BEV":
                assert image.size == (640, 360)
        annotated = [a for a in scene.agents if a.cameras]
        assert annotated, "some agent is seen by some camera"
        for agent in annotated:
            for ann in agent.cameras.values():
                x1, y1, x2, y2 = ann.bbox
                assert 0 <= x1 < x2 <= 640 and 0 <= y1 < y2 <= 360
                assert 0 < ann.visible_fraction <= 1 and ann.depth > 0
    assert not list(out.rglob(".*tmp")) and not list(out.rglob(".*.png"))
    umask = os.umask(0)
    os.umask(umask)
    for path in out.rglob("*.*"):
        assert path.stat().st_mode & 0o777 == 0o666 & ~umask, f"{path} has mode {path.stat().st_mode:o}"


def test_same_seed_gives_identical_files_whatever_the_worker_count(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    assert run("scenes", "generate", "--n", "4", "--seed", "9", "--out", str(a), "--workers", "1").exit_code == 0
    assert run("scenes", "generate", "--n", "4", "--seed", "9", "--out", str(b), "--workers", "2").exit_code == 0
    fa, fb = files_of(a), files_of(b)
    assert fa.keys() == fb.keys() and len(fa) == 12
    assert fa == fb


def test_show_prints_a_summary_and_draws(tmp_path):
    out = tmp_path / "gen"
    run("scenes", "generate", "--n", "1", "--out", str(out), "--workers", "1")
    scene_file = next((out / "scenes").glob("*.json"))
    picture = tmp_path / "show.png"
    result = run("scenes", "show", str(scene_file), "--image", str(picture))
    assert result.exit_code == 0, result.output
    scene = load_scene(scene_file)
    assert scene.scene_id in result.output and scene.layout in result.output
    assert scene.agents[0].id in result.output
    assert "checks: ok" in result.output
    drawn = np.asarray(Image.open(picture))
    assert drawn.shape[0] > 360 and drawn.shape[1] > 640


def _error(result) -> str:
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2, result.output
    assert len(lines) == 1, result.output
    return lines[0]


def test_bad_input_is_one_line_and_writes_nothing(tmp_path):
    out = tmp_path / "never"
    assert "unknown camera 'CAM_TOP'" in _error(
        run("scenes", "generate", "--n", "2", "--out", str(out), "--cameras", "CAM_TOP")
    )
    assert "--n must be a positive" in _error(run("scenes", "generate", "--n", "0", "--out", str(out)))
    assert "unknown value 'roundabout'" in _error(
        run("scenes", "generate", "--n", "1", "--out", str(out), "--layout", "roundabout")
    )
    assert not out.exists()
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    line = _error(run("scenes", "generate", "--n", "1", "--out", str(blocker / "sub")))
    assert "not writable" in line and str(blocker / "sub") in line


def test_show_names_file_and_field_of_a_bad_scene(tmp_path):
    out = tmp_path / "gen"
    run("scenes", "generate", "--n", "1", "--out", str(out), "--workers", "1")
    scene_file = next((out / "scenes").glob("*.json"))
    data = json.loads(scene_file.read_text())
    del data["agents"][0]["box"]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    line = _error(run("scenes", "show", str(bad)))
    assert str(bad) in line and "agents.0.box" in line


def test_console_script_runs(tmp_path):
    exe = Path(sys.executable).with_name("roadthink")
    result = subprocess.run(
        [str(exe), "scenes", "generate", "--n", "1", "--out", str(tmp_path), "--cameras", "nope"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert "unknown camera 'nope'" in result.stderr


def test_filters_pick_what_is_generated(tmp_path):
    out = tmp_path / "night"
    args = ("--layout", "intersection", "--time-of-day", "night", "--weather", "rain", "--scenario", "normal")
    assert run("scenes", "generate", "--n", "3", "--out", str(out), "--workers", "1", *args).exit_code == 0
    for path in (out / "scenes").glob("*.json"):
        scene = load_scene(path)
        assert (scene.layout, scene.scenario) == ("intersection", "normal")
        assert (scene.environment.time_of_day, scene.environment.weather) == ("night", "rain")


def test_demo_evaluates_the_builtin_model_beside_the_blind_baseline_and_the_oracle(tmp_path):
    result = CliRunner().invoke(app, ["demo", "--out", str(tmp_path), "--size", "1"])
    assert result.exit_code == 0, result.output
    assert all(f"{m} accuracy" in result.output for m in ("builtin", "blind", "oracle"))
    runs = {m: json.loads((tmp_path / "runs" / m / "metrics.json").read_text()) for m in ("builtin", "blind", "oracle")}
    assert runs["oracle"]["overall"]["accuracy"] >= 0.98 > runs["blind"]["overall"]["accuracy"]
    low, high = runs["blind"]["overall"]["ci95"]  # each figure beside its interval
    shown = f"{100 * runs['blind']['overall']['accuracy']:.1f} ({100 * low:.0f}–{100 * high:.0f})"
    assert shown in result.output and "95 % interval" in result.output
    replies = [json.loads(line) for line in (tmp_path / "runs" / "builtin" / "samples.jsonl").read_text().splitlines()]
    assert len(replies) == runs["oracle"]["overall"]["n"] and all(r["prediction"] for r in replies)
    assert "report.html" in result.output and (tmp_path / "runs" / "builtin" / "report.html").is_file()
    again = CliRunner().invoke(app, ["demo", "--out", str(tmp_path), "--size", "1"])  # cached: nothing rebuilt
    assert again.exit_code == 0 and "test scenes" not in again.output
