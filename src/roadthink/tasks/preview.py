"""A picture of a built split: one card per sample with what the model sees, the question,
the options and the exact answer, for dataset cards and a quick look before evaluating."""

from __future__ import annotations

import json
import math
import textwrap
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from roadthink.errors import RoadthinkError
from roadthink.tasks.registry import option_text

CARD_WIDTH = 560
IMAGE_HEIGHT = 170
TEXT_SIZE = 13
LINE = TEXT_SIZE + 4
GAP = 6
BACKGROUND = (250, 250, 248)
INK = (20, 20, 20)
ANSWER_INK = (0, 110, 40)
BOX_COLOUR = (255, 40, 200)
OPEN = ("box", "waypoints")  # answer types whose values are not worth counting


def pick(rows: list[dict], per_task: int = 1) -> list[dict]:
    """The first ``per_task`` samples of every task, in the split's order."""
    taken: dict[str, int] = {}
    chosen = []
    for row in rows:
        if taken.get(row["task"], 0) < per_task:
            taken[row["task"]] = taken.get(row["task"], 0) + 1
            chosen.append(row)
    return chosen


def answer_text(row: dict) -> str:
    """The answer as a person reads it: the option's text for choice questions."""
    if row.get("choices"):
        letter = str(row["answer"])
        text = option_text(row["choices"], letter)
        return f"{letter}. {text}" if text != letter else letter
    return json.dumps(row["answer"]) if isinstance(row["answer"], list) else str(row["answer"])


def _strip(bench: Path, row: dict) -> np.ndarray:
    """The sample's images side by side at one height, the answer box drawn when there is one."""
    tiles = []
    for rel in row["images"]:
        image = cv2.imread(str(bench / rel), cv2.IMREAD_COLOR)
        if image is None:
            raise RoadthinkError(f"{bench / rel}: missing or unreadable image of sample {row['id']}")
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        if row["answer_type"] == "box" and rel == row["images"][-1]:
            x1, y1, x2, y2 = (round(v) for v in row["answer"])
            cv2.rectangle(image, (x1, y1), (x2, y2), BOX_COLOUR, 3)
        scale = IMAGE_HEIGHT / image.shape[0]
        tiles.append(cv2.resize(image, (max(1, round(image.shape[1] * scale)), IMAGE_HEIGHT), cv2.INTER_AREA))
    strip = np.hstack(tiles) if tiles else np.full((IMAGE_HEIGHT, CARD_WIDTH, 3), 0, np.uint8)
    if strip.shape[1] > CARD_WIDTH:
        strip = cv2.resize(strip, (CARD_WIDTH, round(IMAGE_HEIGHT * CARD_WIDTH / strip.shape[1])), cv2.INTER_AREA)
    return strip


def _lines(row: dict) -> list[tuple[str, tuple[int, int, int]]]:
    chars = CARD_WIDTH // 7
    lines = [(f"{row['family']} / {row['task']}   {row['id']}", (110, 110, 110))]
    lines += [(t, INK) for t in textwrap.wrap(row["question"], chars)]
    if row.get("choices"):
        lines += [(t, INK) for t in textwrap.wrap("   ".join(row["choices"]), chars)]
    lines += [(t, ANSWER_INK) for t in textwrap.wrap(f"answer: {answer_text(row)}", chars)]
    return lines


def sample_card(bench: Path, row: dict, font: ImageFont.ImageFont) -> Image.Image:
    strip = _strip(bench, row)
    lines = _lines(row)
    card = Image.new("RGB", (CARD_WIDTH, strip.shape[0] + GAP * 2 + LINE * len(lines)), BACKGROUND)
    card.paste(Image.fromarray(strip), ((CARD_WIDTH - strip.shape[1]) // 2, 0))
    draw = ImageDraw.Draw(card)
    for i, (text, colour) in enumerate(lines):
        draw.text((GAP, strip.shape[0] + GAP + i * LINE), text, fill=colour, font=font)
    return card


def preview(bench: Path, rows: list[dict], columns: int = 0) -> Image.Image:
    """Cards of ``rows`` on a grid (near-square unless ``columns`` is given)."""
    if not rows:
        raise RoadthinkError(f"{bench}: no samples to show")
    font = ImageFont.load_default(size=TEXT_SIZE)
    cards = [sample_card(bench, row, font) for row in rows]
    columns = columns or math.ceil(math.sqrt(len(cards)))
    grid = [cards[i : i + columns] for i in range(0, len(cards), columns)]
    heights = [max(c.height for c in line) for line in grid]
    sheet = Image.new(
        "RGB", (columns * (CARD_WIDTH + GAP) + GAP, sum(heights) + GAP * (len(grid) + 1)), (200, 200, 200)
    )
    top = GAP
    for line, height in zip(grid, heights, strict=True):
        for j, card in enumerate(line):
            sheet.paste(card, (GAP + j * (CARD_WIDTH + GAP), top))
        top += height + GAP
    return sheet
