"""Reading model replies: lenient where one answer is meant, unparsable (with the reason) where
none or two are, strict only for the requested form, and never raising on model text."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from roadthink.eval.parsing import parse_answer, parse_facts
from roadthink.tasks.planning import META_ACTIONS
from roadthink.tasks.sample import AnswerType, Fact

LR = ["A. right", "B. left"]
DIST = ["A. under 10 m", "B. over 40 m", "C. 20 to 40 m", "D. 10 to 20 m"]
LANES = [
    "A. the lane to the left of the ego's",
    "B. the lane to the right of the ego's",
    "C. an oncoming lane",
    "D. not in a driving lane",
    "E. the ego's lane",
]
AHEAD = ["A. ahead", "B. further ahead", "C. behind"]
PLAN = [[1.0, 0.1], [1.5, 0.3], [1.7, 0.4], [1.7, 0.4], [1.7, 0.4], [1.7, 0.4]]  # a real sample's answer
STEPS = [[1.0, 0.0], [2.0, 0.0], [3.0, 0.0], [4.0, 0.0], [5.0, 0.0], [6.0, 0.0]]
NO_OPTION = "no option letter (A, B) or option text found"
NO_SPEED = "no speed action (accelerate, keep, decelerate, stop) found"

C, Y, N, M, B, W = (
    AnswerType.CHOICE,
    AnswerType.YES_NO,
    AnswerType.NUMBER,
    AnswerType.META_ACTION,
    AnswerType.BOX,
    AnswerType.WAYPOINTS,
)

# (reply, answer type, choices, value, error, strict)
CASES: list[tuple[str, AnswerType, list[str] | None, Any, str | None, bool]] = [
    # choice: the letter in its many wrappings
    ("B", C, LR, "B", None, True),
    ("The answer is (B)", C, LR, "B", None, False),
    ("B.", C, LR, "B", None, False),
    ("b", C, LR, "B", None, False),
    ("Option B: left", C, LR, "B", None, False),
    ("<answer>B</answer>", C, LR, "B", None, True),
    ("\\boxed{B}", C, LR, "B", None, False),
    ("\\boxed{\\text{B}}", C, LR, "B", None, False),
    ("**B**", C, LR, "B", None, False),
    ("Answer: B) left", C, LR, "B", None, False),
    ("C. 20 to 40 m", C, DIST, "C", None, False),
    # choice: reasoning first, the last answer-looking statement (or the tagged answer) wins
    ("I first thought A, but looking again the answer is B", C, LR, "B", None, False),
    ("The answer is A. Wait, no: the answer is B.", C, LR, "B", None, False),
    ("Clearly the answer is A... <answer>B</answer>", C, LR, "B", None, True),
    ("<think>It could be A.</think>\nB", C, LR, "B", None, True),
    ("So I think it's B", C, LR, "B", None, False),
    ("A. right: nobody there.\nB. left: the pedestrian.\nSo the answer is B.", C, LR, "B", None, False),
    # choice: the option's text instead of its letter, when it names one option only
    ("left", C, LR, "B", None, False),
    ("the lane to the left of the ego's", C, LANES, "A", None, False),
    ("It is further ahead.", C, AHEAD, "B", None, False),  # "ahead" inside a longer option does not count
    ("It is in the ego's lane.", C, LANES, "E", None, False),
    ("The car is 10 to 20 m away.", C, DIST, "D", None, False),
    # choice: two options, no option, or a letter that is none
    ("A or B", C, LR, None, "names more than one option: A, B", False),
    ("I can't decide between A and B", C, LR, None, "names more than one option: A, B", False),
    ("It is on the left or on the right.", C, LR, None, "names more than one option: B, A", False),
    ("The answer is E.", C, DIST, None, "names option E, not one of A, B, C, D", False),
    ("A car blocks the view, so I can't tell.", C, LR, None, NO_OPTION, False),
    ("A. right: nobody there.\nB. left: the pedestrian.", C, LR, None, NO_OPTION, False),  # lists, never answers
    ("   ", C, LR, None, "empty reply", False),
    # yes/no
    ("yes", Y, None, "yes", None, True),
    ("Yes.", Y, None, "yes", None, False),
    ("no, it is not", Y, None, "no", None, False),
    ("Answer: YES", Y, None, "yes", None, False),
    ("True", Y, None, "yes", None, False),
    ("False.", Y, None, "no", None, False),
    ("<answer>No</answer>", Y, None, "no", None, True),
    ("There is no truck visible, so no.", Y, None, "no", None, False),
    ("Yes, a truck is parked on the right. No other vehicles are visible.", Y, None, "yes", None, False),
    ("yes or no", Y, None, None, "names more than one answer: yes, no", False),
    ("There is no truck.", Y, None, None, "no yes or no found", False),  # "no" before a noun is no answer
    # numbers
    ("3", N, None, 3, None, True),
    ("2.0", N, None, 2, None, True),
    ("three", N, None, 3, None, False),
    ("3 cars", N, None, 3, None, False),
    ("about 3.5 m", N, None, 3.5, None, False),
    ("none", N, None, 0, None, False),
    ("\\boxed{12}", N, None, 12, None, False),
    ("I count 3 cars and 2 trucks, so 5 vehicles.", N, None, 5, None, False),
    ("I see 3 cars and 2 trucks.", N, None, None, "names more than one number: 3, 2", False),
    ("The answer is 3 to 4.", N, None, None, "names more than one number: 3, 4", False),
    ("I cannot count them.", N, None, None, "no number found", False),
    # meta-actions in free wording
    ("keep, straight", M, None, "keep, straight", None, True),
    ("Decelerate, left", M, None, "decelerate, left", None, True),
    ("slow down and turn left", M, None, "decelerate, left", None, False),
    ("come to a stop", M, None, "stop, straight", None, False),
    ("maintain speed, go straight", M, None, "keep, straight", None, False),
    ("Speed up and change into the right lane.", M, None, "accelerate, right", None, False),
    ("Brake to a stop.", M, None, "stop, straight", None, False),
    ("stop, left", M, None, "stop, straight", None, False),
    ("The car ahead is slowing. We should keep going straight.", M, None, "keep, straight", None, False),
    ("accelerate or slow down", M, None, None, "names more than one speed action: accelerate, decelerate", False),
    ("Slow down, then turn left or right", M, None, None, "names more than one direction: left, right", False),
    ("turn left", M, None, None, NO_SPEED, False),
    # boxes
    ("[519.31, 173.7, 537.58, 215.28]", B, None, [519.31, 173.7, 537.58, 215.28], None, True),
    ("(537.58, 215.28, 519.31, 173.7)", B, None, [519.31, 173.7, 537.58, 215.28], None, False),
    ('{"x1": 40, "y1": 30, "x2": 10, "y2": 20}', B, None, [10.0, 20.0, 40.0, 30.0], None, False),
    ("<|box_start|>(100,200),(300,400)<|box_end|>", B, None, [100.0, 200.0, 300.0, 400.0], None, False),
    (
        'Near [1, 2, 3, 4] at first; finally:\n```json\n{"bbox_2d": [10, 20, 30, 40], "label": "car"}\n```',
        B,
        None,
        [10.0, 20.0, 30.0, 40.0],
        None,
        False,
    ),
    ("no idea", B, None, None, "no box [x1, y1, x2, y2] found", False),
    # waypoints
    ("[[1.0, 0.1], [1.5, 0.3], [1.7, 0.4], [1.7, 0.4], [1.7, 0.4], [1.7, 0.4]]", W, None, PLAN, None, True),
    ("```json\n[[1, 0], [2, 0], [3, 0], [4, 0], [5, 0], [6, 0]]\n```", W, None, STEPS, None, False),
    ("[(1.0, 0), (2.0, 0), (3.0, 0), (4.0, 0), (5.0, 0), (6.0, 0)]", W, None, STEPS, None, False),
    ("Plan: <answer>(1, 0), (2, 0), (3, 0), (4, 0), (5, 0), (6, 0)</answer>", W, None, STEPS, None, False),
    (
        "The car at (10, 2) is ahead.\n1. (1, 0)\n2. (2, 0)\n3. (3, 0)\n4. (4, 0)\n5. (5, 0)\n6. (6, 0)",
        W,
        None,
        STEPS,
        None,
        False,
    ),
    ("(1, 0), (2, 0), (3, 0)", W, None, None, "expected 6 waypoints (0.5 s to 3 s), got 3", False),
    ("I would drive forward.", W, None, None, "no waypoints found (a list of 6 [x, y] pairs)", False),
]


@pytest.mark.parametrize(("reply", "answer_type", "choices", "value", "error", "strict"), CASES)
def test_parse_answer(
    reply: str, answer_type: AnswerType, choices: list[str] | None, value: Any, error: str | None, strict: bool
) -> None:
    parsed = parse_answer(reply, answer_type, choices)
    assert (parsed.value, parsed.error, parsed.strict) == (value, error, strict)
    assert type(parsed.value) is type(value)  # 2, not 2.0; a float box, not ints


def test_answer_type_given_as_its_string() -> None:
    assert parse_answer("B", "choice", LR).value == "B"


@pytest.mark.parametrize("action", META_ACTIONS)
def test_every_meta_action_reads_as_itself(action: str) -> None:
    parsed = parse_answer(action, AnswerType.META_ACTION)
    assert (parsed.value, parsed.strict) == (action, True)


def test_qwen_boxes_rescale_from_the_1000_grid_to_pixels() -> None:
    reply = "<|object_ref_start|>the car<|object_ref_end|><|box_start|>(300,400),(100,200)<|box_end|>"
    parsed = parse_answer(reply, AnswerType.BOX, image_size=(640, 360))
    # x * 640 / 1000, y * 360 / 1000, corners ordered
    assert parsed.value == pytest.approx([64.0, 72.0, 192.0, 144.0])


def test_pixel_boxes_are_not_rescaled() -> None:
    assert parse_answer("[100, 200, 300, 400]", AnswerType.BOX, image_size=(640, 360)).value == [100, 200, 300, 400]


def test_an_unknown_answer_type_is_the_callers_mistake() -> None:
    with pytest.raises(ValueError):
        parse_answer("B", "essay")


@pytest.mark.parametrize("choices", [None, []])
def test_a_choice_sample_without_choices_is_recorded_not_raised(choices: list[str] | None) -> None:
    parsed = parse_answer("B", AnswerType.CHOICE, choices)
    assert (parsed.value, parsed.error) == (None, "choice question without choices")


FRAGMENTS = [*"AaBbE yesno013.,-()[]{}:*\n\"'", "answer is ", "<answer>", "</answer>", "\\boxed{", " or ", "left"]
FRAGMENTS += ["slow down", "stop", "<|box_start|>", "(1,2)", "```json", "</think>", "<facts>", "</facts>", '"type"']
REPLIES = st.lists(st.sampled_from(FRAGMENTS), max_size=60).map("".join)


@settings(max_examples=300, deadline=None)
@given(REPLIES, st.sampled_from(list(AnswerType)))
def test_model_text_never_raises(reply: str, answer_type: AnswerType) -> None:
    parsed = parse_answer(reply, answer_type, DIST)
    assert (parsed.value is None) != (parsed.error is None)
    assert parsed.error is None or "\n" not in parsed.error


def test_a_reply_stuck_in_a_loop_is_read_quickly() -> None:
    """A model repeating itself for thousands of tokens must not stall the run (this took
    minutes before cues and the text after them were bounded)."""
    start = time.perf_counter()
    for reply in ("the answer is " * 5000, "<answer>" * 10000):
        assert parse_answer(reply, AnswerType.META_ACTION).error == NO_SPEED
    assert time.perf_counter() - start < 2.0


# --- stated facts ------------------------------------------------------------------------------

COUNT = {"type": "count", "category": "car", "camera": "CAM_FRONT", "value": 2}


def test_facts_in_tags_with_malformed_entries_skipped_and_counted() -> None:
    text = f'I count the cars. <facts>[{json.dumps(COUNT)}, {{"value": 3}}, "two cars", {{"type": 7}}]</facts> So 2.'
    facts = parse_facts(text)
    assert [f.model_dump() for f in facts] == [COUNT]
    assert all(isinstance(f, Fact) for f in facts)
    assert facts.skipped == 3


def test_facts_from_several_tags_fenced_or_single_and_in_python_literal_form() -> None:
    text = (
        f"<facts>```json\n[{json.dumps(COUNT)}]\n```</facts> then "
        "<facts>{'type': 'light_state', 'light': 'tl2', 'value': 'red'}</facts>"
    )
    facts = parse_facts(text)
    assert [f.model_dump() for f in facts] == [COUNT, {"type": "light_state", "light": "tl2", "value": "red"}]
    assert facts.skipped == 0


def test_an_unreadable_facts_block_counts_as_one_skipped() -> None:
    facts = parse_facts("<facts>[{type: count, value: 2</facts> <facts> </facts>")
    assert (list(facts), facts.skipped) == ([], 1)  # the empty block states nothing


def test_fenced_json_counts_only_where_its_objects_have_a_type() -> None:
    text = f'```json\n[{json.dumps(COUNT)}, {{"x": 1}}]\n```\nPlan:\n```json\n[[1, 0], [2, 0]]\n```'
    facts = parse_facts(text)
    assert ([f.model_dump() for f in facts], facts.skipped) == ([COUNT], 1)


def test_tags_take_precedence_over_fenced_blocks() -> None:
    text = '<facts>[{"type": "ego_lane", "value": "r2_f0"}]</facts>\n```json\n[{"type": "count", "value": 9}]\n```'
    assert [f.type for f in parse_facts(text)] == ["ego_lane"]


@settings(max_examples=200, deadline=None)
@given(REPLIES)
def test_facts_never_raise(reply: str) -> None:
    facts = parse_facts(reply)
    assert facts.skipped >= 0 and all(isinstance(f, Fact) for f in facts)


def test_no_facts_stated() -> None:
    facts = parse_facts("The answer is B.")
    assert (list(facts), facts.skipped) == ([], 0)
