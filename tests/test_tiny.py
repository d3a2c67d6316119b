"""The tiny Qwen2-VL builder: a real checkpoint that transformers loads back offline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForImageTextToText, AutoProcessor, Qwen2VLForConditionalGeneration
from typer.testing import CliRunner

from roadthink.cli import app
from roadthink.errors import RoadthinkError
from roadthink.eval.prompt import FORMATS, SYSTEM
from roadthink.models.tiny import (
    SPECIAL_TOKENS,
    TAGS,
    ImageOnlyQwen2VLProcessor,
    TinyConfig,
    bench_corpus,
    build_tiny_qwen2vl,
    train_tokenizer,
)
from roadthink.tasks.sample import AnswerType


def test_tokenizer_keeps_qwen_special_tokens_and_plain_tags() -> None:
    tokenizer = train_tokenizer(["How many cars are ahead? <think>two</think><answer>B</answer>"] * 20, 400)
    assert [tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS] == list(range(len(SPECIAL_TOKENS)))
    for tag in TAGS:  # one token each, and not special: decoders that skip special tokens keep them
        assert tokenizer.tokenize(tag) == [tag]
        assert tag not in tokenizer.all_special_tokens
    text = "<think>Zwei Fußgänger ✓ 12.5 m</think><answer>C</answer>"  # any text encodes: bytes are the alphabet
    ids = tokenizer(text + "<|im_end|>")["input_ids"]
    assert tokenizer.decode(ids, skip_special_tokens=True) == text
    assert tokenizer.padding_side == "left"


def test_bench_tokenizer_spells_the_prompt_it_reads_every_time_in_whole_words(splits) -> None:
    """The system prompt and answer formats come with every sample, so the corpus counts them
    so often, and their words become tokens: a prompt is read once per answer."""
    tokenizer = train_tokenizer(bench_corpus(splits["train"][1]), 1000)
    for text in (SYSTEM, FORMATS[AnswerType.CHOICE]):
        assert len(tokenizer.tokenize(text)) <= 1.25 * len(text.split()), text


@pytest.mark.parametrize("hidden, heads", [(64, 4), (128, 4), (256, 8), (96, 2)])
def test_mrope_sections_sum_to_half_the_head(hidden: int, heads: int) -> None:
    config = TinyConfig(hidden_size=hidden, heads=heads, kv_heads=1)
    config.check()
    assert sum(config.mrope_section()) == hidden // heads // 2
    assert min(config.mrope_section()) >= 1


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"hidden_size": 60, "heads": 8}, "even-sized heads"),
        ({"heads": 4, "kv_heads": 3}, "multiple of kv_heads"),
        ({"vision_width": 30, "vision_heads": 4}, "vision_width"),
        ({"hidden_size": 8, "heads": 4}, "too small"),
    ],
)
def test_bad_sizes_are_refused_in_one_line(overrides: dict, message: str) -> None:
    with pytest.raises(RoadthinkError, match=message):
        TinyConfig(**overrides).check()


def test_checkpoint_reloads_offline_as_a_real_qwen2_vl(tiny_model: Path, monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    processor = AutoProcessor.from_pretrained(tiny_model)
    model = AutoModelForImageTextToText.from_pretrained(tiny_model)
    assert isinstance(processor, ImageOnlyQwen2VLProcessor)
    assert isinstance(model, Qwen2VLForConditionalGeneration)
    text_config = model.config.text_config
    head = text_config.hidden_size // text_config.num_attention_heads
    assert sum(text_config.rope_parameters["mrope_section"]) == head // 2
    assert model.config.image_token_id == processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    assert sum(p.numel() for p in model.parameters()) < 1_000_000
    files = {p.name for p in tiny_model.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "processor_config.json"} <= files
    assert json.loads((tiny_model / "roadthink_tiny.json").read_text())["hidden_size"] == 64


def test_same_seed_same_weights(tmp_path: Path) -> None:
    texts = ["Is the light red? <answer>yes</answer>"] * 10
    config = TinyConfig(hidden_size=32, heads=2, kv_heads=1, vision_width=16)
    a = AutoModelForImageTextToText.from_pretrained(build_tiny_qwen2vl(tmp_path / "a", texts, config))
    b = AutoModelForImageTextToText.from_pretrained(build_tiny_qwen2vl(tmp_path / "b", texts, config))
    other = TinyConfig(hidden_size=32, heads=2, kv_heads=1, vision_width=16, seed=1)
    c = AutoModelForImageTextToText.from_pretrained(build_tiny_qwen2vl(tmp_path / "c", texts, other))
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(x, y), name
    assert any(not torch.equal(x, z) for x, z in zip(a.state_dict().values(), c.state_dict().values(), strict=True))


def test_init_scales_the_text_model_only(tmp_path: Path) -> None:
    """``init`` is the text model's initial weight scale (the recipe's 1/sqrt(hidden) lets it learn
    lookups); the vision tower keeps transformers' 0.02."""
    texts = ["Is the light red? <answer>yes</answer>"] * 10
    config = TinyConfig(hidden_size=64, heads=8, kv_heads=2, vision_width=32, init=0.125)
    model = AutoModelForImageTextToText.from_pretrained(build_tiny_qwen2vl(tmp_path / "m", texts, config))
    weights = model.state_dict()
    text = weights["model.language_model.layers.0.mlp.up_proj.weight"]
    tower = weights["model.visual.blocks.0.mlp.fc1.weight"]
    assert text.std().item() == pytest.approx(0.125, rel=0.1)
    assert tower.std().item() == pytest.approx(0.02, rel=0.1)


def test_cli_builds_from_a_bench_and_refuses_bad_sizes(tmp_path: Path, splits) -> None:
    bench = splits["train"][0]
    out = tmp_path / "m"
    result = CliRunner().invoke(
        app, ["models", "tiny", "--out", str(out), "--bench", str(bench), "--vocab-size", "600"]
    )
    assert result.exit_code == 0, result.output
    assert f"hf:{out}" in result.output
    assert AutoProcessor.from_pretrained(out).tokenizer.tokenize("<answer>") == ["<answer>"]
    bad = CliRunner().invoke(app, ["models", "tiny", "--out", str(tmp_path / "x"), "--hidden-size", "60"])
    assert bad.exit_code == 2
    assert "even-sized heads" in bad.output
