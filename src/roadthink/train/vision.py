"""Vision pre-training on the renderer's exact ground truth, before SFT: the vision tower of a
model trained from scratch learns what its camera images show, so that SFT has only to teach
the language model to read it.

Why: a from-scratch model did not learn to use its images in SFT. The language model reads an
image's tokens, at first, as an even average; what one small road user adds to that average is
too faint for SFT's one-answer-per-sample signal to build on within its budget (a 30-px square's
colour stayed at chance after 300 steps, where a whole image's colour was learnt in 50). So the
vision tower is trained here, with a loss on every image, to write what the image shows into
*all* its tokens: heads on the mean of the (RMS-normalised, as the language model's layers see
them) merged tokens predict the scene's facts that the perception questions ask about (counts,
presence, the nearest car's colour, who is leftmost, the light's state); a head on each token
predicts what that token covers (category, colour, lit lamp, and where the road user is: its
distance bin, side and lane, in the words of the spatial questions). Only images and scene files
are needed, so scenes generated without questions (``--scenes``) add images at no cost: on the
train split's ~2000 alone, the train loss fell far faster than held-out accuracy rose. The tower
then goes into SFT with the rest of the model unchanged.

``roadthink train vision --bench TRAIN_SPLIT --out CKPT [--scenes DIR]`` writes a model folder:
``roadthink train sft --model hf:CKPT`` goes on from it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from transformers import Trainer, TrainerCallback, TrainingArguments
from transformers.trainer_utils import get_last_checkpoint

from roadthink.errors import RoadthinkError
from roadthink.models.hf_backend import load, pick_device
from roadthink.parallel import map_with_progress
from roadthink.render.camera import lit_lamps
from roadthink.scene.catalog import COLOURS
from roadthink.scene.io import load_scene
from roadthink.scene.types import Category, LightState, Scene
from roadthink.tasks.perception import COUNTED, MAX_COUNT, SINGLED_OUT, singled_out
from roadthink.tasks.spatial import DISTANCE_BINS, LANES, SIDES, placements
from roadthink.tasks.views import ASKED_CATEGORIES, named, seen
from roadthink.train.curves import draw_log
from roadthink.train.data import ImageSizer, split_cache, train_split
from roadthink.train.run import (
    LogLines,
    StepMetrics,
    TrainSettings,
    initial_model,
    record,
    trainer_arguments,
    vision_tower,
)

CAMERA = "CAM_FRONT"
NONE = "none"
CATEGORIES = [c.value for c in Category]
COLOUR_NAMES = sorted({name for names in COLOURS.values() for name in names})
LIGHTS = [s.value for s in LightState]
# what a token covers: kind, colour, lit lamp, and where the road user is in the spatial questions'
# words (distance bin, side, lane: spatial.placements), so that a question about "the blue car"
# finds its answer in the tokens that show a blue car
TOKEN_LABELS = [
    *CATEGORIES,
    *COLOUR_NAMES,
    *(f"{s} lamp" for s in LIGHTS),
    *(label for _, _, label in DISTANCE_BINS),
    *SIDES,
    *LANES.values(),
]

# image-level facts: name -> its classes (the last is "none" where a fact may not apply)
FACTS: dict[str, list[str]] = {
    **{f"count {kind}": [*map(str, range(MAX_COUNT + 1)), "more"] for kind in COUNTED},
    **{f"exists {c.value}": ["no", "yes"] for c in ASKED_CATEGORIES},
    "nearest car colour": [*COLOURS[Category.CAR], NONE],
    **{f"category of {d}": [*CATEGORIES, NONE] for d in SINGLED_OUT},
    "ego light": [*LIGHTS, NONE],
}


def scene_facts(scene: Scene, camera: str = CAMERA) -> list[int]:
    """The class of every fact in ``FACTS`` for ``camera``'s image of ``scene``, from the
    helpers the perception tasks answer with."""
    visible = seen(scene, camera)
    values: list[str] = []
    for members in COUNTED.values():
        n = sum(a.category in members for a in visible)
        values.append(str(n) if n <= MAX_COUNT else "more")
    values += ["yes" if any(a.category is c for a in visible) else "no" for c in ASKED_CATEGORIES]
    cars = sorted((a for a in visible if a.category is Category.CAR), key=lambda a: a.cameras[camera].depth)
    values.append(cars[0].color.name if cars else NONE)
    for description in SINGLED_OUT:
        target = singled_out(scene, description, camera)
        values.append(target.category.value if target else NONE)
    light = next((lt for lt in scene.map.lights if scene.ego.lane_id in lt.lane_ids), None)
    values.append(light.state.value if light else NONE)
    return [classes.index(value) for classes, value in zip(FACTS.values(), values, strict=True)]


def token_targets(scene: Scene, size: tuple[int, int], cell: int, camera: str = CAMERA) -> np.ndarray:
    """(tokens, ``TOKEN_LABELS``) 0/1: what each ``cell``-pixel merged token of the image, shown
    at ``size`` (width, height), covers: the category, colour and placement (where clear-cut) of
    every agent whose box reaches it, and the lit lamp of every light facing the camera."""
    width, height = size
    spec = scene.cameras[camera]
    sx, sy = width / spec.width, height / spec.height
    rows, cols = height // cell, width // cell
    out = np.zeros((rows, cols, len(TOKEN_LABELS)), np.float32)

    def mark(box: tuple[float, float, float, float], labels: list[int]) -> None:
        x1, y1, x2, y2 = box
        c1, c2 = int(x1 * sx // cell), int(max(x2 * sx - 1e-6, x1 * sx) // cell)
        r1, r2 = int(y1 * sy // cell), int(max(y2 * sy - 1e-6, y1 * sy) // cell)
        out[max(r1, 0) : min(r2, rows - 1) + 1, max(c1, 0) : min(c2, cols - 1) + 1, labels] = 1.0

    shown = [agent for agent in scene.agents if camera in agent.cameras]
    placed = placements(scene, shown)
    for agent in shown:
        labels = [agent.category.value, agent.color.name, *placed[agent.id].parts()]
        mark(agent.cameras[camera].bbox, [TOKEN_LABELS.index(label) for label in labels])
    for state, (u, v) in lit_lamps(scene, camera):
        mark((u, v, u, v), [TOKEN_LABELS.index(f"{state.value} lamp")])
    return out.reshape(rows * cols, len(TOKEN_LABELS))


@dataclass(frozen=True)
class VisionExample:
    image: Path  # at the size the processor shows it
    facts: list[int]
    tokens: np.ndarray  # (merged tokens, TOKEN_LABELS); no rows when not asked for
    placed: tuple[tuple[str, str], ...] = ()  # (name, placement in words) of road users a question could name


MAX_PLACED = 4  # road users placed per image (captions say where each is)


def where_named(scene: Scene, camera: str = CAMERA) -> dict[str, tuple[str, str]]:
    """Agent id → (name, placement) of the road users that colour and kind single out in
    ``camera`` ("the blue car"), where each is in the spatial questions' words
    (``Placement.words``; empty when none of it is clear-cut)."""
    names = {agent.id: name for agent, name, _ in named(scene, camera)}
    found = placements(scene, [a for a in scene.agents if a.id in names])
    return {i: (names[i], placement.words()) for i, placement in found.items()}


def placed_named(scene: Scene, camera: str = CAMERA) -> tuple[tuple[str, str], ...]:
    """The first MAX_PLACED of ``where_named`` with something to say."""
    return tuple((name, words) for name, words in where_named(scene, camera).values() if words)[:MAX_PLACED]


def vision_examples(
    folder: Path, processor: Any, cache: Path | None, limit: int | None = None, per_token: bool = True
) -> list[VisionExample]:
    """One example per scene of ``folder`` (a bench split, or scenes from ``roadthink scenes
    generate``: ``scenes/<id>.json`` beside ``images/<id>/``) that has a ``CAMERA`` image,
    resized once into ``cache`` as for SFT; of the first ``limit`` scenes when given. Without
    ``per_token`` the per-token targets are not computed (captions use only the facts)."""
    sizer = ImageSizer(processor)
    cell = processor.image_processor.patch_size * processor.image_processor.merge_size

    def example(scene_file: Path) -> VisionExample | None:
        image = folder / "images" / scene_file.stem / f"{CAMERA}.png"
        if not image.is_file():
            return None
        with Image.open(image) as opened:
            size = sizer.measure(opened.size) or opened.size
        shown = image if cache is None else sizer.resized(image, folder, split_cache(cache, folder))
        scene = load_scene(scene_file)
        tokens = token_targets(scene, size, cell) if per_token else np.zeros((0, len(TOKEN_LABELS)), np.float32)
        return VisionExample(shown, scene_facts(scene), tokens, placed_named(scene))

    files = sorted((folder / "scenes").glob("*.json"))[:limit]
    made = map_with_progress(example, files, len(files), f"images of {folder.name}")
    examples = [e for e in made if e is not None]
    if not examples:
        raise RoadthinkError(f"{folder} has no scenes/*.json with {CAMERA} images to pre-train a vision tower on")
    return examples


class VisionProbe(torch.nn.Module):
    """A VLM's vision tower with the heads it is trained through: one per fact on the mean of
    its merged tokens, and one on each token. Only the tower and the heads train."""

    def __init__(self, vlm: Any, positive_rate: torch.Tensor) -> None:
        super().__init__()
        self.visual = vision_tower(vlm)
        self.width = vlm.config.text_config.hidden_size
        self.facts = torch.nn.ModuleList(torch.nn.Linear(self.width, len(c)) for c in FACTS.values())
        self.tokens = torch.nn.Linear(self.width, len(TOKEN_LABELS))
        # rare labels weigh more, so the per-token head does not learn to say "nothing" everywhere
        self.register_buffer("weight", ((1 - positive_rate) / positive_rate.clamp(min=1e-3)).clamp(max=50.0))

    def forward(
        self, pixel_values: torch.Tensor, image_grid_thw: torch.Tensor, facts: torch.Tensor, tokens: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        merged = F.rms_norm(self.visual(pixel_values, grid_thw=image_grid_thw).pooler_output, (self.width,))
        counts = (image_grid_thw.prod(-1) // self.visual.spatial_merge_size**2).tolist()
        pooled = torch.stack([part.mean(0) for part in merged.split(counts)])
        logits = [head(pooled) for head in self.facts]
        fact_loss = torch.stack([F.cross_entropy(lg, facts[:, i]) for i, lg in enumerate(logits)]).mean()
        token_logits = self.tokens(merged)
        token_loss = F.binary_cross_entropy_with_logits(token_logits, tokens, pos_weight=self.weight)
        return {
            "loss": fact_loss + token_loss,
            "predicted": torch.stack([lg.argmax(-1) for lg in logits], -1),
            "token_logits": token_logits,
        }


class Collate:
    """Examples → the processor's pixels and grid, and the targets, as one batch."""

    def __init__(self, processor: Any) -> None:
        self.images = processor.image_processor

    def __call__(self, examples: list[VisionExample]) -> dict[str, torch.Tensor]:
        pictures = []
        for example in examples:
            with Image.open(example.image) as image:
                pictures.append(image.convert("RGB"))
        batch = self.images(images=pictures, return_tensors="pt")
        return {
            "pixel_values": batch["pixel_values"],
            "image_grid_thw": batch["image_grid_thw"],
            "facts": torch.tensor([e.facts for e in examples]),
            "tokens": torch.from_numpy(np.concatenate([e.tokens for e in examples])),
        }


# groups of token labels of which a token showing one road user has exactly one
TOKEN_GROUPS = {
    "category": CATEGORIES,
    "colour": COLOUR_NAMES,
    "distance": [label for _, _, label in DISTANCE_BINS],
    "side": list(SIDES),
    "lane": list(LANES.values()),
}


class FactAccuracy(StepMetrics):
    """Accuracy of every fact head on held-out images, logged as ``val_facts`` (the mean) and
    per fact, each beside the accuracy of always saying the train images' commonest class
    (``majority …``): a head is learning only where it beats that. The token head is judged
    the same way per group of labels (``val tokens side``, ``majority tokens side``, …)."""

    def __init__(self, examples: list[VisionExample], collate: Collate, every: int, train: list[VisionExample]) -> None:
        super().__init__(every)
        self.examples, self.collate = examples, collate
        self.majority = majority_accuracy(train, examples)
        targets = np.concatenate([e.tokens for e in examples])
        commonest = np.concatenate([e.tokens for e in train]).sum(0)
        self.token_majority = {
            group: float(np.mean(labels[single] == np.argmax(commonest[idx])))
            for group, (idx, single, labels) in token_groups(targets).items()
        }

    def measure(self, step: int, model: Any) -> dict[str, float]:
        facts, tokens = fact_accuracy(model, self.examples, self.collate)
        figures = fact_figures("val_facts", facts, self.majority)
        figures |= {f"val tokens {group}": value for group, value in tokens.items()}
        return figures | {f"majority tokens {group}": value for group, value in self.token_majority.items()}


def token_groups(targets: np.ndarray) -> dict[str, tuple[list[int], np.ndarray, np.ndarray]]:
    """Per group of TOKEN_GROUPS with any: (its label columns, the tokens that have exactly one
    of them, which one each has)."""
    found = {}
    for group, names in TOKEN_GROUPS.items():
        idx = [TOKEN_LABELS.index(name) for name in names]
        single = targets[:, idx].sum(1) == 1
        if single.any():
            found[group] = (idx, single, targets[:, idx].argmax(1))
    return found


def fact_figures(mean: str, accuracy: dict[str, float], majority: dict[str, float]) -> dict[str, float]:
    """A held-out check's log figures: each fact's accuracy (``val <fact>``) beside the majority
    class's (``majority <fact>``), and both means (``mean``, ``mean``_majority)."""
    return {
        mean: float(np.mean(list(accuracy.values()))),
        f"{mean}_majority": float(np.mean(list(majority.values()))),
        **{f"val {name}": value for name, value in accuracy.items()},
        **{f"majority {name}": value for name, value in majority.items()},
    }


def fact_accuracy(
    probe: VisionProbe, examples: list[VisionExample], collate: Collate
) -> tuple[dict[str, float], dict[str, float]]:
    """Share of ``examples`` whose fact the probe's heads get right, per fact; and per group of
    token labels, the share of the tokens with one label of the group whose likeliest label of
    it is that one."""
    was_training = probe.training
    probe.eval()
    right = np.zeros(len(FACTS))
    logits, targets = [], []
    device = next(probe.parameters()).device
    with torch.no_grad():
        for start in range(0, len(examples), 32):
            batch = {k: v.to(device) for k, v in collate(examples[start : start + 32]).items()}
            out = probe(**batch)
            right += (out["predicted"] == batch["facts"]).sum(0).cpu().numpy()
            logits.append(out["token_logits"].cpu().numpy())
            targets.append(batch["tokens"].cpu().numpy())
    probe.train(was_training)
    facts = {name: float(r / len(examples)) for name, r in zip(FACTS, right, strict=True)}
    scores = np.concatenate(logits)
    tokens = {
        group: float(np.mean(scores[single][:, idx].argmax(1) == labels[single]))
        for group, (idx, single, labels) in token_groups(np.concatenate(targets)).items()
    }
    return facts, tokens


def majority_accuracy(train: list[VisionExample], examples: list[VisionExample]) -> dict[str, float]:
    """Per fact, the share of ``examples`` whose class is the commonest one among ``train``."""
    seen, asked = np.array([e.facts for e in train]), np.array([e.facts for e in examples])
    commonest = [np.bincount(column).argmax() for column in seen.T]
    return {name: float((asked[:, i] == commonest[i]).mean()) for i, name in enumerate(FACTS)}


def train_vision(
    bench_path: Path,
    out: Path,
    model: str = "tiny",
    settings: TrainSettings | None = None,
    val: Path | None = None,
    scenes: Sequence[Path] = (),
) -> Path:
    """Pre-train the vision tower of ``model`` (``tiny``: the CPU recipe, built from the split)
    on the train split's front-camera images and scene files, and those of the scene folders
    ``scenes`` (they need no questions: more images to learn from); ``val`` (a split or a
    scene folder) is measured every ``settings.val_every`` steps. Resumes from OUT's last
    checkpoint; returns OUT, a model folder."""
    settings = settings or TrainSettings(batch_size=32, steps=400)
    bench = train_split(bench_path)
    record(out, "vision", model, settings)
    device = pick_device(settings.device)
    processor, vlm = load(str(initial_model(model, bench, out, settings.seed)), device, torch.float32)
    examples = [e for folder in (bench.path, *scenes) for e in vision_examples(folder, processor, out / "images")]
    positive = torch.from_numpy(np.concatenate([e.tokens for e in examples]).mean(0))
    probe = VisionProbe(vlm, positive).to(device)
    for parameter in vlm.parameters():
        parameter.requires_grad_(False)
    for parameter in probe.parameters():
        parameter.requires_grad_(True)
    collate = Collate(processor)
    callbacks: list[TrainerCallback] = [LogLines(out / "log.jsonl")]
    if val is not None:  # before the log lines, so that its figures join the step's line
        held_out = vision_examples(val, processor, out / "images")
        callbacks.insert(0, FactAccuracy(held_out, collate, settings.val_every, examples))
    arguments = TrainingArguments(**trainer_arguments(settings, out, device), remove_unused_columns=False)
    trainer = Trainer(model=probe, args=arguments, train_dataset=examples, data_collator=collate, callbacks=callbacks)
    for callback in callbacks:
        if isinstance(callback, StepMetrics):
            callback.trainer = trainer
    last = get_last_checkpoint(str(out)) if any(out.glob("checkpoint-*")) else None
    trainer.train(resume_from_checkpoint=last)  # the probe's own checkpoints: its names load as saved
    vlm.save_pretrained(str(out))
    processor.save_pretrained(str(out))
    draw_log(out)
    return out
