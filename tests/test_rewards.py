"""GRPO rewards on hand-made completions: each pays what the evaluation counts, and nothing
for what it does not."""

from __future__ import annotations

import json
import math

import pytest

from roadthink.errors import RoadthinkError
from roadthink.scene.io import load_scene
from roadthink.tasks.sample import Sample
from roadthink.train.captions import seen_in
from roadthink.train.rewards import (
    REWARDS,
    accuracy_reward,
    brevity_reward,
    checked,
    collision_free_reward,
    format_reward,
    meta_action_reward,
    select_rewards,
    sight_reward,
    text_of,
    tool_bonus_reward,
    waypoint_reward,
)


@pytest.fixture(scope="module")
def rows(splits) -> dict[str, tuple[str, str, dict]]:
    """The first sample of some tasks: (sample JSON, scene file, row)."""
    bench, samples = splits["test"]
    chosen = {}
    for row in samples:
        if row["task"] in ("color", "count", "box", "meta_action", "waypoints") and row["task"] not in chosen:
            chosen[row["task"]] = (json.dumps(row), str(bench / row["scene"]), row)
    return chosen


def answer(text: str) -> str:
    return f"<think>Looking at the image.</think><answer>{text}</answer>"


def wrong_letter(row: dict) -> str:
    return next(c[0] for c in row["choices"] if c[0] != row["answer"])


def test_accuracy_pays_right_answers_and_box_overlap(rows) -> None:
    color, count, box = rows["color"], rows["count"], rows["box"]
    completions = [answer(color[2]["answer"]), answer(wrong_letter(color[2])), "no answer at all"]
    assert accuracy_reward(completions, sample=[color[0]] * 3) == [1.0, 0.0, 0.0]
    assert accuracy_reward([answer(str(count[2]["answer"] + 1))], sample=[count[0]]) == [0.0]
    truth = box[2]["answer"]
    half = [truth[0], truth[1], (truth[0] + truth[2]) / 2, truth[3]]
    got = accuracy_reward([answer(json.dumps(truth)), answer(json.dumps(half))], sample=[box[0]] * 2)
    assert got[0] == pytest.approx(1.0) and got[1] == pytest.approx(0.5, abs=0.01)
    assert accuracy_reward([answer("[[1, 0]]")], sample=[rows["waypoints"][0]]) == [None]  # plans: waypoint_reward


def test_conversational_completions_are_read_too(rows) -> None:
    color = rows["color"]
    message = [{"role": "assistant", "content": [{"type": "text", "text": answer(color[2]["answer"])}]}]
    assert text_of(message) == answer(color[2]["answer"])
    assert accuracy_reward([message], sample=[color[0]]) == [1.0]


def test_format_wants_reasoning_then_an_answer() -> None:
    good = "<think>Two cars ahead.</think>\n<answer>B</answer>"
    assert format_reward([good, "<answer>B</answer>", "<think>x</think>", "B", good + " and more"]) == [
        1.0,
        0.0,
        0.0,
        0.0,
        0.0,
    ]


def test_plans_earn_closeness_and_safety(rows) -> None:
    sample, scene, row = rows["waypoints"]
    truth = row["answer"]
    off = [[x + 1.0, y] for x, y in truth]
    perfect, shifted = (answer(json.dumps(p)) for p in (truth, off))
    assert waypoint_reward([perfect, shifted, "no plan"], sample=[sample] * 3) == [1.0, pytest.approx(0.5), 0.0]
    assert waypoint_reward([perfect], sample=[rows["color"][0]]) == [None]
    safe = collision_free_reward([perfect, "no plan"], sample=[sample] * 2, scene_file=[scene] * 2)
    assert safe[1] == 0.0 and safe[0] in (0.0, 1.0)
    assert collision_free_reward([perfect], sample=[rows["color"][0]], scene_file=[scene]) == [None]


def test_a_plan_into_a_road_user_is_not_collision_free(rows) -> None:
    from roadthink.scene.io import load_scene

    sample, scene_path, _ = rows["waypoints"]
    scene = load_scene(scene_path)
    nearest = min(scene.agents, key=lambda a: a.future[-1].center[0] ** 2 + a.future[-1].center[1] ** 2)
    into = [[round(p.center[0], 2), round(p.center[1], 2)] for p in nearest.future[:6]]
    assert collision_free_reward([answer(json.dumps(into))], sample=[sample], scene_file=[scene_path]) == [0.0]


def test_meta_actions_earn_half_per_part(rows) -> None:
    row = {**rows["meta_action"][2], "answer": "decelerate, left"}
    sample = json.dumps(row)
    said = ["decelerate, left", "decelerate, right", "accelerate, left", "keep, straight"]
    got = meta_action_reward([answer(a) for a in said] + ["nothing"], sample=[sample] * 5)
    assert got == [1.0, 0.5, 0.5, 0.0, 0.0]
    assert meta_action_reward([answer("A")], sample=[rows["color"][0]]) == [None]


def test_brevity_and_the_tool_bonus(rows) -> None:
    short, long = "<answer>B</answer>", "x" * 800
    assert brevity_reward([short, long]) == [1.0, 0.25]
    color = rows["color"]
    right, wrong = answer(color[2]["answer"]), answer(wrong_letter(color[2]))
    called = '<tool_call>{"name": "zoom", "arguments": {}}</tool_call>'
    native = [
        {"role": "assistant", "content": "", "tool_calls": [{"id": "1"}]},
        {"role": "assistant", "content": right},
    ]
    got = tool_bonus_reward([called + right, called + wrong, right, native], sample=[color[0]] * 4)
    assert got == [1.0, 0.0, 0.0, 1.0]  # paid only when a tool was used and the answer is right


def test_rewards_are_named_and_checked() -> None:
    assert set(REWARDS) == {
        "accuracy",
        "format",
        "waypoint",
        "collision_free",
        "meta_action",
        "sight",
        "brevity",
        "tool_bonus",
    }
    assert [r.__name__ for r in select_rewards(["accuracy", "format"])] == ["accuracy_reward", "format_reward"]
    with pytest.raises(RoadthinkError, match="unknown reward 'speed'; known: accuracy"):
        select_rewards(["speed"])

    def broken(completions, **kwargs):
        return [0.5, math.nan]

    with pytest.raises(RoadthinkError, match="reward broken returned nan for completion 1"):
        checked(broken)(["a", "b"])
    assert checked(format_reward)(["a"]) == [0.0]


def test_sight_pays_the_opening_line_for_what_the_scene_shows(splits) -> None:
    bench, rows = splits["test"]
    scene_of = {row["id"]: load_scene(bench / row["scene"]) for row in rows}
    color = next(r for r in rows if r["task"] == "color" and seen_in(Sample.model_validate(r), scene_of[r["id"]]))
    side = next(r for r in rows if r["task"] == "side" and seen_in(Sample.model_validate(r), scene_of[r["id"]]))
    other = next(r for r in rows if r["task"] == "perspective")

    def pay(row: dict, opening: str) -> float | None:
        text = f"<think>I see: {opening}. It is so.</think><answer>A</answer>"
        (got,) = sight_reward([text], sample=[json.dumps(row)], scene_file=[str(bench / row["scene"])])
        return got

    said, _ = seen_in(Sample.model_validate(color), scene_of[color["id"]])  # "nearest car colour white"
    label, _, colour = said.rpartition(" ")
    wrong = next(c for c in ("red", "blue", "white") if c != colour)
    assert pay(color, said) == 1.0
    assert pay(color, f"{label} {wrong}") == 0.0
    assert pay(color, f"{said}; {label} {wrong}") == 0.5  # naming every colour does not pay
    assert pay(color, "nothing to say") == 0.0
    unopened = f"<think>{said}.</think><answer>A</answer>"  # no opening line: nothing read
    assert sight_reward([unopened], sample=[json.dumps(color)], scene_file=[str(bench / color["scene"])]) == [0.0]

    placed, _ = seen_in(Sample.model_validate(side), scene_of[side["id"]])  # "the blue car: left, 20 to 40 m, …"
    name, _, words = placed.partition(": ")
    parts = words.split(", ")
    flipped = ["right" if p == "left" else "left" if p == "right" else p for p in parts]
    assert pay(side, placed) == 1.0
    # one of its statements wrong: the right ones of all made or due (len(parts) - 1 of len(parts) + 1)
    assert pay(side, f"{name}: {', '.join(flipped)}") == pytest.approx((len(parts) - 1) / (len(parts) + 1))
    assert pay(side, f"the other thing: {words}") == 0.0  # another road user's placement
    assert pay(other, placed) is None  # no caption fact answers a perspective question
