"""The world model and the generator: determinism, exact JSON, physical sanity, behaviour."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from roadthink.errors import RoadthinkError
from roadthink.scene import GeneratorConfig, SceneFileError, generate_scene, load_scene, save_scene, scene_to_json
from roadthink.scene.checks import check_scene, motion_violations, overlaps, placement_violations
from roadthink.scene.layouts import CYCLE_S, LAYOUTS, light_at
from roadthink.scene.scenarios import SCENARIOS
from roadthink.scene.timeline import scene_at
from roadthink.scene.types import Category, Intent, LightState, Scene

seeds = st.integers(min_value=0, max_value=2**31 - 1)
few = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def only(layout: str | None = None, scenario: str | None = None, **kw) -> GeneratorConfig:
    update = dict(kw)
    if layout:
        update["layouts"] = {layout: 1.0}
    if scenario:
        update["scenarios"] = {scenario: 1.0}
    return GeneratorConfig(**update)


def test_same_seed_same_bytes_and_other_seed_differs():
    a, b = scene_to_json(generate_scene(7)), scene_to_json(generate_scene(7))
    assert a == b
    assert scene_to_json(generate_scene(8)) != a


def test_json_round_trip_is_exact(tmp_path):
    scene = generate_scene(3, only(scenario="lane_closure"))
    path = save_scene(scene, tmp_path / "s.json")
    back = load_scene(path)
    assert back == scene
    assert scene_to_json(back) == path.read_text()


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_every_layout_builds_a_connected_sound_map(layout):
    scene = generate_scene(11, only(layout, "normal"))
    lanes = {lane.id: lane for lane in scene.map.lanes}
    for lane in scene.map.lanes:
        for nxt in lane.successors:
            gap = np.hypot(*np.subtract(lane.centerline[-1], lanes[nxt].centerline[0]))
            assert gap < 0.05, f"{lane.id} -> {nxt} is not continuous ({gap:.2f} m)"
            assert lane.id in lanes[nxt].predecessors
        for side in (lane.left_neighbor, lane.right_neighbor):
            assert side is None or side in lanes
    assert check_scene(scene) == []
    if layout == "intersection":
        assert len(scene.map.lights) == 4 and len(scene.map.crosswalks) == 4
        assert {lane.turn for lane in scene.map.lanes if lane.in_junction} == {"straight", "left", "right"}
        states = [light.state for light in scene.map.lights]
        assert states[0] == states[2] and states[1] == states[3]  # opposite arms share a phase
        assert LightState.GREEN not in (states[0], states[1]) or states[0] != states[1]


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_every_scenario_is_physically_sound(scenario):
    for seed in range(3):
        scene = generate_scene(seed, only(scenario=scenario))
        assert scene.scenario == scenario
        assert check_scene(scene) == [], f"seed {seed}"


@given(seed=seeds)
@few
def test_boxes_never_overlap(seed):
    assert overlaps(generate_scene(seed)) == []


@given(seed=seeds)
@few
def test_agents_stand_where_their_category_may(seed):
    assert placement_violations(generate_scene(seed)) == []


@given(seed=seeds)
@few
def test_tracks_are_continuous_with_bounded_acceleration(seed):
    scene = generate_scene(seed)
    assert motion_violations(scene) == []
    for agent in scene.agents:
        assert [p.t for p in agent.past] == [-2.0, -1.5, -1.0, -0.5]
        assert [p.t for p in agent.future] == [0.5, 1.0, 1.5, 2.0, 2.5, 3.0]
        track = [p.center[:2] for p in agent.past] + [agent.box.center[:2]] + [p.center[:2] for p in agent.future]
        steps = np.diff(track, axis=0)
        assert np.hypot(*steps.T).max() < 0.5 * 25.0  # nobody covers 25 m/s in half a second


def test_checks_catch_an_overlap_and_a_teleport():
    scene = generate_scene(5, only("straight", "normal"))
    first = scene.agents[0]
    moved = first.model_copy(update={"box": first.box.model_copy(update={"center": (0.5, 0.0, first.box.center[2])})})
    assert ("ego", first.id) in overlaps(scene.model_copy(update={"agents": [moved, *scene.agents[1:]]}))
    future = [
        p.model_copy(update={"center": (p.center[0] + 30.0 * (k == 2), *p.center[1:])})
        for k, p in enumerate(first.future)
    ]
    jumpy = first.model_copy(update={"future": future})
    assert motion_violations(scene.model_copy(update={"agents": [jumpy, *scene.agents[1:]]}))


def _stop_line_distance(scene: Scene, lane_ids: list[str], xy: np.ndarray) -> np.ndarray:
    """Signed distance past the stop line of ``lane_ids`` along the lanes' direction."""
    line = next(sl for sl in scene.map.stop_lines if set(sl.lane_ids) & set(lane_ids))
    lane = scene.map.lane(lane_ids[0])
    a, b = scene.world_to_ego(np.asarray(lane.centerline[-2:]))
    direction = (b - a) / np.hypot(*(b - a))
    mid = scene.world_to_ego(np.mean(line.points, axis=0))
    return (xy - mid) @ direction


def _red_light_runs(scene: Scene) -> tuple[int, int]:
    """(law-abiding vehicles that crossed a red line, violators that did)."""
    lawful = violators = 0
    for light in scene.map.lights:
        if light.state is not LightState.RED or light.time_to_change < 3.0:
            continue
        for agent in scene.agents:
            if agent.lane_id not in light.lane_ids or agent.category not in (
                Category.CAR,
                Category.TRUCK,
                Category.BUS,
            ):
                continue
            front = np.array(agent.box.center[:2]) + agent.box.size[0] / 2 * np.array(
                [np.cos(agent.box.yaw), np.sin(agent.box.yaw)]
            )
            if _stop_line_distance(scene, light.lane_ids, front[None])[0] > -0.5:
                continue  # already at or past the line
            ends = np.array([p.center[:2] for p in agent.future])
            crossed = (_stop_line_distance(scene, light.lane_ids, ends) - agent.box.size[0] / 2 > 0.5).any()
            if crossed:
                violators += agent.violator
                lawful += not agent.violator
    return lawful, violators


def test_lights_are_obeyed_and_violators_run_them():
    lawful_runs = violator_runs = 0
    for seed in range(12):
        lawful, _ = _red_light_runs(generate_scene(seed, only("intersection", "normal", density=2.0)))
        lawful_runs += lawful
        _, runs = _red_light_runs(generate_scene(seed, only("intersection", "normal", density=2.0, violator_rate=1.0)))
        violator_runs += runs
    assert lawful_runs == 0
    assert violator_runs > 0


def test_lead_braking_makes_the_ego_brake_without_collision():
    for seed in range(4):
        scene = generate_scene(seed, only(scenario="lead_braking"))
        lead = next(
            a for a in scene.agents if a.intent is Intent.BRAKING and abs(a.box.center[1]) < 1.0 and a.box.center[0] > 0
        )
        assert lead.accel <= -5.0
        assert scene.ego.future[-1].speed < scene.ego.speed - 3.0
        for ego_p, lead_p in zip(scene.ego.future, lead.future, strict=True):
            gap = lead_p.center[0] - ego_p.center[0] - (lead.box.size[0] + scene.ego.size[0]) / 2
            assert gap > 0.0


def test_occluded_pedestrian_steps_out_from_in_front_of_a_parked_vehicle():
    crossed = 0
    for seed in range(6):
        scene = generate_scene(seed, only(scenario="occluded_pedestrian"))
        walker = next(a for a in scene.agents if a.category is Category.PEDESTRIAN and a.intent is Intent.CROSSING)
        parked = min(
            (a for a in scene.agents if a.intent is Intent.PARKED),
            key=lambda a: np.hypot(*np.subtract(a.box.center[:2], walker.box.center[:2])),
        )
        assert 0 < walker.box.center[0] - parked.box.center[0] < parked.box.size[0] / 2 + 1.5
        assert walker.velocity[1] > 1.0  # heading left, into the ego's road
        assert walker.future[-1].center[1] > walker.box.center[1] + 1.0  # out from behind the parked vehicle
        crossed += walker.future[-1].center[1] > walker.box.center[1] + 3.0
    assert crossed >= 3  # half walk on; others wait for a car passing right in front of them


def test_lane_closure_and_debris_put_obstacles_ahead_of_the_ego():
    closure = generate_scene(1, only(scenario="lane_closure"))
    cones = [a for a in closure.agents if a.category is Category.TRAFFIC_CONE]
    assert len(cones) >= 8 and all(c.box.center[0] > 10 for c in cones)
    assert any(a.category is Category.BARRIER for a in closure.agents)
    debris = generate_scene(1, only(scenario="road_debris"))
    thing = next(a for a in debris.agents if a.category is Category.DEBRIS)
    assert thing.box.center[0] > 10 and abs(thing.box.center[1]) < 1.5 and thing.speed == 0


def test_knobs_change_the_scenes():
    quiet = [len(generate_scene(s, only("straight", "normal", density=0.2)).agents) for s in range(6)]
    busy = [len(generate_scene(s, only("straight", "normal", density=3.0)).agents) for s in range(6)]
    assert sum(busy) > 2 * sum(quiet)
    foggy = {generate_scene(s, only(weather={"fog": 1.0})).environment.weather for s in range(5)}
    assert foggy == {"fog"}
    trucks = only("straight", "normal", category_mix={Category.TRUCK: 1.0}, pedestrian_density=0.0)
    scene = generate_scene(0, trucks)
    moving = [a for a in scene.agents if a.intent not in (Intent.PARKED,)]
    assert moving and all(a.category is Category.TRUCK for a in moving)


@pytest.mark.parametrize(
    ("update", "message"),
    [
        ({"layouts": {"roundabout": 1.0}}, "unknown layout 'roundabout'"),
        ({"cameras": ["CAM_TOP"]}, "unknown camera 'CAM_TOP'"),
        ({"scenarios": {"normal": 0.0}}, "at least one > 0"),
        ({"category_mix": {Category.PEDESTRIAN: 1.0}}, "is for vehicles"),
    ],
)
def test_bad_config_is_refused_with_a_reason(update, message):
    with pytest.raises(ValueError, match=message):
        GeneratorConfig(**update)


def test_bad_scene_files_name_file_and_field(tmp_path):
    scene = json.loads(scene_to_json(generate_scene(0)))
    cases = {
        "version.json": ({**scene, "schema_version": "0.1"}, "field 'schema_version'"),
        "missing.json": (
            {**scene, "ego": {k: v for k, v in scene["ego"].items() if k != "speed"}},
            "field 'ego.speed': field required",
        ),
        "type.json": (
            {**scene, "agents": [{**scene["agents"][0], "box": {**scene["agents"][0]["box"], "size": "big"}}]},
            "field 'agents.0.box.size'",
        ),
    }
    for name, (data, message) in cases.items():
        path = tmp_path / name
        path.write_text(json.dumps(data))
        with pytest.raises(SceneFileError, match=message) as err:
            load_scene(path)
        assert str(path) in str(err.value) and "\n" not in str(err.value)
    broken = tmp_path / "broken.json"
    broken.write_text('{"schema_version": ')
    with pytest.raises(SceneFileError, match="not valid JSON"):
        load_scene(broken)
    with pytest.raises(SceneFileError, match="cannot read"):
        load_scene(tmp_path / "absent.json")


def _world(scene: Scene, xy: tuple[float, float]) -> np.ndarray:
    p = scene.ego.pose
    c, s = np.cos(p.yaw), np.sin(p.yaw)
    return np.array([p.x + c * xy[0] - s * xy[1], p.y + s * xy[0] + c * xy[1]])


@pytest.mark.parametrize("t", [-2.0, -1.0, -0.5, 1.5, 3.0])
def test_scene_at_puts_everyone_where_their_track_says(t):
    scene = generate_scene(6, only("intersection", "normal"))
    then = scene_at(scene, t)
    ego_point = next(p for p in [*scene.ego.past, *scene.ego.future] if p.t == t)
    assert np.allclose(_world(then, (0.0, 0.0)), _world(scene, ego_point.center[:2]), atol=2e-3)
    assert then.ego.speed == ego_point.speed
    for agent in then.agents:
        original = scene.agent(agent.id)
        point = next(p for p in [*original.past, *original.future] if p.t == t)
        assert np.allclose(_world(then, agent.box.center[:2]), _world(scene, point.center[:2]), atol=5e-3)
        if original.speed == 0 and original.intent is Intent.PARKED:
            assert np.allclose(_world(then, agent.box.center[:2]), _world(scene, original.box.center[:2]), atol=5e-3)
    for before, after in zip(scene.map.lights, then.map.lights, strict=True):
        assert after.state == light_at(before, t)[0]


def test_rolled_out_frames_rarely_collide():
    """Drivers follow, yield to crossing traffic and walkers wait, so frames away from
    now are nearly always collision-free (the past is simulated backwards, the future
    forwards; neither is perfect, and this bounds how often they fail)."""
    frames = collided = 0
    for seed in range(25):
        scene = generate_scene(seed)
        for t in [p.t for p in scene.ego.past] + [p.t for p in scene.ego.future]:
            frames += 1
            collided += bool(overlaps(scene_at(scene, t)))
    assert collided / frames < 0.15


def test_scene_at_an_unknown_time_is_a_clear_error():
    with pytest.raises(RoadthinkError, match=r"no track point at t=-0.7 s; available: -2, -1.5"):
        scene_at(generate_scene(0), -0.7)


def test_light_phases_run_backwards_and_forwards_consistently():
    scene = generate_scene(3, only("intersection", "normal"))
    light = scene.map.lights[0]
    state, left = light_at(light, 0.0)
    assert (state, left) == (light.state, pytest.approx(light.time_to_change))
    assert light_at(light, left + 0.01)[0] != light.state
    assert light_at(light, -CYCLE_S)[0] == light.state  # one full cycle ago
