"""The flat geometry of a map (road areas and paint) in the world frame, shared by all views.

Markings are cut into short pieces (at most ``PIECE`` metres, breaking at every polyline
vertex) so that a dashed line is a subset of pieces, a camera can drop the few pieces that
reach behind it instead of clipping long strips, and every piece of every marking is built in
one vectorised pass. The result depends only on the map, so it is cached by the map's content:
the BEV and every camera of a scene (and every scene on the same layout) share one copy.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from roadthink.render.style import AREA_ORDER
from roadthink.scene.types import AreaKind, MapData, MarkingKind

PIECE = 3.0  # metres; also the dash length: dashes are 3 m on, 6 m off
DASH_PERIOD = 3  # pieces per dash period
STRIPE = 0.5  # zebra stripe width (and gap), metres
MARKING_WIDTH = 0.15
DOUBLE_YELLOW_GAP = 0.3  # centre to centre of the two lines
STOP_LINE_WIDTH = 0.4
PAINT_GROUPS = ("white", "yellow", "crosswalk", "stop_line")  # order of ``ground_group``

_KINDS = tuple(MarkingKind)


@dataclass(frozen=True)
class MapGeometry:
    """World-frame geometry; arrays are read-only because they are shared through the cache."""

    area_points: np.ndarray  # (M, 2) vertices of all area polygons, in drawing order
    area_owner: np.ndarray  # (M,) polygon of each vertex
    area_kinds: tuple[AreaKind, ...]  # kind of each polygon: sidewalks, shoulders, roads
    white: np.ndarray  # (N, 2, 2) segments of white lines (dashes already cut)
    yellow: np.ndarray  # (N, 2, 2) single yellow lines
    double_yellow: np.ndarray  # (N, 2, 2) centre lines of double yellows
    stripes: np.ndarray  # (N, 4, 2) zebra stripes
    stop_lines: np.ndarray  # (N, 2, 2)
    ground_quads: np.ndarray  # (2, 4, Q) all paint as real-width quads, coordinate first
    ground_group: np.ndarray  # (Q,) index into PAINT_GROUPS

    def yellow_lines(self, double_gap: float) -> np.ndarray:
        """Single yellows plus both lines of every double yellow, ``double_gap`` apart."""
        half = double_gap / 2
        sides = [offset_segments(self.double_yellow, side) for side in (half, -half)]
        return np.concatenate([self.yellow, *sides])


def map_geometry(map_data: MapData) -> MapGeometry:
    key = (
        tuple((a.kind, tuple(a.polygon)) for a in map_data.areas),
        tuple((m.kind, tuple(m.points)) for m in map_data.markings if len(m.points) >= 2),
        tuple(tuple(c.polygon) for c in map_data.crosswalks),
        tuple(s.points for s in map_data.stop_lines),
    )
    return _map_geometry(key)


@lru_cache(maxsize=16)
def _map_geometry(key: tuple) -> MapGeometry:
    areas, markings, crosswalks, stop_lines = key
    segments, owner, stretch = _pieces([np.asarray(points, dtype=float) for _, points in markings])
    kind = np.asarray([_KINDS.index(k) for k, _ in markings], dtype=int)[owner]
    is_kind = {k: kind == _KINDS.index(k) for k in _KINDS}
    dashes = is_kind[MarkingKind.DASHED_WHITE] & (stretch % DASH_PERIOD == 0)
    white = segments[is_kind[MarkingKind.SOLID_WHITE] | dashes]
    yellow = segments[is_kind[MarkingKind.SOLID_YELLOW]]
    double_yellow = segments[is_kind[MarkingKind.DOUBLE_YELLOW]]
    stripes = zebra_stripes([np.asarray(c, dtype=float) for c in crosswalks])
    stops = np.asarray(stop_lines, dtype=float).reshape(-1, 2, 2)
    half_gap = DOUBLE_YELLOW_GAP / 2
    yellow_all = [
        yellow,
        offset_segments(double_yellow, half_gap),
        offset_segments(double_yellow, -half_gap),
    ]
    quads = [
        segment_quads(white, MARKING_WIDTH),
        segment_quads(np.concatenate(yellow_all), MARKING_WIDTH),
        stripes,
        segment_quads(stops, STOP_LINE_WIDTH),
    ]
    polygons = sorted((p for p in areas if len(p[1]) >= 3), key=lambda p: AREA_ORDER.index(p[0]))
    area_points = np.asarray([xy for _, polygon in polygons for xy in polygon], dtype=float)
    return MapGeometry(
        area_points=_readonly(area_points.reshape(-1, 2)),
        area_owner=_readonly(np.repeat(np.arange(len(polygons)), [len(p) for _, p in polygons])),
        area_kinds=tuple(kind for kind, _ in polygons),
        white=_readonly(white),
        yellow=_readonly(yellow),
        double_yellow=_readonly(double_yellow),
        stripes=_readonly(stripes),
        stop_lines=_readonly(stops),
        ground_quads=_readonly(np.ascontiguousarray(np.concatenate(quads).transpose(2, 1, 0))),
        ground_group=_readonly(np.repeat(np.arange(len(quads)), [len(q) for q in quads])),
    )


def _readonly(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False
    return array


def _pieces(lines: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cut polylines into pieces at every vertex and every multiple of ``PIECE`` of arc length.

    Returns segments (N, 2, 2), the polyline each piece belongs to, and the index of the
    ``PIECE``-long stretch it lies in (what decides dashes). All polylines are laid end to
    end on one arc-length axis, one metre apart, so a single ``np.interp`` samples them all.
    """
    if not lines:
        return np.zeros((0, 2, 2)), np.zeros(0, int), np.zeros(0, int)
    points = np.concatenate(lines)
    counts = np.array([len(line) for line in lines])
    owner = np.repeat(np.arange(len(lines)), counts)
    step = np.linalg.norm(np.diff(points, axis=0), axis=1)
    step[owner[1:] != owner[:-1]] = 1.0  # the gap between two polylines on the shared axis
    arc = np.concatenate([[0.0], np.cumsum(step)])
    first = np.concatenate([[0], np.cumsum(counts)[:-1]])
    start, end = arc[first], arc[first + counts - 1]
    cuts = np.floor((end - start) / PIECE).astype(int) + 1
    cut_rank = np.arange(cuts.sum()) - np.repeat(np.cumsum(cuts) - cuts, cuts)
    cut_arc = np.repeat(start, cuts) + cut_rank * PIECE
    samples = np.unique(np.concatenate([arc, cut_arc]))
    sample_owner = np.searchsorted(start, samples, side="right") - 1
    xy = np.empty((len(samples), 2))
    xy[:, 0] = np.interp(samples, arc, points[:, 0])
    xy[:, 1] = np.interp(samples, arc, points[:, 1])
    keep = (sample_owner[1:] == sample_owner[:-1]) & (np.diff(samples) > 1e-6)
    piece_owner = sample_owner[:-1][keep]
    middle = (samples[:-1] + samples[1:])[keep] / 2 - start[piece_owner]
    segments = np.stack([xy[:-1][keep], xy[1:][keep]], axis=1)
    return segments, piece_owner, np.floor(middle / PIECE).astype(int)


def offset_segments(segments: np.ndarray, offset: float) -> np.ndarray:
    """Shift each segment sideways by ``offset`` metres (positive: to its left)."""
    return segments + offset * _left_normals(segments)[:, None, :]


def segment_quads(segments: np.ndarray, width: float) -> np.ndarray:
    """(N, 4, 2) rectangles of ``width`` around (N, 2, 2) segments, for painting on the ground."""
    half = _left_normals(segments) * (width / 2)
    a, b = segments[:, 0], segments[:, 1]
    return np.stack([a + half, b + half, b - half, a - half], axis=1)


def _left_normals(segments: np.ndarray) -> np.ndarray:
    direction = segments[:, 1] - segments[:, 0]
    length = np.linalg.norm(direction, axis=1, keepdims=True)
    direction = direction / np.where(length > 0, length, 1.0)
    return np.stack([-direction[:, 1], direction[:, 0]], axis=1)


def zebra_stripes(polygons: list[np.ndarray]) -> np.ndarray:
    """(N, 4, 2) zebra stripes of all crosswalk polygons.

    Each crosswalk is treated as its bounding rectangle along its longest edge: stripes run
    across that edge (the way traffic drives) and repeat along it (the way people walk),
    ``STRIPE`` on, ``STRIPE`` off, centred in the crosswalk.
    """
    stripes = [_stripes(polygon) for polygon in polygons if len(polygon) >= 3]
    return np.concatenate(stripes) if stripes else np.zeros((0, 4, 2))


def _stripes(polygon: np.ndarray) -> np.ndarray:
    edges = np.roll(polygon, -1, axis=0) - polygon
    lengths = np.linalg.norm(edges, axis=1)
    along = edges[np.argmax(lengths)] / lengths.max()
    across = np.array([-along[1], along[0]])
    u, v = polygon @ along, polygon @ across
    count = int((u.max() - u.min() + STRIPE) // (2 * STRIPE))
    low = (u.min() + u.max()) / 2 - (2 * count - 1) * STRIPE / 2 + 2 * STRIPE * np.arange(count)
    corners_u = np.stack([low, low + STRIPE, low + STRIPE, low], axis=1)
    corners_v = np.array([v.min(), v.min(), v.max(), v.max()])
    return corners_u[..., None] * along + corners_v[:, None] * across


def split_by_owner(points: np.ndarray, owner: np.ndarray, count: int) -> list[np.ndarray]:
    """Cut (M, ...) vertices listed polygon after polygon into the ``count`` polygons, given
    each vertex's polygon (non-decreasing); a polygon with no vertices left comes out empty."""
    ends = np.cumsum(np.bincount(owner, minlength=count)).tolist()
    return [points[start:end] for start, end in zip([0, *ends], ends, strict=False)]


def map_parts(
    parts: list[np.ndarray],
    transform: Callable[[np.ndarray], np.ndarray],
) -> list[np.ndarray]:
    """Apply a point ``transform`` ((M, 2) -> (M, K)) to many (..., 2) arrays in one call and
    hand back (..., K) arrays shaped like the inputs: one numpy pass for a whole view."""
    out = transform(np.concatenate([np.reshape(part, (-1, 2)) for part in parts]))
    ends = np.cumsum([np.size(part) // 2 for part in parts]).tolist()
    return [
        out[start:end].reshape(*np.shape(part)[:-1], out.shape[1])
        for part, start, end in zip(parts, [0, *ends], ends, strict=False)
    ]
