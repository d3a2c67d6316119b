"""The typed world model: a Scene and everything in it.

Frames (see ../shared/DESIGN.md):
- *world*: the map's frame; x east, y north, z up, metres. Lanes, markings, lights and
  signs live here because a map does not move with the ego.
- *ego*: x forward, y left, z up, origin on the ground under the centre of the ego box.
  Agents, their tracks and the ego's own past/future are stored here, because every
  question a model is asked is about what the ego sees.

Every float is rounded when a scene is finalised, so that a scene written to JSON and
read back is equal field for field and re-serialises to the same bytes.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = "1.0"
TRACK_DT = 0.5  # seconds between stored track points (2 Hz)
PAST_STEPS = 4  # 2 s of history
FUTURE_STEPS = 6  # 3 s of future

Vec2 = tuple[float, float]
Vec3 = tuple[float, float, float]
Matrix = list[list[float]]


class Model(BaseModel):
    """Base for all scene types: unknown fields are an error, not silently dropped."""

    model_config = ConfigDict(extra="forbid", use_enum_values=False)


class Category(StrEnum):
    CAR = "car"
    TRUCK = "truck"
    BUS = "bus"
    MOTORCYCLE = "motorcycle"
    BICYCLE = "bicycle"
    PEDESTRIAN = "pedestrian"
    TRAFFIC_CONE = "traffic_cone"
    BARRIER = "barrier"
    DEBRIS = "debris"
    ANIMAL = "animal"


VEHICLES = frozenset({Category.CAR, Category.TRUCK, Category.BUS, Category.MOTORCYCLE, Category.BICYCLE})
STATIC_OBJECTS = frozenset({Category.TRAFFIC_CONE, Category.BARRIER, Category.DEBRIS})
CORNER_CASES = frozenset({Category.DEBRIS, Category.ANIMAL})


class Intent(StrEnum):
    PARKED = "parked"
    STOPPED = "stopped"
    GOING_STRAIGHT = "going_straight"
    TURNING_LEFT = "turning_left"
    TURNING_RIGHT = "turning_right"
    CHANGING_LANE_LEFT = "changing_lane_left"
    CHANGING_LANE_RIGHT = "changing_lane_right"
    MERGING = "merging"
    BRAKING = "braking"
    CROSSING = "crossing"
    WALKING = "walking"
    STANDING = "standing"
    STATIC = "static"


class LightState(StrEnum):
    RED = "red"
    YELLOW = "yellow"
    GREEN = "green"


class SignKind(StrEnum):
    STOP = "stop"
    YIELD = "yield"
    SPEED_LIMIT = "speed_limit"


class MarkingKind(StrEnum):
    SOLID_WHITE = "solid_white"
    DASHED_WHITE = "dashed_white"
    SOLID_YELLOW = "solid_yellow"
    DOUBLE_YELLOW = "double_yellow"


class AreaKind(StrEnum):
    ROAD = "road"
    SIDEWALK = "sidewalk"
    SHOULDER = "shoulder"


class Weather(StrEnum):
    CLEAR = "clear"
    OVERCAST = "overcast"
    RAIN = "rain"
    FOG = "fog"


class TimeOfDay(StrEnum):
    DAY = "day"
    DUSK = "dusk"
    NIGHT = "night"


class Turn(StrEnum):
    STRAIGHT = "straight"
    LEFT = "left"
    RIGHT = "right"


class Box3D(Model):
    """A 3D box in the ego frame: centre (x, y, z), size (length, width, height), yaw."""

    center: Vec3
    size: Vec3
    yaw: float

    def corners(self) -> np.ndarray:
        """(8, 3) corners: bottom face first (front-left, front-right, rear-right, rear-left)."""
        return box_corners(np.asarray(self.center), np.asarray(self.size), self.yaw)

    def footprint(self) -> np.ndarray:
        """(4, 2) ground corners, counter-clockwise seen from above."""
        return self.corners()[:4, :2]


def box_corners(center: np.ndarray, size: np.ndarray, yaw: float) -> np.ndarray:
    """(8, 3) corners of a yawed box; bottom face first, counter-clockwise from above."""
    length, width, height = size
    local = np.array(
        [
            [length / 2, width / 2, -height / 2],
            [-length / 2, width / 2, -height / 2],
            [-length / 2, -width / 2, -height / 2],
            [length / 2, -width / 2, -height / 2],
        ]
    )
    local = np.concatenate([local, local + np.array([0.0, 0.0, height])])
    c, s = np.cos(yaw), np.sin(yaw)
    rot = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    return local @ rot.T + center


class TrackPoint(Model):
    """A box pose at time ``t`` (seconds relative to the scene, negative in the past)."""

    t: float
    center: Vec3
    yaw: float
    speed: float


class CameraAnnotation(Model):
    """Exact 2D ground truth of one agent in one camera."""

    bbox: tuple[float, float, float, float]  # x1, y1, x2, y2 pixels, clipped to the image
    visible_fraction: Annotated[float, Field(ge=0.0, le=1.0)]  # share not hidden or cut off
    depth: float  # metres along the optical axis to the box centre


class Color(Model):
    name: str
    rgb: tuple[int, int, int]


class Agent(Model):
    id: str
    category: Category
    box: Box3D
    velocity: Vec2  # ego frame, m/s
    accel: float  # longitudinal, m/s^2
    color: Color
    intent: Intent
    lane_id: str | None = None
    violator: bool = False  # ignores red lights in the rollout
    past: list[TrackPoint]
    future: list[TrackPoint]
    cameras: dict[str, CameraAnnotation] = {}

    @property
    def speed(self) -> float:
        return float(np.hypot(*self.velocity))


class Pose(Model):
    x: float
    y: float
    yaw: float


class Ego(Model):
    pose: Pose  # world frame
    size: Vec3
    speed: float
    accel: float
    yaw_rate: float
    lane_id: str | None
    intent: Intent
    past: list[TrackPoint]  # ego frame, 2 Hz
    future: list[TrackPoint]  # ego frame, 2 Hz: the reference plan


class Lane(Model):
    """A lane centreline in the world frame, points ordered in the direction of travel."""

    id: str
    centerline: list[Vec2]
    width: float
    speed_limit: float  # m/s
    turn: Turn = Turn.STRAIGHT
    in_junction: bool = False
    successors: list[str] = []
    predecessors: list[str] = []
    left_neighbor: str | None = None  # same direction only
    right_neighbor: str | None = None


class Marking(Model):
    kind: MarkingKind
    points: list[Vec2]


class Crosswalk(Model):
    id: str
    polygon: list[Vec2]


class StopLine(Model):
    id: str
    points: tuple[Vec2, Vec2]
    lane_ids: list[str]


class Area(Model):
    kind: AreaKind
    polygon: list[Vec2]


class TrafficLight(Model):
    """A signal head; ``lane_ids`` is the lane group it controls."""

    id: str
    position: Vec3  # world frame, lamp housing centre
    yaw: float  # direction the lamps face (towards approaching traffic)
    state: LightState
    time_to_change: float  # seconds until the next phase
    lane_ids: list[str]


class Sign(Model):
    id: str
    kind: SignKind
    value: float | None = None  # km/h for speed limits
    position: Vec3  # world frame, plate centre
    yaw: float  # direction the plate faces
    lane_ids: list[str]


class MapData(Model):
    lanes: list[Lane]
    markings: list[Marking]
    crosswalks: list[Crosswalk]
    stop_lines: list[StopLine]
    areas: list[Area]
    lights: list[TrafficLight]
    signs: list[Sign]

    def lane(self, lane_id: str) -> Lane:
        for lane in self.lanes:
            if lane.id == lane_id:
                return lane
        raise KeyError(lane_id)


class Environment(Model):
    weather: Weather
    time_of_day: TimeOfDay


class CameraSpec(Model):
    """A pinhole camera: ``extrinsics`` maps ego-frame points into the camera frame
    (camera looks along +z, x right, y down)."""

    width: int
    height: int
    intrinsics: Matrix  # 3x3
    extrinsics: Matrix  # 4x4


class BEVSpec(Model):
    """An ego-centred, heading-up raster; pixel (u, v) = (cx - y / res, cy - x / res)."""

    width: int
    height: int
    resolution: float  # metres per pixel


class Scene(Model):
    schema_version: str
    scene_id: str
    seed: int
    generator_version: str
    layout: str
    scenario: str
    environment: Environment
    ego: Ego
    agents: list[Agent]
    map: MapData
    cameras: dict[str, CameraSpec]
    bev: BEVSpec

    def agent(self, agent_id: str) -> Agent:
        for agent in self.agents:
            if agent.id == agent_id:
                return agent
        raise KeyError(agent_id)

    def world_to_ego(self, points: np.ndarray) -> np.ndarray:
        """Map (N, 2) world points into the ego frame."""
        p = self.ego.pose
        c, s = np.cos(p.yaw), np.sin(p.yaw)
        d = np.asarray(points, dtype=float) - (p.x, p.y)
        return np.stack([d[..., 0] * c + d[..., 1] * s, -d[..., 0] * s + d[..., 1] * c], -1)
