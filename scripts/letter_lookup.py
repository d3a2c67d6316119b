"""Does a model find the letter of the option it means? Teacher-forced on the single-image
multiple-choice samples of a split: the model is given the question, its image and the
*reference* reasoning up to ``<answer>``, and its likeliest option letter is compared with the
answer. Printed beside chance (the expected hits of a uniform pick), per task: a model at
chance here cannot score above chance on choice questions however well it sees.

``.venv/bin/python scripts/letter_lookup.py MODEL_FOLDER [--bench runs/builtin/bench-test]``
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

import torch
from PIL import Image

from roadthink.eval.bench import load_bench
from roadthink.eval.prompt import messages_for
from roadthink.models.hf_backend import load
from roadthink.tasks.sample import AnswerType
from roadthink.train.data import chat, target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="a model folder (hf:…) of a Qwen-VL")
    parser.add_argument("--bench", type=Path, default=Path("runs/builtin/bench-test"))
    args = parser.parse_args()
    processor, model = load(args.model.removeprefix("hf:"), "cpu", torch.float32)
    model.eval()
    bench = load_bench(args.bench)
    hits: dict[str, list[float]] = defaultdict(lambda: [0, 0, 0.0])  # right, asked, chance
    for sample in bench.samples:
        if sample.answer_type is not AnswerType.CHOICE or len(sample.images) != 1 or not sample.choices:
            continue
        asked = processor.apply_chat_template(
            chat(messages_for(sample, [""])), add_generation_prompt=True, tokenize=False
        )
        reply = target(sample)
        given = reply[: reply.index("<answer>") + len("<answer>")]
        with Image.open(bench.path / sample.images[0]) as image:
            inputs = processor(text=[asked + given], images=[image.convert("RGB")], return_tensors="pt")
        with torch.no_grad():
            logits = model(**inputs).logits[0, -1]
        letters = [choice.split(".", 1)[0] for choice in sample.choices]
        first = [processor.tokenizer(letter, add_special_tokens=False)["input_ids"][0] for letter in letters]
        picked = letters[int(logits[first].argmax())]
        row = hits[sample.task]
        row[0] += picked == sample.answer
        row[1] += 1
        row[2] += 1 / len(letters)
    for task, (right, n, chance) in sorted(hits.items()):
        print(f"{task:20s} {int(right):3d} of {int(n):3d} right (chance {chance:.1f})")
    right, n, chance = (sum(row[i] for row in hits.values()) for i in range(3))
    print(f"{'all':20s} {int(right):3d} of {int(n):3d} right (chance {chance:.1f})")


if __name__ == "__main__":
    main()
