"""Colours and the camera lighting model.

One palette serves the BEV (flat colours, chosen to be told apart at a glance) and the
cameras (the same base colours, then lit by time of day and weather), so the two views of a
scene agree on what a road or a marking looks like.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache
from typing import NamedTuple

import numpy as np

from roadthink.render.raster import regular_polygon
from roadthink.scene.types import (
    AreaKind,
    Category,
    Environment,
    LightState,
    Sign,
    SignKind,
    TimeOfDay,
    Weather,
)

RGB = tuple[int, int, int]

# BEV category colours: well-separated hues that stay readable on dark asphalt.
CATEGORY_COLORS: dict[Category, RGB] = {
    Category.CAR: (0, 130, 200),
    Category.TRUCK: (245, 130, 48),
    Category.BUS: (145, 30, 180),
    Category.MOTORCYCLE: (240, 50, 230),
    Category.BICYCLE: (70, 240, 240),
    Category.PEDESTRIAN: (230, 25, 75),
    Category.TRAFFIC_CONE: (255, 225, 25),
    Category.BARRIER: (170, 110, 40),
    Category.DEBRIS: (128, 128, 0),
    Category.ANIMAL: (60, 180, 75),
}

OFFROAD: RGB = (58, 72, 52)
AREA_COLORS: dict[AreaKind, RGB] = {
    AreaKind.ROAD: (72, 74, 80),
    AreaKind.SHOULDER: (98, 98, 102),
    AreaKind.SIDEWALK: (150, 145, 135),
}
# Sidewalks first so roads (which may overlap them at kerbs) are drawn on top.
AREA_ORDER = (AreaKind.SIDEWALK, AreaKind.SHOULDER, AreaKind.ROAD)
WHITE_PAINT: RGB = (230, 230, 225)
YELLOW_PAINT: RGB = (235, 190, 40)
PAINT_COLORS: dict[str, RGB] = {  # by geometry.PAINT_GROUPS
    "white": WHITE_PAINT,
    "yellow": YELLOW_PAINT,
    "crosswalk": WHITE_PAINT,
    "stop_line": WHITE_PAINT,
}

EGO_FILL: RGB = (245, 245, 245)
EGO_MARK: RGB = (150, 150, 150)
OUTLINE: RGB = (15, 15, 15)

LAMP_COLORS: dict[LightState, RGB] = {
    LightState.RED: (255, 40, 30),
    LightState.YELLOW: (255, 200, 0),
    LightState.GREEN: (40, 230, 90),
}
LAMP_OFF: RGB = (45, 45, 45)
HOUSING: RGB = (28, 28, 30)
POLE: RGB = (110, 110, 115)
SIGN_RED: RGB = (200, 20, 30)
SIGN_WHITE: RGB = (240, 240, 240)
SIGN_BACK: RGB = (150, 150, 155)
SIGN_TEXT: RGB = (10, 10, 10)

# Category cues painted on agents' box faces (see render/details.py).
GLASS: RGB = (38, 48, 62)
TYRE: RGB = (22, 22, 24)
GRILLE: RGB = (34, 34, 36)
UNDERSIDE: RGB = (18, 18, 20)  # shadow between legs, under a barrier's board
HEADLIGHT: RGB = (250, 244, 210)
TAIL_LIGHT: RGB = (235, 30, 25)
ROUTE_SIGN: RGB = (255, 176, 0)
SKIN: RGB = (224, 172, 138)
RIDER: RGB = (45, 45, 52)
HELMET: RGB = (205, 205, 210)
REFLECTIVE: RGB = (245, 245, 240)
STRIPE_RED: RGB = (205, 25, 30)
STRIPE_WHITE: RGB = (240, 240, 240)


class SignLayer(NamedTuple):
    """One flat layer of a sign face: a unit shape (x right, y down as seen from the front),
    its scale relative to the sign's radius, and its colour."""

    shape: np.ndarray
    scale: float
    color: RGB


_OCTAGON = regular_polygon(8, np.pi / 8)
_TRIANGLE_DOWN = regular_polygon(3, np.pi / 2)
_DISC = regular_polygon(24, 0.0)
# Back to front: red octagon with a white rim (stop), red-rimmed white triangle pointing down
# (yield), white disc with a red rim (speed limit).
SIGN_ICONS: dict[SignKind, tuple[SignLayer, ...]] = {
    SignKind.STOP: (SignLayer(_OCTAGON, 1.0, SIGN_WHITE), SignLayer(_OCTAGON, 0.88, SIGN_RED)),
    SignKind.YIELD: (
        SignLayer(_TRIANGLE_DOWN, 1.0, SIGN_RED),
        SignLayer(_TRIANGLE_DOWN, 0.55, SIGN_WHITE),
    ),
    SignKind.SPEED_LIMIT: (SignLayer(_DISC, 1.0, SIGN_RED), SignLayer(_DISC, 0.78, SIGN_WHITE)),
}


def sign_label(sign: Sign) -> tuple[str, RGB] | None:
    """Text printed on a sign face and its colour, if it has any."""
    if sign.kind == SignKind.STOP:
        return "STOP", SIGN_WHITE
    if sign.kind == SignKind.SPEED_LIMIT and sign.value is not None:
        return f"{sign.value:.0f}", SIGN_TEXT
    return None


# Sun behind-left of the ego and high: the rears of vehicles ahead (what CAM_FRONT mostly
# sees) are lit, their right sides are in shade, so box faces read as 3D.
SUN_DIRECTION = np.array([-0.45, 0.35, 0.82]) / np.linalg.norm([-0.45, 0.35, 0.82])
_LUMA = np.array([0.299, 0.587, 0.114])


def _brighter(rgb: RGB) -> RGB:
    r, g, b = (round(c + (255 - c) * 0.6) for c in rgb)
    return r, g, b


# BEV heading marks: a brighter shade of the category colour, so the front stands out.
HEADING_COLORS = {category: _brighter(rgb) for category, rgb in CATEGORY_COLORS.items()}


@dataclass(frozen=True)
class Lighting:
    """How a time of day and a weather change colours in a camera image (hashable: it keys
    the cached sky/ground backgrounds)."""

    tint: tuple[float, float, float]  # multiplies every lit colour
    ambient: float
    diffuse: float  # weight of the Lambert term from SUN_DIRECTION
    saturation: float  # 1 keeps colours, 0 is grey
    visibility: float  # metres for fog: weight of the true colour is exp(-depth / visibility)
    fog: RGB
    sky_zenith: RGB
    sky_horizon: RGB
    lamps: bool  # vehicle head- and tail-lights are on: drawn emissive, so cars show in the dark

    @property
    def foggy(self) -> bool:
        return math.isfinite(self.visibility)

    def shade(self, rgb: np.ndarray, normals: np.ndarray, depth: np.ndarray) -> np.ndarray:
        """Lit colours (..., 3) float of surfaces with base ``rgb``, ego-frame ``normals``
        and camera ``depth``."""
        lambert = np.maximum(normals @ SUN_DIRECTION, 0.0)
        lit = np.asarray(rgb) * ((self.ambient + self.diffuse * lambert)[..., None] * self.tint)
        grey = (lit @ _LUMA)[..., None]
        return self.fogged(grey + self.saturation * (lit - grey), depth)

    def emissive(self, rgb: np.ndarray, depth: np.ndarray) -> np.ndarray:
        """Lamps emit light: no tint or shading, and fog eats them at half the rate."""
        return self.fogged(np.asarray(rgb, dtype=float), np.asarray(depth) / 2)

    def fogged(self, rgb: np.ndarray, depth: np.ndarray) -> np.ndarray:
        """Blend towards the fog colour by exp(-depth / visibility); clamp to 0..255."""
        if self.foggy:
            weight = np.exp(np.asarray(depth) / -self.visibility)[..., None]
            rgb = rgb * weight + np.multiply(self.fog, 1.0 - weight)
        return np.minimum(np.maximum(rgb, 0.0), 255.0)


class _Time(NamedTuple):
    tint: tuple[float, float, float]
    sun: float  # strength of the directional light
    zenith: RGB
    horizon: RGB
    lamps: bool  # drivers have their lights on


class _Weather(NamedTuple):
    tint: tuple[float, float, float]
    ambient: float
    diffuse: float
    saturation: float
    visibility: float
    sky_grey: RGB  # clouds: the sky is pulled towards this grey ...
    sky_grey_weight: float  # ... by this much


_TIMES: dict[TimeOfDay, _Time] = {
    TimeOfDay.DAY: _Time((1.0, 1.0, 1.0), 1.0, (70, 130, 210), (180, 208, 236), False),
    TimeOfDay.DUSK: _Time((0.88, 0.70, 0.60), 0.6, (48, 52, 104), (236, 140, 84), True),
    TimeOfDay.NIGHT: _Time((0.30, 0.34, 0.52), 0.12, (4, 6, 18), (20, 26, 50), True),
}
_FOG_GREY: RGB = (190, 192, 195)
_WEATHERS: dict[Weather, _Weather] = {
    Weather.CLEAR: _Weather((1.0, 1.0, 1.0), 0.55, 0.55, 1.0, np.inf, (0, 0, 0), 0.0),
    Weather.OVERCAST: _Weather((0.86, 0.86, 0.88), 0.80, 0.12, 0.80, np.inf, (165, 170, 176), 0.75),
    Weather.RAIN: _Weather((0.70, 0.74, 0.82), 0.75, 0.08, 0.55, np.inf, (110, 116, 128), 0.85),
    Weather.FOG: _Weather((0.92, 0.92, 0.92), 0.85, 0.05, 0.70, 40.0, _FOG_GREY, 1.0),
}


def lighting(environment: Environment) -> Lighting:
    """The (cached) lighting of a scene's time of day and weather."""
    return _lighting(environment.time_of_day, environment.weather)


@cache
def _lighting(time_of_day: TimeOfDay, weather: Weather) -> Lighting:
    hour, air = _TIMES[time_of_day], _WEATHERS[weather]
    darkness = np.asarray(hour.tint)  # clouds and fog are as dark as the time of day
    tint = darkness * air.tint

    def sky(rgb: RGB) -> RGB:
        grey = np.asarray(air.sky_grey) * darkness
        return _rgb(np.asarray(rgb) * (1 - air.sky_grey_weight) + grey * air.sky_grey_weight)

    return Lighting(
        tint=(float(tint[0]), float(tint[1]), float(tint[2])),
        ambient=air.ambient,
        diffuse=air.diffuse * hour.sun,
        saturation=air.saturation,
        visibility=air.visibility,
        fog=_rgb(np.asarray(_FOG_GREY) * darkness),
        sky_zenith=sky(hour.zenith),
        sky_horizon=sky(hour.horizon),
        lamps=hour.lamps,
    )


def _rgb(values: np.ndarray) -> RGB:
    r, g, b = (round(float(v)) for v in np.clip(values, 0, 255))
    return (r, g, b)
