"""Human-facing pictures: ground-truth boxes over a camera image, and a labelled montage."""

from __future__ import annotations

import math

import cv2
import numpy as np

from roadthink.render import style
from roadthink.render.raster import FONT, SHIFT, fixed
from roadthink.scene.types import Scene

LABEL_SCALE = 0.35
PANEL_GAP = 4
PANEL_BACKGROUND = (24, 24, 24)


def draw_annotations(image: np.ndarray, scene: Scene, name: str) -> np.ndarray:
    """A copy of camera ``name``'s image with each annotated agent's 2D box and a label
    ``id category vf=0.83``, in its BEV category colour."""
    out = image.copy()
    for agent in scene.agents:
        annotation = agent.cameras.get(name)
        if annotation is None:
            continue
        color = style.CATEGORY_COLORS[agent.category]
        x1, y1, x2, y2 = annotation.bbox
        corner1, corner2 = fixed((x1, y1)).tolist(), fixed((x2, y2)).tolist()
        cv2.rectangle(out, corner1, corner2, color, 1, cv2.LINE_AA, SHIFT)
        text = f"{agent.id} {agent.category.value} vf={annotation.visible_fraction:.2f}"
        _label(out, text, (int(x1), int(y1)), color)
    return out


def montage(images: dict[str, np.ndarray]) -> np.ndarray:
    """Tile images (e.g. BEV and cameras) on a near-square grid, each scaled to the smallest
    height among them and labelled with its key, for READMEs and quick looks."""
    height = min(image.shape[0] for image in images.values())
    tiles = {name: _scaled(image, height) for name, image in images.items()}
    width = max(tile.shape[1] for tile in tiles.values())
    columns = math.ceil(math.sqrt(len(tiles)))
    rows = math.ceil(len(tiles) / columns)
    cell_w, cell_h = width + PANEL_GAP, height + PANEL_GAP
    sheet = np.empty((rows * cell_h + PANEL_GAP, columns * cell_w + PANEL_GAP, 3), np.uint8)
    sheet[:] = PANEL_BACKGROUND
    for slot, (name, tile) in enumerate(tiles.items()):
        top = PANEL_GAP + (slot // columns) * cell_h
        left = PANEL_GAP + (slot % columns) * cell_w + (width - tile.shape[1]) // 2
        sheet[top : top + height, left : left + tile.shape[1]] = tile
        _label(sheet, name, (left, top), (255, 255, 255), below=True)
    return sheet


def _scaled(image: np.ndarray, height: int) -> np.ndarray:
    if image.shape[0] == height:
        return image
    width = max(1, round(image.shape[1] * height / image.shape[0]))
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)


def _label(
    image: np.ndarray,
    text: str,
    corner: tuple[int, int],
    color: tuple[int, int, int],
    below: bool = False,
) -> None:
    """Text on a filled tag in ``color`` at ``corner``: above it, or below when ``below`` or
    when there is no room above; dark or light text, whichever reads on the tag."""
    (width, height), baseline = cv2.getTextSize(text, FONT, LABEL_SCALE, 1)
    tag_h = height + baseline + 2
    x, y = corner
    top = y if below or y - tag_h < 0 else y - tag_h
    cv2.rectangle(image, (x, top), (x + width + 2, top + tag_h), color, -1)
    ink = (0, 0, 0) if np.dot(color, (0.299, 0.587, 0.114)) > 128 else (255, 255, 255)
    cv2.putText(image, text, (x + 1, top + height + 1), FONT, LABEL_SCALE, ink, 1, cv2.LINE_AA)
