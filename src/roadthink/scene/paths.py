"""Arc-length parameterised polylines: the geometry every lane, route and walk is made of."""

from __future__ import annotations

from dataclasses import dataclass

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
        seg = np.hypot(*np.diff(pts, axis=0).T)
        keep = np.concatenate([[True], seg > 1e-6])  # drop repeated points
        pts = pts[keep]
        seg = np.hypot(*np.diff(pts, axis=0).T)
        return cls(pts, np.concatenate([[0.0], np.cumsum(seg)]))

    @property
    def length(self) -> float:
        return float(self.s[-1])

    def pose(self, s: np.ndarray | float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """x, y, heading at arc length(s) ``s``."""
        s = np.asarray(s, dtype=float)
        idx = np.clip(np.searchsorted(self.s, s, side="right") - 1, 0, len(self.s) - 2)
        a, b = self.points[idx], self.points[idx + 1]
        seg_len = self.s[idx + 1] - self.s[idx]
        frac = (s - self.s[idx]) / seg_len
        xy = a + (b - a) * frac[..., None]
        heading = np.arctan2(b[..., 1] - a[..., 1], b[..., 0] - a[..., 0])
        return xy[..., 0], xy[..., 1], heading

    def project(self, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Arc length and signed lateral offset (left positive) of points ``xy`` (N, 2)."""
        xy = np.atleast_2d(np.asarray(xy, dtype=float))
        a, b = self.points[:-1], self.points[1:]
        ab = b - a
        seg_len2 = np.maximum((ab**2).sum(1), 1e-12)
        rel = xy[:, None, :] - a[None]
        t = np.clip((rel * ab[None]).sum(-1) / seg_len2, 0.0, 1.0)
        closest = a[None] + t[..., None] * ab[None]
        dist2 = ((xy[:, None, :] - closest) ** 2).sum(-1)
        best = dist2.argmin(1)
        rows = np.arange(len(xy))
        seg = ab[best]
        cross = seg[:, 0] * rel[rows, best, 1] - seg[:, 1] * rel[rows, best, 0]
        lateral = np.sign(cross) * np.sqrt(dist2[rows, best])
        along = self.s[best] + t[rows, best] * np.sqrt(seg_len2[best])
        return along, lateral

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
