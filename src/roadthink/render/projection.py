"""Pinhole geometry: ego -> camera transforms, projection, near-plane clipping, culling.

Everything is vectorised over leading axes so a renderer can transform every ground quad or
every box corner of a scene in one numpy call instead of one Python call per object.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from roadthink.scene.types import CameraSpec, Pose

NEAR = 0.3  # metres; nothing closer to the camera plane than this is drawn

# Box faces as corner indices into ``box_corners`` order (bottom FL, RL, RR, FR, then top).
BOX_FACES = np.array(
    [
        [0, 1, 2, 3],  # bottom
        [4, 5, 6, 7],  # top
        [0, 3, 7, 4],  # front (+x)
        [1, 2, 6, 5],  # back (-x)
        [0, 1, 5, 4],  # left (+y)
        [3, 2, 6, 7],  # right (-y)
    ]
)
# The twelve edges of a box, used to find where the near plane cuts it.
BOX_EDGES = np.array(
    [
        *([0, 1], [1, 2], [2, 3], [3, 0]),  # bottom
        *([4, 5], [5, 6], [6, 7], [7, 4]),  # top
        *([0, 4], [1, 5], [2, 6], [3, 7]),  # uprights
    ]
)


@dataclass(frozen=True)
class Camera:
    """A camera as numpy arrays, parsed once per render from its ``CameraSpec``."""

    width: int
    height: int
    intrinsics: np.ndarray  # (3, 3)
    rotation: np.ndarray  # (3, 3) ego -> camera
    translation: np.ndarray  # (3,)
    position: np.ndarray  # (3,) optical centre in the ego frame: what back faces face

    @classmethod
    def from_spec(cls, spec: CameraSpec) -> Camera:
        extrinsics = np.asarray(spec.extrinsics, dtype=float)
        rotation, translation = extrinsics[:3, :3], extrinsics[:3, 3]
        intrinsics = np.asarray(spec.intrinsics, dtype=float)
        position = -rotation.T @ translation
        return cls(spec.width, spec.height, intrinsics, rotation, translation, position)

    @property
    def focal(self) -> float:
        return float(self.intrinsics[0, 0])

    def to_camera(self, points: np.ndarray) -> np.ndarray:
        return ego_to_camera(points, self.rotation, self.translation)

    def project(self, points: np.ndarray) -> np.ndarray:
        return project(points, self.intrinsics)

    def ground_homography(self, pose: Pose) -> np.ndarray:
        """(3, 3) H taking world ground points (x, y, 1) straight to homogeneous pixels
        (u z, v z, z), z being camera depth: one product instead of three transforms."""
        c, s = np.cos(pose.yaw), np.sin(pose.yaw)
        world_to_ego = np.array([[c, s], [-s, c]])
        ego_offset = -world_to_ego @ (pose.x, pose.y)
        ground = self.rotation[:, :2]  # the ground plane's axes in the camera frame
        affine = np.column_stack([ground @ world_to_ego, ground @ ego_offset + self.translation])
        return self.intrinsics @ affine


def ego_to_camera(points: np.ndarray, rotation: np.ndarray, translation: np.ndarray) -> np.ndarray:
    """Map (..., 3) ego-frame points into the camera frame."""
    return points @ rotation.T + translation


def project(points: np.ndarray, intrinsics: np.ndarray) -> np.ndarray:
    """(..., 3) camera-frame points with z > 0 to (..., 2) pixel coordinates."""
    return dehomogenise(points @ intrinsics.T)


def dehomogenise(points: np.ndarray) -> np.ndarray:
    """(..., 3) homogeneous pixels (u z, v z, z) -> (..., 2) pixels (u, v)."""
    return points[..., :2] / points[..., 2:3]


def beyond_frustum(points: np.ndarray, width: int, height: int, near: float = NEAR) -> np.ndarray:
    """(3, N, B) homogeneous pixels (rows u z, v z, z) of B sets of N points -> (B,) True
    where all N points lie beyond one and the same plane of the view frustum (the near plane
    or an image edge): then no part of their convex hull can be drawn, so it is culled before
    any per-object work. Coordinate-first layout keeps every reduction a fast row operation.
    """
    uz, vz, z = points
    outside = (z < near).all(axis=0)
    outside |= (uz < 0).all(axis=0)
    outside |= (uz > width * z).all(axis=0)
    outside |= (vz < 0).all(axis=0)
    outside |= (vz > height * z).all(axis=0)
    return outside


def clip_near(polygon: np.ndarray, near: float = NEAR) -> np.ndarray:
    """Clip one (N, 3) polygon (camera frame, or homogeneous pixels) to depth >= near."""
    return clip_polygons_near(polygon, np.zeros(len(polygon), dtype=int), near)[0]


def clip_polygons_near(
    points: np.ndarray,
    owner: np.ndarray,
    near: float = NEAR,
) -> tuple[np.ndarray, np.ndarray]:
    """Sutherland-Hodgman clip of many polygons to the half-space depth >= near, at once.

    ``points`` (M, 3) lists the vertices of polygon after polygon (camera frame, or the
    homogeneous pixels (u z, v z, z): both are linear in depth, so the cut is the same);
    ``owner`` (M,) is the polygon of each vertex, non-decreasing. Returns the clipped
    vertices, order kept, and their owners: projected afterwards, no point behind the camera
    can flip through infinity. Polygons wholly behind vanish.
    """
    depth = points[:, 2]
    inside = depth >= near
    if inside.all():
        return points, owner
    last = np.append(owner[1:] != owner[:-1], True)
    following = np.arange(1, len(points) + 1)
    following[last] = np.flatnonzero(np.roll(last, 1))  # each polygon's last -> its first
    after = points[following]
    crosses = inside != inside[following]
    step = after[:, 2] - depth
    t = (near - depth) / np.where(crosses, step, 1.0)
    crossing = points + t[:, None] * (after - points)
    # Vertex i (if inside) then the crossing on edge i -> i+1 (if any), for every i in turn.
    keep = np.stack([inside, crosses], axis=1)
    clipped = np.stack([points, crossing], axis=1)[keep]
    return clipped, np.repeat(owner, 2)[keep.ravel()]


def clip_box_near(corners: np.ndarray, near: float = NEAR) -> np.ndarray:
    """Vertices of an (8, 3) camera-frame box cut by z >= near: kept corners plus the points
    where its edges cross the plane. Their projection bounds the visible silhouette."""
    z = corners[:, 2]
    a, b = corners[BOX_EDGES[:, 0]], corners[BOX_EDGES[:, 1]]
    za, zb = z[BOX_EDGES[:, 0]], z[BOX_EDGES[:, 1]]
    crosses = (za >= near) != (zb >= near)
    t = (near - za[crosses]) / (zb[crosses] - za[crosses])
    cuts = a[crosses] + t[:, None] * (b[crosses] - a[crosses])
    return np.concatenate([corners[z >= near], cuts])


# Unit box corners in ``box_corners`` order, and outward face normals in ``BOX_FACES`` order.
_UNIT_CORNERS = np.array(
    [
        *([1, 1, -1], [-1, 1, -1], [-1, -1, -1], [1, -1, -1]),  # bottom
        *([1, 1, 1], [-1, 1, 1], [-1, -1, 1], [1, -1, 1]),  # top
    ],
    dtype=float,
)
_FACE_NORMALS = np.array(
    [[0, 0, -1], [0, 0, 1], [1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0]],
    dtype=float,
)
_SUM3 = np.ones(3)


def box_corners_batch(centers: np.ndarray, sizes: np.ndarray, yaws: np.ndarray) -> np.ndarray:
    """(B, 8, 3) corners of B yawed boxes, in the same order as ``Box3D.corners``."""
    return yawed(_UNIT_CORNERS * (sizes[:, None, :] / 2), yaws) + centers[:, None, :]


def box_faces_batch(
    centers: np.ndarray,
    sizes: np.ndarray,
    yaws: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """(B, 6, 3) outward unit normals and centres of the faces, in ``BOX_FACES`` order."""
    normals = yawed(np.broadcast_to(_FACE_NORMALS, (len(yaws), 6, 3)), yaws)
    middles = yawed(_FACE_NORMALS * (sizes[:, None, :] / 2), yaws) + centers[:, None, :]
    return normals, middles


def yawed(local: np.ndarray, yaws: np.ndarray) -> np.ndarray:
    """Rotate (B, N, 3) box-local vectors about z by each box's yaw (B,)."""
    c, s = np.cos(yaws)[:, None], np.sin(yaws)[:, None]
    x, y = local[..., 0], local[..., 1]
    out = np.empty(local.shape)
    out[..., 0] = x * c - y * s
    out[..., 1] = x * s + y * c
    out[..., 2] = local[..., 2]
    return out


def front_facing(normals: np.ndarray, points: np.ndarray, eye: np.ndarray) -> np.ndarray:
    """Back-face test: True where a face (outward ``normals``, through ``points``) faces ``eye``.

    All in one frame; only faces that pass are drawn, so a box can never look inside-out.
    """
    return ((eye - points) * normals) @ _SUM3 > 0
