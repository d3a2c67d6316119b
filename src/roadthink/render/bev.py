"""Bird's-eye view: an ego-centred, heading-up raster of the map, signals and agents.

Pixel (u, v) = (cx - y / res, cy - x / res) for an ego-frame point (x, y): ahead is up and
the ego's left is the image's left. Shapes are drawn with OpenCV at sub-pixel precision,
grouped into one call per colour wherever shapes cannot overlap.
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

from roadthink.render import style
from roadthink.render.geometry import (
    DOUBLE_YELLOW_GAP,
    STOP_LINE_WIDTH,
    map_geometry,
    map_parts,
    split_by_owner,
)
from roadthink.render.projection import box_corners_batch
from roadthink.render.raster import SHIFT, centered_text, fixed
from roadthink.scene.types import BEVSpec, Scene, Sign, TrafficLight

LIGHT_RADIUS = 0.6  # metres, drawn no smaller than 2 px
SIGN_RADIUS = 0.9  # metres, drawn no smaller than 4 px
MIN_TEXT_RADIUS = 7.0  # pixels: below this a sign's text is unreadable, so it is left out


def render_bev(scene: Scene, spec: BEVSpec | None = None) -> np.ndarray:
    """(H, W, 3) uint8 RGB bird's-eye view of ``scene``; ``spec`` defaults to ``scene.bev``."""
    spec = spec or scene.bev
    image = _background(spec.width, spec.height).copy()
    view = _View(scene, spec)
    geometry = map_geometry(scene.map)
    lights, signs = scene.map.lights, scene.map.signs
    areas, stripes, white, yellow, stops, light_px, sign_px = map_parts(
        [
            geometry.area_points,
            geometry.stripes,
            geometry.white,
            geometry.yellow_lines(max(DOUBLE_YELLOW_GAP, 2.5 * spec.resolution)),
            geometry.stop_lines,
            np.asarray([light.position[:2] for light in lights]).reshape(-1, 2),
            np.asarray([sign.position[:2] for sign in signs]).reshape(-1, 2),
        ],
        view.world,
    )
    kinds = geometry.area_kinds
    polygons = split_by_owner(areas, geometry.area_owner, len(kinds))
    for kind, polygon in zip(kinds, polygons, strict=True):
        # One call per polygon: OpenCV fills a list of polygons even-odd, so overlapping
        # road pieces at a junction would cancel out.
        cv2.fillPoly(image, [polygon], style.AREA_COLORS[kind], cv2.LINE_8, SHIFT)
    _fill(image, stripes, style.WHITE_PAINT)
    _lines(image, white, style.WHITE_PAINT, 1)
    _lines(image, yellow, style.YELLOW_PAINT, 1)
    _lines(image, stops, style.WHITE_PAINT, max(1, round(STOP_LINE_WIDTH / spec.resolution)))
    for light, center in zip(lights, light_px, strict=True):
        _draw_light(image, light, center, view)
    for sign, center in zip(signs, sign_px, strict=True):
        _draw_sign(image, sign, center, view)
    _draw_agents(image, scene, view)
    return image


@lru_cache(maxsize=8)
def _background(width: int, height: int) -> np.ndarray:
    """Off-road fill, made once per size: filling (H, W, 3) from a colour costs far more
    than copying it."""
    image = np.empty((height, width, 3), np.uint8)
    image[:] = style.OFFROAD
    image.flags.writeable = False
    return image


class _View:
    """World or ego points -> fixed-point BEV pixels for OpenCV."""

    def __init__(self, scene: Scene, spec: BEVSpec) -> None:
        self.scene = scene
        self.resolution = spec.resolution
        self.center = np.array([spec.width / 2, spec.height / 2])

    def ego(self, points: np.ndarray) -> np.ndarray:
        """(..., 2) ego-frame metres -> (..., 2) int32 fixed-point pixels."""
        return fixed(self.center - np.asarray(points)[..., ::-1] / self.resolution)

    def world(self, points: np.ndarray) -> np.ndarray:
        """(..., 2) world-frame metres -> (..., 2) int32 fixed-point pixels."""
        return self.ego(self.scene.world_to_ego(points))

    def length(self, metres: float, minimum_px: float) -> float:
        """A length in pixels, never below ``minimum_px`` so small things stay seen."""
        return max(metres / self.resolution, minimum_px)


def _fill(image: np.ndarray, polygons: np.ndarray, color: style.RGB) -> None:
    """Fill many non-overlapping polygons in one call."""
    if len(polygons):
        cv2.fillPoly(image, polygons, color, cv2.LINE_8, SHIFT)


def _lines(image: np.ndarray, segments: np.ndarray, color: style.RGB, thickness: int) -> None:
    """Draw many (N, 2, 2) fixed-point segments in one call, skipping those wholly off one
    side of the image (most of a map is); not anti-aliased, which costs 5x for paint that
    is a pixel or two wide."""
    limit = np.array(image.shape[1::-1]) << SHIFT
    start, end = segments[:, 0], segments[:, 1]
    off = ((start < 0) & (end < 0)) | ((start > limit) & (end > limit))
    segments = segments[~(off[:, 0] | off[:, 1])]
    if len(segments):
        cv2.polylines(image, segments, False, color, thickness, cv2.LINE_8, SHIFT)


def _draw_light(image: np.ndarray, light: TrafficLight, center: np.ndarray, view: _View) -> None:
    """A disc in the colour of the light's state."""
    middle, radius = center.tolist(), int(fixed(view.length(LIGHT_RADIUS, 2.0)))
    cv2.circle(image, middle, radius, style.LAMP_COLORS[light.state], -1, cv2.LINE_AA, SHIFT)
    cv2.circle(image, middle, radius, style.OUTLINE, 1, cv2.LINE_AA, SHIFT)


def _draw_sign(image: np.ndarray, sign: Sign, center: np.ndarray, view: _View) -> None:
    """Upright icons in ``style.SIGN_ICONS``, with their text when there is room for it."""
    radius = view.length(SIGN_RADIUS, 4.0)
    for layer in style.SIGN_ICONS[sign.kind]:
        polygon = center + fixed(layer.shape * radius * layer.scale)
        cv2.fillConvexPoly(image, polygon, layer.color, cv2.LINE_AA, SHIFT)
    label = style.sign_label(sign)
    inner = radius * style.SIGN_ICONS[sign.kind][-1].scale
    if label is not None and inner >= MIN_TEXT_RADIUS:
        text_center = (center / (1 << SHIFT)).tolist()
        centered_text(image, label[0], text_center, inner, label[1])


def _draw_agents(image: np.ndarray, scene: Scene, view: _View) -> None:
    """Agents as rotated rectangles in category colours with a bright triangle at the front,
    then the ego (white, heading up) at the centre."""
    agents = scene.agents
    fills = [style.CATEGORY_COLORS[a.category] for a in agents] + [style.EGO_FILL]
    marks = [style.HEADING_COLORS[a.category] for a in agents] + [style.EGO_MARK]
    centers = np.asarray([a.box.center for a in agents] + [(0.0, 0.0, 0.0)])
    sizes = np.asarray([a.box.size for a in agents] + [scene.ego.size])
    yaws = np.asarray([a.box.yaw for a in agents] + [0.0])
    corners = box_corners_batch(centers, sizes, yaws)[:, :4, :2]
    footprints = view.ego(corners)
    triangles = view.ego(_heading_marks(corners))
    for footprint, triangle, fill, mark in zip(footprints, triangles, fills, marks, strict=True):
        # One call each: agents may touch, and fillPoly on several polygons is even-odd.
        cv2.fillConvexPoly(image, footprint, fill, cv2.LINE_AA, SHIFT)
        cv2.fillConvexPoly(image, triangle, mark, cv2.LINE_AA, SHIFT)
    cv2.polylines(image, footprints, True, style.OUTLINE, 1, cv2.LINE_8, SHIFT)


def _heading_marks(footprints: np.ndarray) -> np.ndarray:
    """(B, 3, 2) triangles pointing forward: apex at the middle of the front edge, base across
    the box behind it. Footprints are (B, 4, 2): front-left, rear-left, rear-right, front-right."""
    front_left, rear_left, _, front_right = np.moveaxis(footprints, 1, 0)
    length = np.linalg.norm(front_left - rear_left, axis=1, keepdims=True)
    width = np.linalg.norm(front_left - front_right, axis=1, keepdims=True)
    forward = (front_left - rear_left) / np.maximum(length, 1e-9)
    base = np.minimum(length * 0.45, width * 0.9) * forward
    inset = (front_left - front_right) * 0.1
    apex = (front_left + front_right) / 2
    return np.stack([apex, front_left - base - inset, front_right - base + inset], axis=1)
