"""The procedural scene generator: seed + config -> Scene, deterministically.

Pipeline: choose scenario and layout -> build the map -> place the ego -> place the
scenario's actors -> background traffic, parked cars, pedestrians -> settle speeds so no
one starts inside a crash -> roll everyone out -> express it all in the ego frame.
Randomness comes from one ``numpy`` generator seeded by (seed, generator version), so the
same seed and version give the same scene, byte for byte.
"""

from __future__ import annotations

import bisect
import itertools
import math

import numpy as np
import shapely
from pydantic import BaseModel, ConfigDict, Field, field_validator

from roadthink.scene.behaviour import LATERAL_ACCEL, Actor, Motion, Simulation
from roadthink.scene.cameras import rig
from roadthink.scene.layouts import LAYOUTS, LayoutParams, phase_for, set_phase
from roadthink.scene.paths import poses, wrap_angle
from roadthink.scene.scenarios import SCENARIOS
from roadthink.scene.types import (
    FUTURE_STEPS,
    PAST_STEPS,
    SCHEMA_VERSION,
    STATIC_OBJECTS,
    TRACK_DT,
    VEHICLES,
    AreaKind,
    BEVSpec,
    Category,
    Environment,
    Intent,
    Lane,
    LightState,
    Scene,
    TimeOfDay,
    Turn,
    Weather,
)
from roadthink.scene.world import World

GENERATOR_VERSION = "1.1.0"
EGO_SIZE = np.array([4.6, 1.9, 1.6])
VEHICLE_SPACING = 38.0  # mean metres of lane per moving vehicle at density 1


class GeneratorConfig(BaseModel):
    """Knobs of the generator; ``default_config().model_copy(update=...)`` to override.

    Weights need not sum to one; a weight of zero switches an option off.
    """

    model_config = ConfigDict(extra="forbid")

    layouts: dict[str, float] = {"straight": 0.3, "intersection": 0.35, "t_junction": 0.2, "merge": 0.15}
    scenarios: dict[str, float] = {
        "normal": 0.6,
        "occluded_pedestrian": 0.08,
        "lane_closure": 0.08,
        "road_debris": 0.08,
        "animal_on_road": 0.08,
        "lead_braking": 0.08,
    }
    density: float = Field(1.0, ge=0.0, le=5.0)  # vehicles per lane relative to the default
    pedestrian_density: float = Field(1.0, ge=0.0, le=5.0)
    category_mix: dict[Category, float] = {
        Category.CAR: 0.7,
        Category.TRUCK: 0.1,
        Category.BUS: 0.05,
        Category.MOTORCYCLE: 0.08,
        Category.BICYCLE: 0.07,
    }
    weather: dict[Weather, float] = {Weather.CLEAR: 0.55, Weather.OVERCAST: 0.2, Weather.RAIN: 0.15, Weather.FOG: 0.1}
    time_of_day: dict[TimeOfDay, float] = {TimeOfDay.DAY: 0.7, TimeOfDay.DUSK: 0.15, TimeOfDay.NIGHT: 0.15}
    turns: dict[Turn, float] = {Turn.STRAIGHT: 0.6, Turn.LEFT: 0.2, Turn.RIGHT: 0.2}
    violator_rate: float = Field(0.05, ge=0.0, le=1.0)  # share of drivers who run red lights
    # weights of the ego's light state at signalised junctions; None: the natural cycle
    # (yellow 1 time in 12), which a benchmark balancing light states would starve on
    signal_states: dict[LightState, float] | None = None
    # how far before a junction's stop line the ego starts (m): nearer, and more of its
    # 3 s future is spent turning or stopping
    ego_approach: tuple[float, float] = (12.0, 45.0)
    ego_in_junction: float = Field(0.0, ge=0.0, le=1.0)  # chance the ego starts inside a junction
    radius: float = Field(70.0, gt=10.0)  # background traffic is placed this close to the ego
    cameras: list[str] = ["CAM_FRONT"]
    bev: BEVSpec = BEVSpec(width=400, height=400, resolution=0.25)

    @field_validator("layouts")
    @classmethod
    def _known_layouts(cls, v: dict[str, float]) -> dict[str, float]:
        return _known("layout", v, LAYOUTS)

    @field_validator("scenarios")
    @classmethod
    def _known_scenarios(cls, v: dict[str, float]) -> dict[str, float]:
        return _known("scenario", v, SCENARIOS)

    @field_validator("category_mix")
    @classmethod
    def _vehicles_only(cls, v: dict[Category, float]) -> dict[Category, float]:
        bad = [c for c in v if c not in VEHICLES]
        if bad:
            raise ValueError(f"category_mix is for vehicles; {bad[0]} is not one")
        return v

    @field_validator("cameras")
    @classmethod
    def _known_cameras(cls, v: list[str]) -> list[str]:
        rig(v)  # raises on an unknown name
        return v


def _known(what: str, weights: dict[str, float], known: dict) -> dict[str, float]:
    unknown = [k for k in weights if k not in known]
    if unknown:
        raise ValueError(f"unknown {what} {unknown[0]!r}; known: {', '.join(known)}")
    if not any(w > 0 for w in weights.values()) or any(w < 0 for w in weights.values()):
        raise ValueError(f"{what} weights must be >= 0 with at least one > 0")
    return weights


def default_config() -> GeneratorConfig:
    return GeneratorConfig()


def _pick(rng: np.random.Generator, weights: dict) -> object:
    keys = list(weights)
    cumulative = list(itertools.accumulate(float(weights[k]) for k in keys))
    return keys[min(bisect.bisect_right(cumulative, rng.random() * cumulative[-1]), len(keys) - 1)]


def generate_scene(seed: int, config: GeneratorConfig | None = None, scene_id: str | None = None) -> Scene:
    """The scene for ``seed`` under ``config``: same inputs, same scene."""
    config = config or default_config()
    rng = np.random.default_rng(np.random.SeedSequence([seed, *map(int, GENERATOR_VERSION.split("."))]))
    scenario_name = str(_pick(rng, config.scenarios))
    scenario = SCENARIOS[scenario_name]
    layouts = {k: w for k, w in config.layouts.items() if k in scenario.layouts and w > 0}
    if not layouts:  # the config excludes every layout this scenario fits
        scenario_name, scenario = "normal", SCENARIOS["normal"]
        layouts = {k: w for k, w in config.layouts.items() if w > 0}
    layout = str(_pick(rng, layouts))
    params = LayoutParams(
        lanes_per_direction=int(rng.choice([1, 2, 2, 3])),
        speed_limit_kmh=float(rng.choice([30.0, 40.0, 50.0, 60.0])),
        shoulder=bool(rng.random() < 0.4),
        crosswalk=bool(rng.random() < 0.5),
    )
    params = LayoutParams(**{**params.__dict__, **scenario.params})
    world = World(LAYOUTS[layout](rng, params), rng)
    _place_ego(world, rng, layout, scenario.ego_lane, config)
    if config.signal_states:
        _set_ego_signal(world, rng, config.signal_states)
    scenario.place(world, rng)
    _background(world, rng, config)
    env = Environment(weather=_pick(rng, config.weather), time_of_day=_pick(rng, config.time_of_day))
    scene = _assemble(world, seed, scene_id or f"scene-{seed}", layout, scenario_name, env, config)
    return scene


def _set_ego_signal(world: World, rng: np.random.Generator, weights: dict[LightState, float]) -> None:
    """Re-time the signals so that the ego's light shows a state drawn from ``weights``
    (before anyone else is placed or moves, so every plan obeys the new timing)."""
    ego_lane = world.actors[0].meta["lane"]
    group = next((i for i, lt in enumerate(world.map.lights) if ego_lane in lt.lane_ids), None)
    if group is not None:
        set_phase(world.map.lights, phase_for(LightState(str(_pick(rng, weights))), group, rng))


def _place_ego(world: World, rng: np.random.Generator, layout: str, lane_rule: str, config: GeneratorConfig) -> None:
    candidates = [lane for lane in world.map.lanes if not lane.in_junction and lane.id != "ramp"]
    if layout in ("intersection", "t_junction"):
        controlled = {i for line in world.map.stop_lines for i in line.lane_ids}
        incoming = [lane for lane in candidates if lane.successors and (lane.id in controlled or rng.random() < 0.5)]
        candidates = incoming or candidates
    elif layout == "straight":
        candidates = [lane for lane in candidates if "_f" in lane.id]
    elif layout == "merge":
        candidates = (
            [world.lanes["ramp"]] if rng.random() < 0.3 else [lane for lane in candidates if lane.id.startswith("r0_f")]
        )
    if lane_rule == "rightmost":
        candidates = [lane for lane in candidates if lane.right_neighbor is None]
    inside = [lane for lane in world.map.lanes if lane.in_junction]
    if config.ego_in_junction and inside and lane_rule == "any" and rng.random() < config.ego_in_junction:
        candidates = inside
    lane = candidates[int(rng.integers(len(candidates)))]
    length = world.paths[lane.id].length
    if lane.in_junction:  # part-way through its turn
        s_lane = float(rng.uniform(0.0, 0.5)) * length
    elif layout in ("intersection", "t_junction") and lane.successors:
        s_lane = length - float(rng.uniform(*config.ego_approach))
    elif lane.id == "ramp":
        s_lane = float(rng.uniform(40.0, 70.0))
    else:
        s_lane = length / 2 - float(rng.uniform(0.0, 40.0))
    turn = Turn(str(_pick(rng, config.turns)))
    speed = lane.speed_limit * float(rng.uniform(0.7, 1.0))
    if lane.in_junction:  # no faster than the bend allows
        bend = float(np.max(world.paths[lane.id].curvature(np.linspace(0.0, length, 8))))
        turn, speed = lane.turn, min(speed, (LATERAL_ACCEL / max(bend, 1e-4)) ** 0.5)
    ego = world.vehicle(Category.CAR, lane.id, s_lane, speed, lane.speed_limit, turn, size=EGO_SIZE.copy())
    assert ego is not None, "the first actor always fits"


def _background(world: World, rng: np.random.Generator, config: GeneratorConfig) -> None:
    """Moving traffic on lanes, parked cars on shoulders, pedestrians on sidewalks and
    crosswalks, all within ``config.radius`` of the ego."""
    ego_xy = np.asarray(world.actors[0].path.pose(world.actors[0].s)[:2])
    red_lanes = {lane for light in world.map.lights if light.state != "green" for lane in light.lane_ids}
    lanes = [
        lane for lane in world.map.lanes if not (lane.in_junction and any(p in red_lanes for p in lane.predecessors))
    ]
    for lane, span in zip(lanes, _spans_near(world, lanes, ego_xy, config.radius), strict=True):
        if span is None:
            continue
        for _ in range(rng.poisson(config.density * (span[1] - span[0]) / VEHICLE_SPACING)):
            category = Category(str(_pick(rng, config.category_mix)))
            if category is Category.BICYCLE and lane.right_neighbor is not None:
                category = Category.CAR
            desired = _desired_speed(rng, category, lane.speed_limit)
            world.vehicle(
                category,
                lane.id,
                float(rng.uniform(*span)),
                desired * float(rng.uniform(0.6, 1.0)),
                desired,
                Turn(str(_pick(rng, config.turns))),
                violator=bool(rng.random() < config.violator_rate),
            )
    around_ego = shapely.Point(ego_xy).buffer(config.radius * 0.8, quad_segs=4)
    for area in world.map.areas:
        if area.kind is AreaKind.SHOULDER:
            _parked(world, rng, shapely.Polygon(area.polygon), ego_xy, config)
        elif area.kind is AreaKind.SIDEWALK:
            _sidewalk_walkers(world, rng, shapely.Polygon(area.polygon), around_ego, config)
    for crosswalk in world.map.crosswalks:
        if rng.random() < 0.45 * config.pedestrian_density:
            _crossing(world, rng, np.asarray(crosswalk.polygon))


def _spans_near(world: World, lanes: list[Lane], xy: np.ndarray, radius: float) -> list[tuple[float, float] | None]:
    """Per lane, the stretch of it (from, to arc length, every 2 m) within ``radius`` of
    ``xy``, or None; all lanes are sampled at once."""
    paths = [world.paths[lane.id] for lane in lanes]
    grid = np.arange(0.0, max(p.length for p in paths), 2.0)
    x, y, _ = poses(paths, grid)
    spans = []
    for path, close in zip(paths, np.hypot(x - xy[0], y - xy[1]) < radius, strict=True):
        near = np.flatnonzero(close[grid < path.length])
        spans.append((near.min() * 2.0, min(near.max() * 2.0, path.length)) if len(near) else None)
    return spans


def _desired_speed(rng: np.random.Generator, category: Category, limit: float) -> float:
    if category is Category.BICYCLE:
        return float(rng.uniform(4.0, 6.5))
    return limit * float(rng.uniform(0.85, 1.1))


def _long_axis(poly: shapely.Polygon) -> tuple[np.ndarray, np.ndarray, float, float]:
    """Centre, unit long axis, length and width of a (near) rectangular strip."""
    rect = np.asarray(poly.minimum_rotated_rectangle.exterior.coords)[:4]
    e0, e1 = rect[1] - rect[0], rect[2] - rect[1]
    long_, short = (e0, e1) if np.hypot(*e0) >= np.hypot(*e1) else (e1, e0)
    return rect.mean(0), long_ / np.hypot(*long_), float(np.hypot(*long_)), float(np.hypot(*short))


def _parked(
    world: World, rng: np.random.Generator, poly: shapely.Polygon, ego_xy: np.ndarray, config: GeneratorConfig
) -> None:
    centre, axis, length, _ = _long_axis(poly)
    road_dir = _traffic_heading(world, centre)
    for _ in range(rng.poisson(config.density * min(length, 2 * config.radius) / 20.0)):
        xy = centre + axis * float(rng.uniform(-length / 2 + 5, length / 2 - 5))
        if np.hypot(*(xy - ego_xy)) > config.radius:
            continue
        category = Category.CAR if rng.random() < 0.85 else Category.TRUCK
        world.static(category, xy, road_dir, Intent.PARKED)


def _traffic_heading(world: World, xy: np.ndarray) -> float:
    """Heading of the traffic in the lane nearest to ``xy``: parked cars face that way."""
    best = min(world.paths.values(), key=lambda p: abs(p.project(xy[None])[1][0]))
    s, _ = best.project(xy[None])
    return float(best.pose(s[0])[2])


def _sidewalk_walkers(
    world: World, rng: np.random.Generator, poly: shapely.Polygon, around_ego: shapely.Polygon, config: GeneratorConfig
) -> None:
    near = poly.intersection(around_ego)
    if near.is_empty:
        return
    _, axis, _, _ = _long_axis(poly)
    x0, y0, x1, y1 = near.bounds
    for _ in range(rng.poisson(config.pedestrian_density * near.area / 90.0)):
        xy = np.array([rng.uniform(x0, x1), rng.uniform(y0, y1)])
        if not shapely.contains_xy(near, *xy):
            continue
        if rng.random() < 0.65:
            heading = math.atan2(axis[1], axis[0]) + (math.pi if rng.random() < 0.5 else 0.0)
            world.walker(Category.PEDESTRIAN, xy, heading, float(rng.uniform(1.0, 1.6)), Intent.WALKING)
        else:
            world.walker(Category.PEDESTRIAN, xy, float(rng.uniform(-math.pi, math.pi)), 0.0, Intent.STANDING)


def _crossing(world: World, rng: np.random.Generator, polygon: np.ndarray) -> None:
    """One or two pedestrians walking across a crosswalk, from either side."""
    _, axis, length, width = _long_axis(shapely.Polygon(polygon))
    centre = polygon.mean(0)
    normal = np.array([-axis[1], axis[0]])
    for _ in range(int(rng.integers(1, 3))):
        direction = axis if rng.random() < 0.5 else -axis
        xy = (
            centre
            + direction * float(rng.uniform(-length / 2, length / 2 - 1.0))
            + normal * float(rng.uniform(-width / 4, width / 4))
        )
        world.walker(
            Category.PEDESTRIAN,
            xy,
            math.atan2(direction[1], direction[0]),
            float(rng.uniform(1.1, 1.7)),
            Intent.CROSSING,
        )


def _assemble(
    world: World, seed: int, scene_id: str, layout: str, scenario: str, env: Environment, config: GeneratorConfig
) -> Scene:
    sim = Simulation(world.actors)
    sim.settle()
    roll = sim.run(FUTURE_STEPS * TRACK_DT, TRACK_DT, past=PAST_STEPS * TRACK_DT)
    now = int(np.flatnonzero(roll.times == 0.0)[0])
    ex, ey, eyaw = (round(float(v), 4) for v in (roll.x[0, now], roll.y[0, now], roll.yaw[0, now]))
    c, s = math.cos(eyaw), math.sin(eyaw)
    # every stored number is rounded (mm, 1e-4 rad, mm/s) so that scene files stay small
    ego_x = np.round((roll.x - ex) * c + (roll.y - ey) * s, 3).tolist()
    ego_y = np.round(-(roll.x - ex) * s + (roll.y - ey) * c, 3).tolist()
    ego_yaw = np.round(wrap_angle(roll.yaw - eyaw), 4).tolist()
    speed = np.round(roll.speed, 3).tolist()
    accel0 = np.round(roll.accel0, 3).tolist()
    times = roll.times.tolist()

    def to_ego(i: int) -> tuple[list[float], list[float], list[float]]:
        return ego_x[i], ego_y[i], ego_yaw[i]

    # tracks, agents and the ego are plain data, validated once as a whole Scene: far
    # cheaper than building each model on its own
    def track(i: int, z: float, sel: slice) -> list[dict]:
        x, y, yaw = to_ego(i)
        return [
            {"t": times[k], "center": (x[k], y[k], z), "yaw": yaw[k], "speed": speed[i][k]}
            for k in range(len(times))[sel]
        ]

    agents = []
    order = sorted(range(1, len(world.actors)), key=lambda i: math.hypot(roll.x[i, now] - ex, roll.y[i, now] - ey))
    for n, i in enumerate(order):
        actor = world.actors[i]
        x, y, yaw = to_ego(i)
        size = tuple(round(float(v), 3) for v in actor.size)
        z = round(size[2] / 2, 3)
        v = speed[i][now]
        agents.append(
            dict(
                id=f"a{n:02d}",
                category=actor.category,
                box=dict(center=(x[now], y[now], z), size=size, yaw=yaw[now]),
                velocity=(round(v * math.cos(yaw[now]), 3), round(v * math.sin(yaw[now]), 3)),
                accel=accel0[i],
                color=actor.meta["color"],
                intent=_intent(actor, roll.speed[i, now:], accel0[i]),
                lane_id=actor.meta.get("lane"),
                violator=actor.violator,
                past=track(i, z, slice(0, now)),
                future=track(i, z, slice(now + 1, None)),
            )
        )
    ego_actor = world.actors[0]
    ego = dict(
        pose=dict(x=ex, y=ey, yaw=eyaw),
        size=tuple(round(float(v), 3) for v in ego_actor.size),
        speed=speed[0][now],
        accel=accel0[0],
        yaw_rate=round(ego_yaw[0][now + 1] / TRACK_DT, 4),
        lane_id=ego_actor.meta["lane"],
        intent=_intent(ego_actor, roll.speed[0, now:], accel0[0]),
        past=track(0, 0.0, slice(0, now)),
        future=track(0, 0.0, slice(now + 1, None)),
    )
    return Scene.model_validate(
        dict(
            schema_version=SCHEMA_VERSION,
            scene_id=scene_id,
            seed=seed,
            generator_version=GENERATOR_VERSION,
            layout=layout,
            scenario=scenario,
            environment=env,
            ego=ego,
            agents=agents,
            map=world.map,
            cameras=rig(config.cameras),
            bev=config.bev,
        )
    )


def _intent(actor: Actor, speeds: np.ndarray, accel: float) -> Intent:
    """What the actor is doing now, in the words a driver would use."""
    if "intent" in actor.meta:
        return actor.meta["intent"]
    if actor.category in STATIC_OBJECTS:
        return Intent.STATIC
    if actor.motion is not Motion.VEHICLE:
        return Intent.STANDING
    if actor.meta.get("lane") == "ramp":
        return Intent.MERGING
    if accel < -3.0:
        return Intent.BRAKING
    if speeds.max() < 0.3:
        return Intent.STOPPED
    turn = actor.meta.get("turn", Turn.STRAIGHT)
    return {Turn.LEFT: Intent.TURNING_LEFT, Turn.RIGHT: Intent.TURNING_RIGHT}.get(turn, Intent.GOING_STRAIGHT)
