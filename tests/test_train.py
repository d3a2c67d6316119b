"""Supervised fine-tuning with TRL on the tiny Qwen2-VL: a few steps lower the loss, the log
holds every step and the val accuracy, a stopped run resumes, and the result is a model the
evaluation loads."""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image as PILImage
from transformers import AutoModelForImageTextToText, AutoProcessor
from typer.testing import CliRunner

from roadthink.cli import app
from roadthink.errors import RoadthinkError
from roadthink.eval.bench import load_bench
from roadthink.eval.parsing import parse_answer
from roadthink.eval.prompt import messages_for
from roadthink.eval.runner import RunConfig, run
from roadthink.models.hf_backend import HFModel
from roadthink.tasks.sample import AnswerType, Sample
from roadthink.train.data import (
    answer_text,
    focused,
    grpo_dataset,
    seen_reasoning,
    sft_dataset,
    target,
    train_split,
)
from roadthink.train.grpo import GRPOSettings, grpo_trainer, train_grpo
from roadthink.train.run import TrainSettings
from roadthink.train.sft import train_sft


def log(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]


def test_sft_examples_are_the_evaluations_prompt_and_the_reference(tiny_model, splits, tmp_path) -> None:
    bench = train_split(splits["train"][0])
    processor = AutoProcessor.from_pretrained(tiny_model)
    data = sft_dataset(bench, processor, limit=3, cache=tmp_path / "images")
    first, sample = data[0], bench.samples[0]
    system, user = first["prompt"]
    (reply,) = first["completion"]
    assert system["role"] == "system" and "<answer></answer>" in system["content"][0]["text"]
    assert [p["type"] for p in user["content"]] == ["image"] * len(sample.images) + ["text"]
    assert sample.question in user["content"][-1]["text"]
    assert reply["role"] == "assistant" and reply["content"][0]["text"] == target(sample)
    assert target(sample).startswith("<think>") and target(sample).endswith(f"<answer>{sample.answer}</answer>")
    # the reasoning taught names nothing the images do not show: no agent, light or lane ids
    with_ids = [s for s in bench.samples if re.search(r"\b(a|tl)\d+\b", " ".join(x.text for x in s.reference_steps))]
    assert len(with_ids) > len(bench.samples) / 2
    assert not any(re.search(r"\b(a|tl)\d+\b|\br\d+_[fb]\d", target(s)) for s in bench.samples)
    said = seen_reasoning("The nearest visible car is a15, 41 m away. It is black. The leftmost is a07: 30 m ahead.")
    assert said == "The nearest visible car is 41 m away. It is black. The leftmost is 30 m ahead."
    # images come at the size the processor gives them, resized once into the cache, same pixels
    original = PILImage.open(splits["train"][0] / sample.images[0])
    assert len(first["images"]) == len(sample.images) and first["images"][0].size != original.size
    assert Path(first["images"][0].filename).is_relative_to(tmp_path / "images")
    np.testing.assert_array_equal(
        processor.image_processor(images=[original])["pixel_values"],
        processor.image_processor(images=[first["images"][0]])["pixel_values"],
    )


def test_answers_in_words_are_the_option_text_which_the_evaluation_reads(splits) -> None:
    bench = train_split(splits["train"][0])
    choices = [s for s in bench.samples if s.answer_type is AnswerType.CHOICE]
    assert len({s.task for s in choices}) > 10
    for sample in choices:
        text = answer_text(sample)
        reply = target(sample, answer=text)
        assert reply.endswith(f"<answer>{text}</answer>") and f"{sample.answer}. {text}" in sample.choices
        assert parse_answer(reply, sample.answer_type, sample.choices).value == sample.answer
    assert all(answer_text(s) == str(s.answer) for s in bench.samples if s.answer_type is AnswerType.YES_NO)
    broken = choices[0].model_copy(update={"answer": "Z"})
    with pytest.raises(RoadthinkError, match=f"sample {broken.id}: answer 'Z' is not one of its options"):
        answer_text(broken)


def test_training_can_keep_to_some_families_and_tasks(tiny_model, splits) -> None:
    bench = train_split(splits["train"][0])
    processor = AutoProcessor.from_pretrained(tiny_model)
    data = grpo_dataset(bench, processor, families=("perception", "spatial"))
    families = {json.loads(row)["family"] for row in data["sample"]}
    assert families == {"perception", "spatial"}
    assert len(data) == sum(s.family in families for s in bench.samples)
    with pytest.raises(RoadthinkError, match="no samples of weather; its families: corner_case"):
        sft_dataset(bench, processor, families=("perception", "weather"))
    data = grpo_dataset(bench, processor, families=("perception", "spatial"), tasks=("side", "color"))
    assert sorted({json.loads(row)["task"] for row in data["sample"]}) == ["color", "side"]
    assert len(data) == sum(s.task in ("side", "color") for s in bench.samples)
    with pytest.raises(RoadthinkError, match="no samples of count; its tasks: distance, lane"):
        sft_dataset(bench, processor, families=("spatial",), tasks=("count",))


def test_sft_can_spend_a_share_of_its_rows_on_some_tasks(tiny_model, splits) -> None:
    bench = train_split(splits["train"][0])
    chosen = ("side", "color")
    rows = focused(bench.samples, chosen, 0.75, bench.path)
    assert len(rows) == len(bench.samples)
    inside = [s for s in rows if s.task in chosen]
    assert len(inside) == round(0.75 * len(rows))
    assert {s.id for s in inside} == {s.id for s in bench.samples if s.task in chosen}  # every one, repeated
    others = {s.task for s in bench.samples if s.task not in chosen}
    assert {s.task for s in rows if s.task not in chosen} == others  # the rest spread over every other task
    with pytest.raises(RoadthinkError, match=r"focus share 1\.0 is not between 0 and 1"):
        focused(bench.samples, chosen, 1.0, bench.path)
    with pytest.raises(RoadthinkError, match="no samples of steer; its tasks:"):
        focused(bench.samples, ("steer",), 0.5, bench.path)
    processor = AutoProcessor.from_pretrained(tiny_model)
    data = sft_dataset(bench, processor, focus=(chosen, 0.75))
    assert all(s.question in str(prompt) for s, prompt in zip(rows, data["prompt"], strict=True))


def test_only_train_splits_are_trained_on(splits, tmp_path) -> None:
    with pytest.raises(RoadthinkError, match="is a test split: train on a train split"):
        train_split(splits["test"][0])
    result = CliRunner().invoke(app, ["train", "sft", "--bench", str(tmp_path), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "samples.jsonl" in result.output


def test_a_few_steps_lower_the_loss_and_resume(tiny_model, splits, tmp_path) -> None:
    out = tmp_path / "sft"
    settings = TrainSettings(steps=4, batch_size=4, learning_rate=3e-3, logging_steps=1, save_steps=2, limit=32)
    train_sft(splits["train"][0], out, f"hf:{tiny_model}", settings)
    losses = [row["loss"] for row in log(out) if "loss" in row]
    assert len(losses) == 4 and losses[-1] < losses[0]
    assert (out / "checkpoint-4").is_dir()
    with PILImage.open(out / "curves.png") as curves:  # the log, drawn
        assert curves.width > 300 and curves.height > 200
    # run again when finished: the model it saves is the checkpoint's, every weight of it
    train_sft(splits["train"][0], out, f"hf:{tiny_model}", settings)
    saved = AutoModelForImageTextToText.from_pretrained(out).state_dict()
    checkpoint = AutoModelForImageTextToText.from_pretrained(out / "checkpoint-4").state_dict()
    initial = AutoModelForImageTextToText.from_pretrained(tiny_model).state_dict()
    assert all(torch.equal(saved[k], checkpoint[k]) for k in checkpoint)
    assert not torch.equal(
        saved["model.visual.patch_embed.proj.weight"], initial["model.visual.patch_embed.proj.weight"]
    )
    longer = TrainSettings(**{**settings.__dict__, "steps": 6})
    train_sft(splits["train"][0], out, f"hf:{tiny_model}", longer)  # resumes at step 4
    steps = [row["step"] for row in log(out) if "loss" in row]
    assert steps == [1, 2, 3, 4, 5, 6]
    test = load_bench(splits["test"][0])
    trained = HFModel(str(out), max_tokens=8, threads=1)
    sample = test.samples[0]
    reply = asyncio.run(trained.generate(messages_for(sample, [(test.path / r).as_uri() for r in sample.images])))
    assert reply.completion_tokens >= 1


def test_a_frozen_vision_tower_stays_as_it_was_but_its_merger_trains(tiny_model, splits, tmp_path) -> None:
    out = tmp_path / "frozen"
    args = ["train", "sft", "--bench", str(splits["train"][0]), "--out", str(out), "--model", f"hf:{tiny_model}"]
    result = CliRunner().invoke(app, [*args, "--steps", "2", "--batch-size", "2", "--limit", "8", "--freeze-vision"])
    assert result.exit_code == 0, result.output
    trained = AutoModelForImageTextToText.from_pretrained(out).state_dict()
    initial = AutoModelForImageTextToText.from_pretrained(tiny_model).state_dict()
    tower = [k for k in initial if ".visual." in k and ".merger." not in k]
    merger = [k for k in initial if ".visual.merger." in k]
    assert tower and all(torch.equal(trained[k], initial[k]) for k in tower)
    assert any(not torch.equal(trained[k], initial[k]) for k in merger)
    assert not torch.equal(trained["lm_head.weight"], initial["lm_head.weight"])


def test_cli_builds_the_recipe_and_measures_val_accuracy(splits, tmp_path) -> None:
    out = tmp_path / "cli"
    args = ["train", "sft", "--bench", str(splits["train"][0]), "--out", str(out), "--steps", "2", "--batch-size", "2"]
    result = CliRunner().invoke(app, [*args, "--limit", "8", "--focus", "side", "--focus-share", "0.5"])
    assert result.exit_code == 2 and "no samples of side" in result.output  # the first 8 are of other tasks
    result = CliRunner().invoke(app, [*args, "--focus", "side"])
    assert result.exit_code == 2 and "--focus and --focus-share go together" in result.output
    args += ["--focus", "color, count", "--focus-share", "0.5"]
    result = CliRunner().invoke(app, [*args, "--limit", "8", "--val", str(splits["test"][0]), "--val-size", "4"])
    assert result.exit_code == 0, result.output
    config = json.loads((out / "init" / "config.json").read_text())
    assert config["text_config"]["hidden_size"] == 256 and config["vision_config"]["depth"] == 2
    accuracy = [row["val_accuracy"] for row in log(out) if "val_accuracy" in row]
    assert len(accuracy) == 1 and 0.0 <= accuracy[0] <= 1.0
    assert (out / "val" / "step-2" / "metrics.json").is_file()
    recorded = json.loads((out / "train_settings.json").read_text())
    assert recorded["steps"] == 2 and recorded["focus"] == ["color", "count"] and recorded["focus_share"] == 0.5


def test_grpo_logs_every_reward_by_name_and_resumes(tiny_model, splits, tmp_path) -> None:
    out = tmp_path / "grpo"
    settings = TrainSettings(steps=2, batch_size=4, learning_rate=1e-3, logging_steps=1, save_steps=1, limit=16)
    grpo = GRPOSettings(rewards=("accuracy", "format", "meta_action"), generations=4, max_completion=8)
    train_grpo(tiny_model, splits["train"][0], out, settings, grpo)
    steps = [row for row in log(out) if "loss" in row]
    assert [row["step"] for row in steps] == [1, 2]
    for row in steps:
        assert {"rewards/accuracy_reward/mean", "rewards/format_reward/mean", "reward"} <= set(row)
    train_grpo(tiny_model, splits["train"][0], out, TrainSettings(**{**settings.__dict__, "steps": 3}), grpo)
    assert [row["step"] for row in log(out) if "loss" in row] == [1, 2, 3]
    assert (out / "config.json").is_file() and (out / "processor_config.json").is_file()
    recorded = json.loads((out / "train_settings.json").read_text())
    assert recorded["kind"] == "grpo" and recorded["generations"] == 4 and recorded["beta"] == grpo.beta


def test_grpo_scores_completions_with_the_log_probs_of_the_policy_that_sampled_them(tiny_model, splits, tmp_path):
    """The loss's log-probs (a padded batch: several images, M-RoPE positions after left padding,
    the temperature) are those of each prompt alone with its own image: else GRPO's gradient is
    another policy's."""
    settings = TrainSettings(steps=1, batch_size=8, limit=4, tasks=("color", "side"))
    grpo = GRPOSettings(rewards=("accuracy",), generations=2, max_completion=12, temperature=0.6)
    trainer = grpo_trainer(tiny_model, splits["train"][0], tmp_path / "g", settings, grpo)
    model, image_token = trainer.model, trainer.model.config.image_token_id
    torch.manual_seed(0)
    batch = trainer._generate_and_score_completions([trainer.train_dataset[i] for i in range(4) for _ in range(2)])
    prompts, completions = batch["prompt_ids"], batch["completion_ids"]
    with torch.no_grad():
        logps, _, _ = trainer._get_per_token_logps_and_entropies(
            model,
            torch.cat([prompts, completions], 1),
            torch.cat([batch["prompt_mask"], batch["completion_mask"]], 1),
            completions.size(1),
            pixel_values=batch["pixel_values"],
            image_grid_thw=batch["image_grid_thw"],
            num_images=batch["num_images"],
            mm_token_type_ids=batch["mm_token_type_ids"],
        )
    grids = batch["image_grid_thw"]
    first_patch = torch.cat([torch.zeros(1, dtype=torch.long), grids.prod(-1).cumsum(0)])
    assert len(set(batch["prompt_mask"].sum(1).tolist())) > 1  # prompts of different lengths: padded
    for row in range(prompts.size(0)):
        prompt = prompts[row][batch["prompt_mask"][row].bool()]
        completion = completions[row][batch["completion_mask"][row].bool()]
        ids = torch.cat([prompt, completion])[None]
        with torch.no_grad():
            logits = model(
                input_ids=ids,
                pixel_values=batch["pixel_values"][first_patch[row] : first_patch[row + 1]],
                image_grid_thw=grids[row : row + 1],
                mm_token_type_ids=(ids == image_token).long(),
            ).logits[0, len(prompt) - 1 : -1]
        alone = torch.log_softmax(logits / grpo.temperature, -1).gather(-1, completion[:, None])[:, 0]
        assert torch.allclose(logps[row][: len(completion)], alone, atol=1e-4), row


def test_guided_grpo_puts_the_taught_reply_last_in_each_group(tiny_model, splits, tmp_path) -> None:
    """Off-policy guidance: the last completion of each group is the reply SFT teaches, scored as
    the samples are, so a group of wrong samples holds one right reply with the best advantage."""
    settings = TrainSettings(steps=1, batch_size=8, limit=4, tasks=("color", "side"))
    grpo = GRPOSettings(rewards=("accuracy", "format"), generations=2, max_completion=160, guidance=1)
    trainer = grpo_trainer(tiny_model, splits["train"][0], tmp_path / "g", settings, grpo)
    examples = [trainer.train_dataset[i] for i in range(4) for _ in range(2)]
    trainer.model.train()  # as in training: evaluation's generations are all sampled
    torch.manual_seed(0)
    batch = trainer._generate_and_score_completions(examples)
    ids, mask, advantages = batch["completion_ids"], batch["completion_mask"].bool(), batch["advantages"]
    replies = [ids[row][mask[row]].tolist() for row in range(len(examples))]
    for group in range(4):
        sampled, guided = 2 * group, 2 * group + 1
        reference = examples[guided]["reference"]
        assert reference == target(Sample.model_validate_json(examples[guided]["sample"]))
        assert replies[guided] == trainer.reference_tokens[reference] and replies[sampled] != replies[guided]
        assert replies[guided][-1] == trainer.eos_token_ids[0]  # ended as the model ends a reply
        assert advantages[guided] > advantages[sampled]  # the untrained model's sample is wrong, the reference right


def test_grpo_from_the_command_line_records_its_sampling_and_kl_settings(tiny_model, splits, tmp_path) -> None:
    out = tmp_path / "grpo-cli"
    args = ["train", "grpo", "--init", str(tiny_model), "--bench", str(splits["train"][0]), "--out", str(out)]
    options = ["--steps", "1", "--batch-size", "4", "--generations", "4", "--max-completion", "6", "--limit", "8"]
    kl = ["--beta", "0.04", "--temperature", "0.7", "--rewards", "accuracy,format"]
    result = CliRunner().invoke(app, [*args, *options, *kl])
    assert result.exit_code == 0, result.output
    recorded = json.loads((out / "train_settings.json").read_text())
    assert (recorded["beta"], recorded["temperature"], recorded["rewards"]) == (0.04, 0.7, ["accuracy", "format"])
    assert any("kl" in row for row in log(out))  # TRL measures the KL once beta > 0
    assert (out / "curves.png").is_file()


def test_guided_grpo_from_the_command_line_says_in_one_line_when_a_reference_is_too_long(
    tiny_model, splits, tmp_path
) -> None:
    out = tmp_path / "guided"
    args = ["train", "grpo", "--init", str(tiny_model), "--bench", str(splits["train"][0]), "--out", str(out)]
    options = ["--steps", "1", "--batch-size", "4", "--generations", "2", "--max-completion", "6", "--limit", "4"]
    result = CliRunner().invoke(app, [*args, *options, "--guidance", "1", "--look-first", "color,side"])
    assert result.exit_code == 2
    assert re.search(r"a reference reply of \d+ tokens is longer than max_completion 6", result.output)
    recorded = json.loads((out / "train_settings.json").read_text())
    assert recorded["guidance"] == 1 and recorded["look_first"] == ["color", "side"]


@pytest.mark.parametrize(
    "change, message",
    [
        ({"init": "bench"}, "is not a model folder (no config.json)"),
        ({"grpo": GRPOSettings(rewards=("accuracy", "speed"))}, "unknown reward 'speed'"),
        ({"grpo": GRPOSettings(rewards=("accuracy",), weights=(1.0, 2.0))}, "2 reward weights for 1 rewards"),
        ({"settings": TrainSettings(batch_size=6)}, "batch size 6 must be a multiple of the 8 generations"),
        ({"grpo": GRPOSettings(generations=2, guidance=2)}, "guidance 2 must leave at least one of the 2"),
    ],
)
def test_grpo_refuses_bad_input_in_one_line(tiny_model, splits, tmp_path, change, message) -> None:
    init = splits["test"][0] if change.get("init") == "bench" else tiny_model
    with pytest.raises(RoadthinkError, match=re.escape(message)):
        train_grpo(init, splits["train"][0], tmp_path / "g", change.get("settings"), change.get("grpo", GRPOSettings()))
    assert not (tmp_path / "g" / "log.jsonl").exists()


def _colour_split(out: Path, split: str, n: int, seed: int) -> Path:
    """A split whose only task is the colour of a noisy, solid-colour image: the question never
    changes, so only the pixels give the answer."""
    colours = {"red": (220, 30, 30), "green": (30, 200, 30), "blue": (30, 30, 220), "yellow": (230, 220, 30)}
    rng = np.random.default_rng(seed)
    (out / "images").mkdir(parents=True)
    rows = []
    for i in range(n):
        k = int(rng.integers(len(colours)))
        name, rgb = list(colours.items())[k]
        pixels = np.clip(np.array(rgb) + rng.normal(0, 20, (90, 160, 3)), 0, 255).astype(np.uint8)
        PILImage.fromarray(pixels).save(out / "images" / f"{i}.png")
        rows.append(
            {
                "id": f"{split}-{i}",
                "family": "perception",
                "task": "color",
                "question": "What colour is the whole image?",
                "choices": [f"{letter}. {c}" for letter, c in zip("ABCD", colours, strict=True)],
                "answer": "ABCD"[k],
                "answer_type": "choice",
                "images": [f"images/{i}.png"],
                "scene": "scenes/none.json",
                "scene_id": "none",
                "reference_steps": [{"text": f"The image is {name}.", "facts": []}],
            }
        )
    (out / "samples.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    (out / "bench.json").write_text(json.dumps({"name": "roadthink-bench-v1", "split": split, "tasks": {"color": n}}))
    return out


def test_sft_learns_a_task_only_the_pixels_answer(tiny_model, tmp_path) -> None:
    """The whole path from image file to answer carries what the pixels say: a model trained
    on the colour of the image answers it, and shown black images it cannot."""
    train = _colour_split(tmp_path / "train", "train", 320, 1)
    test = _colour_split(tmp_path / "test", "test", 32, 2)
    settings = TrainSettings(steps=100, batch_size=8, learning_rate=3e-3, save_steps=1000)
    model = train_sft(train, tmp_path / "sft", f"hf:{tiny_model}", settings)
    accuracy = {}
    for condition in ("clean", "text_only"):
        backend = HFModel(str(model), max_tokens=24, batch_size=16)
        config = RunConfig(backend.name, test, [condition], concurrency=16)
        metrics = asyncio.run(run(backend, load_bench(test), tmp_path / condition, config, show_progress=False))
        accuracy[condition] = metrics["overall"]["accuracy"]
    assert accuracy["clean"] >= 0.9 and accuracy["text_only"] <= 0.5, accuracy


def test_letter_lookup_counts_every_single_image_choice_sample(tiny_model, splits) -> None:
    """The diagnostic script runs on a model folder and a split, and asks every single-image
    multiple-choice sample once, beside the chance of a uniform pick."""
    bench = load_bench(splits["test"][0])
    asked = [s for s in bench.samples if s.answer_type is AnswerType.CHOICE and len(s.images) == 1]
    chance = sum(1 / len(s.choices) for s in asked)
    script = Path(__file__).parents[1] / "scripts" / "letter_lookup.py"
    done = subprocess.run(
        [sys.executable, str(script), str(tiny_model), "--bench", str(bench.path)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    last = done.stdout.strip().splitlines()[-1]
    assert last.startswith("all") and f"of {len(asked):3d} right (chance {chance:.1f})" in last


def test_the_option_recall_probe_asks_for_the_letter_before_the_word_and_reports_accuracy() -> None:
    import importlib.util
    import random

    script = Path(__file__).parents[1] / "scripts" / "option_recall.py"
    spec = importlib.util.spec_from_file_location("option_recall", script)
    recall = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(recall)
    rows, letters = recall.sequences(200, random.Random(1))
    for row, letter in zip(rows.tolist(), letters.tolist(), strict=True):
        asked = row[-2]
        assert row[row.index(asked) - 1] == letter and row[-3] == recall.IS  # the letter just before the word
    assert set(letters.tolist()) == set(recall.LETTERS)
    found = recall.probe(0.0625, (4, 2), steps=2, lr=1e-3)
    assert [step for step, _ in found] == [2] and 0.0 <= found[0][1] <= 1.0
    assert recall.layout("16:2") == (16, 2)
    with pytest.raises(argparse.ArgumentTypeError, match="not HEADS:KEY_VALUE_HEADS"):
        recall.layout("16")
