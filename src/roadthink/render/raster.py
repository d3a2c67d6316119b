"""Small OpenCV drawing helpers shared by the BEV, the cameras and the overlays."""

from __future__ import annotations

import cv2
import numpy as np

SHIFT = 4  # fractional bits of every OpenCV coordinate: shapes land to 1/16 pixel
FONT = cv2.FONT_HERSHEY_SIMPLEX


def fixed(pixels: np.ndarray) -> np.ndarray:
    """Float pixel coordinates -> C-contiguous int32 fixed point (as OpenCV wants it) for
    calls made with ``SHIFT``."""
    return np.round(np.asarray(pixels) * (1 << SHIFT)).astype(np.int32, order="C")


def regular_polygon(sides: int, phase: float) -> np.ndarray:
    """(sides, 2) vertices on the unit circle, the first at angle ``phase``."""
    angles = phase + 2 * np.pi * np.arange(sides) / sides
    return np.stack([np.cos(angles), np.sin(angles)], axis=1)


def centered_text(
    image: np.ndarray,
    text: str,
    center: tuple[float, float],
    radius: float,
    color: tuple[int, int, int],
) -> None:
    """Draw ``text`` fitted inside a disc of ``radius`` pixels around ``center``."""
    (width, height), _ = cv2.getTextSize(text, FONT, 1.0, 1)
    scale = 1.4 * radius / max(width, height)
    origin = (round(center[0] - width * scale / 2), round(center[1] + height * scale / 2))
    cv2.putText(image, text, origin, FONT, scale, color, 1, cv2.LINE_AA)
