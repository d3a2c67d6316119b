"""The 15 sensor corruptions of DriveBench, for robustness benchmarks on rendered camera images.

Each corruption is a pure function ``(image, severity, rng) -> image`` on (H, W, 3) uint8 RGB,
severity 1 (mild) to 5 (strong), registered in ``CORRUPTIONS``; ``corrupt`` seeds it from
(seed, name, severity), so a benchmark item is reproducible from its spec alone. Effects are
built from vectorised NumPy/OpenCV passes (a few ms on 640×360), sized relative to the image so
they look alike at any resolution.

Two failures of the camera are kept apart although both show (almost) nothing:
``frame_lost`` is the frame missing from the stream, which the consumer fills with an exactly
black image (DriveBench's black frame); ``camera_crash`` is a dead imager whose link still
delivers frames, black apart from the sensor's read noise. Both are all-or-nothing, so their
severity changes nothing.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from statistics import NormalDist
from typing import TypeVar

import cv2
import numpy as np

__all__ = [
    "CORRUPTIONS",
    "Corruption",
    "corrupt",
    "corruption_grid",
    "parse_corruption",
    "text_only",
]

T = TypeVar("T")
CorruptionFn = Callable[[np.ndarray, int, np.random.Generator], np.ndarray]

SEVERITIES = range(1, 6)
DEFAULT_SEVERITY = 3
REFERENCE_AREA = 640 * 360  # counts of drops and flakes are per this many pixels
HORIZON = 0.5  # height fraction of the horizon in a level camera, as roadthink's rigs are

# Per-severity parameters, severity 1 first.
BRIGHTNESS = (0.1, 0.2, 0.3, 0.4, 0.5)  # added to HSV value, fraction of full scale
LOW_LIGHT_GAMMA = (1.4, 1.8, 2.2, 2.6, 3.0)
LOW_LIGHT_GAIN = (0.85, 0.7, 0.55, 0.45, 0.35)
LOW_LIGHT_NOISE = (2.0, 3.0, 4.0, 5.0, 6.0)  # sigma of the sensor noise, 8-bit levels
SATURATION = (1.5, 2.0, 2.7, 3.6, 5.0)  # HSV saturation factor
FOG_DENSITY = (0.03, 0.06, 0.1, 0.15, 0.22)  # extinction per unit of the row depth proxy
FOG_NEAR = 0.1  # keeps the depth proxy finite at the horizon (sky depth = 1 / FOG_NEAR)
FOG_COLOR = (200, 204, 210)
RAIN_STREAKS = (250, 500, 900, 1400, 2000)
RAIN_LENGTH = (0.04, 0.05, 0.06, 0.07, 0.08)  # of image height
RAIN_OPACITY = (0.45, 0.5, 0.55, 0.6, 0.65)
RAIN_DARKEN = (0.92, 0.87, 0.82, 0.77, 0.72)  # gain of the overcast scene behind the rain
RAIN_BLUR = 3  # Gaussian kernel size: rain softens the scene slightly
RAIN_COLOR = (205, 210, 220)
RAIN_TILT = math.radians(20)  # largest slant of the streaks from vertical (wind)
SNOW_FLAKES = (500, 900, 1400, 2000, 2800)
SNOW_WHITEN = (0.1, 0.17, 0.24, 0.31, 0.38)
SNOW_COLOR = 230  # grey the scene fades to
# (downscale, share of the flakes, flake ellipse (w, h) in that layer's pixels): far to near
SNOW_LAYERS = ((1, 0.6, (2, 2)), (2, 0.3, (3, 4)), (4, 0.1, (3, 4)))
SPLASH_DROPS = (2, 3, 5, 8, 12)
SPLASH_RADIUS = (0.08, 0.1, 0.12, 0.14, 0.16)  # mean drop radius, of image height
SPLASH_OPACITY = 0.85
SPLASH_REFRACTION = 1.5  # a drop shows the scene around it inverted, this many radii across
OBSTACLE_RADIUS = (0.15, 0.21, 0.28, 0.36, 0.45)  # of image height
OBSTACLE_COLOR = (28, 24, 20)  # mud / leaf, out of focus
OBSTACLE_OPACITY = 0.93
MOTION_LENGTH = (0.012, 0.02, 0.032, 0.048, 0.07)  # kernel length, of image width
MOTION_ANGLE = math.radians(30)  # largest tilt of the blur from horizontal
ZOOM = (0.04, 0.08, 0.13, 0.19, 0.26)  # largest extra magnification averaged
ZOOM_MAX_LEVELS = 5  # at most 2**5 copies averaged
BIT_ERROR_RATE = (0.002, 0.005, 0.01, 0.02, 0.04)  # fraction of bytes with a flipped bit
BLOCK_ERROR_RATE = (0.0, 0.003, 0.006, 0.012, 0.024)  # fraction of macroblocks lost
MACROBLOCK = 16
COLOR_LEVELS = (32, 16, 8, 5, 3)  # levels per channel
JPEG_QUALITY = (40, 28, 20, 14, 9)
CODEC_DOWNSCALE = (1.0, 1.25, 1.5, 2.0, 2.5)  # encoded resolution = image / this
CHROMA_BLOCK = 8
CRASH_NOISE = 2.0  # read-noise sigma of a dead imager, 8-bit levels
FIELD_DOWNSCALE = 8  # smooth fields (fog, drops, blobs) are computed at 1/8 size and enlarged

# Normal quantiles of the 256 byte values: Gaussian noise from one random byte per sample
_NORMAL_QUANTILES = np.array([NormalDist().inv_cdf((i + 0.5) / 256) for i in range(256)], np.float32)

# corruption_grid layout
GRID_GAP = 4  # pixels around and between cells
BANNER_HEIGHT = 18  # label strip above each tile
GRID_BACKGROUND = (24, 24, 24)
LABEL_COLOR = (255, 255, 255)
LABEL_FONT = cv2.FONT_HERSHEY_SIMPLEX
LABEL_SCALE = 0.45


@dataclass(frozen=True)
class Corruption:
    """A registered corruption: ``apply(image, severity, rng)`` and a one-line description."""

    apply: CorruptionFn
    description: str
    approximate: bool = False  # emulates in pixels what DriveBench does elsewhere (in a codec)


# ---------------------------------------------------------------------------- helpers


def _check_severity(severity: object) -> None:
    if isinstance(severity, bool) or not isinstance(severity, int | np.integer) or severity not in SEVERITIES:
        raise ValueError(f"severity must be an integer in 1..5, got {severity!r}")


def _level(table: tuple[T, ...], severity: int) -> T:
    """The entry of ``severity`` in a per-severity table, checked so that a direct call cannot
    silently index from the end."""
    _check_severity(severity)
    return table[severity - 1]


def _count(per_reference: int, image: np.ndarray) -> int:
    """A count given per 640×360 scaled to ``image``'s area: same density at any resolution."""
    return max(1, round(per_reference * image.shape[0] * image.shape[1] / REFERENCE_AREA))


@lru_cache(maxsize=32)
def _solid(height: int, width: int, color: tuple[int, int, int] | int) -> np.ndarray:
    """A read-only (height, width, 3) image of ``color``, cached: benchmarks corrupt many frames
    of one size, and a fresh fill costs as much as the blend it feeds (NumPy broadcasts a
    3-tuple into uint8 ~20× slower than the per-channel fills merged here)."""
    channels = (color,) * 3 if isinstance(color, int) else color
    solid = cv2.merge([np.full((height, width), c, np.uint8) for c in channels])
    solid.setflags(write=False)
    return solid


def _towards(image: np.ndarray, color: tuple[int, int, int] | int, alpha: float | np.ndarray) -> np.ndarray:
    """``image`` blended towards a constant colour by ``alpha``: a scalar or an (H, W) float32 map."""
    target = _solid(image.shape[0], image.shape[1], color)
    if isinstance(alpha, np.ndarray):
        return cv2.blendLinear(image, target, 1 - alpha, alpha)
    return cv2.addWeighted(image, 1 - alpha, target, alpha, 0)


def _gaussian_noise(rng: np.random.Generator, shape: tuple[int, ...], sigma: float) -> np.ndarray:
    """Gaussian noise rounded to int8 levels, at the cost of uniform bytes (several times cheaper
    than ``standard_normal`` and a quarter of float32's memory): each byte picks the normal
    quantile of its 1/256 bin; tails beyond 2.7 sigma are cut."""
    table = np.clip(np.round(_NORMAL_QUANTILES * sigma), -128, 127).astype(np.int8)
    return cv2.LUT(rng.integers(0, 256, shape, dtype=np.uint8), table)


def _enlarge(field: np.ndarray, image: np.ndarray) -> np.ndarray:
    return cv2.resize(field, (image.shape[1], image.shape[0]), interpolation=cv2.INTER_LINEAR)


def _field_grid(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cell centres, x (1, gw) and y (gh, 1) in full-size pixels, of the 1/FIELD_DOWNSCALE grid
    on which smooth fields are computed: they vary slowly, so enlarging them loses nothing."""
    h, w = image.shape[:2]
    gh, gw = max(1, h // FIELD_DOWNSCALE), max(1, w // FIELD_DOWNSCALE)
    xs = (np.arange(gw, dtype=np.float32) + 0.5) * (w / gw)
    ys = (np.arange(gh, dtype=np.float32) + 0.5) * (h / gh)
    return xs[None, :], ys[:, None]


def _domes(image: np.ndarray, centers: np.ndarray, radii: np.ndarray) -> np.ndarray:
    """One elliptic dome 1 - r² per (centre, (rx, ry)), r the normalised distance, 0 outside:
    (count, gh, gw) on the field grid of ``image``; positions in full-size pixels."""
    xs, ys = _field_grid(image)
    dx = (xs - centers[:, 0, None, None]) / radii[:, 0, None, None]
    dy = (ys - centers[:, 1, None, None]) / radii[:, 1, None, None]
    return np.clip(1 - dx * dx - dy * dy, 0, 1).astype(np.float32)


def _hsv_scaled(image: np.ndarray, saturation: np.ndarray, value: np.ndarray) -> np.ndarray:
    """``image`` with its HSV saturation and value mapped by 256-entry tables, hue kept."""
    table = np.stack([np.arange(256), saturation, value], axis=-1)
    hsv = cv2.LUT(cv2.cvtColor(image, cv2.COLOR_RGB2HSV), np.clip(table, 0, 255).round().astype(np.uint8)[None])
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)


def _line_blur(image: np.ndarray, length: float, angle: float) -> np.ndarray:
    """Box blur ``length`` pixels long along ``angle``: the mean of 2**k copies shifted along
    the line, built by k shift-and-average doublings, since a filter2D with a long kernel costs
    ~10 ms. Each doubling averages the image with itself shifted by twice the previous shift."""
    levels = max(1, math.ceil(math.log2(max(length, 2))))
    unit = length / 2**levels
    shifts = [(round(unit * 2**j * math.cos(angle)), round(unit * 2**j * math.sin(angle))) for j in range(levels)]
    pad_x, pad_y = sum(abs(sx) for sx, _ in shifts), sum(abs(sy) for _, sy in shifts)
    out = cv2.copyMakeBorder(image, pad_y, pad_y, pad_x, pad_x, cv2.BORDER_REFLECT_101)
    origin_x = origin_y = 0  # padded position of out[0, 0]: each doubling crops the margin it has no source for
    for sx, sy in shifts:
        h, w = out.shape[:2]
        ox, oy = max(-sx, 0), max(-sy, 0)
        rows, cols = h - abs(sy), w - abs(sx)
        first = out[oy : oy + rows, ox : ox + cols]
        second = out[oy + sy : oy + sy + rows, ox + sx : ox + sx + cols]
        out = cv2.addWeighted(first, 0.5, second, 0.5, 0)
        origin_x, origin_y = origin_x + ox, origin_y + oy
    # out[i] averages padded[i + origin + t] for taps t from 0 to the sum of the shifts: centre them
    top = pad_y - sum(sy for _, sy in shifts) // 2 - origin_y
    left = pad_x - sum(sx for sx, _ in shifts) // 2 - origin_x
    return out[top : top + image.shape[0], left : left + image.shape[1]].copy()


def _zoomed(image: np.ndarray, scale: float) -> np.ndarray:
    """The centre 1/``scale`` of ``image`` enlarged back to its size."""
    h, w = image.shape[:2]
    ch, cw = max(1, round(h / scale)), max(1, round(w / scale))
    top, left = (h - ch) // 2, (w - cw) // 2
    return cv2.resize(image[top : top + ch, left : left + cw], (w, h), interpolation=cv2.INTER_LINEAR)


# ----------------------------------------------------------------------- corruptions


def brightness(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Over-exposure as in ImageNet-C: HSV value raised by a constant, so darks lift and brights
    clip while hue and saturation stay."""
    levels = np.arange(256)
    return _hsv_scaled(image, levels, levels + 255 * _level(BRIGHTNESS, severity))


def low_light(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Dusk / night exposure: a gamma curve and gain crush the shadows first, then the sensor
    noise that an underexposed frame shows on top."""
    levels = np.arange(256) / 255
    curve = 255 * _level(LOW_LIGHT_GAIN, severity) * levels ** _level(LOW_LIGHT_GAMMA, severity)
    dark = cv2.LUT(image, np.round(curve).astype(np.uint8))
    return cv2.add(dark, _gaussian_noise(rng, image.shape, _level(LOW_LIGHT_NOISE, severity)), dtype=cv2.CV_8U)


def saturate(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Oversaturated colour (a mis-tuned ISP): HSV saturation multiplied, clipping at full."""
    levels = np.arange(256)
    return _hsv_scaled(image, levels * _level(SATURATION, severity), levels)


def fog(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Koschmieder fog: each pixel blends towards the airlight by 1 - exp(-density × depth). The
    depth of a row of flat ground is ∝ 1 / (its height below the horizon), so fog thickens
    towards the horizon and the sky gets the most; a coarse random field makes it patchy."""
    xs, ys = _field_grid(image)
    depth = 1 / (np.maximum(ys / image.shape[0] - HORIZON, 0) + FOG_NEAR)
    patches = cv2.resize(rng.random((4, 7), dtype=np.float32), (xs.size, ys.size), interpolation=cv2.INTER_CUBIC)
    density = _level(FOG_DENSITY, severity) * (0.7 + 0.6 * patches)
    return _towards(image, FOG_COLOR, _enlarge(1 - np.exp(-density * depth), image))


def rain(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Rain: drops of random brightness smeared into streaks slanted by a random wind angle (a
    line blur of a scatter of points), over a slightly blurred, darkened (overcast) scene."""
    h, w = image.shape[:2]
    count = _count(_level(RAIN_STREAKS, severity), image)
    length = _level(RAIN_LENGTH, severity) * h
    drops = np.zeros((h, w), np.uint8)
    drops.flat[rng.integers(0, drops.size, count)] = rng.integers(100, 256, count, dtype=np.uint8)
    angle = math.pi / 2 + rng.uniform(-RAIN_TILT, RAIN_TILT)
    streaks = cv2.GaussianBlur(_line_blur(drops, length, angle), (3, 3), 0)
    gain = _level(RAIN_OPACITY, severity) * length / 255  # the blur spread each drop over its streak
    alpha = np.minimum(streaks.astype(np.float32) * gain, 1)
    scene = cv2.GaussianBlur(image, (RAIN_BLUR, RAIN_BLUR), 0)
    return _towards(cv2.convertScaleAbs(scene, alpha=_level(RAIN_DARKEN, severity)), RAIN_COLOR, alpha)


def snow(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Snowfall: the scene whitened (snow haze) under flakes in three depth layers, small and
    sharp far away, large and soft near the lens; drawn at reduced size per layer and enlarged."""
    h, w = image.shape[:2]
    total = _count(_level(SNOW_FLAKES, severity), image)
    flakes = np.zeros((h, w), np.float32)
    for downscale, share, size in SNOW_LAYERS:
        layer = np.zeros((max(1, h // downscale), max(1, w // downscale)), np.float32)
        count = max(1, round(total * share))
        layer.flat[rng.integers(0, layer.size, count)] = rng.uniform(0.5, 1.0, count)
        layer = cv2.dilate(layer, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, size))
        np.maximum(flakes, _enlarge(cv2.GaussianBlur(layer, (3, 3), 0), image), out=flakes)
    return _towards(_towards(image, SNOW_COLOR, _level(SNOW_WHITEN, severity)), 255, flakes)


def water_splash(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Water drops on the lens: a few large, slightly elliptic, translucent domes. Each acts as a
    small lens, showing the scene around it defocused, inverted through its centre (sky at the
    bottom) and lifted by scattered light; all at field-grid size, then enlarged."""
    h, w = image.shape[:2]
    count = _level(SPLASH_DROPS, severity)
    centers = rng.uniform((0.05 * w, 0.05 * h), (0.95 * w, 0.95 * h), (count, 2))
    radius = _level(SPLASH_RADIUS, severity) * h * rng.uniform(0.8, 1.2, count)
    aspect = rng.uniform(0.8, 1.25, count)
    domes = _domes(image, centers, np.stack([radius * aspect, radius / aspect], axis=1))
    xs, ys = _field_grid(image)
    center = centers[domes.argmax(axis=0)]  # (gh, gw, 2): the drop each cell looks through
    source_x = (center[..., 0] - SPLASH_REFRACTION * (xs - center[..., 0])) * (xs.size / w) - 0.5
    source_y = (center[..., 1] - SPLASH_REFRACTION * (ys - center[..., 1])) * (ys.size / h) - 0.5
    small = cv2.GaussianBlur(cv2.resize(image, (xs.size, ys.size), interpolation=cv2.INTER_AREA), (3, 3), 0)
    seen = cv2.remap(
        small, source_x.astype(np.float32), source_y.astype(np.float32), cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT
    )
    inside = cv2.convertScaleAbs(_enlarge(seen, image), alpha=0.9, beta=30)
    alpha = _enlarge(SPLASH_OPACITY * np.sqrt(domes.max(axis=0)), image)
    return cv2.blendLinear(image, inside, 1 - alpha, alpha)


def lens_obstacle(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Dirt or a leaf on the lens: one dark, irregular blob (overlapping ellipses), so close to
    the lens that it is far out of focus, hiding part of the central frame."""
    h, w = image.shape[:2]
    radius = _level(OBSTACLE_RADIUS, severity) * h
    center = rng.uniform((0.3 * w, 0.4 * h), (0.7 * w, 0.6 * h))
    parts = center + rng.normal(0, 0.2 * radius, (4, 2))
    blob = np.clip(4 * _domes(image, parts, radius * rng.uniform(0.6, 0.85, (4, 2))).max(axis=0), 0, 1)
    alpha = _enlarge(OBSTACLE_OPACITY * cv2.GaussianBlur(blob, (5, 5), 0), image)
    return _towards(image, OBSTACLE_COLOR, alpha)


def motion_blur(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Camera motion during the exposure (yaw in a turn, lateral shake): a line kernel at a
    random angle within ±30° of horizontal, its length growing with severity. ImageNet-C draws
    ±45°; the narrower range keeps the blur's strength from hinging on the angle drawn."""
    length = _level(MOTION_LENGTH, severity) * image.shape[1]
    return _line_blur(image, length, rng.uniform(-MOTION_ANGLE, MOTION_ANGLE))


def zoom_blur(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Fast forward motion: the mean of copies magnified about the centre from 1× to 1 + zoom.
    Doubling again: averaging the mean of n copies with itself magnified by step**n gives the
    mean of 2n, so 2**k copies take k resizes (k grows with how far the corners travel)."""
    zoom = 1 + _level(ZOOM, severity)
    travel = (zoom - 1) * math.hypot(*image.shape[:2]) / 2  # pixels a corner moves
    levels = min(ZOOM_MAX_LEVELS, max(1, math.ceil(math.log2(max(travel, 2)))))
    step = zoom ** (1 / (2**levels - 1))
    out = image
    for j in range(levels):
        out = cv2.addWeighted(out, 0.5, _zoomed(out, step ** (2**j)), 0.5, 0)
    return out


def bit_error(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Transmission bit errors: random bits flipped in random bytes (pixel channels), plus, from
    severity 2, whole 16×16 macroblocks decoded to a wrong flat colour, as a corrupted codec
    stream shows them."""
    out = image.copy()
    flat = out.reshape(-1)
    count = round(flat.size * _level(BIT_ERROR_RATE, severity))
    flat[rng.integers(0, flat.size, count)] ^= np.left_shift(1, rng.integers(0, 8, count)).astype(np.uint8)
    h, w = image.shape[:2]
    grid = (-(-h // MACROBLOCK), -(-w // MACROBLOCK))
    lost = np.zeros(grid, bool)
    lost.flat[rng.choice(lost.size, round(lost.size * _level(BLOCK_ERROR_RATE, severity)), replace=False)] = True
    if lost.any():
        size = (grid[1] * MACROBLOCK, grid[0] * MACROBLOCK)
        colors = cv2.resize(rng.integers(0, 256, (*grid, 3), dtype=np.uint8), size, interpolation=cv2.INTER_NEAREST)
        mask = cv2.resize(lost.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST)
        cv2.copyTo(colors[:h, :w], mask[:h, :w], out)
    return out


def color_quant(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Colour quantisation (low bit depth): each channel rounded to the nearest of a few evenly
    spaced levels, keeping black and white, so gradients turn into bands."""
    steps = _level(COLOR_LEVELS, severity) - 1
    table = np.round(np.round(np.arange(256) * steps / 255) * 255 / steps).astype(np.uint8)
    return cv2.LUT(image, table)


def video_compression(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Approximates low-bitrate H.265 artefacts with JPEG: encoded at reduced resolution (lost
    detail, blocks larger than 8 px, smoothed like H.265's deblocking) and low quality, then
    the chroma averaged over 8×8 blocks (colour bleeding across edges)."""
    h, w = image.shape[:2]
    downscale = _level(CODEC_DOWNSCALE, severity)
    small = cv2.resize(image, (max(1, round(w / downscale)), max(1, round(h / downscale))))
    quality = [cv2.IMWRITE_JPEG_QUALITY, _level(JPEG_QUALITY, severity)]
    _, data = cv2.imencode(".jpg", cv2.cvtColor(small, cv2.COLOR_RGB2BGR), quality)
    ycc = cv2.cvtColor(_enlarge(cv2.imdecode(data, cv2.IMREAD_COLOR), image), cv2.COLOR_BGR2YCrCb)
    blocks = (max(1, w // CHROMA_BLOCK), max(1, h // CHROMA_BLOCK))
    chroma = cv2.resize(cv2.resize(ycc, blocks, interpolation=cv2.INTER_AREA), (w, h), interpolation=cv2.INTER_NEAREST)
    return cv2.cvtColor(cv2.merge([cv2.extractChannel(ycc, 0), *cv2.split(chroma)[1:]]), cv2.COLOR_YCrCb2RGB)


def camera_crash(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """A dead imager on a live link: frames keep coming but hold only read noise around black
    (DriveBench shows black). All-or-nothing: severity is checked but changes nothing."""
    _check_severity(severity)
    return cv2.add(np.zeros_like(image), _gaussian_noise(rng, image.shape, CRASH_NOISE), dtype=cv2.CV_8U)


def frame_lost(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """The frame never arrived and the consumer substitutes an exactly black one, as in
    DriveBench. All-or-nothing: severity is checked but changes nothing."""
    _check_severity(severity)
    return np.zeros_like(image)


CORRUPTIONS: dict[str, Corruption] = {
    "brightness": Corruption(brightness, "over-exposure: HSV value raised"),
    "low_light": Corruption(low_light, "dusk exposure: gamma darkening plus sensor noise"),
    "saturate": Corruption(saturate, "oversaturated colour: HSV saturation multiplied"),
    "fog": Corruption(fog, "patchy fog thickening towards the horizon (Koschmieder blend to grey)"),
    "rain": Corruption(rain, "slanted rain streaks over a blurred, darkened scene"),
    "snow": Corruption(snow, "snow flakes in three depth layers over a whitened scene"),
    "water_splash": Corruption(water_splash, "a few large translucent water drops on the lens"),
    "lens_obstacle": Corruption(lens_obstacle, "a dark out-of-focus blob (dirt, leaf) on the lens"),
    "motion_blur": Corruption(motion_blur, "directional blur at a random angle within 30 degrees of horizontal"),
    "zoom_blur": Corruption(zoom_blur, "radial blur: mean of copies magnified about the centre"),
    "bit_error": Corruption(
        bit_error, "flipped bits in random pixels plus lost macroblocks; approximates codec bit errors", True
    ),
    "color_quant": Corruption(color_quant, "colour quantisation: few levels per channel"),
    "video_compression": Corruption(
        video_compression, "approximates H.265 artefacts: low-quality, low-resolution JPEG, 8x8 chroma blocks", True
    ),
    "camera_crash": Corruption(camera_crash, "dead imager: black frame with read noise only"),
    "frame_lost": Corruption(frame_lost, "missing frame: exactly black image"),
}


# ---------------------------------------------------------------------------- API


def _checked(name: str, severity: object) -> tuple[str, int]:
    if name not in CORRUPTIONS:
        raise ValueError(f"unknown corruption {name!r}; known: {', '.join(CORRUPTIONS)}")
    _check_severity(severity)
    return name, int(severity)


def parse_corruption(spec: str) -> tuple[str, int]:
    """``"fog"`` -> ("fog", 3), ``"fog:5"`` -> ("fog", 5); a one-line ``ValueError`` names the
    known corruptions or the valid severities when ``spec`` is wrong."""
    name, colon, level = spec.strip().partition(":")
    try:
        severity: object = int(level) if colon else DEFAULT_SEVERITY
    except ValueError:
        severity = level  # not a number: the check below reports it
    return _checked(name, severity)


def corrupt(image: np.ndarray, name: str, severity: int, seed: int) -> np.ndarray:
    """Corruption ``name`` at ``severity`` of an (H, W, 3) uint8 RGB image, a new array. The
    random stream is seeded from (seed, CRC-32 of the name, severity), stable across processes
    (unlike ``hash``), so the same arguments always give the same pixels."""
    _checked(name, severity)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 RGB image, got shape {image.shape} and dtype {image.dtype}")
    rng = np.random.default_rng(np.random.SeedSequence([seed, zlib.crc32(name.encode()), severity]))
    return CORRUPTIONS[name].apply(image, severity, rng)


def text_only(image: np.ndarray) -> np.ndarray:
    """The text-only setting: a black image of ``image``'s size, so the model gets no visual cue."""
    return np.zeros_like(image)


def corruption_grid(image: np.ndarray, seed: int = 0, severities: tuple[int, ...] = (1, 3, 5)) -> np.ndarray:
    """Every corruption at a glance: a row per corruption, the clean image then one column per
    severity, each tile at ``image``'s size under a banner with its spec (``fog:3``; ``~`` marks
    an approximation). Cells are BANNER_HEIGHT + H tall and W wide, GRID_GAP apart and around."""
    h, w = image.shape[:2]
    columns = 1 + len(severities)
    cell_h, cell_w = BANNER_HEIGHT + h + GRID_GAP, w + GRID_GAP
    sheet = np.empty((GRID_GAP + len(CORRUPTIONS) * cell_h, GRID_GAP + columns * cell_w, 3), np.uint8)
    sheet[:] = GRID_BACKGROUND
    for row, (name, corruption) in enumerate(CORRUPTIONS.items()):
        mark = " ~" if corruption.approximate else ""
        tiles = [("clean", image)] + [(f"{name}:{s}{mark}", corrupt(image, name, s, seed)) for s in severities]
        for column, (label, tile) in enumerate(tiles):
            top, left = GRID_GAP + row * cell_h, GRID_GAP + column * cell_w
            sheet[top + BANNER_HEIGHT : top + BANNER_HEIGHT + h, left : left + w] = tile
            baseline = top + BANNER_HEIGHT - 5
            cv2.putText(sheet, label, (left + 3, baseline), LABEL_FONT, LABEL_SCALE, LABEL_COLOR, 1, cv2.LINE_AA)
    return sheet
