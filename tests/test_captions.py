"""Caption pre-training: captions state every scene fact exactly and read back to the same
facts; the stage trains the language model and the merger (not the rest of the tower) into a
model folder SFT goes on from, resumably, judging held-out captions against the majority."""

from __future__ import annotations

import json
from collections import Counter

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
    PERCEIVED,
    PLACED,
    QUESTION,
    asked,
    caption,
    caption_rows,
    looking,
    placed_in,
    placement_accuracy,
    placement_majority,
    prompt,
    read_caption,
    read_facts,
    read_placed,
    sight,
    train_captions,
    where_question,
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
        written = caption(example.facts, example.placed)
        assert read_caption(written) == example.facts
        assert read_placed(written) == {name: set(words.split(", ")) for name, words in example.placed}
    first = caption(examples[0].facts)
    assert first.startswith("cars ") and first.count("; ") == len(FACTS) - 1
    # a model's caption may leave facts out, repeat them or name classes a fact does not have
    said = read_caption("cars 7; nearest car colour red; any truck maybe; light green; light")
    assert said[list(FACTS).index("nearest car colour")] == FACTS["nearest car colour"].index("red")
    assert said[list(FACTS).index("ego light")] == FACTS["ego light"].index("green")
    assert said.count(-1) == len(FACTS) - 2


def test_captions_place_the_road_users_the_question_names(splits, tiny_model) -> None:
    processor = load(str(tiny_model), "cpu", torch.float32)[0]
    examples = [e for e in vision_examples(splits["train"][0], processor, None) if len(e.placed) > 1]
    assert examples, "the split's images name no two road users"
    example = examples[0]
    names = [name for name, _ in example.placed]
    asked = prompt(example)[0].content[1].text
    assert asked.startswith(QUESTION) and asked.endswith(f"{names[-2]} and {names[-1]}?")
    assert where_question(["the bus"]) == "Where is the bus?"
    # placements are judged per kind, on the road users each example places; left out is wrong
    truth = caption(example.facts, example.placed)
    assert "side" in placement_accuracy([truth], [example]) and set(
        placement_accuracy([truth], [example]).values()
    ) == {1.0}
    name, words = example.placed[0]
    swapped = words.replace("left", "RIGHT").replace("right", "left").replace("RIGHT", "right")
    wrong = truth.replace(f"{name}: {words}", f"{name}: {swapped}", 1)
    sides = [w for _, ws in example.placed for w in ws.split(", ") if w in ("left", "right")]
    if swapped != words:
        assert placement_accuracy([wrong], [example])["side"] == pytest.approx((len(sides) - 1) / len(sides))
    assert set(placement_accuracy([caption(example.facts)], [example]).values()) == {0.0}  # no second line
    # beside the commonest placement of the train examples
    assert placement_majority([example], [example])["side"] == max(Counter(sides).values()) / len(sides)
    others = [e for e in examples if e is not example]
    majority = placement_majority(others, [example])
    assert set(majority) <= {"side", "distance", "lane"} and all(0.0 <= v <= 1.0 for v in majority.values())


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
    assert all(0.0 <= row[f"{figure} placed side"] <= 1.0 for row in checks for figure in ("val", "majority"))
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
    first = vision_examples(extra, processor, None)[0]
    assert rows[0]["completion"][0]["content"][0]["text"] == caption(first.facts, first.placed)
    assert all(len(images) == 1 for images in rows["images"])
    with pytest.raises(RoadthinkError, match="between 0 and 1"):
        caption_rows([extra], processor, tmp_path / "images", 1.0, 14)


def test_sft_with_captions_among_its_rows(tiny_model, splits, tmp_path) -> None:
    out = tmp_path / "sft"
    args = ["train", "sft", "--bench", str(splits["train"][0]), "--out", str(out), "--model", f"hf:{tiny_model}"]
    args += ["--steps", "2", "--batch-size", "4", "--limit", "8", "--captions", str(splits["train"][0])]
    result = CliRunner().invoke(app, args)
    assert result.exit_code != 0 and "--caption-share" in result.output
    result = CliRunner().invoke(app, [*args, "--caption-share", "0.5", "--look-first", "color,position"])
    assert result.exit_code != 0 and "no caption fact answers position: look first only at category" in result.output
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
    assert {s.task for s in perception} == set(PERCEIVED)
    for sample in bench.samples:
        if sample.task in PLACED:  # checked below
            continue
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


def test_looking_replies_to_placement_questions_place_the_named_road_user_first(splits) -> None:
    bench = load_bench(splits["train"][0])
    reply, some = looking(bench, LOOKABLE), looking(bench, ("color",))
    placed = [s for s in bench.samples if s.task in PLACED]
    assert {s.task for s in placed} == set(PLACED)
    for sample in placed:
        scene = load_scene(bench.path / sample.scene)
        name, words = placed_in(sample, scene)
        assert name.lower() in sample.question.lower()  # the road user the question names
        assert answer_text(sample) in words.split(", ")  # its placement holds the answer
        assert reply(sample) == target(
            sample, sight=f"I see: {name}: {words}. ", answer=f"{name}: {answer_text(sample)}"
        )
        assert parse_answer(reply(sample), sample.answer_type, sample.choices).value == sample.answer
        assert some(sample) == target(sample)
    others = [s for s in bench.samples if s.task not in PLACED]
    assert all(placed_in(s, load_scene(bench.path / s.scene)) is None for s in others[:20])
