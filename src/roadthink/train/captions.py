"""Caption pre-training, between the vision stage and SFT (LLaVA's stage 1, with exact
captions): the language model learns to read the vision tower by writing down, for every
front-camera image, the scene's facts (``vision.FACTS``) as one line of text, and on a second
line where each road user the question names is (``the blue car: left, 20 to 40 m, an oncoming
lane``): the side, distance and lane questions ask that of one named road user, which the
language model must find among the image's tokens.

Why: a tower pre-trained on the facts holds them (heads on its tokens read them well above
the majority class), yet SFT on the bench alone did not teach the language model to read
them: its answers were as right with black images as with the cameras'. A bench sample asks
one thing about its image, in a reply of ~40 tokens mostly about other things; a caption asks
some twenty, each answered by a word only the image tells, and scene folders (``--scenes``)
give captions at no cost. After 800 steps on 10,000 scenes, the language model wrote the
nearest car's colour right for 57 % of 400 held-out images (majority class 10 %), and 67 % of
all facts (54 %).

``roadthink train captions --bench TRAIN_SPLIT --model hf:VISION --out CKPT [--scenes DIR]``
writes a model folder: ``roadthink train sft --model hf:CKPT`` goes on from it.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from datasets import Dataset, Image
from datasets import Sequence as Images
from PIL import Image as PILImage

from roadthink.errors import RoadthinkError
from roadthink.eval.bench import Bench
from roadthink.models.types import ImagePart, ImageURL, Message, TextPart
from roadthink.scene.io import load_scene
from roadthink.scene.types import Scene
from roadthink.tasks.perception import COUNTED, SINGLED_OUT
from roadthink.tasks.sample import Sample
from roadthink.tasks.spatial import DISTANCE_BINS, LANES, SIDES
from roadthink.train.data import answer_text, chat, target
from roadthink.train.run import StepMetrics, TrainSettings, callbacks, fine_tune, starting_point
from roadthink.train.vision import (
    CAMERA,
    FACTS,
    VisionExample,
    fact_figures,
    majority_accuracy,
    scene_facts,
    vision_examples,
    where_named,
)

QUESTION = "List what the front camera image shows."
SEPARATOR = "; "
# each fact's words in a caption, in FACTS' order: short, and one word for the value at the end
LABELS: dict[str, str] = {
    "count cars": "cars",
    "count vehicles": "vehicles",
    "count pedestrians": "pedestrians",
    **{name: f"any {name.removeprefix('exists ')}" for name in FACTS if name.startswith("exists ")},
    "nearest car colour": "nearest car colour",
    **{
        f"category of {description}": label
        for description, label in zip(
            SINGLED_OUT,
            (
                "nearest road user",
                "nearest on the left",
                "nearest on the right",
                "nearest ahead",
                "leftmost",
                "rightmost",
            ),
            strict=True,
        )
    },
    "ego light": "light",
}


def caption(facts: Sequence[int], placed: Sequence[tuple[str, str]] = ()) -> str:
    """The caption of an image whose facts (``vision.scene_facts``) are ``facts``:
    ``cars 2; vehicles 3; …; light red``, then, on a line of its own, where each road user the
    question names (``placed``, ``vision.placed_named``) is:
    ``the blue car: left, 20 to 40 m, an oncoming lane; the bus: …``."""
    facts_line = SEPARATOR.join(
        f"{LABELS[name]} {classes[value]}" for (name, classes), value in zip(FACTS.items(), facts, strict=True)
    )
    if not placed:
        return facts_line
    return f"{facts_line}\n{SEPARATOR.join(f'{name}: {words}' for name, words in placed)}"


def where_question(names: Sequence[str]) -> str:
    """``Where are the blue car, the truck and the bus?``"""
    listed = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
    return f"Where {'is' if len(names) == 1 else 'are'} {listed}?"


PERCEIVED = ("category", "color", "count", "exists", "light_state")  # the tasks a caption fact answers (``asked``)
PLACED = ("side", "distance", "lane")  # the tasks a caption's placement answers (``placed_in``)
LOOKABLE = (*PERCEIVED, *PLACED)
_KINDS = {tuple(sorted(c.value for c in members)): kind for kind, members in COUNTED.items()}  # counted categories


def asked(sample: Sample) -> list[str]:
    """The facts (names in ``FACTS``) a front-camera sample's reference reasoning rests on, in
    ``FACTS``' order: those a caption states. Empty for samples about other images or things."""
    if len(sample.images) != 1 or Path(sample.images[0]).stem != CAMERA:  # a caption is of the present front frame
        return []
    names = set()
    for fact in (fact for step in sample.reference_steps for fact in step.facts):
        extra = fact.model_extra or {}
        if fact.type == "count" and tuple(extra.get("categories", ())) in _KINDS:
            names.add(f"count {_KINDS[tuple(extra['categories'])]}")
        elif fact.type == "exists":
            names.add(f"exists {extra.get('category')}")
        elif fact.type == "nearest" and extra.get("category") == "car":
            names.add("nearest car colour")
        elif fact.type == "singled_out":
            names.add(f"category of {extra.get('description')}")
        elif fact.type == "controls":
            names.add("ego light")
    return [name for name in FACTS if name in names]


def sight(names: Sequence[str], scene: Scene) -> list[str]:
    """The facts ``names`` (a sample's ``asked``) of the scene's front-camera image, each as a
    caption says it (``nearest car colour white``)."""
    values = dict(zip(FACTS, scene_facts(scene), strict=True))
    return [f"{LABELS[name]} {FACTS[name][values[name]]}" for name in names]


def placed_in(sample: Sample, scene: Scene) -> tuple[str, str] | None:
    """For a side, distance or lane question about the front image: the road user it names and
    where it is, as a caption says it (``("the blue car", "left, 20 to 40 m, an oncoming lane")``);
    None for other samples."""
    if sample.task not in PLACED or len(sample.images) != 1 or Path(sample.images[0]).stem != CAMERA:
        return None
    ids = [f.agent for step in sample.reference_steps for f in step.facts if f.type == "visible"]
    return where_named(scene).get(ids[0]) if ids else None


SIGHT = "I see: "  # what a look-first reply opens with, before what the image shows
_OPENING = re.compile(rf"{SIGHT}(.*?)\.(?:\s|<|$)")


def seen_in(sample: Sample, scene: Scene) -> tuple[str, str] | None:
    """What a look-first reply to ``sample`` says the image shows and the label its answer goes
    under: (``nearest car colour white``, ``nearest car colour``) or (``the blue car: left, 20 to
    40 m, an oncoming lane``, ``the blue car:``); None where no caption fact answers it."""
    placed = placed_in(sample, scene)
    if placed is not None:
        name, words = placed
        return f"{name}: {words}", f"{name}:"
    names = asked(sample)
    return (SEPARATOR.join(sight(names, scene)), LABELS[names[-1]]) if names else None


def looking(bench: Bench, tasks: Sequence[str]) -> Callable[[Sample], str]:
    """SFT targets that read the image in the words the caption stage taught: for samples of
    ``tasks`` (some of ``LOOKABLE``), the reply opens with what the caption states of what they
    ask (``I see: nearest car colour white.``, ``I see: the blue car: left, 20 to 40 m, an
    oncoming lane.``) and answers with its label and the answer in words (``nearest car colour
    white``, ``the blue car: left``, which the evaluation reads as the option); other samples
    get ``data.target``.

    Why: the recipe's language model reads the tower well after a caption's label (the nearest
    car's colour for 57 % of held-out images) but does not learn to copy a word from earlier in
    its reply within SFT's budget (scripts/option_recall.py): opened by what it sees, its
    reasoning named the right colour for 4 of 4 val samples, its answer, read afresh after
    ``<answer>``, for 1. Under its label, the answer is read where the model reads best, and
    is the line it opened with, for a model that learns to copy."""

    unknown = sorted(set(tasks) - set(LOOKABLE))
    if unknown:
        raise RoadthinkError(f"no caption fact answers {', '.join(unknown)}: look first only at {', '.join(LOOKABLE)}")

    def reply(sample: Sample) -> str:
        seen = seen_in(sample, load_scene(bench.path / sample.scene)) if sample.task in tasks else None
        if seen is None:
            return target(sample)
        said, label = seen
        return target(sample, sight=f"{SIGHT}{said}. ", answer=f"{label} {answer_text(sample)}")

    return reply


def opening(reply: str) -> str | None:
    """What a look-first reply's opening line says the image shows (None: it does not open so)."""
    found = _OPENING.search(reply)
    return found.group(1) if found else None


def statements(said: str) -> set[str]:
    """What an opening line states, one statement per fact: ``cars 2; light red`` → ``cars 2``,
    ``light red``; ``the blue car: left, 20 to 40 m`` → ``the blue car: left``, ``the blue car:
    20 to 40 m``."""
    found = set()
    for part in said.split(SEPARATOR.strip()):
        name, colon, words = part.strip().partition(": ")
        found |= {f"{name}: {w.strip()}" for w in words.split(",")} if colon else {part.strip()}
    return found


def sight_score(reply: str, seen: tuple[str, str] | None) -> float | None:
    """How right a look-first reply's opening line is about what a sample rests on (``seen``,
    its ``seen_in``): the statements it shares with the scene's, of all it makes or should (1:
    exactly the scene's; a statement too many counts as one missing, so listing every colour
    does not pay); None where no caption fact answers the sample (``seen`` is None)."""
    if seen is None:
        return None
    said = opening(reply)
    truth, claimed = statements(seen[0]), statements(said) if said is not None else set()
    return len(truth & claimed) / len(truth | claimed)


def read_caption(text: str) -> list[int]:
    """The facts a caption's first line states, in ``FACTS``' order; -1 where it leaves one out
    or names a class the fact does not have (a model's caption may do both)."""
    said = dict(part.strip().rpartition(" ")[::2] for part in text.split("\n")[0].split(SEPARATOR.strip()))
    return [
        classes.index(said[label]) if said.get(label) in classes else -1
        for label, classes in zip(LABELS.values(), FACTS.values(), strict=True)
    ]


def read_placed(text: str) -> dict[str, set[str]]:
    """Where a caption's second line places each road user: name → the words it gives
    (``{"the blue car": {"left", "20 to 40 m", "an oncoming lane"}}``)."""
    lines = text.split("\n")
    said = (part.partition(":") for part in (lines[1] if len(lines) > 1 else "").split(SEPARATOR.strip()))
    return {name.strip(): {w.strip() for w in words.split(",")} for name, colon, words in said if colon}


def prompt(example: VisionExample) -> list[Message]:
    """The image, ``QUESTION`` and, when it has road users to place, where they are."""
    text = " ".join([QUESTION, where_question([n for n, _ in example.placed])] if example.placed else [QUESTION])
    return [Message(role="user", content=[ImagePart(image_url=ImageURL(url="")), TextPart(text=text)])]


def caption_dataset(examples: Sequence[VisionExample]) -> Dataset:
    """Conversational prompt-completion rows, as for SFT: the image and the question
    (``prompt``), then its caption, the only tokens the loss is taken on."""
    rows = [
        {
            "prompt": chat(prompt(e)),
            "completion": [{"role": "assistant", "content": [{"type": "text", "text": caption(e.facts, e.placed)}]}],
            "images": [str(e.image)],
        }
        for e in examples
    ]
    return Dataset.from_list(rows).cast_column("images", Images(Image()))


def caption_rows(folders: Sequence[Path], processor: Any, cache: Path, share: float, rows: int) -> Dataset:
    """Caption rows to train on beside ``rows`` others (SFT's bench samples), so that they are
    ``share`` of all: from the first scenes of ``folders`` in turn. Mixed into SFT, they keep
    the language model reading the tower while it learns the bench's replies: after 600 steps
    of bench SFT alone, a caption model named the nearest car's colour right in its reasoning
    for 2 of 20 test samples; with a third of the rows captions, for 6 (none with black images)."""
    if not 0.0 < share < 1.0:
        raise RoadthinkError(f"caption share {share} is not between 0 and 1 (exclusive)")
    if not folders:
        raise RoadthinkError("a caption share needs scene folders to caption (--captions DIR)")
    wanted = round(rows * share / (1.0 - share))
    examples: list[VisionExample] = []
    for folder in folders:
        if len(examples) < wanted:
            examples += vision_examples(folder, processor, cache, wanted - len(examples), per_token=False)
    return caption_dataset(examples)


def write_captions(model: Any, processor: Any, examples: Sequence[VisionExample], batch_size: int = 16) -> list[str]:
    """The caption ``model`` writes, greedily, for each example's image and question."""
    longest = max(len(processor.tokenizer(caption(e.facts, e.placed))["input_ids"]) for e in examples)
    side, processor.tokenizer.padding_side = processor.tokenizer.padding_side, "left"
    was_training = model.training
    model.eval()
    found = []
    try:
        for start in range(0, len(examples), batch_size):
            part = examples[start : start + batch_size]
            images = []
            for example in part:
                with PILImage.open(example.image) as image:
                    images.append(image.convert("RGB"))
            texts = [
                processor.apply_chat_template(chat(prompt(e)), add_generation_prompt=True, tokenize=False) for e in part
            ]
            inputs = processor(text=texts, images=images, return_tensors="pt", padding=True)
            with torch.no_grad():
                output = model.generate(**inputs.to(model.device), max_new_tokens=longest + 16, do_sample=False)
            found += processor.batch_decode(output[:, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
    finally:
        processor.tokenizer.padding_side = side
        model.train(was_training)
    return found


def read_facts(model: Any, processor: Any, examples: Sequence[VisionExample], batch_size: int = 16) -> np.ndarray:
    """(examples, facts): the class of each fact in the caption ``model`` writes for each
    example's image (-1 where the caption does not state it)."""
    found = [read_caption(text) for text in write_captions(model, processor, examples, batch_size)]
    return np.array(found, dtype=int).reshape(len(examples), len(FACTS))


PLACEMENT_WORDS = {  # each kind of placement a caption states, by the words it may take
    "side": set(SIDES),
    "distance": {label for _, _, label in DISTANCE_BINS},
    "lane": set(LANES.values()),
}


def _placed(example: VisionExample, kind: str) -> list[tuple[str, str]]:
    """(name, its ``kind`` of placement in words) of each road user the example places that has one."""
    said = ((name, [w for w in words.split(", ") if w in PLACEMENT_WORDS[kind]]) for name, words in example.placed)
    return [(name, found[0]) for name, found in said if found]


def placement_accuracy(captions: Sequence[str], examples: Sequence[VisionExample]) -> dict[str, float]:
    """Per kind of placement (side, distance, lane), the share of the road users the examples
    place whose caption gives the right words for it (left out counts as wrong)."""
    right: dict[str, list[bool]] = {kind: [] for kind in PLACEMENT_WORDS}
    for text, example in zip(captions, examples, strict=True):
        said = read_placed(text)
        for kind, found in right.items():
            found += [truth in said.get(name, set()) for name, truth in _placed(example, kind)]
    return {kind: float(np.mean(found)) for kind, found in right.items() if found}


def placement_majority(train: Sequence[VisionExample], examples: Sequence[VisionExample]) -> dict[str, float]:
    """Per kind of placement, the share of the examples' placements that the commonest one among
    ``train`` would get right: a caption reads the image only where it beats that."""
    majority = {}
    for kind in PLACEMENT_WORDS:
        seen = Counter(truth for e in train for _, truth in _placed(e, kind))
        asked = [truth for e in examples for _, truth in _placed(e, kind)]
        if seen and asked:
            majority[kind] = sum(truth == seen.most_common(1)[0][0] for truth in asked) / len(asked)
    return majority


class CaptionAccuracy(StepMetrics):
    """Per fact, the share of held-out images whose caption states it right, logged as
    ``val <fact>`` and their mean ``val_captions``, each beside the accuracy of always saying
    the train images' commonest class (``majority …``, ``val_captions_majority``)."""

    def __init__(self, examples: list[VisionExample], processor: Any, every: int, train: list[VisionExample]) -> None:
        super().__init__(every)
        self.examples, self.processor = examples, processor
        self.majority = majority_accuracy(train, examples)
        self.placed_majority = placement_majority(train, examples)

    def measure(self, step: int, model: Any) -> dict[str, float]:
        captions = write_captions(model, self.processor, self.examples)
        right = np.array([read_caption(c) for c in captions]) == np.array([e.facts for e in self.examples])
        figures = fact_figures("val_captions", dict(zip(FACTS, right.mean(0).tolist(), strict=True)), self.majority)
        placed = placement_accuracy(captions, self.examples)
        figures |= {f"val placed {kind}": value for kind, value in placed.items()}
        return figures | {f"majority placed {kind}": value for kind, value in self.placed_majority.items()}


def train_captions(
    bench_path: Path,
    out: Path,
    model: str,
    settings: TrainSettings | None = None,
    val: Path | None = None,
    scenes: Sequence[Path] = (),
) -> Path:
    """Teach ``model`` (a Qwen-VL folder, usually from ``train vision``) to caption the train
    split's front-camera images and those of the scene folders ``scenes``; the tower stays as
    it is but for its merger when ``settings.freeze_vision``. ``val`` (a split or a scene
    folder) is captioned every ``settings.val_every`` steps. Resumes from OUT's last
    checkpoint; returns OUT, a model folder."""
    settings = settings or TrainSettings(steps=800, freeze_vision=True)
    bench, device, processor, network = starting_point("captions", bench_path, out, model, settings)
    folders = (bench.path, *scenes)
    examples = [e for folder in folders for e in vision_examples(folder, processor, out / "images", per_token=False)]
    found = callbacks(out, processor, settings, None)
    if val is not None:  # before the log lines, so that its figures join the step's line
        held_out = vision_examples(val, processor, out / "images", per_token=False)
        found.insert(0, CaptionAccuracy(held_out, processor, settings.val_every, examples))
    return fine_tune(network, processor, caption_dataset(examples), settings, out, device, found)
