"""Vision pre-training: its targets are the scene's exact facts (the perception tasks' own
answers, the pixels where lamps are drawn), and the stage trains the vision tower alone into
a model folder SFT goes on from, resumably."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import AutoModelForImageTextToText
from typer.testing import CliRunner

from roadthink.cli import app
from roadthink.eval.bench import load_bench
from roadthink.models.hf_backend import load
from roadthink.render.camera import lit_lamps
from roadthink.render.export import export_scenes
from roadthink.scene.generator import GeneratorConfig
from roadthink.scene.io import load_scene
from roadthink.tasks.spatial import placements
from roadthink.train.run import TrainSettings
from roadthink.train.vision import (
    CAMERA,
    FACTS,
    TOKEN_GROUPS,
    TOKEN_LABELS,
    majority_accuracy,
    scene_facts,
    token_groups,
    token_targets,
    train_vision,
    vision_examples,
)


def fact(facts: list[int], name: str) -> str:
    return FACTS[name][facts[list(FACTS).index(name)]]


def test_scene_facts_are_the_perception_answers(splits) -> None:
    """Every perception sample of the split agrees with the fact the vision heads learn."""
    bench = load_bench(splits["train"][0])
    checked = 0
    for sample in bench.samples:
        if sample.family != "perception":
            continue
        facts = scene_facts(load_scene(bench.path / sample.scene))
        chosen = sample.choices[ord(sample.answer) - ord("A")].split(". ", 1)[1] if sample.choices else None
        given = [f for step in sample.reference_steps for f in step.facts]
        if sample.task == "count":
            kind = sample.question.split("How many ")[1].split(" can")[0]
            assert fact(facts, f"count {kind}") == str(sample.answer), sample.id
        elif sample.task == "exists":
            category = next(f.category for f in given if f.type == "exists")
            assert fact(facts, f"exists {category}") == sample.answer, sample.id
        elif sample.task == "color":
            assert fact(facts, "nearest car colour") == chosen, sample.id
        elif sample.task == "category":
            description = next(f.description for f in given if f.type == "singled_out")
            assert fact(facts, f"category of {description}").replace("_", " ") == chosen, sample.id
        elif sample.task == "light_state":
            assert fact(facts, "ego light") == chosen, sample.id
        checked += 1
    assert checked >= 40


def test_token_targets_cover_agents_and_lamps_where_the_image_shows_them(splits) -> None:
    bench = load_bench(splits["train"][0])
    lamps, shown, placed = 0, 0, 0
    for scene_file in sorted((bench.path / "scenes").glob("*.json")):
        image_file = bench.path / "images" / scene_file.stem / f"{CAMERA}.png"
        if not image_file.is_file():
            continue
        scene = load_scene(scene_file)
        width, height = scene.cameras[CAMERA].width, scene.cameras[CAMERA].height
        targets = token_targets(scene, (width, height), 40).reshape(height // 40, width // 40, -1)
        for agent in scene.agents:
            box = agent.cameras.get(CAMERA)
            if box is not None:
                x, y = (box.bbox[0] + box.bbox[2]) / 2, (box.bbox[1] + box.bbox[3]) / 2
                cell = targets[min(int(y // 40), targets.shape[0] - 1), min(int(x // 40), targets.shape[1] - 1)]
                assert cell[TOKEN_LABELS.index(agent.category.value)] == 1
                assert cell[TOKEN_LABELS.index(agent.color.name)] == 1
                # and where it is, in the spatial questions' words, where that is clear-cut
                where = placements(scene, [agent])[agent.id]
                said = where.parts()
                assert all(cell[TOKEN_LABELS.index(label)] == 1 for label in said)
                placed += len(said)
        pixels = np.asarray(Image.open(image_file).convert("RGB"), dtype=int)
        for state, (u, v) in lit_lamps(scene, CAMERA):
            r, g, b = pixels[int(v), int(u)]
            lit = {"red": r > g + 40 and r > b + 40, "green": g > r + 40, "yellow": r > b + 40 and g > b + 40}
            lamps += 1
            shown += lit[state.value]
    assert placed >= 40
    assert lamps >= 3 and shown >= 0.8 * lamps  # the rest hidden behind something (occlusion is not checked)


def test_vision_stage_trains_the_tower_alone_and_resumes(tiny_model, splits, tmp_path) -> None:
    out = tmp_path / "vision"
    settings = TrainSettings(steps=4, batch_size=4, learning_rate=3e-3, logging_steps=1, save_steps=2, val_every=2)
    train_vision(splits["train"][0], out, f"hf:{tiny_model}", settings, splits["test"][0])
    rows = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    losses = [row["loss"] for row in rows if "loss" in row]
    assert len(losses) == 4 and all(np.isfinite(losses))
    accuracy = [row["val_facts"] for row in rows if "val_facts" in row]
    assert len(accuracy) == 2 and all(0.0 <= a <= 1.0 for a in accuracy)  # steps 2 and 4, the end
    trained = AutoModelForImageTextToText.from_pretrained(out).state_dict()
    initial = AutoModelForImageTextToText.from_pretrained(tiny_model).state_dict()
    visual = [k for k in initial if ".visual." in k]
    assert visual and any(not torch.equal(trained[k], initial[k]) for k in visual)
    assert all(torch.equal(trained[k], initial[k]) for k in initial if k not in visual)
    load(str(out), "cpu", torch.float32)  # a model folder SFT can start from
    longer = TrainSettings(**{**settings.__dict__, "steps": 6})
    train_vision(splits["train"][0], out, f"hf:{tiny_model}", longer)  # resumes at step 4
    rows = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows if "loss" in row] == [1, 2, 3, 4, 5, 6]
    assert (out / "checkpoint-6").is_dir()


def test_scene_folders_add_images_and_val_is_judged_against_the_majority(tiny_model, splits, tmp_path) -> None:
    """Scenes from ``roadthink scenes generate`` (no questions) join the split's images, and a
    scene folder can be the held-out set, whose log lines carry each fact's majority baseline."""
    extra, held_out = tmp_path / "extra", tmp_path / "held-out"
    export_scenes(extra, 5, seed=11, config=GeneratorConfig(), workers=1)
    export_scenes(held_out, 4, seed=12, config=GeneratorConfig(cameras=["CAM_BACK"]), workers=1)
    processor = load(str(tiny_model), "cpu", torch.float32)[0]
    assert len(vision_examples(extra, processor, None)) == 5
    out = tmp_path / "vision"
    args = ["train", "vision", "--bench", str(splits["train"][0]), "--out", str(out), "--model", f"hf:{tiny_model}"]
    args += ["--steps", "1", "--batch-size", "2", "--scenes", str(extra), "--val", str(held_out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code != 0 and "no scenes/*.json with CAM_FRONT images" in result.output  # back camera only
    export_scenes(held_out, 4, seed=12, config=GeneratorConfig(), workers=1)
    result = CliRunner().invoke(app, [*args, "--val-every", "1"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    last = next(row for row in reversed(rows) if "val_facts" in row)
    train = vision_examples(splits["train"][0], processor, None) + vision_examples(extra, processor, None)
    majority = majority_accuracy(train, vision_examples(held_out, processor, None))
    assert {f"majority {name}": value for name, value in majority.items()}.items() <= last.items()
    assert last["val_facts_majority"] == pytest.approx(np.mean(list(majority.values())))
    assert all(f"val {name}" in last for name in FACTS)
    # the token head, per group of labels, beside the train tokens' commonest label
    for group in ("category", "colour", "side"):
        assert 0.0 <= last[f"val tokens {group}"] <= 1.0 and 0.0 <= last[f"majority tokens {group}"] <= 1.0


def test_majority_accuracy_counts_the_commonest_train_class(splits, tiny_model) -> None:
    processor = load(str(tiny_model), "cpu", torch.float32)[0]
    examples = vision_examples(splits["train"][0], processor, None)
    column = list(FACTS).index("count cars")
    commonest = np.bincount([e.facts[column] for e in examples]).argmax()
    expected = np.mean([e.facts[column] == commonest for e in examples[:7]])
    assert majority_accuracy(examples, examples[:7])["count cars"] == pytest.approx(expected)


def test_vision_stage_trains_on_a_train_split_only(splits, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["train", "vision", "--bench", str(splits["test"][0]), "--out", str(tmp_path / "v"), "--steps", "1"]
    )
    assert result.exit_code != 0
    assert "test split" in result.output and "Traceback" not in result.output


def test_token_groups_judge_tokens_with_one_label_of_a_group() -> None:
    targets = np.zeros((4, len(TOKEN_LABELS)), np.float32)
    targets[0, TOKEN_LABELS.index("left")] = 1
    targets[1, TOKEN_LABELS.index("right")] = 1
    targets[2, [TOKEN_LABELS.index("left"), TOKEN_LABELS.index("right")]] = 1  # two road users
    targets[3, TOKEN_LABELS.index("car")] = 1
    groups = token_groups(targets)
    idx, single, labels = groups["side"]
    assert [TOKEN_LABELS[i] for i in idx] == list(TOKEN_GROUPS["side"])
    assert single.tolist() == [True, True, False, False] and labels[:2].tolist() == [0, 1]
    assert groups["category"][1].tolist() == [False, False, False, True]
    assert "lane" not in groups  # no token shows a lane
