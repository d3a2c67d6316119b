"""Scene folders on disk: ``scenes/<id>.json`` with exact 2D annotations and
``images/<id>/<CAMERA>.png`` (BEV and every camera of the scene)."""

from __future__ import annotations

import os
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from roadthink.errors import RoadthinkError
from roadthink.parallel import default_workers, map_with_progress
from roadthink.render import render_scene, save_png
from roadthink.scene.generator import GeneratorConfig, generate_scene
from roadthink.scene.io import save_scene
from roadthink.scene.types import Scene


def scene_seed(base_seed: int, index: int) -> int:
    """Seed of the ``index``-th scene of a run seeded ``base_seed``: independent streams,
    so scene i is the same whether 10 or 10 000 scenes are generated."""
    return int(np.random.SeedSequence([base_seed, index]).generate_state(1, dtype=np.uint32)[0])


def scene_id(base_seed: int, index: int) -> str:
    return f"s{base_seed}-{index:05d}"


@dataclass(frozen=True)
class ExportJob:
    base_seed: int
    index: int
    out: Path
    config: GeneratorConfig


@dataclass(frozen=True)
class Exported:
    scene_id: str
    layout: str
    scenario: str
    agents: int
    scene_path: Path


def scene_paths(out: Path, sid: str, cameras: list[str]) -> tuple[Path, dict[str, Path]]:
    images = {name: out / "images" / sid / f"{name}.png" for name in ["BEV", *cameras]}
    return out / "scenes" / f"{sid}.json", images


def write_scene(scene: Scene, out: Path) -> Path:
    """Render ``scene`` and write its images, then its annotated JSON. The JSON comes last,
    so a scene file on disk always has its images beside it."""
    rendered = render_scene(scene)
    json_path, image_paths = scene_paths(out, scene.scene_id, list(scene.cameras))
    for name, path in image_paths.items():
        save_png(path, rendered.images[name])
    return save_scene(rendered.scene, json_path)


def export(job: ExportJob) -> Exported:
    sid = scene_id(job.base_seed, job.index)
    scene = generate_scene(scene_seed(job.base_seed, job.index), job.config, scene_id=sid)
    path = write_scene(scene, job.out)
    return Exported(sid, scene.layout, scene.scenario, len(scene.agents), path)


def export_scenes(out: Path, n: int, seed: int, config: GeneratorConfig, workers: int = 0) -> Counter[str]:
    """Write scenes ``0..n-1`` of base seed ``seed`` into ``out`` on ``workers`` processes (0:
    one per core) with a progress bar; returns how many of each ``layout / scenario`` were made."""
    check_writable(out)
    jobs = [ExportJob(seed, i, out, config) for i in range(n)]
    made = map_with_progress(export, jobs, n, "scenes", workers or min(default_workers(), n))
    return Counter(f"{done.layout} / {done.scenario}" for done in made)


def check_writable(out: Path) -> None:
    """Fail before any work if ``out`` cannot hold results."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=out, prefix=".write-probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise RoadthinkError(f"{out}: output folder is not writable ({e.strerror or e})") from None
