"""Planning tasks: waypoints of the reference plan, and the safe-and-legal rule for proposed
manoeuvres, checked on scenes edited so that one thing (a light, a marking, a car) flips
the answer."""

from __future__ import annotations

import math
from functools import cache

import numpy as np

from roadthink.scene import GeneratorConfig, generate_scene
from roadthink.scene.types import Category, LightState, MarkingKind, Scene, Sign, SignKind, TrackPoint
from roadthink.tasks import TASKS, Fact
from roadthink.tasks.facts import check_fact
from roadthink.tasks.planning import MANOEUVRES, judge, manoeuvre

RNG = np.random.default_rng(0)


@cache
def _scenes(layout: str, scenario: str = "normal", n: int = 120) -> tuple[Scene, ...]:
    config = GeneratorConfig(layouts={layout: 1.0}, scenarios={scenario: 1.0})
    return tuple(generate_scene(seed, config) for seed in range(n))


@cache
def _lane_change_scene() -> Scene:
    """A straight-road scene where changing lanes to the left is safe and legal."""
    return next(s for s in _scenes("straight") if (v := judge(s, "left")) is not None and v.answer == "yes")


def _with_light(scene: Scene, state: LightState, time_to_change: float = 30.0) -> Scene:
    """``scene`` with the ego's light forced to ``state`` for ``time_to_change`` seconds."""
    edited = scene.model_copy(deep=True)
    for light in edited.map.lights:
        if scene.ego.lane_id in light.lane_ids:
            light.state, light.time_to_change = state, time_to_change
    return edited


@cache
def _junction_scene() -> Scene:
    """An intersection approach where, on green, driving straight through is safe and legal."""
    for scene in _scenes("intersection", n=200):
        green = _with_light(scene, LightState.GREEN)
        verdict = judge(green, "junction")
        if verdict is not None and verdict.answer == "yes":
            return green
    raise AssertionError("no intersection scene to test with")


def _samples(scene: Scene, name: str) -> dict:
    return {s.meta["key"]: s for s in TASKS[name].propose(scene, RNG)}


def _alongside(scene: Scene, lateral: float, lane_id: str) -> Scene:
    """``scene`` with a car driving beside the ego, ``lateral`` metres to its left, at its speed."""
    edited = scene.model_copy(deep=True)
    template = next(a for a in edited.agents if a.category is Category.CAR)
    v, z = scene.ego.speed, template.box.center[2]
    future = [TrackPoint(t=0.5 * k, center=(v * 0.5 * k, lateral, z), yaw=0.0, speed=v) for k in range(1, 7)]
    car = template.model_copy(
        update={
            "id": "intruder",
            "box": template.box.model_copy(update={"center": (0.0, lateral, z), "yaw": 0.0}),
            "velocity": (v, 0.0),
            "lane_id": lane_id,
            "future": future,
        }
    )
    edited.agents.append(car)
    return edited


def test_waypoints_are_the_reference_plan_rounded():
    scene = _lane_change_scene()
    sample = _samples(scene, "waypoints")["plan"]
    assert sample.answer == [[round(p.center[0], 1), round(p.center[1], 1)] for p in scene.ego.future]
    assert len(sample.answer) == 6 and sample.meta["bucket"] in MANOEUVRES
    assert [v.t for v in sample.views] == [-1.0, -0.5, 0.0]
    assert "m/s" not in sample.question  # seen in the frames, not read in the question
    position = next(f for step in sample.reference_steps for f in step.facts if f.type == "ego_position")
    assert check_fact(position, scene) is True
    moved = position.model_copy(update={"value": [position.value[0] + 3.0, position.value[1]]})
    assert check_fact(moved, scene) is False


def test_manoeuvre_classes_turns_and_speed_changes():
    scene = _lane_change_scene().model_copy(deep=True)
    end = scene.ego.future[-1]
    scene.ego.future[-1] = end.model_copy(update={"center": (end.center[0], 0.0, end.center[2]), "yaw": 0.0})
    for speed, expected in ((scene.ego.speed + 2.0, "accelerate"), (scene.ego.speed, "keep"), (0.0, "decelerate")):
        scene.ego.future[-1] = scene.ego.future[-1].model_copy(update={"speed": speed})
        assert manoeuvre(scene) == expected
    scene.ego.future[-1] = scene.ego.future[-1].model_copy(update={"center": (end.center[0], 3.5, end.center[2])})
    assert manoeuvre(scene) == "turn or lane change"


def test_a_free_neighbour_lane_is_a_yes_with_facts_that_check():
    scene = _lane_change_scene()
    sample = _samples(scene, "action_safety")["left"]
    assert sample.answer == "yes"
    facts = [f for step in sample.reference_steps for f in step.facts]
    assert facts and all(check_fact(f, scene) is True for f in facts)
    assert 2 <= len(sample.reference_steps) <= 6


def test_wrong_facts_are_false():
    scene = _lane_change_scene()
    facts = {f.type: f for step in _samples(scene, "action_safety")["left"].reference_steps for f in step.facts}
    wrong = {
        "action_legal": False,
        "action_safe": False,
        "lane_neighbor": "nowhere",
        "marking_crossed": MarkingKind.SOLID_WHITE.value,
    }
    for fact_type, value in wrong.items():
        assert check_fact(facts[fact_type].model_copy(update={"value": value}), scene) is False, fact_type
    if "clearance" in facts:
        clearance = facts["clearance"]
        assert check_fact(clearance.model_copy(update={"value": clearance.value + 3.0}), scene) is False
    assert check_fact(Fact(type="stop_sign", lane=scene.ego.lane_id, value=True), scene) is False
    assert check_fact(Fact(type="lane_neighbor", lane=scene.ego.lane_id, side="up", value=None), scene) is None


def test_a_car_in_the_target_lane_makes_the_lane_change_unsafe():
    scene = _lane_change_scene()
    target = scene.map.lane(scene.ego.lane_id).left_neighbor
    verdict = judge(_alongside(scene, 3.5, target), "left")
    assert verdict.safe is False and verdict.closest == "intruder" and verdict.answer == "no"


def test_a_solid_line_or_no_neighbour_makes_the_lane_change_illegal():
    scene = _lane_change_scene()
    solid = scene.model_copy(deep=True)
    for marking in solid.map.markings:
        if marking.kind is MarkingKind.DASHED_WHITE:
            marking.kind = MarkingKind.SOLID_WHITE
    verdict = judge(solid, "left")
    assert verdict.legal is False and verdict.marking is MarkingKind.SOLID_WHITE and verdict.answer == "no"
    lonely = scene.model_copy(deep=True)
    lonely.map.lane(scene.ego.lane_id).left_neighbor = None
    verdict = judge(lonely, "left")
    assert verdict.legal is False and verdict.target is None and verdict.answer == "no"
    sample = _samples(lonely, "action_safety")["left"]
    neighbour = next(f for step in sample.reference_steps for f in step.facts if f.type == "lane_neighbor")
    assert neighbour.value is None and check_fact(neighbour, lonely) is True


def test_a_red_light_flips_driving_through_the_junction_to_no():
    green = _junction_scene()
    red = _with_light(green, LightState.RED)
    verdict = judge(red, "junction")
    assert verdict.legal is False and verdict.answer == "no" and "red" in verdict.rule
    sample = _samples(red, "action_safety")["junction"]
    facts = [f for step in sample.reference_steps for f in step.facts]
    assert any(f.type == "light_state" and f.value == "red" for f in facts)
    assert all(check_fact(f, red) is True for f in facts)


def test_a_yellow_light_is_for_stopping_only_when_the_ego_can_stop_comfortably():
    yellow = _with_light(_junction_scene(), LightState.YELLOW)
    verdict = judge(yellow, "junction")
    line = next(s for s in yellow.map.stop_lines if yellow.ego.lane_id in s.lane_ids)
    gap = float(np.mean(yellow.world_to_ego(np.asarray(line.points))[:, 0])) - yellow.ego.size[0] / 2
    stopping = yellow.ego.speed**2 / (2 * 3.0)
    assert verdict.legal is (None if abs(gap - stopping) < 2.0 else gap < stopping)


def test_a_stop_sign_forbids_driving_through_without_stopping():
    scene = _junction_scene().model_copy(deep=True)
    light = next(lt for lt in scene.map.lights if scene.ego.lane_id in lt.lane_ids)
    scene.map.lights.remove(light)
    scene.map.signs.append(
        Sign(id="stop", kind=SignKind.STOP, position=light.position, yaw=light.yaw, lane_ids=light.lane_ids)
    )
    verdict = judge(scene, "junction")
    assert verdict.legal is False and verdict.stop_sign
    assert check_fact(Fact(type="stop_sign", lane=scene.ego.lane_id, value=True), scene) is True


def test_close_calls_are_not_asked():
    green = _junction_scene()
    changing = _with_light(green, LightState.GREEN, time_to_change=0.5)
    assert judge(changing, "junction").legal is None
    assert "junction" not in _samples(changing, "action_safety")
    scene = _lane_change_scene().model_copy(deep=True)
    pose = scene.ego.pose
    scene.ego.pose = pose.model_copy(update={"x": pose.x - math.sin(pose.yaw), "y": pose.y + math.cos(pose.yaw)})
    assert all(judge(scene, key) is None for key in ("keep", "left", "right", "accelerate"))
    assert not _samples(scene, "action_safety")


def test_speeding_is_illegal_but_not_asked():
    scene = _lane_change_scene().model_copy(deep=True)
    scene.ego.speed = scene.map.lane(scene.ego.lane_id).speed_limit + 3.0
    verdict = judge(scene, "keep")
    assert verdict.legal is False and verdict.speeding
    assert "keep" not in _samples(scene, "action_safety")


def test_each_proposal_has_one_wording():
    """The question text varies with the proposal only: that is the balance key."""
    samples = [s for scene in _scenes("straight", n=30) for s in TASKS["action_safety"].propose(scene, RNG)]
    samples += list(TASKS["action_safety"].propose(_junction_scene(), RNG))
    wordings = {}
    for s in samples:
        wordings.setdefault(s.meta["key"], set()).add(s.question)
    assert set(wordings) == {"keep", "accelerate", "left", "right", "junction"}
    assert all(len(texts) == 1 for texts in wordings.values())
