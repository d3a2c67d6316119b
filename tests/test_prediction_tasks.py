"""Prediction and risk tasks on hand-placed road users: the rules, their margins, and
facts that turn false when a value is wrong."""

from __future__ import annotations

import math

import numpy as np
import pytest

from roadthink.render import render_scene
from roadthink.scene import GeneratorConfig, generate_scene
from roadthink.scene.types import CameraAnnotation, Category, Scene, TrackPoint
from roadthink.tasks import TASKS, Fact
from roadthink.tasks.facts import check_fact
from roadthink.tasks.prediction import (
    DIRECTIONS,
    ENTERS,
    IN,
    STAYS_OUT,
    direction_of,
    lane_status,
    time_to_collision,
    ttc_bin,
)
from roadthink.tasks.risk import LEVELS, risk_level


@pytest.fixture(scope="module")
def road() -> Scene:
    """A straight road, ego in lane r0_f0 (lanes 3.5 m wide, the ego's centred on y = 0), nobody else."""
    config = GeneratorConfig(layouts={"straight": 1.0}, scenarios={"normal": 1.0}, density=0.0, pedestrian_density=0.0)
    scene = generate_scene(1, config)
    template = generate_scene(1, GeneratorConfig(layouts={"straight": 1.0}, scenarios={"normal": 1.0})).agents[0]
    return scene.model_copy(update={"agents": [template.model_copy(update={"id": "x"})]})


SIZES = {Category.CAR: (4.5, 1.9, 1.5), Category.PEDESTRIAN: (0.6, 0.6, 1.75), Category.MOTORCYCLE: (1.8, 0.8, 1.4)}


def place(scene: Scene, xy: tuple[float, float], velocity: tuple[float, float], category: Category = Category.CAR):
    """``scene`` with its one agent at ``xy`` moving at a constant ``velocity``, clearly seen in front."""
    agent = scene.agents[0]
    yaw = math.atan2(velocity[1], velocity[0]) if any(velocity) else 0.0
    speed = math.hypot(*velocity)
    z = agent.box.center[2]
    future = [
        TrackPoint(t=t, center=(xy[0] + velocity[0] * t, xy[1] + velocity[1] * t, z), yaw=yaw, speed=speed)
        for t in np.arange(0.5, 3.01, 0.5)
    ]
    moved = agent.model_copy(
        update={
            "category": category,
            "box": agent.box.model_copy(update={"center": (xy[0], xy[1], z), "size": SIZES[category], "yaw": yaw}),
            "velocity": velocity,
            "future": future,
            "cameras": {"CAM_FRONT": CameraAnnotation(bbox=(0, 0, 10, 10), visible_fraction=1.0, depth=xy[0])},
        }
    )
    return scene.model_copy(update={"agents": [moved]})


def _checks(scene: Scene, **fact) -> bool | None:
    return check_fact(Fact(agent="x", **fact), scene)


@pytest.mark.parametrize(
    ("velocity", "expected"),
    [
        ((5.0, 0.5), DIRECTIONS[0]),
        ((-5.0, 0.5), DIRECTIONS[1]),
        ((0.3, -2.0), DIRECTIONS[2]),
        ((0.3, 2.0), DIRECTIONS[3]),
        ((3.0, 3.2), None),  # near 45 deg: not asked
        ((-3.0, -2.8), None),  # near 135 deg
    ],
)
def test_direction_by_angle_with_margins(velocity, expected):
    assert direction_of(velocity) == expected


def test_ttc_bins_skip_edges():
    assert ttc_bin(1.0) == "under 3 s"
    assert ttc_bin(2.9) is None and ttc_bin(3.2) is None
    assert ttc_bin(7.0) == "5 to 10 s"
    assert ttc_bin(math.inf) == "no collision course within 10 s"


def test_lane_status_in_enters_stays_out_and_edges(road):
    assert lane_status(road, place(road, (20.0, 0.0), (0.0, 0.0)).agents[0]) == IN
    crossing = place(road, (20.0, -6.0), (0.0, 2.0), Category.PEDESTRIAN)
    assert lane_status(crossing, crossing.agents[0]) == ENTERS
    alongside = place(road, (20.0, -3.5), (8.0, 0.0))
    assert lane_status(alongside, alongside.agents[0]) == STAYS_OUT
    grazing = place(road, (20.0, -3.5), (4.0, 0.2))  # ends up on the lane's edge, not over it
    assert lane_status(grazing, grazing.agents[0]) is None
    assert _checks(crossing, type="lane_status", value=ENTERS) is True
    assert _checks(crossing, type="lane_status", value=STAYS_OUT) is False


def test_a_fast_crosser_is_not_missed_between_track_points(road):
    """At 14 m/s it jumps 7 m per track point, from one side of the lane to the other."""
    scene = place(road, (25.0, -4.5), (0.0, 14.0), Category.MOTORCYCLE)
    lateral = [scene.agents[0].box.center[1]] + [p.center[1] for p in scene.agents[0].future]
    assert all(abs(y) - 0.9 > 1.25 for y in lateral)  # at no track point is it over the lane...
    assert lane_status(scene, scene.agents[0]) == ENTERS  # ...but its path crosses it


def test_ttc_and_its_facts(road):
    scene = place(road, (30.0, 0.0), (2.0, 0.0))
    agent, ego = scene.agents[0], scene.ego
    gap = 30.0 - agent.box.size[0] / 2 - ego.size[0] / 2
    assert time_to_collision(scene, agent) == pytest.approx(gap / (ego.speed - 2.0))
    assert _checks(scene, type="ttc", value=gap / (ego.speed - 2.0)) is True
    assert _checks(scene, type="ttc", value=gap / (ego.speed - 2.0) + 2.0) is False
    assert _checks(scene, type="ttc", value=None) is False
    faster = place(road, (30.0, 0.0), (ego.speed + 3.0, 0.0))
    assert math.isinf(time_to_collision(faster, faster.agents[0]))
    assert _checks(faster, type="ttc", value=None) is True
    assert _checks(scene, type="gap_ahead", value=gap) is True
    assert _checks(scene, type="gap_ahead", value=gap + 3.0) is False


def test_risk_levels_follow_the_rule(road):
    v = road.ego.speed
    assert v > 5.0
    front = road.ego.size[0] / 2
    high = place(road, (front + 2.25 + 10.0, 0.0), (v - 5.0, 0.0))  # closing at 5 m/s: 2 s to collision
    medium = place(road, (front + 2.25 + 30.0, 0.0), (v - 5.0, 0.0))  # 6 s
    oncoming_near = place(road, (12.0, 3.5), (-8.0, 0.0))  # closing in, in the next lane
    receding = place(road, (12.0, -3.5), (v + 5.0, 0.0))
    assert [risk_level(s, s.agents[0]) for s in (high, medium, oncoming_near, receding)] == [3, 2, 1, 0]
    at_edge = place(road, (front + 2.25 + 20.0, 0.0), (v - 5.0, 0.0))  # exactly 4 s: unclear
    assert risk_level(at_edge, at_edge.agents[0]) is None
    assert _checks(high, type="risk", value=3) is True
    assert _checks(high, type="risk", value=2) is False


def test_candidates_answer_by_the_rule_and_wrong_facts_fail(road):
    rng = np.random.default_rng(0)
    scene = place(road, (22.0, -6.0), (0.0, 1.6), Category.PEDESTRIAN)
    by_task = {name: list(TASKS[name].propose(scene, rng)) for name in ("direction", "enter_ego_lane", "ttc")}
    assert [s.meta["bucket"] for s in by_task["direction"]] == ["crossing from right to left"]
    assert [s.answer for s in by_task["enter_ego_lane"]] == ["yes"]
    assert len(by_task["ttc"]) == 1
    for samples in by_task.values():
        for step in samples[0].reference_steps:
            for fact in step.facts:
                assert check_fact(fact, scene) is True
    assert _checks(scene, type="velocity", value=[0.0, -1.6]) is False
    assert _checks(scene, type="agent_position", t=3.0, value=[22.0, -1.2]) is True
    assert _checks(scene, type="agent_position", t=3.0, value=[22.0, -6.0]) is False
    assert _checks(scene, type="direction", value=DIRECTIONS[2]) is False


def test_most_dangerous_has_a_unique_winner_bucketed_by_its_level():
    rng = np.random.default_rng(1)
    config = GeneratorConfig(scenarios={"lead_braking": 0.5, "occluded_pedestrian": 0.5})
    asked = 0
    for seed in range(40):
        scene = render_scene(generate_scene(seed, config), ["CAM_FRONT"]).scene
        for sample in TASKS["most_dangerous"].propose(scene, rng):
            asked += 1
            assert len(sample.choices) == 2
            levels = [f.value for f in sample.reference_steps[0].facts if f.type == "risk"]
            assert levels[0] == max(levels) and levels.count(levels[0]) == 1
            assert sample.meta["bucket"] == LEVELS[levels[0]]
    assert asked > 5
