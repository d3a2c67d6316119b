"""What road users look like: sizes per category and the colours they come in."""

from __future__ import annotations

import numpy as np

from roadthink.scene.types import Category, Color

# nominal length, width, height (m); each sample is jittered by up to +-JITTER
SIZES: dict[Category, tuple[float, float, float]] = {
    Category.CAR: (4.5, 1.85, 1.55),
    Category.TRUCK: (8.0, 2.5, 3.3),
    Category.BUS: (11.5, 2.6, 3.2),
    Category.MOTORCYCLE: (2.1, 0.8, 1.45),
    Category.BICYCLE: (1.8, 0.6, 1.7),
    Category.PEDESTRIAN: (0.55, 0.6, 1.75),
    Category.TRAFFIC_CONE: (0.4, 0.4, 0.75),
    Category.BARRIER: (0.5, 2.4, 1.0),
    Category.DEBRIS: (1.1, 0.9, 0.35),
    Category.ANIMAL: (1.4, 0.5, 1.1),
}
JITTER = 0.08

_VEHICLE_COLOURS = {
    "white": (235, 235, 235),
    "black": (30, 30, 32),
    "silver": (170, 172, 178),
    "red": (190, 30, 35),
    "blue": (35, 70, 170),
    "green": (40, 130, 60),
    "yellow": (230, 190, 30),
}
COLOURS: dict[Category, dict[str, tuple[int, int, int]]] = {
    Category.CAR: _VEHICLE_COLOURS,
    Category.TRUCK: {k: _VEHICLE_COLOURS[k] for k in ("white", "red", "blue", "silver")},
    Category.BUS: {k: _VEHICLE_COLOURS[k] for k in ("yellow", "red", "blue", "white")},
    Category.MOTORCYCLE: {k: _VEHICLE_COLOURS[k] for k in ("black", "red", "blue")},
    Category.BICYCLE: {k: _VEHICLE_COLOURS[k] for k in ("black", "green", "red")},
    Category.PEDESTRIAN: {
        "red": (200, 40, 40),
        "blue": (40, 60, 180),
        "green": (40, 140, 60),
        "black": (35, 35, 35),
        "white": (230, 230, 230),
    },
    Category.TRAFFIC_CONE: {"orange": (245, 120, 20)},
    Category.BARRIER: {"white": (235, 235, 235), "orange": (240, 130, 30)},
    Category.DEBRIS: {"brown": (120, 85, 50), "grey": (110, 110, 110)},
    Category.ANIMAL: {"brown": (140, 95, 55), "black": (40, 35, 30)},
}


def sample_size(rng: np.random.Generator, category: Category) -> np.ndarray:
    return np.asarray(SIZES[category]) * rng.uniform(1 - JITTER, 1 + JITTER, 3)


_NAMES = {category: sorted(colours) for category, colours in COLOURS.items()}


def sample_color(rng: np.random.Generator, category: Category) -> Color:
    names = _NAMES[category]
    name = names[int(rng.integers(len(names)))]
    return Color(name=name, rgb=COLOURS[category][name])
