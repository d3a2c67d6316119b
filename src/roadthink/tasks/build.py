"""Building a benchmark split: scenes -> balanced samples -> files and a dataset card.

Worker processes generate and render scenes in seed order and ask every task that still
needs samples about them; the main process keeps a candidate only while the balance
allows it, and writes the files of the scenes some sample uses. The result depends only on
the split's seed, never on the worker count.
"""

from __future__ import annotations

import json
import zlib
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from roadthink import __version__
from roadthink.errors import RoadthinkError
from roadthink.parallel import default_workers, map_with_progress
from roadthink.render import encode_png, render_camera, render_scene
from roadthink.render.export import check_writable, scene_id, scene_paths, scene_seed
from roadthink.scene.generator import GENERATOR_VERSION, GeneratorConfig, generate_scene
from roadthink.scene.io import scene_to_json, write_atomic
from roadthink.scene.timeline import scene_at
from roadthink.scene.types import LightState
from roadthink.tasks.registry import TASKS, Balancer, Task, answer_at
from roadthink.tasks.sample import Sample, View

BENCH_NAME = "roadthink-bench-v1"
SPLIT_SEEDS = {"train": 1_000, "val": 2_000, "test": 3_000}  # disjoint scene streams per split
FORMATS = ("jsonl", "parquet")
SCENES_PER_SAMPLE = 25  # give up on a task after this many scenes per requested sample
PER_SCENE = 2  # at most this many questions of one task about one scene (different wordings)
# benchmark scenes: more corner cases than the generator's everyday mix, every light state
# equally often at signals, the ego nearer junctions (more stops and turns): so that every
# family fills without a balance starving on a rare answer
BENCH_CONFIG = GeneratorConfig(
    scenarios={
        "normal": 0.4,
        "occluded_pedestrian": 0.06,
        "lane_closure": 0.16,
        "road_debris": 0.08,
        "animal_on_road": 0.24,
        "lead_braking": 0.06,
    },
    layouts={"straight": 0.25, "intersection": 0.45, "t_junction": 0.15, "merge": 0.15},
    signal_states=dict.fromkeys(LightState, 1.0),
    ego_approach=(2.0, 30.0),
    ego_in_junction=0.3,
)


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
    filled_at: dict[str, int] = field(default_factory=dict)  # scenes generated when a task was full
    letters: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))  # answer letters


@dataclass(frozen=True)
class SceneJob:
    base_seed: int
    index: int
    config: GeneratorConfig
    tasks: tuple[str, ...]  # the tasks still short of samples when the job was handed out


@dataclass(frozen=True)
class Proposals:
    """One scene and every question the open tasks would ask about it, with its files as
    bytes (written only if some question is kept)."""

    scene_id: str
    scene_json: bytes
    images: dict[str, bytes]  # view key ("BEV", "CAM_FRONT", "CAM_FRONT@-1s") -> PNG
    candidates: dict[str, list[Sample]]


def task_rng(base_seed: int, index: int, task_name: str) -> np.random.Generator:
    """The random stream of one task on one scene: independent of which other tasks ran."""
    return np.random.default_rng(np.random.SeedSequence([base_seed, index, zlib.crc32(task_name.encode())]))


def propose(job: SceneJob) -> Proposals:
    """Generate and render scene ``job.index``, and collect the open tasks' questions; past
    frames are rendered only when some question shows them."""
    sid = scene_id(job.base_seed, job.index)
    rendered = render_scene(generate_scene(scene_seed(job.base_seed, job.index), job.config, scene_id=sid))
    scene = rendered.scene
    candidates = {
        name: list(TASKS[name].propose(scene, task_rng(job.base_seed, job.index, name))) for name in job.tasks
    }
    images = {name: encode_png(image) for name, image in rendered.images.items()}
    other_times = {v for samples in candidates.values() for s in samples for v in s.views if v.t != 0}
    for view in sorted(other_times, key=lambda v: v.key):
        images[view.key] = encode_png(render_camera(scene_at(scene, view.t), view.camera).image)
    return Proposals(sid, scene_to_json(scene).encode(), images, candidates)


def build(
    out: Path,
    tasks: list[Task],
    split: str,
    size: int,
    seed: int | None = None,
    workers: int = 0,
    fmt: str = "jsonl",
) -> BuildReport:
    """Write ``size`` samples per task of ``split`` into ``out`` (and, for ``fmt`` parquet,
    one self-contained Parquet file with the images and scenes embedded)."""
    if split not in SPLIT_SEEDS:
        raise RoadthinkError(f"unknown split {split!r}; known: {', '.join(SPLIT_SEEDS)}")
    if fmt not in FORMATS:
        raise RoadthinkError(f"unknown format {fmt!r}; known: {', '.join(FORMATS)}")
    if size <= 0:
        raise RoadthinkError(f"--size must be a positive number of samples per task, got {size}")
    if not tasks:
        raise RoadthinkError("no task selected")
    check_writable(out)
    base_seed = SPLIT_SEEDS[split] if seed is None else seed
    report = BuildReport(split, base_seed, size)
    balancer, rng = Balancer(), np.random.default_rng(np.random.SeedSequence([base_seed, 7]))

    def jobs() -> Iterator[SceneJob]:
        for i in range(size * SCENES_PER_SAMPLE):
            open_tasks = tuple(t.name for t in tasks if report.samples[t.name] < size)
            if not open_tasks:
                return
            yield SceneJob(base_seed, i, BENCH_CONFIG, open_tasks)

    samples: list[Sample] = []
    used: set[str] = set()
    workers = workers or default_workers()
    for proposals in map_with_progress(propose, jobs(), size * SCENES_PER_SAMPLE, f"{split} scenes", workers):
        report.scenes_tried += 1
        taken = _take(proposals, tasks, balancer, rng, report)
        if taken:
            used.add(proposals.scene_id)
            report.scenes_used += 1
            samples += _write_scene(out, proposals, taken)
        if all(report.samples[t.name] >= size for t in tasks):
            break
    _prune(out, f"s{base_seed}-", used)
    _write_samples(out / "samples.jsonl", samples)
    if fmt == "parquet":
        from roadthink.tasks.export import write_parquet  # needs the datasets library

        write_parquet(out, out / "samples.parquet")
    write_atomic(out / "README.md", dataset_card(report, tasks, fmt).encode())
    write_atomic(out / "bench.json", json.dumps(bench_info(report, tasks), indent=2).encode())
    return report


def bench_info(report: BuildReport, tasks: list[Task]) -> dict:
    """``bench.json``: what an evaluation checks before it trusts a folder."""
    return {
        "name": BENCH_NAME,
        "split": report.split,
        "base_seed": report.base_seed,
        "roadthink_version": __version__,
        "generator_version": GENERATOR_VERSION,
        "tasks": {t.name: report.samples[t.name] for t in tasks},
    }


def _take(
    proposals: Proposals, tasks: list[Task], balancer: Balancer, rng: np.random.Generator, report: BuildReport
) -> list[Sample]:
    """The candidates the balance accepts: up to PER_SCENE per open task, each of another
    wording; the sample ids number them within the scene."""
    taken = []
    for t in tasks:
        if t.name not in proposals.candidates or report.samples[t.name] >= report.size:
            continue
        pool = proposals.candidates[t.name]
        for n in range(1, PER_SCENE + 1):
            if report.samples[t.name] >= report.size:
                break
            sample = balancer.pick(t, pool, rng)
            if sample is None:
                break
            if sample.choices:
                sample = answer_at(sample, _emptiest_letter(report.letters[t.name], len(sample.choices), rng))
                report.letters[t.name][sample.answer] += 1
            taken.append(sample.model_copy(update={"id": f"{sample.id}-{n}"}))
            report.samples[t.name] += 1
            report.answers.setdefault(t.name, Counter())[sample.meta["bucket"]] += 1
            pool = [s for s in pool if s.meta["key"] != sample.meta["key"]]
        if report.samples[t.name] >= report.size:
            report.filled_at.setdefault(t.name, report.scenes_tried)
        if not any(s.task == t.name for s in taken):
            report.skipped[t.name] += 1
    return taken


def _emptiest_letter(counts: Counter[str], options: int, rng: np.random.Generator) -> int:
    """The position of the least used answer letter so far (ties at random)."""
    used = [counts[chr(ord("A") + i)] for i in range(options)]
    lowest = [i for i, n in enumerate(used) if n == min(used)]
    return lowest[int(rng.integers(len(lowest)))]


def _write_scene(out: Path, proposals: Proposals, taken: list[Sample]) -> list[Sample]:
    """Write the scene file and the images ``taken`` show; the samples with their paths."""
    scene_file, images = scene_paths(Path("."), proposals.scene_id, [])
    folder = images["BEV"].parent
    needed = {"BEV"} | {v.key for s in taken for v in s.views}
    for key in sorted(needed):
        write_atomic(out / folder / f"{key}.png", proposals.images[key])
    write_atomic(out / scene_file, proposals.scene_json)  # last: a scene file always has its images

    def paths(views: list[View]) -> list[str]:
        return [(folder / f"{v.key}.png").as_posix() for v in views]

    return [s.model_copy(update={"scene": scene_file.as_posix(), "images": paths(s.views)}) for s in taken]


def _prune(out: Path, prefix: str, used: set[str]) -> None:
    """Remove files of this split's seeds that no sample uses (left by an earlier build into
    the same folder): the folder holds exactly what samples.jsonl needs."""
    for scene_file in (out / "scenes").glob(f"{prefix}*.json"):
        if scene_file.stem not in used:
            scene_file.unlink(missing_ok=True)
    for folder in (out / "images").glob(f"{prefix}*"):
        if folder.name not in used:
            for image in folder.glob("*.png"):
                image.unlink()
            folder.rmdir()


def _write_samples(path: Path, samples: list[Sample]) -> None:
    lines = [json.dumps(s.model_dump(mode="json", exclude={"views", "meta"}), sort_keys=False) for s in samples]
    write_atomic(path, ("\n".join(lines) + "\n").encode() if lines else b"")


def dataset_card(report: BuildReport, tasks: list[Task], fmt: str = "jsonl") -> str:
    """README.md of a built split: what is in it, how balanced, how to load it."""
    rows = []
    for t in tasks:
        answers = report.answers.get(t.name, Counter())
        spread = ", ".join(f"{b}: {answers[b]}" for b in t.buckets if answers[b]) or "-"
        counts = f"{report.samples[t.name]} | {report.skipped[t.name]}"
        rows.append(f"| {t.family} | {t.name} | {t.answer_type} | {counts} | {spread} |")
    families: Counter[str] = Counter()
    for t in tasks:
        families[t.family] += report.samples[t.name]
    total = sum(report.samples.values())
    parquet = (
        [
            "",
            "Self-contained copy with the images and scenes embedded (`images` decode to PIL images, "
            "`scene_json` holds each sample's scene):",
            "",
            "```python",
            'ds = load_dataset("parquet", data_files="samples.parquet", split="train")',
            "```",
        ]
        if fmt == "parquet"
        else []
    )
    return "\n".join(
        [
            "---",
            f"pretty_name: {BENCH_NAME} ({report.split})",
            "license: apache-2.0",
            "task_categories:",
            "- visual-question-answering",
            "configs:",
            "- config_name: default",
            "  data_files: samples.jsonl",
            "---",
            "",
            f"# {BENCH_NAME} — {report.split} split",
            "",
            f"Built by roadthink {__version__} (scene generator {GENERATOR_VERSION}) from base seed "
            f"{report.base_seed}: {total} samples from {report.scenes_used} scenes "
            f"({report.scenes_tried} generated). Every answer is computed from the scene; each sample carries "
            "reference reasoning steps whose facts can be checked against its scene file "
            "(`roadthink.tasks.facts.check_steps`).",
            "",
            "The splits `train`, `val` and `test` have fixed, disjoint scene seeds: the same command gives the "
            "same files on any machine and with any number of workers.",
            "",
            "## Scenes",
            "",
            "Generated procedurally (no real data): scenario mix "
            + ", ".join(f"{k} {v:.0%}" for k, v in BENCH_CONFIG.scenarios.items())
            + "; layouts "
            + ", ".join(f"{k} {v:.0%}" for k, v in BENCH_CONFIG.layouts.items())
            + " (where the scenario allows); every light state equally often for the ego at signals; the ego "
            f"starts {BENCH_CONFIG.ego_approach[0]:g}-{BENCH_CONFIG.ego_approach[1]:g} m before a junction, or inside "
            f"one ({BENCH_CONFIG.ego_in_junction:.0%}). The mix leans to corner cases so that rare answers fill.",
            "",
            "## Samples per family",
            "",
            "| family | samples |",
            "|---|---|",
            *[f"| {name} | {n} |" for name, n in families.items()],
            "",
            "## Tasks",
            "",
            "Skipped: scenes in which the task had nothing to ask (no traffic light, nobody to ask about), or "
            "whose only questions would have unbalanced the answers; no answer is ever made up. Answers are "
            "balanced per question wording and per task, so a model that reads only the question scores at "
            "chance. Answer buckets: the answer for choice questions, its class for open answers (the image "
            "third of a box, the manoeuvre of a trajectory).",
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
            "- `images/<scene_id>/<VIEW>.png`: what the model is shown (`CAM_FRONT@-1s.png`: a past frame).",
            *(["- `samples.parquet`: the samples with their images and scenes embedded."] if fmt == "parquet" else []),
            "",
            "Images are clean. The 15 sensor corruptions of DriveBench (severity 1-5) and the text-only setting "
            "(a black image of the same size) are applied to them at evaluation time, deterministically per seed "
            "(`roadthink.render.corrupt`; `roadthink corruptions` draws them all). Video-compression artefacts are "
            "an approximation of H.265: low-quality, low-resolution JPEG with 8x8 chroma blocks.",
            "",
            "## Loading",
            "",
            "```python",
            "from datasets import load_dataset",
            'ds = load_dataset("json", data_files="samples.jsonl", split="train")',
            "```",
            *parquet,
            "",
        ]
    )


def load_rows(bench: Path) -> list[dict]:
    """The samples of ``bench``; a malformed line is an error naming file and line."""
    path = bench / "samples.jsonl"
    if not path.is_file():
        raise RoadthinkError(f"{path}: no such file (build a split with `roadthink bench build`)")
    rows = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as e:
            raise RoadthinkError(f"{path}:{number}: not a JSON object ({e.msg})") from None
    return rows
