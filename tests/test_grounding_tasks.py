"""Category, box_relation, blocked_lane and animal_action: answers and facts on hand-edited
scenes, and the questions that must not be asked when a margin is not met."""

from __future__ import annotations

import numpy as np
import pytest

from roadthink.render import render_scene
from roadthink.scene import GeneratorConfig, generate_scene
from roadthink.scene.types import Agent, CameraAnnotation, Category, Scene
from roadthink.tasks import TASKS, Fact
from roadthink.tasks.corner_cases import ANIMAL_ACTIONS, UNUSUAL, blocked, lane_offset
from roadthink.tasks.facts import check_fact
from roadthink.tasks.grounding import related
from roadthink.tasks.perception import singled_out

CAM = "CAM_FRONT"
NEAREST = "the road user nearest to the ego vehicle"


def _scenes(scenario: str, count: int = 40):
    config = GeneratorConfig(scenarios={scenario: 1.0})
    for seed in range(count):
        yield render_scene(generate_scene(seed, config), cameras=[CAM]).scene


def _first(scenario: str, ok) -> Scene:
    scene = next((s for s in _scenes(scenario) if ok(s)), None)
    assert scene is not None, f"no {scenario} scene fits"
    return scene


def _edit(scene: Scene, agent_id: str, **update) -> Scene:
    agents = [a.model_copy(update=update) if a.id == agent_id else a for a in scene.agents]
    return scene.model_copy(update={"agents": agents})


def _moved(agent: Agent, x: float, y: float) -> Agent:
    return agent.model_copy(update={"box": agent.box.model_copy(update={"center": (x, y, agent.box.center[2])})})


def _clone(agent: Agent, new_id: str, bbox, fraction: float = 1.0, **update) -> Agent:
    ann = CameraAnnotation(bbox=bbox, visible_fraction=fraction, depth=agent.cameras[CAM].depth)
    return agent.model_copy(update={"id": new_id, "cameras": {CAM: ann}, **update})


def _facts(sample) -> list[Fact]:
    return [f for step in sample.reference_steps for f in step.facts]


def _wrong(scene: Scene, fact: Fact, **update) -> bool | None:
    return check_fact(fact.model_copy(update=update), scene)


# --- category -------------------------------------------------------------------------------


def test_category_names_the_nearest_road_user_and_its_facts_flip():
    scene = _first("normal", lambda s: singled_out(s, NEAREST) is not None)
    target = singled_out(scene, NEAREST)
    sample = next(s for s in TASKS["category"].propose(scene, np.random.default_rng(0)) if s.meta["key"] == NEAREST)
    assert sample.meta["bucket"] == target.category.value.replace("_", " ")
    assert all(check_fact(f, scene) for f in _facts(sample))
    kind = next(f for f in _facts(sample) if f.type == "agent_category")
    other = "bus" if target.category is not Category.BUS else "car"
    assert _wrong(scene, kind, value=other) is False
    named = next(f for f in _facts(sample) if f.type == "singled_out")
    someone_else = next(a.id for a in scene.agents if a.id != target.id)
    assert _wrong(scene, named, agent=someone_else) is False


def test_category_is_not_asked_when_a_rival_is_nearly_as_near():
    scene = _first("normal", lambda s: singled_out(s, NEAREST) is not None)
    target = singled_out(scene, NEAREST)
    rival = next(a for a in scene.agents if a.id != target.id and CAM in a.cameras)
    x, y, _ = target.box.center
    scale = (np.hypot(x, y) + 1.0) / np.hypot(x, y)  # 1 m farther than the target: too close to call
    crowded = scene.model_copy(
        update={"agents": [_moved(rival, x * scale, y * scale) if a is rival else a for a in scene.agents]}
    )
    assert singled_out(crowded, NEAREST) is None
    # a half-hidden rival counts too: it might be the one meant
    hidden = rival.cameras[CAM].model_copy(update={"visible_fraction": 0.05})
    ghost = _moved(rival, x * scale, y * scale).model_copy(update={"cameras": {CAM: hidden}})
    assert (
        singled_out(scene.model_copy(update={"agents": [ghost if a is rival else a for a in scene.agents]}), NEAREST)
        is None
    )


# --- box_relation ---------------------------------------------------------------------------


def _cone_row(scene: Scene) -> Scene:
    """Three identical cones side by side in the image and a described car as anchor."""
    cone = next(a for a in scene.agents if a.category is Category.TRAFFIC_CONE and CAM in a.cameras)
    car = next(a for a in scene.agents if a.category is Category.CAR and CAM in a.cameras)
    cones = [
        _clone(cone, "c1", (100.0, 200.0, 120.0, 230.0)),
        _clone(cone, "c2", (400.0, 200.0, 420.0, 230.0)),
        _clone(cone, "c3", (500.0, 200.0, 520.0, 230.0)),
    ]
    anchor = _clone(car, "anchor", (200.0, 180.0, 300.0, 240.0))
    return scene.model_copy(update={"agents": [*cones, anchor]})


def test_box_relation_picks_the_only_look_alike_on_that_side():
    scene = _first("lane_closure", lambda s: any(a.category is Category.CAR and CAM in a.cameras for a in s.agents))
    scene = _cone_row(scene)
    cones = [a for a in scene.agents if a.id.startswith("c")]
    anchor = scene.agent("anchor")
    assert related(cones, anchor, "left_of", CAM).id == "c1"
    assert related(cones, anchor, "right_of", CAM) is None  # two cones to the right: ambiguous
    samples = [s for s in TASKS["box_relation"].propose(scene, np.random.default_rng(0)) if "left of" in s.question]
    assert len(samples) == 1 and samples[0].answer == [100.0, 200.0, 120.0, 230.0]
    assert samples[0].meta["bucket"] == "left"
    assert "the traffic cone to the left of the" in samples[0].question
    facts = _facts(samples[0])
    assert all(check_fact(f, scene) for f in facts)
    relation = next(f for f in facts if f.type == "relation_to")
    assert _wrong(scene, relation, relation="right_of") is False
    assert _wrong(scene, relation, agent="c2") is False


def test_box_relation_is_not_asked_when_a_look_alike_sits_beside_the_anchor():
    scene = _first("lane_closure", lambda s: any(a.category is Category.CAR and CAM in a.cameras for a in s.agents))
    scene = _cone_row(scene)
    near = _clone(scene.agent("c1"), "c4", (240.0, 200.0, 260.0, 230.0), fraction=0.1)  # half hidden, at the anchor
    crowded = scene.model_copy(update={"agents": [*scene.agents, near]})
    assert not [s for s in TASKS["box_relation"].propose(crowded, np.random.default_rng(0)) if "left of" in s.question]


def test_box_relation_is_not_asked_when_colour_and_category_suffice():
    scene = _first("lane_closure", lambda s: any(a.category is Category.CAR and CAM in a.cameras for a in s.agents))
    scene = _cone_row(scene)
    lone = scene.model_copy(update={"agents": [a for a in scene.agents if a.id in ("c1", "anchor")]})
    assert list(TASKS["box_relation"].propose(lone, np.random.default_rng(0))) == []


# --- blocked_lane ---------------------------------------------------------------------------


def _closure(answer: str) -> Scene:
    return _first("lane_closure", lambda s: blocked(s)[0] == answer)


def test_blocked_lane_ego_lane_and_its_facts_flip():
    scene = _closure("the ego's lane")
    (sample,) = TASKS["blocked_lane"].propose(scene, np.random.default_rng(0))
    assert sample.meta["bucket"] == "the ego's lane"
    facts = _facts(sample)
    assert all(check_fact(f, scene) for f in facts)
    lane = next(f for f in facts if f.type == "obstacle_lane")
    assert _wrong(scene, lane, value="left") is False
    answer = next(f for f in facts if f.type == "blocked_lane")
    assert _wrong(scene, answer, value="none") is False


def test_blocked_lane_neighbour_and_none():
    sides = ("the lane to the left", "the lane to the right")
    scene = _first("lane_closure", lambda s: blocked(s)[0] in sides)
    answer, in_sight = blocked(scene)
    lane = scene.map.lane(scene.ego.lane_id)
    side = "left" if answer == sides[0] else "right"
    assert {where for _, where in in_sight} == {side}
    assert (lane.left_neighbor if side == "left" else lane.right_neighbor) is not None
    calm = _first("normal", lambda s: s.ego.lane_id is not None and not any(a.category in UNUSUAL for a in s.agents))
    assert blocked(calm) == ("none", [])


def test_blocked_lane_is_not_asked_with_an_animal_in_a_lane():
    scene = _closure("the ego's lane")
    animal = next(a for a in scene.agents if a.category is Category.TRAFFIC_CONE).model_copy(
        update={"id": "dog", "category": Category.ANIMAL}
    )
    x, y, _ = animal.box.center
    with_animal = scene.model_copy(update={"agents": [*scene.agents, _moved(animal, x, y - 3.5)]})
    assert blocked(with_animal)[0] is None


def test_blocked_lane_is_not_asked_with_an_obstacle_on_a_lane_edge():
    scene = _first("road_debris", lambda s: blocked(s)[0] == "the ego's lane")
    debris = next(a for a in scene.agents if a.category is Category.DEBRIS)
    x, y, _ = debris.box.center
    edge = lane_offset(scene, (x, y)) - scene.map.lane(scene.ego.lane_id).width / 2
    on_edge = _edit(scene, debris.id, box=_moved(debris, x, y - edge + 0.1).box)
    assert blocked(on_edge)[0] is None
    assert list(TASKS["blocked_lane"].propose(on_edge, np.random.default_rng(0))) == []


def test_lane_offset_is_unknown_past_the_end_of_the_ego_lane():
    scene = _closure("the ego's lane")
    assert lane_offset(scene, (5000.0, 0.0)) is None
    assert lane_offset(scene, (20.0, 1.0)) == pytest.approx(1.0, abs=0.2)


# --- animal_action --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("velocity", "answer"),
    [
        ((0.0, 0.0), ANIMAL_ACTIONS[0]),
        ((0.1, -1.5), ANIMAL_ACTIONS[1]),
        ((-0.2, 1.5), ANIMAL_ACTIONS[2]),
        ((1.5, 0.5), None),
    ],
)
def test_animal_action_from_velocity(velocity, answer):
    scene = _first("animal_on_road", lambda s: any(TASKS["animal_action"].propose(s, np.random.default_rng(0))))
    animal = next(a for a in scene.agents if a.category is Category.ANIMAL)
    edited = _edit(scene, animal.id, velocity=velocity)
    samples = list(TASKS["animal_action"].propose(edited, np.random.default_rng(0)))
    if answer is None:
        assert samples == []  # walking along the road is neither answer: not asked
        return
    (sample,) = samples
    assert sample.meta["bucket"] == answer and [v.t for v in sample.views] == [-1.0, -0.5, 0.0]
    action = next(f for f in _facts(sample) if f.type == "animal_action")
    assert check_fact(action, edited) is True
    assert _wrong(edited, action, value=next(a for a in ANIMAL_ACTIONS if a != answer)) is False
