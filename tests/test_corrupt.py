"""Sensor corruptions: contract (shape, purity, determinism), severity order, and that each
effect does what its name says."""

from __future__ import annotations

import itertools
import zlib

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from roadthink.render.corrupt import (
    BANNER_HEIGHT,
    CORRUPTIONS,
    GRID_GAP,
    corrupt,
    corruption_grid,
    parse_corruption,
    text_only,
)

SEVERITIES = (1, 2, 3, 4, 5)
# Corruptions that draw nothing from the random stream: the seed cannot change them.
DETERMINISTIC = {"brightness", "saturate", "zoom_blur", "color_quant", "video_compression", "frame_lost"}
CHANGED = 8  # a pixel counts as changed when a channel moved by more than this


def scene() -> np.ndarray:
    """360×640: colour gradients (every saturation and value), flat patches and thin vertical
    stripes (horizontal detail)."""
    h, w = 360, 640
    y, x = np.mgrid[0:h, 0:w]
    image = np.stack([x * 255 // (w - 1), y * 255 // (h - 1), np.full_like(x, 96)], axis=-1).astype(np.uint8)
    image[40:120, 60:200] = (220, 40, 40)
    image[200:300, 300:420] = (30, 160, 60)
    image[100:180, 480:600] = (250, 250, 250)
    image[250:330, 40:140] = (10, 10, 10)
    image[:, [440, 443, 449, 456, 466, 479, 495, 514]] = 0
    return image


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    return scene()


@pytest.fixture(scope="module")
def outputs(image: np.ndarray) -> dict[tuple[str, int], np.ndarray]:
    return {(name, s): corrupt(image, name, s, seed=0) for name in CORRUPTIONS for s in SEVERITIES}


def mad(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b).mean())


def changed_share(a: np.ndarray, b: np.ndarray) -> float:
    return float((np.abs(a.astype(np.int16) - b).max(axis=2) > CHANGED).mean())


# Strength of a corruption against the clean image, and how much it may dip from one severity
# to the next. Lens blobs and drops land in random places, so how much they change the pixels
# depends on what they cover: their strength is the area they change.
STRENGTH = {"lens_obstacle": (changed_share, 0.01), "water_splash": (changed_share, 0.01)}
DEFAULT_STRENGTH = (mad, 0.5)


def horizontal_energy(image: np.ndarray) -> float:
    return float(np.square(np.diff(image.astype(np.float32), axis=1)).mean())


def gradient_energy(image: np.ndarray) -> float:
    return horizontal_energy(image) + horizontal_energy(image.transpose(1, 0, 2))


def saturation(image: np.ndarray) -> float:
    return float(cv2.cvtColor(image, cv2.COLOR_RGB2HSV)[..., 1].mean())


# ------------------------------------------------------------------------- contract


def test_registry_lists_the_fifteen_drivebench_corruptions() -> None:
    assert list(CORRUPTIONS) == [
        "brightness",
        "low_light",
        "saturate",
        "fog",
        "rain",
        "snow",
        "water_splash",
        "lens_obstacle",
        "motion_blur",
        "zoom_blur",
        "bit_error",
        "color_quant",
        "video_compression",
        "camera_crash",
        "frame_lost",
    ]
    for corruption in CORRUPTIONS.values():
        assert corruption.description and "\n" not in corruption.description
    assert CORRUPTIONS["video_compression"].approximate
    assert "H.265" in CORRUPTIONS["video_compression"].description
    assert not CORRUPTIONS["fog"].approximate


@pytest.mark.parametrize("name", CORRUPTIONS)
def test_shape_dtype_kept_and_input_untouched(name: str, image: np.ndarray) -> None:
    original = image.copy()
    for severity in SEVERITIES:
        out = corrupt(image, name, severity, seed=7)
        assert out.shape == image.shape and out.dtype == np.uint8
        assert out is not image and not np.shares_memory(out, image)
    np.testing.assert_array_equal(image, original)


@pytest.mark.parametrize("name", CORRUPTIONS)
def test_deterministic_per_seed(name: str, image: np.ndarray, outputs: dict) -> None:
    for severity in (1, 5):
        again = corrupt(image, name, severity, seed=0)
        np.testing.assert_array_equal(again, outputs[name, severity])
        differs = not np.array_equal(corrupt(image, name, severity, seed=1), again)
        assert differs == (name not in DETERMINISTIC)


def test_seeded_from_seed_name_crc_and_severity(image: np.ndarray) -> None:
    """Pins the stream to values stable across processes (Python's ``hash`` is salted)."""
    for name in ("rain", "camera_crash"):
        rng = np.random.default_rng(np.random.SeedSequence([11, zlib.crc32(name.encode()), 4]))
        np.testing.assert_array_equal(corrupt(image, name, 4, seed=11), CORRUPTIONS[name].apply(image, 4, rng))


@pytest.mark.parametrize("name", CORRUPTIONS)
def test_severity_is_monotone(name: str, image: np.ndarray, outputs: dict) -> None:
    measure, tolerance = STRENGTH.get(name, DEFAULT_STRENGTH)
    for seed in (0, 1, 2):
        strengths = [
            measure(outputs[name, s] if seed == 0 else corrupt(image, name, s, seed), image) for s in SEVERITIES
        ]
        assert all(b >= a - tolerance for a, b in itertools.pairwise(strengths)), strengths
        if name not in {"camera_crash", "frame_lost"}:  # all-or-nothing failures
            assert strengths[-1] > strengths[0] + 2 * tolerance, strengths


def test_views_corrupt_like_their_copies(image: np.ndarray, outputs: dict) -> None:
    flipped = np.ascontiguousarray(image[:, :, ::-1])
    view = flipped[:, :, ::-1]  # negative strides, the same pixels as image
    for name in CORRUPTIONS:
        np.testing.assert_array_equal(corrupt(view, name, 1, seed=0), outputs[name, 1])


@settings(max_examples=25, deadline=None)
@given(h=st.integers(1, 48), w=st.integers(1, 48), seed=st.integers(0, 2**32 - 1))
def test_any_image_size(h: int, w: int, seed: int) -> None:
    image = cv2.resize(scene(), (w, h), interpolation=cv2.INTER_AREA).reshape(h, w, 3)
    for name in CORRUPTIONS:
        assert corrupt(image, name, 5, seed).shape == (h, w, 3)


# ----------------------------------------------------------------------- the effects


def test_brightness_raises_and_low_light_lowers_intensity(image: np.ndarray, outputs: dict) -> None:
    bright = [outputs["brightness", s].mean() for s in SEVERITIES]
    dark = [outputs["low_light", s].mean() for s in SEVERITIES]
    assert image.mean() < bright[0] and np.all(np.diff(bright) > 0)
    assert image.mean() > dark[0] and np.all(np.diff(dark) < 0)


def test_saturate_raises_hsv_saturation(image: np.ndarray, outputs: dict) -> None:
    values = [saturation(outputs["saturate", s]) for s in SEVERITIES]
    assert saturation(image) < values[0] and np.all(np.diff(values) > 0)


def test_color_quant_reduces_distinct_values_per_channel(image: np.ndarray, outputs: dict) -> None:
    def distinct(img: np.ndarray) -> int:
        return max(len(np.unique(img[..., c])) for c in range(3))

    counts = [distinct(outputs["color_quant", s]) for s in SEVERITIES]
    assert distinct(image) == 256
    assert counts == sorted(counts, reverse=True) and counts[-1] <= 3


def test_motion_blur_reduces_horizontal_detail(image: np.ndarray, outputs: dict) -> None:
    energies = [horizontal_energy(outputs["motion_blur", s]) for s in SEVERITIES]
    assert energies[0] < 0.8 * horizontal_energy(image) and energies[-1] < 0.5 * energies[0]


def test_fog_brightens_lowers_contrast_and_thickens_towards_the_horizon(image: np.ndarray, outputs: dict) -> None:
    for s in SEVERITIES:
        foggy = outputs["fog", s]
        assert foggy.mean() > image.mean()
        assert gradient_energy(foggy) < gradient_energy(image)
    foggy = outputs["fog", 3]
    assert mad(foggy[:90], image[:90]) > mad(foggy[-90:], image[-90:])


def test_zoom_blur_spares_the_centre(image: np.ndarray, outputs: dict) -> None:
    zoomed = outputs["zoom_blur", 5]
    centre, border = (slice(150, 210), slice(280, 360)), (slice(None), slice(0, 80))
    assert mad(zoomed[centre], image[centre]) < 0.5 * mad(zoomed[border], image[border])


def test_weather_and_lens_effects_move_intensity_the_right_way(image: np.ndarray, outputs: dict) -> None:
    assert outputs["snow", 3].mean() > image.mean()  # whitened, white flakes
    assert outputs["lens_obstacle", 3].mean() < image.mean()  # dark blob
    assert outputs["rain", 3].std() < image.std()  # overcast, blurred, veiled


def test_bit_error_flips_a_growing_share_of_bytes(image: np.ndarray, outputs: dict) -> None:
    shares = [float((outputs["bit_error", s] != image).mean()) for s in SEVERITIES]
    assert 0 < shares[0] < 0.01 and np.all(np.diff(shares) > 0)


def test_frame_lost_text_only_black_and_camera_crash_only_noise(image: np.ndarray, outputs: dict) -> None:
    for s in SEVERITIES:
        assert not outputs["frame_lost", s].any()
        crash = outputs["camera_crash", s]
        assert crash.any() and crash.mean() < 2 and crash.max() <= 8
    blank = text_only(image)
    assert blank.shape == image.shape and blank.dtype == np.uint8 and not blank.any()


# ------------------------------------------------------------------------------ API


def test_parse_corruption() -> None:
    assert parse_corruption("fog") == ("fog", 3)
    assert parse_corruption("fog:5") == ("fog", 5)
    assert parse_corruption(" motion_blur:1 ") == ("motion_blur", 1)
    with pytest.raises(ValueError, match="unknown corruption 'fgo'") as unknown:
        parse_corruption("fgo")
    message = str(unknown.value)
    assert "\n" not in message and all(name in message for name in CORRUPTIONS)
    for spec in ("fog:9", "fog:0", "fog:", "fog:x", "fog:2.5"):
        with pytest.raises(ValueError, match=r"1\.\.5"):
            parse_corruption(spec)


def test_corrupt_rejects_bad_arguments(image: np.ndarray) -> None:
    with pytest.raises(ValueError, match="known: brightness"):
        corrupt(image, "hail", 3, 0)
    for severity in (0, 6, True, 2.0):
        with pytest.raises(ValueError, match=r"1\.\.5"):
            corrupt(image, "fog", severity, 0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="uint8"):
        corrupt(image.astype(np.float32), "fog", 3, 0)
    with pytest.raises(ValueError, match="severity"):
        CORRUPTIONS["frame_lost"].apply(image, 0, np.random.default_rng(0))


def test_corruption_grid_tiles_every_corruption_and_severity(image: np.ndarray) -> None:
    severities = (1, 3, 5)
    grid = corruption_grid(image, seed=4, severities=severities)
    h, w = image.shape[:2]
    cell_h, cell_w = BANNER_HEIGHT + h + GRID_GAP, w + GRID_GAP
    assert grid.shape == (GRID_GAP + len(CORRUPTIONS) * cell_h, GRID_GAP + (1 + len(severities)) * cell_w, 3)
    for row, name in enumerate(CORRUPTIONS):
        top = GRID_GAP + row * cell_h
        expected = [image] + [corrupt(image, name, s, seed=4) for s in severities]
        for column, tile in enumerate(expected):
            left = GRID_GAP + column * cell_w
            np.testing.assert_array_equal(grid[top + BANNER_HEIGHT : top + BANNER_HEIGHT + h, left : left + w], tile)
            banner = grid[top : top + BANNER_HEIGHT, left : left + w]
            assert (banner > 128).any()  # the label's ink
