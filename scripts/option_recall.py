"""Can the recipe's text model learn to find an option's letter? A quick probe of the skill every
multiple-choice answer needs: on synthetic sequences ``A w1 B w2 C w3 … is w2 →`` B (two to four
options, random words), the text model of the CPU recipe (``train.run.RECIPE``'s sizes, Qwen2,
from scratch) is trained on the letter alone, for each initial weight scale and head layout asked,
and its accuracy on fresh sequences printed beside chance (36 %). Minutes on 2 cores; run it
before a recipe change that should help choice questions. Held-out accuracy at 250 / 500 / 750
steps (lr 1e-3, one thread):

- 4 heads of 64 (2 for keys and values), at transformers' initial scale 0.02: 36 / 35 / 35
  (chance; also at lr 3e-4 and 3e-3, rope_theta 100, 2 layers, 8 heads of 32);
- the same at 1/sqrt(hidden) = 0.0625: 40 / 58 / 67;
- 16 heads of 16 (2 for keys and values) at 0.0625: 49 / 86 / 93 (the recipe's since 2026-12-07;
  16 for keys and values: 45 / 87 / 88).

A plain transformer of the same size with learnt positions was at 100 % in 250.

``.venv/bin/python scripts/option_recall.py [--init 0.02 0.0625] [--heads 4:2 16:2] [--steps 750] [--lr 1e-3]``
"""

from __future__ import annotations

import argparse
import os
import random

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch
from transformers import Qwen2Config, Qwen2ForCausalLM

from roadthink.train.run import RECIPE

LETTERS = [0, 1, 2, 3]
WORDS = list(range(10, 50))
IS, PAD = 5, 6
CHANCE = (1 / 2 + 1 / 3 + 1 / 4) / 3  # options drawn 2, 3 or 4 alike


def sequences(n: int, rng: random.Random) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` sequences of options, padding to one length, then ``is`` and one option's word;
    the targets are that option's letters."""
    rows, letters = [], []
    for _ in range(n):
        words = rng.sample(WORDS, rng.choice([2, 3, 4]))
        pick = rng.randrange(len(words))
        row = [t for letter, word in zip(LETTERS, words, strict=False) for t in (letter, word)]
        rows.append(row + [PAD] * (8 - len(row)) + [IS, words[pick], PAD])
        letters.append(LETTERS[pick])
    return torch.tensor(rows), torch.tensor(letters)


def probe(init: float, heads: tuple[int, int], steps: int, lr: float, seed: int = 0) -> list[tuple[int, float]]:
    """(step, held-out accuracy) every 250 steps for a model initialised at std ``init``, with
    ``heads`` (attention heads, key/value heads)."""
    torch.manual_seed(seed)
    rng = random.Random(seed)
    config = Qwen2Config(
        vocab_size=64,
        hidden_size=RECIPE.hidden_size,
        intermediate_size=RECIPE.intermediate_size,
        num_hidden_layers=RECIPE.layers,
        num_attention_heads=heads[0],
        num_key_value_heads=heads[1],
        max_position_embeddings=64,
        initializer_range=init,
    )
    model = Qwen2ForCausalLM(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    found = []
    for step in range(1, steps + 1):
        rows, letters = sequences(64, rng)
        loss = torch.nn.functional.cross_entropy(model(input_ids=rows).logits[:, -1], letters)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 250 == 0 or step == steps:
            with torch.no_grad():
                rows, letters = sequences(512, rng)
                right = (model(input_ids=rows).logits[:, -1].argmax(-1) == letters).float().mean().item()
            found.append((step, right))
            label = f"init {init:.4f}, {heads[0]} heads ({heads[1]} key/value)"
            print(f"{label}, step {step}: {100 * right:.1f} % right (chance {100 * CHANCE:.1f} %)", flush=True)
    return found


def layout(text: str) -> tuple[int, int]:
    """``HEADS:KEY_VALUE_HEADS`` as two numbers; anything else is argparse's one-line error."""
    try:
        heads, kv_heads = (int(n) for n in text.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not HEADS:KEY_VALUE_HEADS, e.g. 16:2") from None
    return heads, kv_heads


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--init", type=float, nargs="+", default=[0.02, RECIPE.hidden_size**-0.5])
    parser.add_argument(
        "--heads",
        type=layout,
        nargs="+",
        default=[(RECIPE.heads, RECIPE.kv_heads)],
        help="head layouts, HEADS:KEY_VALUE_HEADS (default: the recipe's)",
    )
    parser.add_argument("--steps", type=int, default=750)
    parser.add_argument("--lr", type=float, default=1e-3)
    args = parser.parse_args()
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    for init in args.init:
        for heads in args.heads:
            probe(init, heads, args.steps, args.lr)


if __name__ == "__main__":
    main()
