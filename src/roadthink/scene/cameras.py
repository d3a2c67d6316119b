"""The camera rig: a nuScenes-like six-camera layout on the ego roof."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from roadthink.scene.types import CameraSpec

# Camera axes from ego axes: x_cam = -y_ego, y_cam = -z_ego, z_cam = x_ego.
_EGO_TO_CAM_AXES = np.array([[0.0, -1.0, 0.0], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0]])


@dataclass(frozen=True)
class Mount:
    """Where a camera sits on the ego and where it looks."""

    position: tuple[float, float, float]  # ego frame, metres
    yaw_deg: float  # left of forward is positive
    hfov_deg: float
    pitch_deg: float = 0.0  # positive looks down


RIG: dict[str, Mount] = {
    "CAM_FRONT": Mount((1.7, 0.0, 1.5), 0.0, 70.0),
    "CAM_FRONT_LEFT": Mount((1.5, 0.5, 1.5), 55.0, 70.0),
    "CAM_FRONT_RIGHT": Mount((1.5, -0.5, 1.5), -55.0, 70.0),
    "CAM_BACK_LEFT": Mount((-0.5, 0.5, 1.5), 110.0, 70.0),
    "CAM_BACK_RIGHT": Mount((-0.5, -0.5, 1.5), -110.0, 70.0),
    "CAM_BACK": Mount((-2.0, 0.0, 1.5), 180.0, 110.0),
}
CAMERA_NAMES = tuple(RIG)
DEFAULT_SIZE = (640, 360)


def camera_spec(mount: Mount, width: int = DEFAULT_SIZE[0], height: int = DEFAULT_SIZE[1]) -> CameraSpec:
    """Intrinsics from the horizontal field of view; extrinsics map ego -> camera."""
    focal = (width / 2) / math.tan(math.radians(mount.hfov_deg) / 2)
    intrinsics = [[focal, 0.0, width / 2], [0.0, focal, height / 2], [0.0, 0.0, 1.0]]
    yaw, pitch = math.radians(mount.yaw_deg), math.radians(mount.pitch_deg)
    cy, sy = math.cos(yaw), math.sin(yaw)
    yaw_rot = np.array([[cy, -sy, 0.0], [sy, cy, 0.0], [0.0, 0.0, 1.0]])  # camera -> ego
    cp, sp = math.cos(pitch), math.sin(pitch)
    pitch_rot = np.array([[1.0, 0.0, 0.0], [0.0, cp, -sp], [0.0, sp, cp]])  # tilt about x_cam
    rotation = pitch_rot @ _EGO_TO_CAM_AXES @ yaw_rot.T
    extrinsics = np.eye(4)
    extrinsics[:3, :3] = rotation
    extrinsics[:3, 3] = -rotation @ np.asarray(mount.position)
    return CameraSpec(
        width=width,
        height=height,
        intrinsics=[[round(v, 6) for v in row] for row in intrinsics],
        extrinsics=[[round(float(v), 9) for v in row] for row in extrinsics],
    )


def rig(names: list[str] | tuple[str, ...]) -> dict[str, CameraSpec]:
    """Camera specs for ``names``; an unknown name is a ValueError that lists the known ones."""
    unknown = [n for n in names if n not in RIG]
    if unknown:
        raise ValueError(f"unknown camera {unknown[0]!r}; known: {', '.join(CAMERA_NAMES)}")
    return {name: camera_spec(RIG[name]) for name in names}
