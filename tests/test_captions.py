"""Caption pre-training: captions state every scene fact exactly and read back to the same
facts; the stage trains the language model and the merger (not the rest of the tower) into a
model folder SFT goes on from, resumably, judging held-out captions against the majority."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from transformers import AutoModelForImageTextToText
from typer.testing import CliRunner

from roadthink.cli import app
from roadthink.errors import RoadthinkError
from roadthink.eval.bench import load_bench
from roadthink.eval.parsing import parse_answer
from roadthink.models.hf_backend import load
from roadthink.render.export import export_scenes
from roadthink.scene.generator import GeneratorConfig
from roadthink.scene.io import load_scene
from roadthink.train.captions import (
    LABELS,
    LOOKABLE,
    asked,
    caption,
    caption_rows,
    looking,
    read_caption,
    read_facts,
    sight,
    train_captions,
)
from roadthink.train.data import answer_text, target
from roadthink.train.run import TrainSettings
from roadthink.train.vision import FACTS, majority_accuracy, vision_examples


def test_captions_state_every_fact_and_read_back(splits, tiny_model) -> None:
    assert list(LABELS) == list(FACTS)
    processor = load(str(tiny_model), "cpu", torch.float32)[0]
    examples = vision_examples(splits["train"][0], processor, None)
    for example in examples:
        assert read_caption(caption(example.facts)) == example.facts
    first = caption(examples[0].facts)
    assert first.startswith("cars ") and first.count("; ") == len(FACTS) - 1
    # a model's caption may leave facts out, repeat them or name classes a fact does not have
    said = read_caption("cars 7; nearest car colour red; any truck maybe; light green; light")
    assert said[list(FACTS).index("nearest car colour")] == FACTS["nearest car colour"].index("red")
    assert said[list(FACTS).index("ego light")] == FACTS["ego light"].index("green")
    assert said.count(-1) == len(FACTS) - 2


def test_caption_stage_trains_the_language_model_and_merger_and_resumes(tiny_model, splits, tmp_path) -> None:
    out = tmp_path / "captions"
    settings = TrainSettings(steps=4, batch_size=4, logging_steps=1, save_steps=2, val_every=2, freeze_vision=True)
    train_captions(splits["train"][0], out, f"hf:{tiny_model}", settings, splits["test"][0])
    rows = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    losses = [row["loss"] for row in rows if "loss" in row]
    assert len(losses) == 4 and all(np.isfinite(losses)) and losses[-1] < losses[0]
    checks = [row for row in rows if "val_captions" in row]
    assert [row["step"] for row in checks] == [2, 4]  # and not again at the end: step 4 is the end
    assert all(0.0 <= row["val_captions"] <= 1.0 for row in checks)
    processor = load(str(tiny_model), "cpu", torch.float32)[0]
    train = vision_examples(splits["train"][0], processor, None)
    majority = majority_accuracy(train, vision_examples(splits["test"][0], processor, None))
    assert checks[-1]["val_captions_majority"] == pytest.approx(np.mean(list(majority.values())))
    trained = AutoModelForImageTextToText.from_pretrained(out).state_dict()
    initial = AutoModelForImageTextToText.from_pretrained(tiny_model).state_dict()
    tower = [k for k in initial if ".visual." in k and ".merger." not in k]
    assert tower and all(torch.equal(trained[k], initial[k]) for k in tower)
    for part in (".merger.", ".language_model."):
        assert any(not torch.equal(trained[k], initial[k]) for k in initial if part in k), part
    train_captions(splits["train"][0], out, f"hf:{tiny_model}", TrainSettings(**{**settings.__dict__, "steps": 6}))
    rows = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows if "loss" in row] == [1, 2, 3, 4, 5, 6]


def test_read_facts_gives_one_row_per_image(tiny_model, splits) -> None:
    processor, model = load(str(tiny_model), "cpu", torch.float32)
    examples = vision_examples(splits["test"][0], processor, None)[:3]
    side = processor.tokenizer.padding_side
    model.train()
    found = read_facts(model, processor, examples, batch_size=2)
    assert found.shape == (3, len(FACTS)) and found.min() >= -1
    assert processor.tokenizer.padding_side == side and model.training  # as they were


def test_caption_stage_trains_on_a_train_split_only(splits, tmp_path) -> None:
    args = ["train", "captions", "--bench", str(splits["test"][0]), "--out", str(tmp_path / "c"), "--model", "tiny"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code != 0
    assert "test split" in result.output and "Traceback" not in result.output


def test_caption_rows_make_up_the_share_asked_from_the_folders_in_turn(tiny_model, splits, tmp_path) -> None:
    extra = tmp_path / "extra"
    export_scenes(extra, 3, seed=11, config=GeneratorConfig(), workers=1)
    processor = load(str(tiny_model), "cpu", torch.float32)[0]
    rows = caption_rows([extra, splits["train"][0]], processor, tmp_path / "images", 1 / 3, 14)
    assert len(rows) == 7  # a third of 21
    assert rows[0]["completion"][0]["content"][0]["text"] == caption(vision_examples(extra, processor, None)[0].facts)
    assert all(len(images) == 1 for images in rows["images"])
    with pytest.raises(RoadthinkError, match="between 0 and 1"):
        caption_rows([extra], processor, tmp_path / "images", 1.0, 14)


def test_sft_with_captions_among_its_rows(tiny_model, splits, tmp_path) -> None:
    out = tmp_path / "sft"
    args = ["train", "sft", "--bench", str(splits["train"][0]), "--out", str(out), "--model", f"hf:{tiny_model}"]
    args += ["--steps", "2", "--batch-size", "4", "--limit", "8", "--captions", str(splits["train"][0])]
    result = CliRunner().invoke(app, args)
    assert result.exit_code != 0 and "--caption-share" in result.output
    result = CliRunner().invoke(app, [*args, "--caption-share", "0.5", "--look-first", "color,lane"])
    assert result.exit_code != 0 and "no caption fact answers lane: look first only at category, color" in result.output
    chosen = ["--caption-share", "0.5", "--look-first", "color,exists", "--tasks", "color"]
    result = CliRunner().invoke(app, [*args, *chosen])
    assert result.exit_code == 0, result.output
    settings = json.loads((out / "train_settings.json").read_text())
    assert settings["caption_share"] == 0.5 and settings["look_first"] == ["color", "exists"]
    assert settings["tasks"] == ["color"]
    last = json.loads((out / "log.jsonl").read_text().splitlines()[-1])
    assert last["step"] == 2 and np.isfinite(last["train_loss"]) and (out / "model.safetensors").is_file()


def test_looking_replies_read_the_image_in_the_captions_words_and_answer_in_them(splits) -> None:
    bench = load_bench(splits["train"][0])
    reply, some = looking(bench, LOOKABLE), looking(bench, ("color", "exists"))
    perception = [s for s in bench.samples if s.family == "perception"]
    assert {s.task for s in perception} == set(LOOKABLE)
    for sample in bench.samples:
        if sample.family != "perception":  # no caption fact is what these rest on: the plain target
            assert asked(sample) == [] and reply(sample) == target(sample)
            continue
        if sample.task not in ("color", "exists"):  # left to the plain target when not asked for
            assert some(sample) == target(sample)
        else:
            assert some(sample) == reply(sample)
        (name,) = asked(sample)
        (said,) = sight(asked(sample), load_scene(bench.path / sample.scene))
        # the image's fact, as the caption states it, is the answer (counts above 4 are not asked)
        assert said == f"{LABELS[name]} {answer_text(sample).replace('traffic cone', 'traffic_cone')}", sample.id
        answer = f"{LABELS[name]} {answer_text(sample)}"
        assert reply(sample) == target(sample, sight=f"I see: {said}. ", answer=answer)
        # which the evaluation reads as the sample's answer
        assert parse_answer(reply(sample), sample.answer_type, sample.choices).value == sample.answer
