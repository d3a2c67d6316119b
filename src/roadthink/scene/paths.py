"""Arc-length parameterised polylines: the geometry every lane, route and walk is made of."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np


@dataclass(frozen=True)
class Path:
    """A polyline with cumulative arc length; poses beyond either end extrapolate linearly,
    so that tracks rolled back into the past or ahead past a lane end stay continuous."""

    points: np.ndarray  # (M, 2)
    s: np.ndarray  # (M,) cumulative length, s[0] == 0

    @classmethod
    def from_points(cls, points: np.ndarray | list) -> Path:
        pts = np.asarray(points, dtype=float)
        seg = _segment_lengths(pts)
        repeated = seg <= 1e-6
        if repeated.any():  # drop repeated points
            pts = pts[np.concatenate([[True], ~repeated])]
            seg = _segment_lengths(pts)
        s = np.zeros(len(pts))
        np.cumsum(seg, out=s[1:])
        return cls(pts, s)

    @classmethod
    def ray(cls, start: np.ndarray, heading: float, length: float) -> Path:
        """The straight path of ``length`` metres from ``start`` along ``heading``."""
        end = (start[0] + length * math.cos(heading), start[1] + length * math.sin(heading))
        return cls(np.array([start, end], dtype=float), np.array([0.0, length]))

    @property
    def length(self) -> float:
        return float(self.s[-1])

    @cached_property
    def segments(self) -> np.ndarray:
        """(5, M - 1) per segment: start x, y, unit direction x, y, and heading. Headings are
        unwrapped: they run on continuously along the path, so that headings sampled from
        it can be interpolated and differentiated."""
        d = self.points[1:] - self.points[:-1]
        heading = np.arctan2(d[:, 1], d[:, 0])
        if len(heading) > 1:  # undo jumps across +-pi, as whole turns
            heading[1:] -= 2 * np.pi * np.cumsum(np.round((heading[1:] - heading[:-1]) / (2 * np.pi)))
        return np.concatenate([self.points[:-1].T, (d / (self.s[1:] - self.s[:-1])[:, None]).T, heading[None]])

    @cached_property
    def reversed(self) -> Path:
        """The same polyline run the other way (made once for a route many actors share)."""
        return Path(self.points[::-1], self.s[-1] - self.s[::-1])

    def pose(self, s: np.ndarray | float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """x, y, heading (unwrapped, see ``segments``) at arc length(s) ``s``."""
        s = np.asarray(s, dtype=float)
        idx = np.searchsorted(self.s[1:-1], s, side="right")  # inner vertices only: the end segments extrapolate
        return _along(self.segments, idx, s - self.s[idx])

    def project(self, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Arc length and signed lateral offset (left positive) of points ``xy`` (N, 2)."""
        xy = np.atleast_2d(np.asarray(xy, dtype=float))
        x0, y0, ux, uy, _ = self.segments
        rx, ry = xy[:, :1] - x0, xy[:, 1:] - y0  # (N, M - 1) from each segment's start
        t = np.minimum(np.maximum(rx * ux + ry * uy, 0.0), self.s[1:] - self.s[:-1])  # metres along it
        ex, ey = rx - t * ux, ry - t * uy  # from the closest point on it
        dist2 = ex * ex + ey * ey
        best = dist2.argmin(1)
        rows = np.arange(len(xy))
        cross = ux[best] * ry[rows, best] - uy[best] * rx[rows, best]
        return self.s[best] + t[rows, best], np.sign(cross) * np.sqrt(dist2[rows, best])

    def curvature(self, s: np.ndarray, window: float = 2.0) -> np.ndarray:
        """Unsigned curvature (1/m) from the heading change over ``window`` metres."""
        _, _, h0 = self.pose(np.asarray(s) - window / 2)
        _, _, h1 = self.pose(np.asarray(s) + window / 2)
        return np.abs(wrap_angle(h1 - h0)) / window

    def offset(self, lateral: float) -> Path:
        """A parallel path ``lateral`` metres to the left (negative: right)."""
        _, _, heading = self.pose(self.s)
        normal = np.stack([-np.sin(heading), np.cos(heading)], -1)
        return Path.from_points(self.points + lateral * normal)


def poses(paths: list[Path], s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """x, y, heading (each (len(paths), M)) of every path at arc lengths ``s``, (M,) or one
    row per path, ascending: what ``Path.pose`` gives, from one search over all the paths'
    vertices."""
    sizes = np.array([len(p.s) for p in paths])
    first = np.cumsum(sizes) - sizes
    rows = np.arange(len(paths))
    # path k's arc lengths are shifted by k bands, so that one sorted array holds every path
    # and the queries of all paths, one band after another, are sorted too
    band = 2 * np.abs(s).max() + max(p.length for p in paths) + 1.0
    knots = np.concatenate([p.s for p in paths])
    idx = _count_at_most(knots + np.repeat(rows * band, sizes), (s + (rows * band)[:, None]).ravel()) - 1
    idx = np.minimum(np.maximum(idx.reshape(len(paths), -1), first[:, None]), (first + sizes - 2)[:, None])
    segments = np.concatenate([p.segments for p in paths], 1)
    return _along(segments, idx - rows[:, None], s - np.take(knots, idx))  # each path has a segment fewer


def _count_at_most(keys: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """How many ``keys`` are <= each query, both sorted: a search per key, as there are
    far fewer keys (path vertices) than queries (grid points)."""
    first_at_least = np.searchsorted(queries, keys, side="left")
    return np.cumsum(np.bincount(first_at_least, minlength=len(queries) + 1)[:-1])


def _along(segments: np.ndarray, idx: np.ndarray, ds: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """x, y, heading ``ds`` metres along segments ``idx`` from their start."""
    x0, y0, ux, uy, heading = np.take(segments, idx, 1)
    return x0 + ux * ds, y0 + uy * ds, heading


def _segment_lengths(points: np.ndarray) -> np.ndarray:
    """Length of each segment of the polyline ``points``."""
    d = points[1:] - points[:-1]
    return np.hypot(d[:, 0], d[:, 1])


def wrap_angle(angle: np.ndarray | float) -> np.ndarray:
    """Angles wrapped into [-pi, pi)."""
    return (np.asarray(angle) + np.pi) % (2 * np.pi) - np.pi


def bezier(p0: np.ndarray, control: np.ndarray, p1: np.ndarray, n: int = 10) -> np.ndarray:
    """Quadratic Bezier points from p0 to p1: the turn connectors through a junction."""
    t = np.linspace(0.0, 1.0, n)[:, None]
    return (1 - t) ** 2 * p0 + 2 * (1 - t) * t * control + t**2 * p1


def smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)
