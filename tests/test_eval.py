"""The evaluation runner: baselines where they belong, every sample accounted for, runs that
survive SIGKILL, and bad input recorded rather than fatal."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import pytest
from typer.testing import CliRunner

from roadthink.cli import app
from roadthink.errors import RoadthinkError
from roadthink.eval.bench import load_bench
from roadthink.eval.runner import RunConfig, conditions_for, read_results, run
from roadthink.models.base import resolve_model
from roadthink.models.baselines import RandomModel
from roadthink.models.types import Completion
from roadthink.tasks import TASKS


def _run(model: str, bench: Path, out: Path, train: Path | None = None, **settings) -> dict:
    config = RunConfig(model, bench, settings.pop("conditions", ["clean"]), **settings)
    return asyncio.run(run(resolve_model(model, train=train), load_bench(bench), out, config, False))


def _chance(rows: list[dict]) -> float:
    """Expected accuracy of guessing uniformly among each question's valid answers."""
    judged = [r for r in rows if r["answer_type"] != "waypoints"]
    total = 0.0
    for r in judged:
        if r["choices"]:
            total += 1 / len(r["choices"])
        elif r["answer_type"] == "box":
            total += 0.0  # a uniform random box almost never overlaps the answer by half
        else:
            total += 1 / len(TASKS[r["task"]].buckets)
    return total / len(judged)


@pytest.fixture(scope="module")
def oracle_run(splits, tmp_path_factory) -> tuple[dict, list[dict]]:
    out = tmp_path_factory.mktemp("oracle")
    metrics = _run("oracle", splits["test"][0], out)
    return metrics, [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]


def test_the_oracle_scores_at_least_98_percent_on_every_task(oracle_run, splits):
    metrics, rows = oracle_run
    assert len(rows) == len(splits["test"][1])  # every sample, once
    for name, block in metrics["by_task"].items():
        if block.get("accuracy") is not None:
            assert block["accuracy"] >= 0.98, (name, block)
    plans = [r for r in rows if r["answer_type"] == "waypoints"]
    assert plans and all(r["details"]["l2_uniad_3s"] < 0.1 for r in plans)  # rounded to 0.1 m


def test_the_oracles_reasoning_checks_out(oracle_run):
    _, rows = oracle_run
    stated = [r["details"] for r in rows if r["details"].get("facts_stated")]
    assert stated and all(d["facts_true"] == d["facts_stated"] for d in stated)


@pytest.mark.parametrize("model", ["random", "blind"])
def test_baselines_score_near_chance(model, splits, tmp_path):
    test_dir, rows = splits["test"]
    metrics = _run(model, test_dir, tmp_path, train=splits["train"][0] if model == "blind" else None)
    chance, n = _chance(rows), metrics["overall"]["n"]
    noise = 2 * (chance * (1 - chance) / n) ** 0.5
    assert abs(metrics["overall"]["accuracy"] - chance) <= 0.05 + noise, (metrics["overall"], chance)


SLOW_RUN = """
import asyncio, sys, time
from pathlib import Path
from roadthink.eval.bench import load_bench
from roadthink.eval.runner import RunConfig, run
from roadthink.models.baselines import RandomModel

class Slow(RandomModel):
    async def generate(self, messages, **options):
        await asyncio.sleep(0.05)
        return await super().generate(messages, **options)

bench, out = Path(sys.argv[1]), Path(sys.argv[2])
asyncio.run(run(Slow(), load_bench(bench), out, RunConfig("random", bench, ["clean"], concurrency=2), False))
"""


def test_a_run_killed_with_sigkill_resumes_without_duplicates_or_losses(splits, tmp_path):
    bench, rows = splits["test"]
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-c", SLOW_RUN, str(bench), str(out)], env={**os.environ})
    results = out / "samples.jsonl"
    deadline = time.time() + 60
    while time.time() < deadline and (not results.is_file() or results.read_text().count("\n") < 20):
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = results.read_bytes()
    assert 20 <= before.count(b"\n") < len(rows)  # killed mid-way
    _run("random", bench, out)
    after = read_results(results)
    ids = [r.id for r in after]
    assert len(ids) == len(set(ids)) == len(rows)  # no duplicates, no losses
    kept = before[: before.rfind(b"\n") + 1]
    assert results.read_bytes().startswith(kept)  # finished work untouched


def test_bad_lines_and_missing_images_are_recorded_and_counted(splits, tmp_path):
    source, rows = splits["test"]
    bench = tmp_path / "bench"
    bench.mkdir()
    for name in ("bench.json", "scenes", "images"):
        (bench / name).symlink_to(source / name)
    lines = [json.dumps(r) for r in rows[:5]]
    lines[1] = '{"id": "broken", "task": 3'
    lines[2] = json.dumps({**rows[2], "images": ["images/nowhere/CAM_FRONT.png"]})
    (bench / "samples.jsonl").write_text("\n".join(lines) + "\n")
    out = tmp_path / "run"
    metrics = _run("oracle", bench, out)
    results = {r.id: r for r in read_results(out / "samples.jsonl")}
    assert len(results) == 5 and metrics["overall"]["n"] == 5
    assert results["line-2"].error.startswith("samples.jsonl:2:") and results["line-2"].correct is False
    assert "image images/nowhere/CAM_FRONT.png is missing" in results[rows[2]["id"]].error


def test_wrong_model_strings_and_benches_fail_before_anything_runs(tmp_path, splits):
    with pytest.raises(RoadthinkError, match=r"unknown model 'gpt5'; known: .*blind.*oracle.*random"):
        resolve_model("gpt5")
    with pytest.raises(RoadthinkError, match="not a benchmark split"):
        load_bench(tmp_path)
    result = CliRunner().invoke(
        app, ["eval", "--model", "nope", "--bench", str(splits["test"][0]), "--out", str(tmp_path / "r")]
    )
    assert result.exit_code == 2 and "unknown model 'nope'" in result.output
    assert not (tmp_path / "r").exists()


def test_a_run_folder_holds_one_run(splits, tmp_path):
    bench = splits["test"][0]
    _run("random", bench, tmp_path, limit=3)
    with pytest.raises(RoadthinkError, match="holds a run with model='random'"):
        _run("oracle", bench, tmp_path, limit=3)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["model"] == "random" and config["bench_info"]["name"] == "roadthink-bench-v1"
    assert config["roadthink_version"] and "git_commit" in config


def test_conditions():
    assert conditions_for(None, False) == ["clean"]
    assert conditions_for("fog:5", True) == ["fog:5", "text_only"]
    everything = conditions_for("all", False)
    assert everything[0] == "clean" and everything[-1] == "text_only" and len(everything) == 17
    with pytest.raises(RoadthinkError, match="unknown corruption"):
        conditions_for("smog", False)


def test_corrupted_and_text_only_images_are_what_the_model_sees(splits, tmp_path):
    bench = splits["test"][0]
    _run("random", bench, tmp_path, conditions=["fog:5", "text_only"], limit=2)
    fogged = sorted((tmp_path / "images" / "fog-5").rglob("*.png"))
    blacked = sorted((tmp_path / "images" / "text_only").rglob("*.png"))
    assert fogged and blacked
    assert cv2.imread(str(blacked[0])).max() == 0
    original = bench / "images" / fogged[0].parent.name / fogged[0].name
    assert cv2.imread(str(fogged[0])).std() < cv2.imread(str(original)).std()  # fog washes contrast out
    assert {r.condition for r in read_results(tmp_path / "samples.jsonl")} == {"fog:5", "text_only"}


class SceneSpy(RandomModel):
    """A random model that notes the scene each call is handed, and may state a fact."""

    def __init__(self, reads_scene: bool, fact: str = "") -> None:
        super().__init__()
        self.reads_scene = reads_scene
        self.fact = fact
        self.scenes: list[object] = []

    async def generate(self, messages, **options):
        self.scenes.append(options.get("scene"))
        completion = await super().generate(messages, **options)
        return Completion(text=f"{self.fact}{completion.text}")


def _spy_run(model: SceneSpy, bench: Path, out: Path) -> list:
    config = RunConfig("random", bench, ["clean"], tasks=["waypoints", "color"])
    asyncio.run(run(model, load_bench(bench), out, config, False))
    return read_results(out / "samples.jsonl")


def test_scenes_are_read_for_models_that_read_them_and_for_the_scoring_that_needs_them(splits, tmp_path):
    bench = splits["test"][0]
    reader = SceneSpy(reads_scene=True)
    _spy_run(reader, bench, tmp_path / "reader")
    assert reader.scenes and all(scene is not None for scene in reader.scenes)
    blind = SceneSpy(reads_scene=False, fact='<facts>[{"type": "color", "agent": "a1", "value": "red"}]</facts>\n')
    results = _spy_run(blind, bench, tmp_path / "blind")
    assert blind.scenes and all(scene is None for scene in blind.scenes)  # a VLM is never handed one
    assert results and all(r.error is None and r.details["facts_stated"] == 1 for r in results)  # facts checked
    plans = [r for r in results if r.answer_type == "waypoints"]
    assert plans and all("collision_3s" in r.details for r in plans)  # collisions need the scene
