"""Spatial tasks: the axis and lane rules, their margins, and facts that flip when the scene does."""

from __future__ import annotations

import numpy as np
import pytest
import shapely

from roadthink.render import render_scene
from roadthink.scene import GeneratorConfig, generate_scene
from roadthink.scene.types import Agent, Category, Scene
from roadthink.tasks import TASKS
from roadthink.tasks.build import BENCH_CONFIG
from roadthink.tasks.facts import CHECKERS, check_fact, check_steps
from roadthink.tasks.lanes import ego_corridor, lane_shapes
from roadthink.tasks.sample import Fact, Sample
from roadthink.tasks.spatial import (
    LANE_MARGIN,
    bev_name,
    dominant_axis,
    lane_at,
    nearest_in_corridor,
    seen_from,
)

NEW = ("position", "relative_position", "perspective", "lane", "nearest_in_lane")


@pytest.fixture(scope="module")
def scenes() -> list[Scene]:
    config = GeneratorConfig(scenarios=BENCH_CONFIG.scenarios)
    return [render_scene(generate_scene(seed, config)).scene for seed in range(40)]


def _samples(scenes: list[Scene], name: str) -> list[tuple[Scene, Sample]]:
    rng = np.random.default_rng(0)
    return [(scene, s) for scene in scenes for s in TASKS[name].propose(scene, rng)]


def _moved(scene: Scene, agent_id: str, x: float, y: float, **update) -> Scene:
    """``scene`` with one agent's box centre at (x, y) (and other fields replaced)."""
    agents = []
    for a in scene.agents:
        if a.id == agent_id:
            box = a.box.model_copy(update={"center": (x, y, a.box.center[2])})
            a = a.model_copy(update={"box": box, **update})
        agents.append(a)
    return scene.model_copy(update={"agents": agents})


def _wrong(fact: Fact, value) -> Fact:
    return fact.model_copy(update={"value": value})


def test_dominant_axis_needs_a_clear_margin_from_the_diagonals():
    assert dominant_axis(10.0, 1.0) == "ahead"
    assert dominant_axis(-10.0, 1.0) == "behind"
    assert dominant_axis(1.0, 10.0) == "left"
    assert dominant_axis(1.0, -10.0) == "right"
    assert dominant_axis(10.0, 9.0) is None  # 42 deg: too near the diagonal
    assert dominant_axis(10.0, 5.0) == "ahead"  # 27 deg: 18 deg from the diagonal
    assert dominant_axis(10.0, 9.0, margin=0.0) == "ahead"


def _agent(agent: Agent, category: Category, x: float, y: float) -> Agent:
    box = agent.box.model_copy(update={"center": (x, y, agent.box.center[2])})
    return agent.model_copy(update={"category": category, "box": box})


def test_bev_names_go_by_kind_then_by_a_clearly_nearest_one(scenes):
    base = scenes[0].agents[0]
    truck, car1, car2, car3 = (
        _agent(base, Category.TRUCK, 5.0, 0.0),
        _agent(base, Category.CAR, 8.0, 0.0),
        _agent(base, Category.CAR, 20.0, 0.0),
        _agent(base, Category.CAR, 9.0, 3.0),
    )
    assert bev_name(truck, [truck, car1, car2]) == "the truck"
    assert bev_name(car1, [truck, car1, car2]) == "the car nearest to the ego"
    assert bev_name(car2, [truck, car1, car2]) is None
    assert bev_name(car1, [truck, car1, car2, car3]) is None  # another car is about as near


def test_every_fact_type_has_a_checker_and_the_references_hold(scenes):
    for name in NEW:
        samples = _samples(scenes, name)
        assert samples, name
        for scene, sample in samples[:200]:
            assert {f.type for st in sample.reference_steps for f in st.facts} <= set(CHECKERS)
            assert all(v is True for v in check_steps(sample.reference_steps, scene)), sample.id
            assert 2 <= len(sample.reference_steps) <= 6


def _fact(sample: Sample, fact_type: str) -> Fact:
    return next(f for st in sample.reference_steps for f in st.facts if f.type == fact_type)


@pytest.mark.parametrize(
    ("task", "fact_type", "values"),
    [
        ("position", "position", ("ahead", "behind", "left", "right")),
        ("relative_position", "relative", ("ahead", "behind", "left", "right")),
        ("perspective", "perspective", ("left", "right")),
        ("lane", "lane_of", ("ego", "left", "right", "oncoming", "none")),
    ],
)
def test_a_wrong_answer_fact_is_false(scenes, task, fact_type, values):
    scene, sample = _samples(scenes, task)[0]
    fact = _fact(sample, fact_type)
    for value in values:
        assert check_fact(_wrong(fact, value), scene) is (value == fact.value)


def test_moving_the_road_user_flips_its_position(scenes):
    scene, sample = _samples(scenes, "position")[0]
    fact = _fact(sample, "position")
    agent = scene.agent(fact.agent)
    x, y = agent.box.center[:2]
    mirrored = _moved(scene, agent.id, -x, -y)
    assert check_fact(fact, mirrored) is False
    assert check_fact(_fact(sample, "offset"), mirrored) is False


def test_perspective_turns_with_the_observer(scenes):
    scene, sample = _samples(scenes, "perspective")[0]
    fact = _fact(sample, "perspective")
    observer = scene.agent(fact.agent)
    _, left = seen_from(observer, scene.agent(fact.other))
    assert (left > 0) == (fact.value == "left")
    turned = scene.model_copy(
        update={
            "agents": [
                a.model_copy(update={"box": a.box.model_copy(update={"yaw": a.box.yaw + np.pi})})
                if a.id == observer.id
                else a
                for a in scene.agents
            ]
        }
    )
    assert check_fact(fact, turned) is False  # facing the other way swaps left and right
    assert check_fact(_fact(sample, "heading"), turned) is False


def test_standing_road_users_are_not_asked_to_take_a_perspective(scenes):
    scene, sample = _samples(scenes, "perspective")[0]
    observer = _fact(sample, "perspective").agent
    still = scene.model_copy(
        update={
            "agents": [a.model_copy(update={"velocity": (0.0, 0.0)}) if a.id == observer else a for a in scene.agents]
        }
    )
    rng = np.random.default_rng(0)
    asked = [_fact(s, "perspective").agent for s in TASKS["perspective"].propose(still, rng)]
    assert observer not in asked


def test_lane_edges_are_not_clear_and_lane_middles_are(scenes):
    scene = scenes[0]
    shapes = lane_shapes(scene)
    ego_lane = shapes[scene.ego.lane_id]
    middle = ego_lane.line.interpolate(ego_lane.line.project(shapely.Point(10.0, 0.0)))
    assert lane_at(shapes, middle.x, middle.y) == (True, ego_lane.lane)
    half = ego_lane.lane.width / 2
    assert lane_at(shapes, middle.x, middle.y + half - LANE_MARGIN / 2)[0] is False
    assert lane_at(shapes, 0.0, 500.0) == (True, None)


def test_nearest_in_lane_is_not_asked_when_the_nearest_straddles_the_edge(scenes):
    found = [(sc, s) for sc, s in _samples(scenes, "nearest_in_lane") if not s.meta["bucket"].startswith("nobody")]
    scene, sample = found[0]
    target = scene.agent(_fact(sample, "nearest_in_lane").value)
    assert nearest_in_corridor(scene).id == target.id
    shapes = lane_shapes(scene)
    lane = shapes[ego_corridor(scene)[0]]
    x = float(target.box.center[0])
    centre = lane.line.interpolate(lane.line.project(shapely.Point(x, 0.0)))
    on_edge = _moved(scene, target.id, x, centre.y + lane.lane.width / 2)
    assert list(TASKS["nearest_in_lane"].propose(on_edge, np.random.default_rng(0))) == []
    outside = _moved(scene, target.id, x, centre.y + lane.lane.width / 2 + 2.0)
    assert check_fact(_fact(sample, "nearest_in_lane"), outside) is False
    assert check_fact(_fact(sample, "in_ego_lane"), outside) is False


def test_nearest_in_lane_offers_the_same_four_groups_every_time(scenes):
    """Options naming the road users in view would let a blind model guess from the names."""
    found = _samples(scenes, "nearest_in_lane")
    assert {s.meta["bucket"] for _, s in found} >= {"a car", "nobody: the lane ahead is clear"}
    for _, sample in found:
        assert sorted(c[3:] for c in sample.choices) == sorted(TASKS["nearest_in_lane"].buckets)
