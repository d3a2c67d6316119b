"""Pinhole camera images with exact 2D ground truth for every agent.

Order of drawing: a cached sky/ground background, the road surface and its paint (flat on
z = 0, transformed in bulk), per-pixel fog on the ground, then every 3D object far to near
(painter's algorithm). Objects are also drawn, with the very same fixed-point polygons, into
an int32 ID buffer; an agent's visible pixels are those where its ID survives, which is what
makes ``visible_fraction`` exact for what the image shows. An agent's category cues (windows,
wheels, lamps: see ``details``) are painted in its own step, into the colour image only and
only where the ID buffer holds that agent, so they change no ground truth.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

import cv2
import numpy as np

from roadthink.render import details, style
from roadthink.render.geometry import PAINT_GROUPS, map_geometry, split_by_owner
from roadthink.render.projection import (
    BOX_FACES,
    NEAR,
    Camera,
    beyond_frustum,
    box_corners_batch,
    box_faces_batch,
    clip_box_near,
    clip_near,
    clip_polygons_near,
    dehomogenise,
    front_facing,
)
from roadthink.render.raster import SHIFT, centered_text, fixed
from roadthink.render.style import Lighting, lighting
from roadthink.scene.types import (
    CameraAnnotation,
    CameraSpec,
    LightState,
    Scene,
    Sign,
    TrafficLight,
)

UP = np.array([0.0, 0.0, 1.0])
MAX_GROUND_DEPTH = 120.0  # metres; paint further away is under a pixel and left out
HOUSING_SIZE = (0.3, 0.4, 1.0)  # depth, width, height of a signal head
HEAD_FACE = HOUSING_SIZE[0] / 2 + 0.01  # the lamps' plane, just in front of the housing
LAMP_ORDER = (LightState.RED, LightState.YELLOW, LightState.GREEN)  # top to bottom
LAMP_OFFSETS = (0.3, 0.0, -0.3)  # height of each lamp above the housing centre
LAMP_RADIUS = 0.11
MIN_LAMP_PX = 1.6  # lamps keep this radius far away, so a state reads at ~40 m
POLE_WIDTH = 0.12
SIGN_RADIUS = 0.4
MIN_TEXT_PX = 9.0  # below this radius a sign's text is unreadable and left out
PROP_REACH = 0.6  # metres around a prop's centre that its parts may take up
MIN_DETAIL_PX = 6.0  # agents shorter than this on screen get no details: they would be specks
DETAIL_MARGIN = 2  # pixels around a detail that OpenCV's fill may stray into
STATIC_ID = -1  # ID-buffer value of poles, housings and plates: they occlude agents
_LAMP_STACK = np.outer(LAMP_OFFSETS, UP)  # (3, 3) lamp centres from the head's front face
_LAMP_RGB = np.array([style.LAMP_COLORS[lamp] for lamp in LAMP_ORDER], dtype=float)


@dataclass(frozen=True)
class CameraRender:
    image: np.ndarray  # (H, W, 3) uint8 RGB
    annotations: dict[str, CameraAnnotation]  # agent id -> ground truth, visible agents only


def render_camera(scene: Scene, name: str) -> CameraRender:
    """Render camera ``name`` of ``scene`` and the 2D ground truth of the agents it sees."""
    if name not in scene.cameras:
        raise KeyError(f"scene has no camera {name!r}; it has: {', '.join(scene.cameras)}")
    spec = scene.cameras[name]
    camera = Camera.from_spec(spec)
    light = lighting(scene.environment)
    background = _background(_spec_key(spec), light)
    image = background.image.copy()
    _draw_ground(image, scene, camera, light)
    if background.fog is not None:
        background.fog.apply(image)
    canvas = _Canvas(image, np.zeros(image.shape[:2], np.int32), camera)
    drawn = _draw_objects(canvas, scene, light)
    return CameraRender(image, _annotate(scene, canvas.ids, drawn))


# --- background: sky gradient, bare ground, ground fog --------------------------------------

_SpecKey = tuple[int, int, tuple[tuple[float, ...], ...], tuple[tuple[float, ...], ...]]


def _spec_key(spec: CameraSpec) -> _SpecKey:
    intrinsics = tuple(tuple(row) for row in spec.intrinsics)
    return spec.width, spec.height, intrinsics, tuple(tuple(row) for row in spec.extrinsics)


@dataclass(frozen=True)
class _GroundFog:
    """Per-pixel fog for the rows that show ground: a road is one polygon spanning many
    depths, so its fog cannot be one colour per polygon. Fixed point (8 fractional bits) in
    uint16: twice as fast as OpenCV's float blend, and 255 * 256 cannot overflow."""

    first_row: int
    weight: np.ndarray  # (h, W, 3) uint16: 256 * exp(-depth / visibility), rounded
    fog: np.ndarray  # (h, W, 3) uint16: fog colour * (256 - weight)

    def apply(self, image: np.ndarray) -> None:
        rows = image[self.first_row :]
        rows[:] = (rows * self.weight + self.fog) >> 8


@dataclass(frozen=True)
class _Background:
    image: np.ndarray  # read-only
    fog: _GroundFog | None


class _Rays(NamedTuple):
    """Where each pixel's ray goes: what sky and ground colours are painted from."""

    ground: np.ndarray  # (H, W) bool: the ray hits the ground plane
    depth: np.ndarray  # (H, W) camera depth of that hit (inf for sky)
    height: np.ndarray  # (H, W, 1) 0 at the horizon .. 1 high up, the sky gradient's axis


@lru_cache(maxsize=16)
def _rays(key: _SpecKey) -> _Rays:
    """Per-pixel rays of a camera, once per rig camera (the costly, lighting-free part)."""
    width, height, intrinsics, extrinsics = key
    spec = CameraSpec(width=width, height=height, intrinsics=intrinsics, extrinsics=extrinsics)
    camera = Camera.from_spec(spec)
    u, v = np.meshgrid(np.arange(width, dtype=float), np.arange(height, dtype=float))
    rays = np.stack([u, v, np.ones_like(u)], axis=-1) @ np.linalg.inv(camera.intrinsics).T
    rays_ego = rays @ camera.rotation  # R^T r for every pixel, at camera depth 1
    down = -rays_ego[..., 2]
    ground = down > 1e-6
    depth = np.where(ground, camera.position[2] / np.where(ground, down, 1.0), np.inf)
    elevation = np.clip(-down / np.linalg.norm(rays_ego, axis=-1), 0.0, 1.0)
    return _Rays(ground, depth, (np.clip(elevation / 0.45, 0.0, 1.0) ** 0.6)[..., None])


@lru_cache(maxsize=128)
def _background(key: _SpecKey, light: Lighting) -> _Background:
    """Sky gradient and bare ground for a camera and a lighting, reused by every scene with
    the same rig camera and environment (6 cameras x 12 environments fit)."""
    rays = _rays(key)
    horizon = np.asarray(light.sky_horizon, dtype=float)
    sky = horizon + rays.height * (np.asarray(light.sky_zenith) - horizon)
    earth = _ground_color(style.OFFROAD, light)  # its fog comes with the roads', per pixel
    image = np.where(rays.ground[..., None], earth, sky).round().astype(np.uint8)
    image.flags.writeable = False
    fog = _ground_fog(rays.ground, rays.depth, light) if light.foggy else None
    return _Background(image, fog)


def _ground_fog(ground: np.ndarray, depth: np.ndarray, light: Lighting) -> _GroundFog:
    rows = np.flatnonzero(ground.any(axis=1))
    first = int(rows[0]) if len(rows) else len(ground)
    weight = np.round(256 * np.exp(-depth[first:] / light.visibility)).astype(np.uint16)
    weight = np.repeat(weight[..., None], 3, axis=2)
    fog = (np.asarray(light.fog, dtype=np.uint16) * (256 - weight)).astype(np.uint16)
    return _GroundFog(first, weight, fog)


# --- ground: road surface and paint ---------------------------------------------------------


def _draw_ground(image: np.ndarray, scene: Scene, camera: Camera, light: Lighting) -> None:
    """Areas one polygon at a time (they overlap, and OpenCV fills a polygon list even-odd),
    clipped to the near plane; then each kind of paint as one polygon list. Everything goes
    from the world straight to homogeneous pixels through one ground homography."""
    geometry = map_geometry(scene.map)
    homography = camera.ground_homography(scene.ego.pose)
    areas = geometry.area_points @ homography[:, :2].T + homography[:, 2]
    areas, owner = clip_polygons_near(areas, geometry.area_owner)
    polygons = split_by_owner(fixed(dehomogenise(areas)), owner, len(geometry.area_kinds))
    for kind, polygon in zip(geometry.area_kinds, polygons, strict=True):
        if len(polygon) >= 3:
            color = _ground_color(style.AREA_COLORS[kind], light)
            cv2.fillPoly(image, [polygon], color, cv2.LINE_8, SHIFT)
    _, corners, count = geometry.ground_quads.shape
    quads = homography[:, :2] @ geometry.ground_quads.reshape(2, -1) + homography[:, 2:]
    quads = quads.reshape(3, corners, count)
    nearest = quads[2].min(axis=0)
    # Pieces are short, so the few that reach behind the camera are dropped, not clipped.
    keep = (nearest >= NEAR) & (nearest <= MAX_GROUND_DEPTH)
    keep &= ~beyond_frustum(quads, camera.width, camera.height)
    kept = quads[:, :, keep]
    pixels = fixed((kept[:2] / kept[2]).transpose(2, 1, 0))
    group = geometry.ground_group[keep]
    for index, name in enumerate(PAINT_GROUPS):
        polygons = pixels[group == index]
        if len(polygons):
            color = _ground_color(style.PAINT_COLORS[name], light)
            cv2.fillPoly(image, polygons, color, cv2.LINE_8, SHIFT)


@lru_cache(maxsize=256)
def _ground_color(rgb: style.RGB, light: Lighting) -> tuple[float, float, float]:
    """Lit colour of flat ground; its fog is added per pixel afterwards."""
    r, g, b = light.shade(np.asarray(rgb, dtype=float), UP, np.zeros(())).tolist()
    return r, g, b


# --- 3D objects -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Canvas:
    """The colour image and the ID buffer, always drawn together with identical shapes."""

    image: np.ndarray
    ids: np.ndarray
    camera: Camera

    def polygon(self, pixels: np.ndarray, color: list[float], oid: int) -> None:
        """Fill a convex polygon given in fixed-point pixels."""
        cv2.fillConvexPoly(self.image, pixels, color, cv2.LINE_8, SHIFT)
        cv2.fillConvexPoly(self.ids, pixels, oid, cv2.LINE_8, SHIFT)

    def clipped(self, points: np.ndarray, color: list[float], oid: int) -> None:
        """Fill a flat convex camera-frame polygon, clipped to the near plane."""
        polygon = clip_near(points)
        if len(polygon) >= 3:
            self.polygon(fixed(self.camera.project(polygon)), color, oid)

    def disc(self, center: list[float], radius: float, color: list[float], oid: int) -> None:
        """Fill a disc of ``radius`` pixels around ``center`` (float pixels)."""
        middle, size = fixed(center).tolist(), int(fixed(radius))
        cv2.circle(self.image, middle, size, color, -1, cv2.LINE_8, SHIFT)
        cv2.circle(self.ids, middle, size, oid, -1, cv2.LINE_8, SHIFT)


class _BoxRow(NamedTuple):
    center: tuple[float, float, float]  # ego frame
    size: tuple[float, float, float]
    yaw: float
    rgb: tuple[int, int, int]


@dataclass(frozen=True)
class _Boxes:
    """Every box of the frame (agents, poles, signal heads) transformed, culled and shaded in
    one vectorised pass; per-box results are Python lists, cheap to read in the draw loop."""

    corners: np.ndarray  # (B, 8, 3) camera frame
    pixels: np.ndarray  # (B, 8, 2) projected corners; valid where ``inside``
    faces: np.ndarray  # (B, 6, 4, 2) fixed-point pixels of each face; valid where ``inside``
    paintable: np.ndarray  # (B, 6) bool: front-facing and wholly ahead of the near plane
    rgb: np.ndarray  # (B, 3) base colours
    normals: np.ndarray  # (B, 6, 3) ego-frame outward normals the faces were shaded with
    face_depth: np.ndarray  # (B, 6) camera depth of the face centres, which their fog used
    bounds: list[list[float]]  # [B] x1, y1, x2, y2 of ``pixels``
    visible: list[list[bool]]  # [B][6] front-facing
    colors: list[list[list[float]]]  # [B][6] lit RGB of each face
    inside: list[bool]  # [B] wholly in front of the near plane: no clipping needed
    drawn: list[bool]  # [B] may have pixels: some of it ahead, and on screen if inside
    depth: list[float]  # [B] camera z of the box centre

    @classmethod
    def build(cls, rows: list[_BoxRow], camera: Camera, light: Lighting) -> _Boxes:
        data = np.array([(*r.center, *r.size, r.yaw, *r.rgb) for r in rows]).reshape(-1, 10)
        centers, sizes, yaws, rgb = data[:, :3], data[:, 3:6], data[:, 6], data[:, 7:]
        normals, middles = box_faces_batch(centers, sizes, yaws)
        visible = front_facing(normals, middles, camera.position)
        face_depth = camera.to_camera(middles)[..., 2]
        colors = light.shade(rgb[:, None, :], normals, face_depth)
        corners = camera.to_camera(box_corners_batch(centers, sizes, yaws))
        depth = corners[..., 2]
        inside = depth.min(axis=1) >= NEAR
        pixels = np.zeros((len(rows), 8, 2))
        pixels[inside] = camera.project(corners[inside])
        low, high = pixels.min(axis=1), pixels.max(axis=1)
        on_screen = (high >= 0).all(axis=1) & (low <= (camera.width, camera.height)).all(axis=1)
        drawn = (depth.max(axis=1) >= NEAR) & (on_screen | ~inside)
        return cls(
            corners=corners,
            pixels=pixels,
            faces=fixed(pixels[:, BOX_FACES]),
            paintable=visible & (depth >= NEAR)[:, BOX_FACES].all(axis=2),
            rgb=rgb,
            normals=normals,
            face_depth=face_depth,
            bounds=np.concatenate([low, high], axis=1).tolist(),
            visible=visible.tolist(),
            colors=colors.tolist(),
            inside=inside.tolist(),
            drawn=drawn.tolist(),
            depth=(camera.to_camera(centers)[:, 2]).tolist(),
        )

    def draw(self, canvas: _Canvas, index: int, oid: int) -> None:
        """Fill the front faces of box ``index``; the faces of a box cut by the near plane are
        clipped one by one."""
        colors, inside = self.colors[index], self.inside[index]
        for face, visible in enumerate(self.visible[index]):
            if not visible:
                continue
            if inside:
                canvas.polygon(self.faces[index, face], colors[face], oid)
            else:
                canvas.clipped(self.corners[index, BOX_FACES[face]], colors[face], oid)

    def silhouette(self, index: int, camera: Camera) -> tuple[np.ndarray, list[float]]:
        """(N, 2) pixels whose convex hull is the projection of the near-clipped box, and
        their bounds x1, y1, x2, y2."""
        if self.inside[index]:
            return self.pixels[index], self.bounds[index]
        points = camera.project(clip_box_near(self.corners[index]))
        return points, [*points.min(axis=0).tolist(), *points.max(axis=0).tolist()]


@dataclass(frozen=True)
class _Details:
    """The category cues of the agents drawn (``details.TEMPLATES``), placed, lit and projected
    for all agents at once, on the faces that are drawn whole (seen, not near-clipped)."""

    pixels: np.ndarray  # (N, VERTICES, 2) fixed point, agent after agent
    colors: list[list[float]]  # [N]
    spans: dict[int, tuple[int, int]]  # agent index -> its rows

    @classmethod
    def build(cls, scene: Scene, boxes: _Boxes, camera: Camera, light: Lighting) -> _Details:
        chosen = [  # agents are the first boxes
            index
            for index in range(len(scene.agents))
            if boxes.drawn[index]
            and (not boxes.inside[index] or boxes.bounds[index][3] - boxes.bounds[index][1] >= MIN_DETAIL_PX)
        ]
        rows, counts = details.rows([scene.agents[index].category for index in chosen])
        slot = np.repeat(np.arange(len(chosen)), counts)
        owner = np.asarray(chosen, dtype=int)[slot]
        face = details.TABLE.face[rows]
        keep = boxes.paintable[owner, face]  # a near-clipped face's details would need clipping too
        rows, slot, owner, face = rows[keep], slot[keep], owner[keep], face[keep]
        corners = (boxes.corners[chosen] @ camera.intrinsics.T)[slot]  # homogeneous pixels
        pixels = fixed(dehomogenise(details.place(rows, corners)))
        normals, depth = boxes.normals[owner, face], boxes.face_depth[owner, face]
        colors = details.colors(rows, boxes.rgb[owner], normals, depth, light)
        starts = np.searchsorted(slot, np.arange(len(chosen) + 1)).tolist()
        spans = zip(chosen, starts, starts[1:], strict=False)
        return cls(pixels, colors.tolist(), {index: (start, end) for index, start, end in spans if start < end})

    def draw(self, canvas: _Canvas, index: int, bounds: list[float]) -> None:
        """Paint agent ``index``'s details over its faces, just drawn, within its silhouette's
        ``bounds``. OpenCV's fill is not monotone under nesting (it snaps vertices to rows: a
        polygon inside another may get a pixel the outer one did not), so pixels the ID buffer
        does not give to the agent are put back as they were."""
        span = self.spans.get(index)
        if span is None:
            return
        x1, y1, x2, y2 = _window(bounds, canvas.camera)
        window = canvas.image[y1:y2, x1:x2]
        if not window.size:
            return
        before = window.copy()
        start, end = span
        for polygon, color in zip(self.pixels[start:end], self.colors[start:end], strict=True):
            cv2.fillConvexPoly(canvas.image, polygon, color, cv2.LINE_8, SHIFT)
        others = cv2.compare(canvas.ids[y1:y2, x1:x2], index + 1, cv2.CMP_NE)
        cv2.copyTo(before, others, window)  # in place: ``window`` is a view of the image


def _window(bounds: list[float], camera: Camera) -> tuple[int, int, int, int]:
    """Image slice bounds x1, y1, x2, y2 around pixel ``bounds`` x1, y1, x2, y2, with a margin
    for OpenCV's rounding."""
    x1, y1, x2, y2 = (math.floor(value) for value in bounds)
    return (
        max(x1 - DETAIL_MARGIN, 0),
        max(y1 - DETAIL_MARGIN, 0),
        min(x2 + DETAIL_MARGIN + 1, camera.width),
        min(y2 + DETAIL_MARGIN + 1, camera.height),
    )


class _Disc(NamedTuple):
    """A lamp, already projected; it keeps at least ``MIN_LAMP_PX`` so a state reads far off."""

    center: list[float]  # pixels
    radius: float  # pixels
    color: list[float]

    def draw(self, canvas: _Canvas) -> None:
        canvas.disc(self.center, self.radius, self.color, STATIC_ID)


class _Flat(NamedTuple):
    """A flat convex layer of a sign plate, in the camera frame; clipped when drawn."""

    points: np.ndarray  # (N, 3)
    color: list[float]

    def draw(self, canvas: _Canvas) -> None:
        canvas.clipped(self.points, self.color, STATIC_ID)


class _Text(NamedTuple):
    """Text on a sign plate, colour image only: the plate under it fills the ID buffer."""

    center: tuple[float, float]  # pixels
    radius: float  # pixels
    text: str
    color: tuple[int, int, int]

    def draw(self, canvas: _Canvas) -> None:
        centered_text(canvas.image, self.text, self.center, self.radius, self.color)


_Decal = _Disc | _Flat | _Text


class _Prop(NamedTuple):
    """A traffic light or a sign: boxes (pole, housing), then decals drawn over them."""

    anchor: tuple[float, float, float]  # ego frame, for depth sorting
    boxes: list[_BoxRow]
    decals: list[_Decal]


class _Drawn(NamedTuple):
    """An agent that was drawn, and what its annotation is computed from."""

    index: int  # into scene.agents; its ID-buffer value is index + 1
    silhouette: np.ndarray  # (N, 2) pixels, convex hull = projection of the near-clipped box
    bounds: list[float]  # x1, y1, x2, y2 of the silhouette, not yet clipped to the image
    depth: float  # camera z of the box centre


def _draw_objects(canvas: _Canvas, scene: Scene, light: Lighting) -> list[_Drawn]:
    """Draw agents and props far to near (painter's algorithm), nearest last."""
    camera = canvas.camera
    props = _props(scene, camera, light)
    rows = [_BoxRow(a.box.center, a.box.size, a.box.yaw, a.color.rgb) for a in scene.agents]
    count = len(rows)
    first_box = [count]
    for prop in props:
        rows += prop.boxes
        first_box.append(len(rows))
    boxes = _Boxes.build(rows, camera, light)
    cues = _Details.build(scene, boxes, camera, light)
    anchors = np.array([row.center for row in rows[:count]] + [p.anchor for p in props])
    distance = ((anchors.reshape(-1, 3) - camera.position) ** 2).sum(axis=1)  # squared
    drawn = []
    for index in np.argsort(-distance, kind="stable").tolist():
        if index < count:
            if boxes.drawn[index]:
                boxes.draw(canvas, index, index + 1)
                silhouette, bounds = boxes.silhouette(index, camera)
                cues.draw(canvas, index, bounds)
                drawn.append(_Drawn(index, silhouette, bounds, boxes.depth[index]))
            continue
        prop = index - count
        for box in range(first_box[prop], first_box[prop + 1]):
            if boxes.drawn[box]:
                boxes.draw(canvas, box, STATIC_ID)
        for decal in props[prop].decals:
            decal.draw(canvas)
    return drawn


def _props(scene: Scene, camera: Camera, light: Lighting) -> list[_Prop]:
    """Traffic lights and signs not wholly behind the camera, each as a pole (and a signal
    head) plus decals: lamps (red top, yellow, green bottom; only the current state lit) on
    a head that faces the camera; a sign's layers and text from the front, a grey blank from
    behind. Placing, shading and projecting is done for all props at once."""
    items: list[TrafficLight | Sign] = [*scene.map.lights, *scene.map.signs]
    data = np.array([(*item.position, item.yaw) for item in items]).reshape(-1, 4)
    centers = np.empty((len(items), 3))
    centers[:, :2] = scene.world_to_ego(data[:, :2])
    centers[:, 2] = data[:, 2]
    seen = np.flatnonzero(camera.to_camera(centers)[:, 2] > -PROP_REACH)
    if not len(seen):
        return []
    items, centers = [items[i] for i in seen], centers[seen]
    yaws = data[seen, 3] - scene.ego.pose.yaw
    forward = np.zeros((len(items), 3))
    forward[:, 0], forward[:, 1] = np.cos(yaws), np.sin(yaws)
    lights = [isinstance(item, TrafficLight) for item in items]
    faces = centers + forward * np.where(lights, HEAD_FACE, 0.0)[:, None]
    facing = front_facing(forward, faces, camera.position).tolist()
    decals: list[list[_Decal]] = [[] for _ in items]
    heads = [(i, it) for i, it in enumerate(items) if isinstance(it, TrafficLight) and facing[i]]
    if heads:
        _add_lamps(decals, heads, faces, forward, camera, light)
    plates = [(i, it) for i, it in enumerate(items) if isinstance(it, Sign)]
    if plates:
        _add_plates(decals, plates, centers, forward, facing, camera, light)
    props = []
    placed = zip(items, centers.tolist(), yaws.tolist(), decals, strict=True)
    for item, (x, y, z), yaw, extra in placed:
        if isinstance(item, TrafficLight):
            head = _BoxRow((x, y, z), HOUSING_SIZE, yaw, style.HOUSING)
            boxes = [*_pole(x, y, z - HOUSING_SIZE[2] / 2, yaw), head]
        else:
            boxes = _pole(x, y, z - SIGN_RADIUS, yaw)
        props.append(_Prop((x, y, z), boxes, extra))
    return props


def _pole(x: float, y: float, top: float, yaw: float) -> list[_BoxRow]:
    """A pole from the ground up to ``top`` at (x, y), none if ``top`` is not above ground."""
    if top <= 0:
        return []
    return [_BoxRow((x, y, top / 2), (POLE_WIDTH, POLE_WIDTH, top), yaw, style.POLE)]


def _add_lamps(
    decals: list[list[_Decal]],
    heads: list[tuple[int, TrafficLight]],
    faces: np.ndarray,
    forward: np.ndarray,
    camera: Camera,
    light: Lighting,
) -> None:
    """Lamps of the signal ``heads`` (prop index, light) that face the camera."""
    index = [i for i, _ in heads]
    lamps = camera.to_camera(faces[index][:, None, :] + _LAMP_STACK)  # (L, 3, 3)
    depth = lamps[..., 2]
    on = np.array([[lamp == signal.state for lamp in LAMP_ORDER] for _, signal in heads])
    lit = light.emissive(_LAMP_RGB, depth)
    dark = light.shade(np.asarray(style.LAMP_OFF, dtype=float), forward[index][:, None], depth)
    colors = np.where(on[..., None], lit, dark).tolist()
    ahead = depth >= NEAR
    pixels = camera.project(np.where(ahead[..., None], lamps, UP)).tolist()  # UP: a dummy ahead
    radii = np.maximum(camera.focal * LAMP_RADIUS / np.maximum(depth, NEAR), MIN_LAMP_PX).tolist()
    for row, prop in enumerate(index):
        for lamp, is_ahead in enumerate(ahead[row].tolist()):
            if is_ahead:
                decals[prop].append(_Disc(pixels[row][lamp], radii[row][lamp], colors[row][lamp]))


def _add_plates(
    decals: list[list[_Decal]],
    plates: list[tuple[int, Sign]],
    centers: np.ndarray,
    forward: np.ndarray,
    facing: list[bool],
    camera: Camera,
    light: Lighting,
) -> None:
    """Sign ``plates`` (prop index, sign): ``style.SIGN_ICONS`` layers and text when they face
    the camera, the outline in ``SIGN_BACK`` when they do not."""
    layers: list[tuple[int, style.SignLayer]] = []
    labels: list[tuple[int, str, style.RGB, float]] = []  # prop, text, colour, radius (m)
    for index, sign in plates:
        icon = style.SIGN_ICONS[sign.kind]
        if not facing[index]:
            layers.append((index, style.SignLayer(icon[0].shape, 1.0, style.SIGN_BACK)))
            continue
        layers += [(index, layer) for layer in icon]
        label = style.sign_label(sign)
        if label is not None:
            labels.append((index, *label, SIGN_RADIUS * icon[-1].scale))
    sizes = [len(layer.shape) for _, layer in layers]
    owner = np.repeat([i for i, _ in layers], sizes)
    offsets = np.concatenate([layer.shape * (SIGN_RADIUS * layer.scale) for _, layer in layers])
    right = np.zeros_like(forward)
    right[:, 0], right[:, 1] = -forward[:, 1], forward[:, 0]  # the viewer's right, facing it
    outline = centers[owner] + offsets[:, :1] * right[owner] - offsets[:, 1:] * UP
    points = camera.to_camera(outline)
    middles = camera.to_camera(centers)
    inks = [i for i, _ in layers] + [i for i, *_ in labels]
    normals = np.where(np.array(facing)[:, None], forward, -forward)[inks]
    rgb = np.array([layer.color for _, layer in layers] + [color for _, _, color, _ in labels])
    colors = light.shade(rgb, normals, middles[inks, 2]).tolist()
    ends = np.cumsum(sizes).tolist()
    for (index, _), start, end, color in zip(layers, [0, *ends], ends, colors, strict=False):
        decals[index].append(_Flat(points[start:end], color))
    for (index, text, _, size), color in zip(labels, colors[len(layers) :], strict=True):
        depth = float(middles[index, 2])
        radius = camera.focal * size / max(depth, NEAR)
        if depth >= NEAR and radius >= MIN_TEXT_PX:
            u, v = camera.project(middles[index]).tolist()
            r, g, b = (round(c) for c in color)
            decals[index].append(_Text((u, v), radius, text, (r, g, b)))


# --- ground truth ---------------------------------------------------------------------------


def lit_lamps(scene: Scene, name: str) -> list[tuple[LightState, tuple[float, float]]]:
    """The state and pixel centre of the lit lamp of every signal head that faces camera
    ``name`` with that lamp in front of it and inside the image (not checked for occlusion):
    ground truth of what a light shows, where the renderer draws it."""
    camera = Camera.from_spec(scene.cameras[name])
    found = []
    for signal in scene.map.lights:
        centre = np.array([*scene.world_to_ego(np.array(signal.position[:2])), signal.position[2]])
        yaw = signal.yaw - scene.ego.pose.yaw
        forward = np.array([math.cos(yaw), math.sin(yaw), 0.0])
        face = centre + forward * HEAD_FACE
        if not front_facing(forward[None], face[None], camera.position)[0]:
            continue
        lamp = camera.to_camera(face + _LAMP_STACK[LAMP_ORDER.index(signal.state)])
        if lamp[2] < NEAR:
            continue
        u, v = camera.project(lamp).tolist()
        if 0 <= u < camera.width and 0 <= v < camera.height:
            found.append((signal.state, (u, v)))
    return found


def _annotate(scene: Scene, ids: np.ndarray, drawn: list[_Drawn]) -> dict[str, CameraAnnotation]:
    """Boxes and visible fractions of drawn agents, in scene order. An agent is left out when
    none of its pixels survive (painted over, or only sub-pixel slivers in the image)."""
    height, width = ids.shape
    annotations = {}
    for index, points, (x1, y1, x2, y2), depth in sorted(drawn, key=lambda d: d.index):
        x1, x2 = min(max(x1, 0.0), width), min(max(x2, 0.0), width)
        y1, y2 = min(max(y1, 0.0), height), min(max(y2, 0.0), height)
        # One pixel of margin: OpenCV's rasteriser may round a vertex to the next pixel.
        window = ids[max(int(y1) - 1, 0) : int(y2) + 2, max(int(x1) - 1, 0) : int(x2) + 2]
        pixels = int(np.count_nonzero(window == index + 1))
        if pixels == 0:
            continue
        area = cv2.contourArea(cv2.convexHull(points.astype(np.float32)))
        annotations[scene.agents[index].id] = CameraAnnotation(
            bbox=(round(x1, 2), round(y1, 2), round(x2, 2), round(y2, 2)),
            # an agent with pixels on screen is never reported as invisible, however much
            # of it is behind the camera or off-image
            visible_fraction=max(round(min(pixels / max(area, 1e-9), 1.0), 3), 0.001),
            depth=round(depth, 3),
        )
    return annotations
