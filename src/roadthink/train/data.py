"""Benchmark splits as training data, in TRL's conversational prompt-completion form with
images: SFT examples (the question as the evaluation asks it, and the reference reasoning and
answer as the completion, the only tokens the loss is taken on) and GRPO prompts (the
question, with the sample and its scene file for the rewards).

The prompt is the evaluation's own (``eval.prompt.messages_for``), so a model is trained on
exactly what it will be asked.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from datasets import Dataset, Image, Sequence
from PIL import Image as PILImage

from roadthink.errors import RoadthinkError
from roadthink.eval.bench import Bench, load_bench
from roadthink.eval.prompt import messages_for
from roadthink.models import image_size
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


_ID = r"(?:a|tl)\d+"  # agent and traffic-light ids: a02, tl1
_LANE = r"r\d+_[a-z]\d+(?:_to_r\d+_[a-z]\d+)?"  # lane ids: r2_f0, r2_f0_to_r1_b0
_UNSEEN = [
    (re.compile(rf"\s*\((?:{_ID}|{_LANE})\)"), ""),  # "the motorcycle (a06)"
    (re.compile(rf"\b(The [^.]*?) is {_ID}\."), r"\1 is in view."),  # "The car is a26."
    (re.compile(rf"\b(The [^.]*?) is {_ID}[,:] "), r"\1 is "),  # "The nearest car is a15, 41 m away."
    (re.compile(rf"\b{_ID} \("), "one ("),  # "visible: a26 (white car, 49 m away)"
    (re.compile(rf"\b{_ID}\b"), "it"),
    (re.compile(rf"\blane {_LANE}\b"), "its lane"),
    (re.compile(rf"\b{_LANE}\b"), "a lane"),
]


def seen_reasoning(text: str) -> str:
    """Reference reasoning in the words of someone looking at the images: the scene's agent,
    light and lane ids, which no image shows, are left out, so a model is not taught to guess
    labels it cannot see."""
    for pattern, replacement in _UNSEEN:
        text = pattern.sub(replacement, text)
    return text


def target(sample: Sample, sight: str = "", answer: str | None = None) -> str:
    """The reply a model is taught: ``sight`` (what the image shows, train/captions.py) and the
    reference reasoning (as seen, ``seen_reasoning``), then ``answer`` (by default the answer in
    the form the question asks for), inside the tags the evaluation and the format reward read."""
    steps = seen_reasoning(" ".join(step.text for step in sample.reference_steps))
    if answer is None:
        listed = sample.answer_type in (AnswerType.BOX, AnswerType.WAYPOINTS)
        answer = json.dumps(sample.answer) if listed else sample.answer
    return f"<think>{sight}{steps}</think><answer>{answer}</answer>"


def answer_text(sample: Sample) -> str:
    """The answer in words: a choice's option text ("white" for "A. white" when the answer is
    A), else the answer as it is."""
    if sample.answer_type is not AnswerType.CHOICE:
        return str(sample.answer)
    prefix = f"{sample.answer}. "
    found = [c.removeprefix(prefix) for c in sample.choices or [] if c.startswith(prefix)]
    if len(found) != 1:
        raise RoadthinkError(f"sample {sample.id}: answer {sample.answer!r} is not one of its options {sample.choices}")
    return found[0]


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


PLURAL = {"family": "families", "task": "tasks"}


def _rows(
    bench: Bench, limit: int | None, families: tuple[str, ...] | None, tasks: tuple[str, ...] | None = None
) -> list[Sample]:
    """The samples trained on: those of ``families`` and ``tasks`` (all when None), the first ``limit``."""
    samples = _only(bench.samples, "family", families, bench.path)
    samples = _only(samples, "task", tasks, bench.path)
    return samples[:limit] if limit else samples


def _only(samples: list[Sample], field: str, wanted: tuple[str, ...] | None, where: Path) -> list[Sample]:
    """``samples`` whose ``field`` (family or task) is one of ``wanted`` (all when None); a
    one-line error naming those there are when one wanted is not."""
    if not wanted:
        return samples
    there = {getattr(s, field) for s in samples}
    unknown = set(wanted) - there
    if unknown:
        raise RoadthinkError(
            f"{where} has no samples of {', '.join(sorted(unknown))}; its {PLURAL[field]}: {', '.join(sorted(there))}"
        )
    return [s for s in samples if getattr(s, field) in wanted]


def focused(samples: list[Sample], tasks: tuple[str, ...], share: float, where: Path) -> list[Sample]:
    """``samples`` resampled to as many rows: ``share`` of them those of ``tasks`` (repeated in
    turn), the rest the others (spread evenly over them). A fixed budget of steps is then spent where
    the pixels answer: on the recipe's split, 300 more SFT steps on the look-first tasks alone
    lifted perception from 34.8 to 48.8 % (count 18 → 42, presence 52 → 82), the same steps over
    all tasks to 38.4. As many rows: the caption rows mixed in keep their share."""
    if not 0.0 < share < 1.0:
        raise RoadthinkError(f"focus share {share} is not between 0 and 1 (exclusive)")
    inside = _only(samples, "task", tasks, where)
    outside = [s for s in samples if s.task not in tasks]
    if not outside:
        return inside
    wanted = round(len(samples) * share)
    rest = len(samples) - wanted
    return [outside[i * len(outside) // rest] for i in range(rest)] + [inside[i % len(inside)] for i in range(wanted)]


def sft_dataset(
    bench: Bench,
    processor: Any,
    limit: int | None = None,
    cache: Path | None = None,
    families: tuple[str, ...] | None = None,
    reply: Callable[[Sample], str] = target,
    tasks: tuple[str, ...] | None = None,
    focus: tuple[tuple[str, ...], float] | None = None,
) -> Dataset:
    """``prompt`` (system, user with images and question), ``completion`` (the assistant's
    target, ``reply`` of the sample) and ``images`` (decoded only when a batch needs them);
    with ``focus`` (tasks, share), those tasks' samples repeated to that share of the rows.

    With ``cache``, the images are resized once, into that folder, to the size the processor
    would resize them to at every step (the same resampling, so the pixels are the same): on a
    CPU, decoding and resizing full-size images took a third of each step."""
    samples = _rows(bench, limit, families, tasks)
    if focus:
        samples = focused(samples, *focus, bench.path)
    return _dataset(
        bench,
        samples,
        processor,
        cache,
        lambda sample: {"completion": [{"role": "assistant", "content": [{"type": "text", "text": reply(sample)}]}]},
    )


def _dataset(
    bench: Bench, samples: list[Sample], processor: Any, cache: Path | None, fields: Callable[[Sample], dict[str, Any]]
) -> Dataset:
    """Each sample's ``prompt`` (the evaluation's own) and ``images`` (the files to train on,
    decoded only when a batch needs them), with the ``fields`` of the trainer it is for."""
    shown = ImageSizer(processor).shown(bench, samples, cache)
    records = [
        {
            "prompt": chat(messages_for(sample, ["" for _ in sample.images])),
            "images": [str(shown[bench.path / rel]) for rel in sample.images],
            **fields(sample),
        }
        for sample in samples
    ]
    return Dataset.from_list(records).cast_column("images", Sequence(Image()))


class ImageSizer(image_size.ImageSizer):
    """Images resized once into a cache folder, at the size the processor shows them."""

    def resized(self, path: Path, root: Path, folder: Path) -> Path:
        """``path`` (under ``root``) at the processor's size under ``folder`` (written once,
        named by size, so another processor never reads it), or ``path`` itself when the
        processor keeps its size or cannot say."""
        with PILImage.open(path) as image:
            found = self.measure(image.size)
            if found is None or found == image.size:
                return path
            width, height = found
            out = folder / path.relative_to(root).with_suffix(f".{width}x{height}.png")
            if not out.is_file():
                out.parent.mkdir(parents=True, exist_ok=True)
                part = out.with_name(out.name + ".part")
                self.fit(image).save(part, format="PNG")
                part.replace(out)
            return out

    def shown(self, bench: Bench, samples: list[Sample], cache: Path | None) -> dict[Path, Path]:
        """Each image of ``samples`` → the file to train on: resized into ``cache``, or as it is."""
        sources = list(dict.fromkeys(bench.path / rel for sample in samples for rel in sample.images))  # shared scenes
        if cache is None:
            return {path: path for path in sources}
        folder = split_cache(cache, bench.path)
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:  # PIL decodes without the GIL
            resized = pool.map(lambda path: self.resized(path, bench.path, folder), sources)
            return dict(zip(sources, resized, strict=True))


def split_cache(cache: Path, folder: Path) -> Path:
    """The folder under ``cache`` for the resized images of one split (or scene folder) at
    ``folder``: named by its path, so two never share one."""
    return cache / hashlib.sha1(str(folder.resolve()).encode()).hexdigest()[:10]


def grpo_dataset(
    bench: Bench,
    processor: Any,
    limit: int | None = None,
    cache: Path | None = None,
    families: tuple[str, ...] | None = None,
    tasks: tuple[str, ...] | None = None,
    reference: Callable[[Sample], str] | None = None,
) -> Dataset:
    """``prompt`` (system and user turns), ``images`` (resized once into ``cache`` when given,
    as for SFT), and for the rewards the ``sample`` as JSON and its ``scene_file``; with
    ``reference``, its reply to each sample as ``reference`` (for off-policy guidance)."""

    def fields(sample: Sample) -> dict[str, Any]:
        found = {"sample": sample.model_dump_json(), "scene_file": str(bench.path / sample.scene)}
        return found | ({"reference": reference(sample)} if reference is not None else {})

    return _dataset(bench, _rows(bench, limit, families, tasks), processor, cache, fields)
