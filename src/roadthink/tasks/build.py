"""Building a benchmark split: scenes -> balanced samples -> files and a dataset card.

Scenes are generated and rendered on worker processes in seed order; the main process asks
every task about each scene and keeps a sample only while the balance allows it. A scene
that yields no sample leaves no files behind.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from roadthink import __version__
from roadthink.errors import RoadthinkError
from roadthink.parallel import default_workers, map_with_progress
from roadthink.render import render_camera, save_png
from roadthink.render.export import ExportJob, check_writable, export, scene_paths
from roadthink.scene.generator import GENERATOR_VERSION, GeneratorConfig
from roadthink.scene.io import load_scene, write_atomic
from roadthink.scene.timeline import scene_at
from roadthink.scene.types import Scene
from roadthink.tasks.registry import Balancer, Task
from roadthink.tasks.sample import Sample

BENCH_NAME = "roadthink-bench-v1"
SPLIT_SEEDS = {"train": 1_000, "val": 2_000, "test": 3_000}  # disjoint scene streams per split
SCENES_PER_SAMPLE = 25  # give up on a task after this many scenes per requested sample
# benchmark scenes: more corner cases than the generator's everyday mix, so every family fills
BENCH_SCENARIOS = {
    "normal": 0.4,
    "occluded_pedestrian": 0.12,
    "lane_closure": 0.12,
    "road_debris": 0.12,
    "animal_on_road": 0.12,
    "lead_braking": 0.12,
}


@dataclass
class BuildReport:
    """What a build made and what it had to skip, for the dataset card."""

    split: str
    base_seed: int
    size: int
    scenes_tried: int = 0
    scenes_used: int = 0
    samples: dict[str, int] = field(default_factory=Counter)
    skipped: dict[str, int] = field(default_factory=Counter)  # scenes a task could not ask about
    answers: dict[str, Counter] = field(default_factory=dict)


def build(
    out: Path, tasks: list[Task], split: str, size: int, seed: int | None = None, workers: int = 0
) -> BuildReport:
    """Write ``size`` samples per task of ``split`` into ``out``."""
    if split not in SPLIT_SEEDS:
        raise RoadthinkError(f"unknown split {split!r}; known: {', '.join(SPLIT_SEEDS)}")
    if size <= 0:
        raise RoadthinkError(f"--size must be a positive number of samples per task, got {size}")
    if not tasks:
        raise RoadthinkError("no task selected")
    check_writable(out)
    base_seed = SPLIT_SEEDS[split] if seed is None else seed
    report = BuildReport(split, base_seed, size)
    rng = np.random.default_rng(np.random.SeedSequence([base_seed, 7]))
    balancer = Balancer()
    config = GeneratorConfig(scenarios=BENCH_SCENARIOS)
    max_scenes = size * SCENES_PER_SAMPLE
    jobs = (ExportJob(base_seed, i, out, config) for i in range(max_scenes))
    samples: list[Sample] = []
    workers = workers or default_workers()
    used: set[str] = set()
    for done in map_with_progress(export, jobs, max_scenes, f"{split} scenes", workers, chunksize=2):
        report.scenes_tried += 1
        scene = load_scene(done.scene_path)
        taken = []
        for t in tasks:
            if report.samples[t.name] >= size:
                continue
            sample = balancer.pick(t, list(t.propose(scene, rng)), rng)
            if sample is None:
                report.skipped[t.name] += 1
                continue
            taken.append(sample)
        if taken:
            used.add(scene.scene_id)
            report.scenes_used += 1
            for sample in taken:
                samples.append(_with_files(sample, scene, out))
                report.samples[sample.task] += 1
                report.answers.setdefault(sample.task, Counter())[sample.meta["bucket"]] += 1
        if all(report.samples[t.name] >= size for t in tasks):
            break
    _prune(out, f"s{base_seed}-", used, config.cameras)
    _write_samples(out / "samples.jsonl", samples)
    write_atomic(out / "README.md", dataset_card(report, tasks).encode())
    return report


def _with_files(sample: Sample, scene: Scene, out: Path) -> Sample:
    """``sample`` with the paths of its scene and images; frames of other moments than now
    (past frames for prediction) are rendered here, once per scene and view."""
    scene_file, images = scene_paths(Path("."), scene.scene_id, list(scene.cameras))
    paths = []
    for view in sample.views:
        if view.t == 0:
            paths.append(images[view.camera].as_posix())
            continue
        path = images[view.camera].with_name(f"{view.key}.png")
        if not (out / path).exists():
            save_png(out / path, render_camera(scene_at(scene, view.t), view.camera).image)
        paths.append(path.as_posix())
    return sample.model_copy(update={"scene": scene_file.as_posix(), "images": paths})


def _prune(out: Path, prefix: str, used: set[str], cameras: list[str]) -> None:
    """Remove this build's scenes that no sample uses (asked nothing, or finished by a
    worker after the split was full): the folder holds exactly what samples.jsonl needs."""
    for scene_file in (out / "scenes").glob(f"{prefix}*.json"):
        if scene_file.stem not in used:
            _, images = scene_paths(out, scene_file.stem, cameras)
            scene_file.unlink(missing_ok=True)
            shutil.rmtree(next(iter(images.values())).parent, ignore_errors=True)


def _write_samples(path: Path, samples: list[Sample]) -> None:
    lines = [json.dumps(s.model_dump(mode="json", exclude={"views", "meta"}), sort_keys=False) for s in samples]
    write_atomic(path, ("\n".join(lines) + "\n").encode() if lines else b"")


def dataset_card(report: BuildReport, tasks: list[Task]) -> str:
    """README.md of a built split: what is in it, how balanced, how to load it."""
    rows = []
    for t in tasks:
        answers = report.answers.get(t.name, Counter())
        spread = ", ".join(f"{b}: {answers[b]}" for b in t.buckets if answers[b]) or "-"
        counts = f"{report.samples[t.name]} | {report.skipped[t.name]}"
        rows.append(f"| {t.family} | {t.name} | {t.answer_type} | {counts} | {spread} |")
    families = Counter()
    for t in tasks:
        families[t.family] += report.samples[t.name]
    return "\n".join(
        [
            f"# {BENCH_NAME} — {report.split} split",
            "",
            f"Built by roadthink {__version__} (scene generator {GENERATOR_VERSION}) from base seed "
            f"{report.base_seed}: {sum(report.samples.values())} samples from {report.scenes_used} scenes "
            f"({report.scenes_tried} generated). Every answer is computed from the scene; each sample carries "
            "reference reasoning steps whose facts can be checked against its scene file.",
            "",
            "## Samples per family",
            "",
            "| family | samples |",
            "|---|---|",
            *[f"| {name} | {n} |" for name, n in families.items()],
            "",
            "## Tasks",
            "",
            "Skipped: scenes in which the task had nothing to ask, or whose only questions would have "
            "unbalanced the answers. Answers are balanced per question wording, so a model that reads only "
            "the question scores at chance.",
            "",
            "| family | task | answer type | samples | skipped | answer buckets |",
            "|---|---|---|---|---|---|",
            *rows,
            "",
            "## Files",
            "",
            "- `samples.jsonl`: one sample per line: `id`, `family`, `task`, `question`, `choices`, `answer`, "
            "`answer_type`, `images` (relative paths), `scene` (relative path), `scene_id`, `reference_steps`.",
            "- `scenes/<scene_id>.json`: the full scene with exact 2D annotations.",
            "- `images/<scene_id>/<CAMERA>.png`: what the model is shown.",
            "",
            "## Loading",
            "",
            "```python",
            "from datasets import load_dataset",
            'ds = load_dataset("json", data_files="samples.jsonl", split="train")',
            "```",
            "",
        ]
    )
