"""Deterministic scoring against hand-computed examples."""

from __future__ import annotations

import json
import math
from functools import cache
from typing import Any

import pytest

from roadthink.eval.metrics import aggregate, covers, headings, iou, score, wilson
from roadthink.eval.result import Parsed, Result
from roadthink.scene import GeneratorConfig, generate_scene
from roadthink.scene.types import Scene, TrackPoint
from roadthink.tasks import AnswerType, Fact, Sample, Step
from roadthink.tasks.views import distance

STRAIGHT = [[1.0, 0.0], [2.0, 0.0], [3.0, 0.0], [4.0, 0.0], [5.0, 0.0], [6.0, 0.0]]


def _sample(answer_type: AnswerType, answer: Any, steps: list[Step] | None = None) -> Sample:
    return Sample(
        id="s1",
        family="f",
        task="t",
        question="?",
        answer=answer,
        answer_type=answer_type,
        scene_id="scene",
        reference_steps=steps or [],
    )


@cache
def _scene() -> Scene:
    return generate_scene(0, GeneratorConfig())


def _with_agents(*tracks: list[tuple[float, float]], size: tuple[float, float] = (4.6, 1.9)) -> Scene:
    """The test scene with only agents following ``tracks`` (centres at 0.5 ... 3 s, yaw 0)
    with boxes of ``size`` (length, width)."""
    scene = _scene().model_copy(deep=True)
    template = scene.agents[0]
    box = template.box.model_copy(update={"size": (*size, 1.5), "yaw": 0.0})
    scene.agents = [
        template.model_copy(
            update={
                "id": f"x{i}",
                "box": box.model_copy(update={"center": (*track[0], 0.75)}),
                "future": [
                    TrackPoint(t=0.5 * (k + 1), center=(x, y, 0.75), yaw=0.0, speed=0.0)
                    for k, (x, y) in enumerate(track)
                ],
            }
        )
        for i, track in enumerate(tracks)
    ]
    return scene


def _result(correct: bool | None = None, **fields: Any) -> Result:
    defaults: dict[str, Any] = {"id": "r", "family": "f", "task": "t", "answer_type": "choice", "prediction": ""}
    return Result(**{**defaults, "correct": correct, **fields})


# --- score: questions with a right answer ---------------------------------------------------


def test_choice_and_yes_no_are_exact_but_not_case_sensitive():
    assert score(_sample(AnswerType.CHOICE, "B"), Parsed(value="b")).model_dump() == {
        "correct": True,
        "score": 1.0,
        "details": {},
    }
    assert score(_sample(AnswerType.CHOICE, "B"), Parsed(value="C")).correct is False
    assert score(_sample(AnswerType.YES_NO, "no"), Parsed(value="No")).correct is True
    assert score(_sample(AnswerType.YES_NO, "no"), Parsed(value="yes")).score == 0.0


@pytest.mark.parametrize(
    ("said", "correct", "speed_ok", "direction_ok"),
    [
        ("decelerate, left", True, True, True),
        ("decelerate, straight", False, True, False),
        ("keep, left", False, False, True),
        ("decelerate", False, True, False),  # no direction given
    ],
)
def test_meta_action_is_split_into_speed_and_direction(said, correct, speed_ok, direction_ok):
    scored = score(_sample(AnswerType.META_ACTION, "decelerate, left"), Parsed(value=said))
    assert (scored.correct, scored.details) == (correct, {"speed_ok": speed_ok, "direction_ok": direction_ok})


def test_number_is_exact_with_its_absolute_error():
    wrong = score(_sample(AnswerType.NUMBER, 3), Parsed(value=5))
    assert (wrong.correct, wrong.score, wrong.details) == (False, 0.0, {"abs_error": 2.0})
    assert score(_sample(AnswerType.NUMBER, 3), Parsed(value=3.0)).correct is True


def test_iou_of_two_overlapping_boxes():
    # [0, 0, 4, 4] (area 16) and [2, 2, 6, 8] (area 24) share [2, 2, 4, 4] (area 4): 4 / 36
    assert iou([0, 0, 4, 4], [2, 2, 6, 8]) == pytest.approx(1 / 9)
    assert iou([0, 0, 4, 4], [6, 8, 2, 2]) == pytest.approx(1 / 9)  # corners in the other order
    assert iou([0, 0, 4, 4], [5, 5, 6, 6]) == 0.0
    assert iou([0, 0, 0, 0], [0, 0, 0, 0]) == 0.0  # no area, no overlap, no division by zero


def test_a_box_is_right_from_iou_one_half():
    sample = _sample(AnswerType.BOX, [0, 0, 10, 10])
    half = score(sample, Parsed(value=[0, 0, 10, 5]))  # 50 / 100
    assert (half.correct, half.score, half.details) == (True, 0.5, {"iou": 0.5})
    less = score(sample, Parsed(value=[0, 0, 10, 4]))  # 40 / 100
    assert (less.correct, less.score) == (False, pytest.approx(0.4))


# --- score: trajectories ----------------------------------------------------------------------


def test_waypoint_l2_under_both_conventions():
    # errors per step (0.5 ... 3 s): 0, 1, 2, 5 (a 3-4-5 offset), 0, 3
    predicted = [[1.0, 0.0], [2.0, 1.0], [5.0, 0.0], [7.0, 4.0], [5.0, 0.0], [6.0, -3.0]]
    scored = score(_sample(AnswerType.WAYPOINTS, STRAIGHT), Parsed(value=predicted), _with_agents())
    assert scored.correct is None
    l2 = {k: v for k, v in scored.details.items() if k.startswith("l2")}
    assert l2 == pytest.approx(
        {
            "l2_uniad_1s": 1.0,  # the error at 1 s
            "l2_uniad_2s": 5.0,
            "l2_uniad_3s": 3.0,
            "l2_stp3_1s": 0.5,  # the mean of the errors at 0.5 and 1 s
            "l2_stp3_2s": 2.0,  # (0 + 1 + 2 + 5) / 4
            "l2_stp3_3s": 11 / 6,
        }
    )
    assert scored.score == pytest.approx(1 / (1 + 11 / 6))


def test_a_perfect_plan_scores_one_and_a_malformed_one_is_refused():
    assert score(_sample(AnswerType.WAYPOINTS, STRAIGHT), Parsed(value=STRAIGHT), _with_agents()).score == 1.0
    with pytest.raises(ValueError, match="6 \\[x, y\\] points"):
        score(_sample(AnswerType.WAYPOINTS, STRAIGHT), Parsed(value=STRAIGHT[:5]), _with_agents())


def test_headings_follow_the_steps_and_hold_while_stopped():
    points = [[1.0, 0.0], [1.0, 1.0], [1.0, 1.05], [0.0, 1.05], [0.0, 1.05], [-1.0, 1.05]]
    assert headings(points) == pytest.approx([0.0, math.pi / 2, math.pi / 2, math.pi, math.pi, math.pi])
    assert headings([[0.0, 0.0]] * 6) == pytest.approx([0.0] * 6)  # never moves: faces forward as at the start


def _collisions(predicted: list[list[float]], scene: Scene) -> dict[str, bool]:
    details = score(_sample(AnswerType.WAYPOINTS, predicted), Parsed(value=predicted), scene).details
    return {k: v for k, v in details.items() if k.startswith("collision")}


def test_a_car_standing_on_the_path_is_hit_when_the_ego_gets_there():
    # the ego drives at 10 m/s: x = 5, 10, ..., 30; a 4.6 m car at x = 20 is reached at 2 s
    path = [[5.0 * k, 0.0] for k in range(1, 7)]
    assert _collisions(path, _with_agents([(20.0, 0.0)] * 6)) == {
        "collision_1s": False,
        "collision_2s": True,
        "collision_3s": True,
    }


def test_only_boxes_at_the_same_moment_collide():
    path = [[5.0 * k, 0.0] for k in range(1, 7)]
    crossing_early = [(20.0, 0.0), (20.0, 0.0), (20.0, 10.0), (20.0, 10.0), (20.0, 10.0), (20.0, 10.0)]
    assert not any(_collisions(path, _with_agents(crossing_early)).values())  # gone by 2 s
    crossing_on_time = [(20.0, 10.0)] * 3 + [(20.0, 0.0)] + [(20.0, 10.0)] * 2
    assert _collisions(path, _with_agents(crossing_on_time))["collision_2s"] is True


def test_the_ego_box_turns_with_its_path():
    # sideways at 4 m/s: heading +y, so the 4.6 x 1.9 box spans x -0.95 .. 0.95 and y +-2.3
    path = [[0.0, 2.0 * k] for k in range(1, 7)]
    beside = [(1.6, 4.0)] * 6  # a 1 x 1 box at x 1.1 .. 2.1: clear, though it would overlap a box facing +x
    assert not any(_collisions(path, _with_agents(beside, size=(1.0, 1.0))).values())
    ahead = [(0.0, 6.0)] * 6  # y 5.5 .. 6.5: overlaps the box at (0, 4), which reaches y 6.3, at 1 s
    assert _collisions(path, _with_agents(ahead, size=(1.0, 1.0)))["collision_1s"] is True


def test_boxes_that_only_touch_do_not_collide():
    path = [[5.0 * k, 0.0] for k in range(1, 7)]
    # ego at x = 30 spans x 27.7 .. 32.3, y -0.95 .. 0.95; this car spans y 0.95 .. 2.85
    assert not any(_collisions(path, _with_agents([(30.0, 1.9)] * 6)).values())


# --- score: unparsable and unscorable answers ------------------------------------------------------


def test_an_unparsable_answer_is_wrong_or_an_unread_trajectory():
    choice = score(_sample(AnswerType.CHOICE, "A"), Parsed(error="no letter"))
    assert (choice.correct, choice.score, choice.details) == (False, 0.0, {"unparsed": True})
    plan = score(_sample(AnswerType.WAYPOINTS, STRAIGHT), Parsed(error="no list"))  # no scene needed
    assert (plan.correct, plan.score, plan.details) == (None, 0.0, {"unparsed": True})


def test_text_answers_and_trajectories_without_a_scene_are_refused():
    with pytest.raises(ValueError, match="no deterministic score"):
        score(_sample(AnswerType.TEXT, "slow down"), Parsed(value="slow down"))
    with pytest.raises(ValueError, match="needs the sample's scene"):
        score(_sample(AnswerType.WAYPOINTS, STRAIGHT), Parsed(value=STRAIGHT))


# --- score: reasoning steps --------------------------------------------------------------------


def test_stated_facts_are_checked_and_cover_the_reference():
    scene = _scene()
    agent = scene.agents[0]
    near = Fact(type="distance", agent=agent.id, value=distance(agent))
    reference = [
        Step(text="where", facts=[near, Fact(type="color", agent=agent.id, value=agent.color.name)]),
        Step(text="again", facts=[near, Fact(type="speed", agent=agent.id, value=agent.speed)]),  # near twice: once
    ]
    stated = [
        Fact(type="distance", agent=agent.id, value=distance(agent) + 0.5, why="within 1 m"),  # true, covers
        Fact(type="color", agent=agent.id, value="no such colour"),  # false
        Fact(type="mood", agent=agent.id, value="calm"),  # no checker: unverifiable
        Fact(type="side", agent=agent.id, value="left" if agent.box.center[1] > 0 else "right"),  # true, not asked
    ]
    details = score(_sample(AnswerType.CHOICE, "A", reference), Parsed(value="A"), scene, stated).details
    assert details == {
        "facts_stated": 4,
        "facts_true": 2,
        "facts_unverifiable": 1,
        "facts_reference": 3,
        "facts_covered": 1,
    }


def test_a_fact_covers_only_the_same_claim():
    reference = Fact(type="distance", agent="a01", value=7.8)
    assert covers(Fact(type="distance", agent="a01", value=7.5, note="x"), reference)
    assert not covers(Fact(type="distance", agent="a02", value=7.8), reference)
    assert not covers(Fact(type="speed", agent="a01", value=7.8), reference)
    assert not covers(Fact(type="distance", value=7.8), reference)


# --- aggregate ---------------------------------------------------------------------------------------


def test_wilson_interval_of_seven_in_ten():
    # centre (0.7 + 1.96^2 / 20) / (1 + 1.96^2 / 10) = 0.64449, half-width
    # 1.96 * sqrt(0.021 + 1.96^2 / 400) / 1.38415 = 0.24772
    assert wilson(7, 10) == pytest.approx((0.39677, 0.89221), abs=1e-5)
    assert wilson(0, 0) is None
    assert wilson(10, 10)[1] == pytest.approx(1.0)


def test_accuracy_counts_unparsable_answers_wrong_and_leaves_trajectories_out():
    results = [_result(True) for _ in range(7)]
    results += [_result(False), _result(False, error="unparsable: no letter")]
    results += [_result(False, error="unparsable: no letter", details={"unparsed": True})]
    results += [_result(None, answer_type="waypoints", task="w", details={"unparsed": True}, error="no list")]
    overall = aggregate(results)["overall"]
    assert (overall["n"], overall["n_judged"], overall["accuracy"]) == (11, 10, 0.7)
    assert overall["ci95"] == pytest.approx((0.39677, 0.89221), abs=1e-5)
    assert overall["errors"] == {"count": 3, "rate": 3 / 11, "top": [("unparsable: no letter", 2), ("no list", 1)]}


def test_format_compliance_latency_and_tokens():
    results = [
        _result(True, strict=k < 3, latency_s=0.1 * (k + 1), prompt_tokens=100 * k, completion_tokens=k)
        for k in range(10)
    ]
    overall = aggregate(results)["overall"]
    assert overall["format_compliance"] == 0.3
    # latencies 0.1 .. 1.0: the median halfway between 0.5 and 0.6; p95 at rank 0.95 * 9 = 8.55
    assert overall["latency_s"] == pytest.approx({"mean": 0.55, "p50": 0.55, "p95": 0.955})
    assert overall["tokens"] == pytest.approx({"prompt_mean": 450.0, "completion_mean": 4.5})


def test_number_mae_over_the_numbers_read():
    results = [
        _result(False, answer_type="number", details={"abs_error": 2.0}),
        _result(True, answer_type="number", details={"abs_error": 0.0}),
        _result(False, answer_type="number", details={"unparsed": True}),
    ]
    assert aggregate(results)["overall"]["number"] == {"n": 3, "n_unparsed": 1, "unparsed_rate": 1 / 3, "mae": 1.0}


def test_waypoint_block_keeps_unread_trajectories_in_view():
    def plan(l2: float, hit: bool) -> dict[str, Any]:
        return {
            **{f"l2_{c}_{h}s": l2 * h for c in ("uniad", "stp3") for h in (1, 2, 3)},
            **{f"collision_{h}s": hit and h == 3 for h in (1, 2, 3)},
        }

    results = [
        _result(None, answer_type="waypoints", score=0.5, details=plan(1.0, False)),
        _result(None, answer_type="waypoints", score=0.25, details=plan(2.0, True)),
        _result(None, answer_type="waypoints", score=0.0, details={"unparsed": True}),
        _result(None, answer_type="waypoints", error="model failed: timeout"),  # recorded by the runner, unscored
    ]
    block = aggregate(results)["overall"]["waypoints"]
    assert block == pytest.approx(
        {
            "n": 4,
            "n_unparsed": 2,
            "unparsed_rate": 0.5,
            "score": 0.1875,  # (0.5 + 0.25 + 0 + 0) / 4: the plans not read count as 0
            "l2_uniad_1s": 1.5,
            "l2_uniad_2s": 3.0,
            "l2_uniad_3s": 4.5,
            "l2_stp3_1s": 1.5,
            "l2_stp3_2s": 3.0,
            "l2_stp3_3s": 4.5,
            "collision_1s": 0.0,
            "collision_2s": 0.0,
            "collision_3s": 0.5,
        }
    )
    assert aggregate(results)["overall"]["accuracy"] is None  # trajectories have no right answer


def test_meta_action_and_grounding_blocks():
    results = [
        _result(True, answer_type="meta_action", details={"speed_ok": True, "direction_ok": True}),
        _result(False, answer_type="meta_action", details={"speed_ok": True, "direction_ok": False}),
        _result(False, answer_type="meta_action", details={"unparsed": True}),
        _result(True, answer_type="box", score=0.8, details={"iou": 0.8}),
        _result(False, answer_type="box", score=0.3, details={"iou": 0.3}),
        _result(False, answer_type="box", score=0.0, details={"unparsed": True}),
    ]
    overall = aggregate(results)["overall"]
    assert overall["meta_action"] == pytest.approx(
        {"n": 3, "accuracy": 1 / 3, "speed_accuracy": 2 / 3, "direction_accuracy": 1 / 3}
    )
    assert overall["grounding"] == pytest.approx({"n": 3, "mean_iou": 1.1 / 3, "acc_iou50": 1 / 3})
    assert "number" not in overall and "waypoints" not in overall and "reasoning" not in overall


def test_reasoning_precision_and_coverage_pooled_over_facts():
    keys = ("facts_stated", "facts_true", "facts_unverifiable", "facts_reference", "facts_covered")
    results = [
        _result(True, details=dict(zip(keys, (4, 3, 1, 4, 2), strict=True))),
        _result(False, details=dict(zip(keys, (2, 1, 0, 1, 0), strict=True))),
        _result(True),  # facts not scored: not in the block
    ]
    reasoning = aggregate(results)["overall"]["reasoning"]
    assert reasoning == pytest.approx(
        {
            "n": 2,
            "facts_stated": 6,
            "facts_true": 4,
            "facts_unverifiable": 1,
            "facts_reference": 5,
            "facts_covered": 2,
            "precision": 4 / 6,
            "unverifiable_rate": 1 / 6,
            "coverage": 2 / 5,
        }
    )


def test_groups_by_family_and_task():
    results = [
        _result(True, family="perception", task="count"),
        _result(False, family="perception", task="exists"),
        _result(True, family="planning", task="meta"),
    ]
    metrics = aggregate(results)
    assert {k: v["accuracy"] for k, v in metrics["by_family"].items()} == {"perception": 0.5, "planning": 1.0}
    assert {k: v["n"] for k, v in metrics["by_task"].items()} == {"count": 1, "exists": 1, "meta": 1}
    assert list(metrics["by_condition"]) == ["clean"]
    assert "robustness" not in metrics  # one condition: nothing to compare


def _run(condition: str, family: str, right: int, n: int) -> list[Result]:
    return [_result(k < right, family=family, condition=condition) for k in range(n)]


def test_robustness_is_the_drop_from_clean_in_points():
    results = _run("clean", "perception", 8, 10) + _run("clean", "planning", 1, 2)
    results += _run("fog:3", "perception", 5, 10) + _run("fog:3", "planning", 1, 2)
    results += _run("text_only", "perception", 2, 10) + _run("text_only", "planning", 2, 2)
    metrics = aggregate(results)
    assert {k: v["accuracy"] for k, v in metrics["by_condition"].items()} == pytest.approx(
        {"clean": 0.75, "fog:3": 0.5, "text_only": 1 / 3}
    )
    # perception 80 % clean, 50 % in fog, 20 % text-only; planning 50 %, 50 %, 100 %
    assert metrics["robustness"]["fog:3"] == pytest.approx({"perception": 30.0, "planning": 0.0})
    assert metrics["robustness"]["text_only"] == pytest.approx({"perception": 60.0, "planning": -50.0})
    assert list(metrics["robustness"]) == ["fog:3", "text_only"]


def test_robustness_without_a_right_answer_on_one_side_is_none():
    results = [*_run("clean", "perception", 1, 1), _result(None, family="planning", answer_type="waypoints")]
    results += _run("fog:1", "perception", 0, 1) + _run("fog:1", "planning", 1, 1)
    assert aggregate(results)["robustness"] == {"fog:1": {"perception": 100.0, "planning": None}}


def test_scored_answers_aggregate_end_to_end():
    scene = _with_agents([(20.0, 0.0)] * 6)
    path = [[5.0 * k, 0.0] for k in range(1, 7)]
    cases = [
        (_sample(AnswerType.WAYPOINTS, path), Parsed(value=path)),  # perfect but collides at 2 s
        (_sample(AnswerType.WAYPOINTS, path), Parsed(error="no list")),
        (_sample(AnswerType.CHOICE, "A"), Parsed(value="A", strict=True)),
        (_sample(AnswerType.CHOICE, "A"), Parsed(error="no letter")),
    ]
    results = []
    for sample, parsed in cases:
        scored = score(sample, parsed, scene)
        results.append(
            _result(
                scored.correct,
                answer_type=sample.answer_type.value,
                score=scored.score,
                details=scored.details,
                error=parsed.error,
                strict=parsed.strict,
            )
        )
    metrics = json.loads(json.dumps(aggregate(results)))  # RUN/metrics.json holds plain JSON
    overall = metrics["overall"]
    assert (overall["accuracy"], overall["n_judged"], overall["format_compliance"]) == (0.5, 2, 0.25)
    plans = overall["waypoints"]
    assert (plans["n_unparsed"], plans["l2_stp3_3s"], plans["collision_2s"], plans["score"]) == (1, 0.0, 1.0, 0.5)
