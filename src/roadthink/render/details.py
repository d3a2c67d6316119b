"""Category cues painted on the faces of an agent's box: windows, wheels, lamps, heads, stripes.

A box alone tells a viewer little beyond size and colour; these flat polygons let one tell a
car from a truck or a bus, a rider from a pedestrian, and which end of a vehicle is its front.
Each detail is a convex outline on one face, in that face's own coordinates (a, b) in [0, 1]:
``a`` runs along +x on the sides (rear to front) and along +y on the front and back, ``b`` from
the bottom up. Outlines become points of the unit box (-1..1 on each axis), so a renderer can
place every detail of every agent with one product against its box's corners in 3D, then
project: perspective is then right, which interpolating projected corners would not be.
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import pairwise
from typing import NamedTuple

import numpy as np

from roadthink.render import style
from roadthink.render.raster import regular_polygon
from roadthink.render.style import Lighting
from roadthink.scene.types import Category

VERTICES = 8  # every outline is padded to this many, so all details batch as one array
TOP, FRONT, BACK, LEFT, RIGHT = 1, 2, 3, 4, 5  # indices into projection.BOX_FACES
SIDES = (LEFT, RIGHT)
ENDS = (FRONT, BACK)
AROUND = (FRONT, BACK, LEFT, RIGHT)

# Per face: the unit-box point at (a, b) = (0, 0), and the unit-box steps for a and b.
_FACE_FRAMES = {
    TOP: ((-1, -1, 1), (2, 0, 0), (0, 2, 0)),
    FRONT: ((1, -1, -1), (0, 2, 0), (0, 0, 2)),
    BACK: ((-1, -1, -1), (0, 2, 0), (0, 0, 2)),
    LEFT: ((-1, 1, -1), (2, 0, 0), (0, 0, 2)),
    RIGHT: ((-1, -1, -1), (2, 0, 0), (0, 0, 2)),
}


class Paint(NamedTuple):
    """Base colour ``rgb + tint * agent colour``, lit like the face it sits on; a lamp is
    emissive instead while ``Lighting.lamps`` is on."""

    rgb: style.RGB = (0, 0, 0)
    tint: float = 0.0
    lamp: bool = False


class Details(NamedTuple):
    """Details as parallel arrays, in drawing order (later ones over earlier ones)."""

    face: np.ndarray  # (D,) index into BOX_FACES
    points: np.ndarray  # (D, VERTICES, 3) unit-box coordinates
    rgb: np.ndarray  # (D, 3) fixed part of the base colour
    tint: np.ndarray  # (D,) share of the agent's colour in the base colour
    lamp: np.ndarray  # (D,) bool


def rows(categories: list[Category]) -> tuple[np.ndarray, list[int]]:
    """Rows of ``TABLE`` for a list of agents' ``categories``, agent after agent, and how many
    each agent has."""
    ranges = [_ROWS[category] for category in categories]
    return np.concatenate([_NONE, *ranges]), [len(r) for r in ranges]  # _NONE: there may be no agents


def place(table_rows: np.ndarray, corners: np.ndarray) -> np.ndarray:
    """(N, VERTICES, 3) points of ``TABLE`` rows on boxes given by one set of (8, 3) corners
    per row (``Box3D.corners`` order) in any frame linear in the ego frame, e.g. homogeneous
    pixels. A box is affine in its unit coordinates, so each point is a fixed blend of the
    corners, exact in 3D."""
    return _CORNER_WEIGHTS[table_rows] @ corners


def colors(
    table_rows: np.ndarray,
    agent_rgb: np.ndarray,
    normals: np.ndarray,
    depth: np.ndarray,
    light: Lighting,
) -> np.ndarray:
    """(N, 3) lit colours of ``TABLE`` rows given their agents' colours, and the ego-frame
    normals and camera depths their faces were shaded with, so both get the same light and fog."""
    base = TABLE.rgb[table_rows] + TABLE.tint[table_rows, None] * agent_rgb
    lit = light.shade(base, normals, depth)
    if not light.lamps:
        return lit
    return np.where(TABLE.lamp[table_rows, None], light.emissive(base, depth), lit)


# --- outlines in face coordinates ------------------------------------------------------------


def rect(a0: float, a1: float, b0: float, b1: float) -> np.ndarray:
    return np.array([(a0, b0), (a1, b0), (a1, b1), (a0, b1)], dtype=float)


def quad(*corners: tuple[float, float]) -> np.ndarray:
    return np.array(corners, dtype=float)


_OCTAGON = regular_polygon(8, np.pi / 8)


def disc(a: float, b: float, radius_a: float, radius_b: float) -> np.ndarray:
    """An octagon: radii differ because face coordinates stretch with the box's size."""
    return (a, b) + _OCTAGON * (radius_a, radius_b)


def wheels(centers: Iterable[float], radius_a: float, radius_b: float) -> list[np.ndarray]:
    """Discs standing on the bottom edge of a side face."""
    return [disc(a, radius_b, radius_a, radius_b) for a in centers]


class _Layer(NamedTuple):
    faces: tuple[int, ...]
    outlines: list[np.ndarray]
    paint: Paint


def _compile(layers: list[_Layer]) -> Details:
    """Layers (drawn in order) -> arrays, each outline padded with its last vertex."""
    rows = [(face, outline, layer.paint) for layer in layers for face in layer.faces for outline in layer.outlines]
    points = np.empty((len(rows), VERTICES, 3))
    for row, (face, outline, _) in enumerate(rows):
        padded = np.concatenate([outline, np.repeat(outline[-1:], VERTICES - len(outline), axis=0)])
        origin, step_a, step_b = (np.asarray(v, dtype=float) for v in _FACE_FRAMES[face])
        points[row] = origin + padded[:, :1] * step_a + padded[:, 1:] * step_b
    return Details(
        face=np.array([face for face, _, _ in rows]),
        points=points,
        rgb=np.array([paint.rgb for *_, paint in rows], dtype=float).reshape(-1, 3),
        tint=np.array([paint.tint for *_, paint in rows], dtype=float),
        lamp=np.array([paint.lamp for *_, paint in rows], dtype=bool),
    )


# --- categories ------------------------------------------------------------------------------

GLASS = Paint(style.GLASS)
TYRE = Paint(style.TYRE)
HEADLIGHT = Paint(style.HEADLIGHT, lamp=True)
TAIL_LIGHT = Paint(style.TAIL_LIGHT, lamp=True)
DARKER = Paint(tint=0.5)
SAME = Paint(tint=1.0)


def _car() -> list[_Layer]:
    """A window band sloped at the pillars (the bonnet is longer than the boot), wheels, a grille
    and headlights at the front, a rear window and red lamps at the back."""
    return [
        _Layer(SIDES, [quad((0.17, 0.6), (0.76, 0.6), (0.67, 0.9), (0.25, 0.9))], GLASS),
        _Layer(SIDES, wheels((0.19, 0.8), 0.075, 0.2), TYRE),
        _Layer((FRONT,), [quad((0.08, 0.6), (0.92, 0.6), (0.85, 0.93), (0.15, 0.93))], GLASS),
        _Layer((FRONT,), [rect(0.3, 0.7, 0.28, 0.44)], Paint(style.GRILLE)),
        _Layer((FRONT,), [rect(0.05, 0.22, 0.38, 0.5), rect(0.78, 0.95, 0.38, 0.5)], HEADLIGHT),
        _Layer((BACK,), [quad((0.1, 0.62), (0.9, 0.62), (0.84, 0.9), (0.16, 0.9))], GLASS),
        _Layer((BACK,), [rect(0.04, 0.2, 0.44, 0.56), rect(0.8, 0.96, 0.44, 0.56)], TAIL_LIGHT),
    ]


def _truck() -> list[_Layer]:
    """A cab on the front quarter (door window, a seam before the plain cargo body), tandem
    rear wheels, a high windscreen; lamps low down, a door seam at the back."""
    return [
        _Layer(SIDES, [rect(0.8, 0.95, 0.55, 0.82)], GLASS),
        _Layer(SIDES, [rect(0.735, 0.75, 0.1, 1.0)], Paint(style.GRILLE)),
        _Layer(SIDES, [rect(0.0, 0.735, 0.0, 0.1)], Paint(style.UNDERSIDE)),
        _Layer(SIDES, wheels((0.13, 0.26, 0.86), 0.0625, 0.15), TYRE),
        _Layer((FRONT,), [rect(0.06, 0.94, 0.52, 0.84)], GLASS),
        _Layer((FRONT,), [rect(0.3, 0.7, 0.1, 0.42)], Paint(style.GRILLE)),
        _Layer((FRONT,), [rect(0.05, 0.18, 0.12, 0.2), rect(0.82, 0.95, 0.12, 0.2)], HEADLIGHT),
        _Layer((BACK,), [rect(0.495, 0.505, 0.2, 0.97)], Paint(style.GRILLE)),
        _Layer((BACK,), [rect(0.04, 0.14, 0.1, 0.17), rect(0.86, 0.96, 0.1, 0.17)], TAIL_LIGHT),
    ]


def _bus() -> list[_Layer]:
    """A row of side windows, a tall windscreen under a lit route sign, wheels."""
    windows = [rect(a0, a1 - 0.015, 0.5, 0.86) for a0, a1 in pairwise(np.linspace(0.06, 0.93, 7))]
    return [
        _Layer(SIDES, windows, GLASS),
        _Layer(SIDES, wheels((0.17, 0.8), 0.043, 0.156), TYRE),
        _Layer((FRONT,), [rect(0.06, 0.94, 0.36, 0.84)], GLASS),
        _Layer((FRONT,), [rect(0.2, 0.8, 0.87, 0.95)], Paint(style.ROUTE_SIGN, lamp=True)),
        _Layer((FRONT,), [rect(0.05, 0.17, 0.1, 0.17), rect(0.83, 0.95, 0.1, 0.17)], HEADLIGHT),
        _Layer((BACK,), [rect(0.12, 0.88, 0.62, 0.88)], GLASS),
        _Layer((BACK,), [rect(0.04, 0.12, 0.12, 0.25), rect(0.88, 0.96, 0.12, 0.25)], TAIL_LIGHT),
    ]


def _rider(head: Paint) -> list[_Layer]:
    """A dark torso and a head above the saddle, on every vertical face."""
    return [
        _Layer(SIDES, [rect(0.34, 0.62, 0.52, 0.84)], Paint(style.RIDER)),
        _Layer(SIDES, [disc(0.49, 0.915, 0.05, 0.07)], head),
        _Layer(ENDS, [rect(0.2, 0.8, 0.52, 0.84)], Paint(style.RIDER)),
        _Layer(ENDS, [disc(0.5, 0.915, 0.17, 0.07)], head),
    ]


def _motorcycle() -> list[_Layer]:
    """Solid wheels at both ends, a helmeted rider, one headlight and one tail light."""
    return [
        _Layer(SIDES, wheels((0.16, 0.84), 0.15, 0.22), TYRE),
        *_rider(Paint(style.HELMET)),
        _Layer((FRONT,), [rect(0.36, 0.64, 0.4, 0.48)], HEADLIGHT),
        _Layer((BACK,), [rect(0.38, 0.62, 0.4, 0.47)], TAIL_LIGHT),
    ]


def _bicycle() -> list[_Layer]:
    """Thin-rimmed wheels (a tyre ring around the frame colour), a bare-headed rider, a red
    rear reflector."""
    return [
        _Layer(SIDES, wheels((0.19, 0.81), 0.18, 0.2), TYRE),
        _Layer(SIDES, [disc(a, 0.2, 0.14, 0.155) for a in (0.19, 0.81)], SAME),
        *_rider(Paint(style.SKIN)),
        _Layer((BACK,), [rect(0.4, 0.6, 0.4, 0.46)], TAIL_LIGHT),
    ]


def _pedestrian() -> list[_Layer]:
    """Head on the top 15 %, the clothing (the box colour) below, darker legs under 45 %; the head
    spans the face so that two faces seen at once show one head, not two."""
    return [
        _Layer(AROUND, [rect(0.1, 0.9, 0.0, 0.45)], Paint(tint=0.45)),
        _Layer(AROUND, [rect(0.0, 1.0, 0.85, 1.0)], Paint(style.SKIN)),
    ]


def _cone() -> list[_Layer]:
    """A white reflective band and a black base around an orange body."""
    return [
        _Layer(AROUND, [rect(0.0, 1.0, 0.58, 0.78)], Paint(style.REFLECTIVE)),
        _Layer(AROUND, [rect(0.0, 1.0, 0.0, 0.08)], Paint(style.TYRE)),
    ]


def _barrier() -> list[_Layer]:
    """A red and white board with diagonal stripes on the long faces, on two legs."""
    slant, period = 0.12, 0.18
    stripes = [
        quad((a, 0.57), (a + period / 2, 0.57), (a + period / 2 + slant, 0.9), (a + slant, 0.9))
        for a in 0.045 + period * np.arange(5)
    ]
    return [
        _Layer(ENDS, [rect(0.02, 0.98, 0.55, 0.92)], Paint(style.STRIPE_WHITE)),
        _Layer(ENDS, stripes, Paint(style.STRIPE_RED)),
        _Layer(ENDS, [rect(0.12, 0.88, 0.0, 0.5)], Paint(style.UNDERSIDE)),
    ]


def _debris() -> list[_Layer]:
    """Irregular darker patches, so a heap does not read as a crate."""
    return [
        _Layer(
            (TOP,),
            [
                quad((0.1, 0.2), (0.35, 0.1), (0.55, 0.3), (0.5, 0.6), (0.25, 0.7), (0.08, 0.45)),
                quad((0.6, 0.55), (0.85, 0.5), (0.93, 0.8), (0.7, 0.92), (0.57, 0.78)),
            ],
            DARKER,
        ),
        _Layer(AROUND, [quad((0.1, 0.1), (0.4, 0.05), (0.5, 0.5), (0.3, 0.85), (0.12, 0.6))], DARKER),
        _Layer(AROUND, [quad((0.6, 0.3), (0.9, 0.2), (0.86, 0.7), (0.65, 0.8))], DARKER),
    ]


def _animal() -> list[_Layer]:
    """A darker head at the front end, legs (the shadow between them) below the body."""
    return [
        _Layer(SIDES, [rect(0.8, 1.0, 0.55, 1.0)], DARKER),
        _Layer(SIDES, [rect(0.2, 0.78, 0.0, 0.4)], Paint(style.UNDERSIDE)),
        _Layer((FRONT,), [rect(0.12, 0.88, 0.5, 1.0)], DARKER),
        _Layer(ENDS, [rect(0.3, 0.7, 0.0, 0.4)], Paint(style.UNDERSIDE)),
    ]


TEMPLATES: dict[Category, Details] = {
    Category.CAR: _compile(_car()),
    Category.TRUCK: _compile(_truck()),
    Category.BUS: _compile(_bus()),
    Category.MOTORCYCLE: _compile(_motorcycle()),
    Category.BICYCLE: _compile(_bicycle()),
    Category.PEDESTRIAN: _compile(_pedestrian()),
    Category.TRAFFIC_CONE: _compile(_cone()),
    Category.BARRIER: _compile(_barrier()),
    Category.DEBRIS: _compile(_debris()),
    Category.ANIMAL: _compile(_animal()),
}
# Every category's details in one table, so all agents' details are placed in one product.
TABLE = Details(*(np.concatenate(field) for field in zip(*TEMPLATES.values(), strict=True)))
_ENDS = np.cumsum([len(template.face) for template in TEMPLATES.values()]).tolist()
_ROWS = {
    category: np.arange(end - len(t.face), end) for (category, t), end in zip(TEMPLATES.items(), _ENDS, strict=True)
}
_NONE = np.empty(0, dtype=int)
# Unit-box point (x, y, z) = centre + x, y, z half axes; as blends of the 8 corners:
_FRAME_OF_CORNERS = np.array(
    [
        [0.5, 0, 0, 0, 0, 0, 0.5, 0],  # centre: bottom front-left and top rear-right
        [0.5, -0.5, 0, 0, 0, 0, 0, 0],  # half +x: front-left minus rear-left, halved
        [0.5, 0, 0, -0.5, 0, 0, 0, 0],  # half +y: front-left minus front-right, halved
        [-0.5, 0, 0, 0, 0.5, 0, 0, 0],  # half +z: top minus bottom, halved
    ]
)
_CORNER_WEIGHTS = np.concatenate([np.ones((*TABLE.points.shape[:2], 1)), TABLE.points], axis=2) @ _FRAME_OF_CORNERS
