"""Traffic rules (roadthink.rules): every rule on a hand-built situation that breaks it and
one that keeps it, generated scenes against their ground truth and the bench's judge(), the
safest action, perception, and bad input."""

from __future__ import annotations

import time

import numpy as np
import pytest

from roadthink.errors import RoadthinkError
from roadthink.rules import (
    ALL_ACTIONS,
    RULES,
    Action,
    ActionParseError,
    RoadUser,
    Situation,
    parse_action,
    safest_action,
    situation_from_perception,
    situation_from_scene,
    verify,
)
from roadthink.rules.verifier import PROGRAM
from roadthink.scene import default_config, generate_scene
from roadthink.scene.types import Category, Intent, LightState, MarkingKind, Turn
from roadthink.tasks.planning import PROPOSALS, judge, meta_action_of

KEEP = Action(speed="keep")
ACCELERATE = Action(speed="accelerate")
DECELERATE = Action(speed="decelerate")
STOP = Action(speed="stop")
LEFT_CHANGE = Action(speed="keep", direction="left", lane_change=True)
LEFT_TURN = Action(speed="keep", direction="left", lane_change=False)


def broken(situation: Situation, action: Action | str) -> set[str]:
    return {v.rule for v in verify(situation, action).violations}


def user(category: Category, gap: float, **fields) -> RoadUser:
    """A road user ``gap`` metres ahead of the ego's front (negative: behind its rear), in the ego's lane
    unless told otherwise, standing still unless ``closing`` says how fast the gap shrinks."""
    fields = {"lanes": frozenset({"ego"}), "closing": 0.0, **fields}
    return RoadUser(id="u", category=category, x=gap + 2.3, y=0.0, gap=gap, **fields)


# --- every rule: a situation that breaks it, and one that keeps it --------------------------

# (rule, situation, action that breaks it, a legal action or situation for the same rule)
CASES = [
    # 10 m/s: keep needs 30 m + 16.7 m to stop comfortably, "decelerate" 16.7 m, "stop" 6.25 m
    ("red_light", Situation(ego_speed=10, stop_line=20, light=LightState.RED), KEEP, STOP),
    ("red_light", Situation(ego_speed=10, stop_line=15, light=LightState.RED), DECELERATE, STOP),
    ("yellow_light", Situation(ego_speed=10, stop_line=30, light=LightState.YELLOW), KEEP, DECELERATE),
    ("stop_sign", Situation(ego_speed=8, stop_line=15, stop_sign=True), KEEP, DECELERATE),
    (
        "yield_pedestrian",
        Situation(ego_speed=10, users=(user(Category.PEDESTRIAN, 15.0, crosswalk=14.0),)),
        DECELERATE,  # 16.7 m to stop: past the crosswalk's edge
        STOP,
    ),
    ("lead_ttc", Situation(ego_speed=10, users=(user(Category.CAR, 10.0, vx=4.0, closing=6.0),)), KEEP, DECELERATE),
    (
        "lead_braking",  # stops 15 + 12^2 / 12 = 27 m ahead; "decelerate" needs 24 m
        Situation(ego_speed=12, users=(user(Category.CAR, 15.0, vx=12.0, accel=-6.0),)),
        KEEP,
        DECELERATE,
    ),
    (
        "obstacle_in_lane",
        Situation(ego_speed=12, left_lane=True, users=(user(Category.DEBRIS, 25.0, closing=12.0),)),
        KEEP,
        LEFT_CHANGE,
    ),
    (
        "lane_gap",
        Situation(ego_speed=10, left_lane=True, users=(user(Category.CAR, 0.0, lanes=frozenset({"left"})),)),
        LEFT_CHANGE,
        KEEP,
    ),
    ("no_lane", Situation(ego_speed=10, left_lane=False), LEFT_CHANGE, KEEP),
    ("solid_line", Situation(ego_speed=10, left_lane=True, left_line=MarkingKind.SOLID_WHITE), LEFT_CHANGE, KEEP),
    ("no_turn", Situation(ego_speed=10, turns=frozenset({Turn.RIGHT})), LEFT_TURN, KEEP),
    ("speed_limit", Situation(ego_speed=16, speed_limit=13.9), KEEP, DECELERATE),
]

# (rule, situation, action): the rule's premise is missing or not met, so it stays silent
KEPT = [
    ("red_light", Situation(ego_speed=10, stop_line=20, light=LightState.GREEN), ACCELERATE),
    ("red_light", Situation(ego_speed=10, stop_line=80, light=LightState.RED), KEEP),  # 46.7 m: room to stop after
    ("yellow_light", Situation(ego_speed=10, stop_line=10, light=LightState.YELLOW), KEEP),  # too close to stop
    ("stop_sign", Situation(ego_speed=1.0, has_stopped=True, stop_line=2, stop_sign=True), ACCELERATE),
    ("stop_sign", Situation(ego_speed=8, stop_line=15, stop_sign=False), KEEP),
    (
        "yield_pedestrian",  # on the crosswalk but out of the ego's lane and not walking into it
        Situation(ego_speed=10, users=(user(Category.PEDESTRIAN, 15.0, crosswalk=14.0, lanes=frozenset()),)),
        KEEP,
    ),
    ("lead_ttc", Situation(ego_speed=10, users=(user(Category.CAR, 10.0, vx=7.0, closing=3.0),)), KEEP),
    ("lead_braking", Situation(ego_speed=12, users=(user(Category.CAR, 15.0, vx=12.0),)), KEEP),
    (
        "obstacle_in_lane",  # in the next lane: passing it is fine
        Situation(ego_speed=12, users=(user(Category.DEBRIS, 25.0, lanes=frozenset({"left"})),)),
        KEEP,
    ),
    (
        "lane_gap",  # 40 m ahead in the target lane and not closing in
        Situation(ego_speed=10, left_lane=True, users=(user(Category.CAR, 40.0, lanes=frozenset({"left"})),)),
        LEFT_CHANGE,
    ),
    ("no_lane", Situation(ego_speed=10, left_lane=True), LEFT_CHANGE),
    ("solid_line", Situation(ego_speed=10, left_lane=True, left_line=MarkingKind.DASHED_WHITE), LEFT_CHANGE),
    ("no_turn", Situation(ego_speed=10, turns=frozenset({Turn.LEFT})), LEFT_TURN),
    ("no_turn", Situation(ego_speed=10), LEFT_TURN),  # turns unknown: silent
    ("speed_limit", Situation(ego_speed=10, speed_limit=13.9), ACCELERATE),
]


def test_every_rule_has_cases_and_one_source():
    assert {c[0] for c in CASES} == set(RULES) == {c[0] for c in KEPT}
    for rule in RULES.values():
        assert rule.statement and rule.because and rule.weight > 0
        assert f"because({rule.name}, A" in PROGRAM and f"weight({rule.name}, {rule.weight})." in PROGRAM


@pytest.mark.parametrize(("rule", "situation", "bad", "good"), CASES, ids=[c[0] for c in CASES])
def test_rule_broken_and_kept(rule: str, situation: Situation, bad: Action, good: Action):
    verdict = verify(situation, bad)
    assert rule in {v.rule for v in verdict.violations}
    assert not verdict.legal and verdict.explanation.startswith(f'"{bad}" is not allowed')
    assert RULES[rule].weight == next(v.weight for v in verdict.violations if v.rule == rule)
    assert verify(situation, good).legal, verify(situation, good).explanation


@pytest.mark.parametrize(("rule", "situation", "action"), KEPT, ids=[c[0] for c in KEPT])
def test_rule_silent_without_its_premise(rule: str, situation: Situation, action: Action):
    assert rule not in broken(situation, action)


def test_lane_gap_counts_closing_speed_from_behind():
    behind = user(Category.CAR, -10.0, lanes=frozenset({"left"}), vx=15.0, closing=5.0)  # needs 5 + 2 * 5 m
    assert "lane_gap" in broken(Situation(ego_speed=10, left_lane=True, users=(behind,)), LEFT_CHANGE)
    slower = behind.model_copy(update={"vx": 8.0, "closing": -2.0})
    assert "lane_gap" not in broken(Situation(ego_speed=10, left_lane=True, users=(slower,)), LEFT_CHANGE)


def test_plain_left_is_a_turn_at_a_junction_and_a_lane_change_elsewhere():
    junction = Situation(ego_speed=8, left_lane=False, turns=frozenset({Turn.LEFT}))
    road = Situation(ego_speed=8, left_lane=False, turns=frozenset())
    assert verify(junction, "keep, left").legal
    assert broken(road, "keep, left") == {"no_lane"}


def test_explanation_names_the_road_user_and_distances():
    situation = CASES[4][1]
    verdict = verify(situation, KEEP)
    assert "the pedestrian u" in verdict.explanation and "14.0 m" in verdict.explanation
    assert verdict.safest == STOP and '"stop, straight"' in verdict.explanation


# --- the safest action ----------------------------------------------------------------------

SITUATIONS = [c[1] for c in CASES] + [
    Situation(  # nothing is legal: a red line too close to stop for, the car alongside in the only other lane
        ego_speed=15,
        stop_line=5,
        light=LightState.RED,
        left_lane=True,
        right_lane=False,
        users=(user(Category.CAR, 0.0, lanes=frozenset({"left"})),),
    )
]


@pytest.mark.parametrize("situation", SITUATIONS)
def test_safest_action_is_legal_when_possible_and_keeps_a_legal_proposal(situation: Situation):
    weights = {a: sum(v.weight for v in verify(situation, a).violations) for a in ALL_ACTIONS}
    legal = {a for a, w in weights.items() if w == 0}
    for proposed in (KEEP, LEFT_CHANGE, ACCELERATE, STOP):
        safest = safest_action(situation, proposed)
        assert safest == proposed if proposed in legal else weights[safest] == min(weights.values())
        if legal:
            assert safest in legal
    if not legal:
        verdict = verify(situation, KEEP)
        assert "No action keeps every rule" in verdict.explanation


def test_veto_changes_as_little_as_it_must():
    far_red = Situation(ego_speed=10, stop_line=25, light=LightState.RED)  # decelerate (16.7 m) is enough
    assert safest_action(far_red, KEEP) == DECELERATE
    assert safest_action(far_red, "accelerate, straight") == DECELERATE


# --- generated scenes -----------------------------------------------------------------------


def scenes(n: int, **update) -> list:
    config = default_config().model_copy(update=update)
    return [generate_scene(seed, config) for seed in range(n)]


def test_lead_braking_hard_keep_is_vetoed_and_the_fix_slows():
    for scene in scenes(8, scenarios={"lead_braking": 1.0}):
        verdict = verify(scene, KEEP)
        assert {"lead_braking", "lead_ttc"} & {v.rule for v in verdict.violations}, scene.scene_id
        assert verdict.safest.speed in ("decelerate", "stop")


def test_pedestrian_stepping_out_vetoes_keeping_speed():
    for scene in scenes(8, scenarios={"occluded_pedestrian": 1.0}):
        verdict = verify(scene, KEEP)
        named = [v for v in verdict.violations if v.rule in ("obstacle_in_lane", "lead_ttc", "lead_braking")]
        walker = next(a for a in scene.agents if a.intent is Intent.CROSSING)
        assert any(walker.id in v.explanation for v in named), verdict.explanation


def test_lane_closure_blocks_exactly_the_closed_ego_lane():
    """Cones close the ego's own lane exactly when the generator plans a lane change round them."""
    for scene in scenes(16, scenarios={"lane_closure": 1.0}):
        closed = scene.ego.intent in (Intent.CHANGING_LANE_LEFT, Intent.CHANGING_LANE_RIGHT)
        assert ("obstacle_in_lane" in broken(situation_from_scene(scene), KEEP)) == closed, scene.scene_id
        plan = meta_action_of(scene)
        if plan is not None:
            assert "obstacle_in_lane" not in broken(situation_from_scene(scene), plan)


def test_green_lights_never_count_as_red():
    for scene in scenes(10, layouts={"intersection": 1.0}, signal_states={LightState.GREEN: 1.0}):
        situation = situation_from_scene(scene)
        for action in ALL_ACTIONS:
            assert not {"red_light", "yellow_light"} & broken(situation, action)


def test_red_lights_the_reference_driver_mostly_obeys():
    """The generator's ego stops for red lights (IDM with the line as a virtual leader): its
    plan should rarely break the red-light rule (a light turning green within 3 s is the usual exception)."""
    plans = [
        (scene, plan)
        for scene in scenes(
            40,
            layouts={"intersection": 1.0},
            scenarios={"normal": 1.0},
            signal_states={LightState.RED: 1.0},
            ego_approach=(5.0, 40.0),
        )
        if (plan := meta_action_of(scene)) is not None
    ]
    running = sum("red_light" in broken(situation_from_scene(s), p) for s, p in plans)
    reds = sum(situation_from_scene(s).light is LightState.RED for s, _ in plans)
    assert len(plans) >= 30 and reds >= 20 and running <= 0.05 * len(plans)


JUDGED = {  # judge() proposals as actions
    "keep": KEEP,
    "accelerate": ACCELERATE,
    "junction": ACCELERATE,
    "left": LEFT_CHANGE,
    "right": Action(speed="keep", direction="right", lane_change=True),
}


def _judged_rule(verdict) -> str | None:
    """The rule of ours that judge()'s "not legal" verdict rests on."""
    if verdict.speeding:
        return "speed_limit"
    if verdict.light is not None:
        return "red_light" if "red" in verdict.rule else "yellow_light"
    if verdict.stop_sign:
        return "stop_sign"
    return "no_lane" if "no lane" in verdict.rule else "solid_line"


def test_agrees_with_the_bench_judge_on_100_scenes():
    """Wherever the bench's judge() says a proposal runs a red or yellow light, a stop sign,
    changes into no lane or across a solid line, or speeds, the verifier breaks the same rule."""
    signalised = scenes(
        60,
        layouts={"intersection": 1.0},
        scenarios={"normal": 1.0},
        signal_states={LightState.RED: 0.7, LightState.YELLOW: 0.2, LightState.GREEN: 0.1},
        ego_approach=(5.0, 30.0),
    )
    agree, illegal = 0, []
    for scene in [*signalised, *scenes(40)]:
        situation = situation_from_scene(scene)
        for key in PROPOSALS:
            verdict = judge(scene, key)
            if verdict is None or verdict.legal is not False:
                continue
            rule = _judged_rule(verdict)
            illegal.append(rule)
            agree += rule in broken(situation, JUDGED[key])
    counts = {rule: illegal.count(rule) for rule in sorted(set(illegal))}
    assert counts.get("red_light", 0) >= 15 and len(illegal) >= 50, counts
    assert agree == len(illegal), f"{agree}/{len(illegal)} agree: {counts}"


# --- perception -----------------------------------------------------------------------------


def test_perception_with_noisy_detections_matches_ground_truth():
    """Detections jittered by 0.3 m and 0.3 m/s give the ground truth's verdicts on straight roads."""
    rng = np.random.default_rng(0)
    same = total = 0
    for scene in scenes(12, layouts={"straight": 1.0}):
        truth = situation_from_scene(scene)
        detections = [
            {
                "category": a.category.value,
                "x": a.box.center[0] + rng.normal(0, 0.3),
                "y": a.box.center[1] + rng.normal(0, 0.15),
                "vx": a.velocity[0] + rng.normal(0, 0.3),
                "vy": a.velocity[1],
                "accel": a.accel,
            }
            for a in scene.agents
        ]
        perceived = situation_from_perception(
            detections,
            scene.ego.speed,
            speed_limit=truth.speed_limit,
            left_lane=truth.left_lane,
            right_lane=truth.right_lane,
            left_line=truth.left_line,
            right_line=truth.right_line,
            turns=[],
        )
        for action in ALL_ACTIONS:
            total += 1
            same += verify(truth, action).legal == verify(perceived, action).legal
    assert same >= 0.95 * total, f"{same}/{total}"


def test_perceived_light_crosswalk_and_pedestrian():
    crossing = [{"category": "pedestrian", "x": 18.0, "y": 2.5, "vy": -1.4}]  # walking into the ego's lane
    situation = situation_from_perception(crossing, 10.0, crosswalk=(16.5, 19.5), stop_line=30.0, light="red")
    user_ = situation.users[0]
    assert user_.entering and user_.crosswalk == pytest.approx(16.5 - 2.3)
    assert broken(situation, KEEP) == {"yield_pedestrian", "red_light", "lead_ttc"}  # 15.4 m at 10 m/s
    assert verify(situation, STOP).legal
    assert verify(situation_from_perception([], 10.0, stop_line=30.0, light="green"), KEEP).legal


# --- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("keep, straight", KEEP),
        ("Stop", STOP),
        ("decelerate, straight", DECELERATE),
        ("accelerate, left", Action(speed="accelerate", direction="left")),
        ("slow down and change to the left lane", Action(speed="decelerate", direction="left", lane_change=True)),
        ("turn right", Action(speed="keep", direction="right", lane_change=False)),
        ("brake and come to a stop", STOP),
        ("continue at the same speed", KEEP),
        ("go straight ahead", KEEP),
        ("speed up and overtake on the left", Action(speed="accelerate", direction="left", lane_change=True)),
    ],
)
def test_parse_action(text: str, expected: Action):
    assert parse_action(text) == expected


@pytest.mark.parametrize(
    "text",
    ["", "fly to the moon", "accelerate and slow down", "stop, left", "turn", "change lanes", "left and right", "x\ny"],
)
def test_unreadable_action_is_a_one_line_error(text: str):
    with pytest.raises(ActionParseError) as caught:
        parse_action(text)
    message = str(caught.value)
    assert isinstance(caught.value, ValueError) and isinstance(caught.value, RoadthinkError)
    assert "\n" not in message and repr(text)[:20] in message
    with pytest.raises(ValueError, match="cannot read a driving action"):
        verify(Situation(ego_speed=5), text)


def test_bad_detection_and_situation_are_one_line_errors():
    with pytest.raises(RoadthinkError, match=r"^detection 1: category: ") as caught:
        situation_from_perception([{"category": "car", "x": 5, "y": 0}, {"category": "ufo", "x": 1, "y": 1}], 5.0)
    assert "\n" not in str(caught.value)
    with pytest.raises(RoadthinkError, match="Situation or a Scene"):
        verify({"ego_speed": 5}, KEEP)
    with pytest.raises(ActionParseError, match="an action is text"):
        verify(Situation(ego_speed=5), None)


def test_every_action_round_trips_and_stop_goes_straight():
    assert len(set(ALL_ACTIONS)) == len(ALL_ACTIONS) == 16
    for action in ALL_ACTIONS:
        assert parse_action(str(action)) == action
    with pytest.raises(ValueError):
        Action(speed="stop", direction="left")


def test_verify_is_fast():
    scene = scenes(1, layouts={"intersection": 1.0})[0]
    verify(scene, KEEP)
    start = time.perf_counter()
    for action in ALL_ACTIONS:
        verify(scene, action)
    assert (time.perf_counter() - start) / len(ALL_ACTIONS) < 0.05
