"""Benchmark splits as training data, in TRL's conversational form with images: SFT examples
(the question as the evaluation asks it, and the reference reasoning and answer as the
reply) and GRPO prompts (the question, with the sample and its scene file for the rewards).

The prompt is the evaluation's own (``eval.prompt.messages_for``), so a model is trained on
exactly what it will be asked.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from datasets import Dataset, Image, Sequence

from roadthink.errors import RoadthinkError
from roadthink.eval.bench import Bench, load_bench
from roadthink.eval.prompt import messages_for
from roadthink.models.types import Message, TextPart
from roadthink.tasks.sample import AnswerType, Sample


def train_split(path: Path) -> Bench:
    """A bench built as a train split; a test or val split (or no bench) is a one-line error,
    so no model is ever trained on what it will be tested on."""
    bench = load_bench(path)
    split = bench.info.get("split")
    if split != "train":
        raise RoadthinkError(
            f"{path} is a {split or 'unnamed'} split: train on a train split (roadthink bench build --split train)"
        )
    return bench


def target(sample: Sample) -> str:
    """The reply a model is taught: the reference reasoning, then the answer in the form the
    question asks for, inside the tags the evaluation and the format reward read."""
    steps = " ".join(step.text for step in sample.reference_steps)
    value = json.dumps(sample.answer) if sample.answer_type in (AnswerType.BOX, AnswerType.WAYPOINTS) else sample.answer
    return f"<think>{steps}</think><answer>{value}</answer>"


def chat(messages: list[Message]) -> list[dict[str, Any]]:
    """Messages in the chat-template form TRL passes to the processor (images as placeholders)."""
    out = []
    for message in messages:
        if isinstance(message.content, str):
            out.append({"role": message.role, "content": [{"type": "text", "text": message.content}]})
        else:
            parts = [
                {"type": "text", "text": p.text} if isinstance(p, TextPart) else {"type": "image"}
                for p in message.content
            ]
            out.append({"role": message.role, "content": parts})
    return out


def _rows(bench: Bench, limit: int | None) -> list[Sample]:
    return bench.samples[:limit] if limit else bench.samples


def sft_dataset(bench: Bench, limit: int | None = None) -> Dataset:
    """``messages`` (system, user with images and question, assistant with the target) and
    ``images`` (decoded only when a batch needs them)."""
    records = []
    for sample in _rows(bench, limit):
        messages = chat(messages_for(sample, ["" for _ in sample.images]))
        messages.append({"role": "assistant", "content": [{"type": "text", "text": target(sample)}]})
        records.append({"messages": messages, "images": [str(bench.path / rel) for rel in sample.images]})
    return Dataset.from_list(records).cast_column("images", Sequence(Image()))


def grpo_dataset(bench: Bench, limit: int | None = None) -> Dataset:
    """``prompt`` (system and user turns), ``images``, and for the rewards the ``sample`` as
    JSON and its ``scene_file``."""
    records = [
        {
            "prompt": chat(messages_for(sample, ["" for _ in sample.images])),
            "images": [str(bench.path / rel) for rel in sample.images],
            "sample": sample.model_dump_json(),
            "scene_file": str(bench.path / sample.scene),
        }
        for sample in _rows(bench, limit)
    ]
    return Dataset.from_list(records).cast_column("images", Sequence(Image()))
