"""A tiny Qwen2-VL that roadthink builds itself: the real architecture, tokenizer format,
chat template and image processor at a size a 2-core CPU runs in milliseconds.

No weights can be downloaded here, so the ``hf:`` backend, ``roadthink serve`` and the
training recipes are exercised end to end on this model, saved with ``save_pretrained`` and
loaded back offline by ``AutoProcessor`` / ``AutoModelForImageTextToText`` like any
checkpoint. Three things a tiny Qwen2-VL gets wrong unless told:

- without torchvision, ``Qwen2VLProcessor`` cannot be built (its video processor needs it),
  so the saved processor is :class:`ImageOnlyQwen2VLProcessor`, registered with AutoProcessor;
- ``<think>``/``<answer>`` are ordinary (added, not special) tokens: decoders skip special
  tokens, which would erase the tags the evaluation and the rewards read;
- the text model's ``mrope_section`` (temporal, height, width) must sum to head_dim / 2.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (
    AutoProcessor,
    PreTrainedTokenizerFast,
    Qwen2VLConfig,
    Qwen2VLForConditionalGeneration,
)
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil
from transformers.models.qwen2_vl.processing_qwen2_vl import Qwen2VLProcessor
from transformers.utils import logging as hf_logging

from roadthink.errors import RoadthinkError
from roadthink.eval.prompt import FORMATS, SYSTEM
from roadthink.scene.generator import generate_scene
from roadthink.tasks import select_tasks
from roadthink.tasks.sample import AnswerType

SPECIAL_TOKENS = (  # Qwen2-VL's, in its order
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
)
TAGS = ("<think>", "</think>", "<answer>", "</answer>", "<tool_call>", "</tool_call>", "<facts>", "</facts>")
REGISTERED_AS = "roadthink_image_only_qwen2_vl"  # AutoProcessor key; the class is found by its name

# Qwen2-VL's own chat template (images and videos as vision-pad runs, tool turns as their role).
CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}"
    "{% if add_vision_id %}Picture {{ image_count.value }}: {% endif %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}{% set video_count.value = video_count.value + 1 %}"
    "{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


@dataclass(frozen=True)
class TinyConfig:
    """Sizes of the tiny model. The defaults make a ~0.3 M-parameter model that answers in
    milliseconds; issue-sized CPU recipes use hidden 256, 4 layers, vision width 128."""

    vocab_size: int = 1024  # BPE merges learnt up to this size (the corpus may give fewer)
    hidden_size: int = 64
    intermediate_size: int = 128
    layers: int = 2
    heads: int = 4
    kv_heads: int = 2
    vision_depth: int = 1
    vision_width: int = 32
    vision_heads: int = 2
    min_pixels: int = 56 * 56
    max_pixels: int = 112 * 112  # images are scaled (aspect kept) to at most this many pixels
    init: float = 0.02  # std of the text model's initial weights (transformers' default)
    seed: int = 0

    def mrope_section(self) -> list[int]:
        """(temporal, height, width) rotary sections summing to head_dim / 2, split as Qwen2-VL
        does (1 : 1.5 : 1.5)."""
        half = self.hidden_size // self.heads // 2
        temporal = half // 4
        height = (half - temporal) // 2
        return [temporal, height, half - temporal - height]

    def check(self) -> None:
        if self.hidden_size % self.heads or (self.hidden_size // self.heads) % 2:
            raise RoadthinkError(f"hidden_size {self.hidden_size} must split into {self.heads} even-sized heads")
        if self.heads % self.kv_heads:
            raise RoadthinkError(f"heads {self.heads} must be a multiple of kv_heads {self.kv_heads}")
        if self.vision_width % self.vision_heads:
            raise RoadthinkError(f"vision_width {self.vision_width} must split into {self.vision_heads} heads")
        if min(self.mrope_section()) < 1:
            raise RoadthinkError(f"head size {self.hidden_size // self.heads} is too small for Qwen2-VL's rotary")


class ImageOnlyQwen2VLProcessor(Qwen2VLProcessor):
    """Qwen2VLProcessor without the video processor (which needs torchvision). A processor's
    parts are read from its ``__init__`` signature, so leaving the video processor out of it
    is what makes it optional. Registered with AutoProcessor, which finds it by the class
    name saved in processor_config.json."""

    def __init__(self, image_processor: Any = None, tokenizer: Any = None, chat_template: Any = None, **kw: Any):
        super().__init__(image_processor, tokenizer, None, chat_template=chat_template, **kw)


AutoProcessor.register(REGISTERED_AS, ImageOnlyQwen2VLProcessor, exist_ok=True)


def train_tokenizer(texts: Iterable[str], vocab_size: int) -> Any:
    """A byte-level BPE tokenizer in Qwen2's format, learnt from ``texts``: any text
    encodes (bytes are the base alphabet), Qwen2-VL's special tokens come first, and the
    reasoning tags are single ordinary tokens."""

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer)
    tokenizer.add_tokens([AddedToken(tag, special=False, normalized=False) for tag in TAGS])
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        chat_template=CHAT_TEMPLATE,
        padding_side="left",  # decoder-only generation pads on the left
    )
    return fast


def bench_corpus(rows: Iterable[dict]) -> Iterator[str]:
    """The text a model reads and writes on a benchmark, as often as it reads it: every sample's
    system prompt, answer format, question, options, reference reasoning and answer in the
    tagged form. (Counted once, the system prompt's words stayed split into pieces: over a quarter of
    each prompt's tokens, read again for every answer.)"""
    yield from FORMATS.values()  # a format no row uses still has a spelling
    for row in rows:
        yield SYSTEM
        yield FORMATS[AnswerType(row["answer_type"])]
        yield row["question"]
        yield from row.get("choices") or []
        steps = " ".join(step["text"] for step in row.get("reference_steps", []))
        yield f"<think>{steps}</think><answer>{row['answer']}</answer>"


def generated_rows(scenes: int = 12, seed: int = 0) -> Iterator[dict]:
    """Sample rows proposed by every task on a few generated scenes: a corpus for when no
    benchmark split is given."""

    tasks = select_tasks()
    for index in range(scenes):
        scene = generate_scene(seed + index)
        for task in tasks:
            for sample in task.propose(scene, np.random.default_rng([seed, index])):
                yield sample.model_dump(
                    mode="json", include={"question", "choices", "answer", "answer_type", "reference_steps"}
                )


def build_tiny_qwen2vl(out: Path, texts: Iterable[str] | None = None, config: TinyConfig = TinyConfig()) -> Path:
    """Train the tokenizer on ``texts`` (default: a corpus from generated scenes), build a
    randomly initialised Qwen2-VL of ``config``'s size and save model, tokenizer, processor
    and chat template to ``out``, ready for ``hf:<out>``."""
    config.check()

    tokenizer = train_tokenizer(texts if texts is not None else bench_corpus(generated_rows()), config.vocab_size)
    ids = {token: tokenizer.convert_tokens_to_ids(token) for token in SPECIAL_TOKENS}
    image_processor = Qwen2VLImageProcessorPil(min_pixels=config.min_pixels, max_pixels=config.max_pixels)
    processor = ImageOnlyQwen2VLProcessor(
        image_processor=image_processor, tokenizer=tokenizer, chat_template=CHAT_TEMPLATE
    )
    model_config = Qwen2VLConfig(
        text_config={
            "vocab_size": len(tokenizer),
            "hidden_size": config.hidden_size,
            "intermediate_size": config.intermediate_size,
            "num_hidden_layers": config.layers,
            "num_attention_heads": config.heads,
            "num_key_value_heads": config.kv_heads,
            "max_position_embeddings": 8192,
            "initializer_range": config.init,
            "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": config.mrope_section()},
            "bos_token_id": ids["<|endoftext|>"],
            "eos_token_id": ids["<|im_end|>"],
            "pad_token_id": ids["<|endoftext|>"],
        },
        vision_config={
            "depth": config.vision_depth,
            "embed_dim": config.vision_width,
            "hidden_size": config.hidden_size,  # the merger projects into the text model's width
            "num_heads": config.vision_heads,
            "mlp_ratio": 2,
        },
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
    )
    torch.manual_seed(config.seed)
    model = Qwen2VLForConditionalGeneration(model_config)
    model.generation_config.pad_token_id = ids["<|endoftext|>"]
    model.generation_config.eos_token_id = ids["<|im_end|>"]
    out.mkdir(parents=True, exist_ok=True)
    hf_logging.disable_progress_bar()  # one tiny shard: a bar is noise
    model.save_pretrained(out)
    processor.save_pretrained(out)
    (out / "roadthink_tiny.json").write_text(json.dumps(asdict(config), indent=2) + "\n")
    return out
