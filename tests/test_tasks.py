"""Benchmark tasks: answers recomputed independently, checkable reasoning, balance, no text
prior, deterministic builds, and clear errors."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest

from conftest import SIZE
from roadthink.errors import RoadthinkError
from roadthink.models.rules import ANSWERS
from roadthink.render import render_scene
from roadthink.scene import generate_scene, load_scene
from roadthink.tasks import TASKS, Sample, select_tasks
from roadthink.tasks.build import BENCH_CONFIG, build
from roadthink.tasks.facts import check_steps


def _scene(out: Path, row: dict):
    return load_scene(out / row["scene"])


def content(row: dict):
    """The answer as content: the text of the chosen option for choice questions."""
    if row["choices"]:
        return next(c[3:] for c in row["choices"] if c.startswith(f"{row['answer']}. "))
    return row["answer"]


def _content(row: dict) -> str:
    """The answer as a hashable key for counting what a blind model would guess."""
    return str(content(row))


def test_every_answer_recomputed_from_the_scene(splits):
    out, rows = splits["test"]
    assert {r["task"] for r in rows} == set(TASKS)
    missing = set(TASKS) - set(ANSWERS)
    assert not missing, f"no independent check for {missing}"
    for row in rows:
        assert content(row) == ANSWERS[row["task"]](_scene(out, row), row), row["id"]


def test_reference_facts_all_check_out_and_a_wrong_one_does_not(splits):
    out, rows = splits["test"]
    for row in rows:
        sample = Sample.model_validate({**row, "answer_type": row["answer_type"]})
        scene = _scene(out, row)
        verdicts = check_steps(sample.reference_steps, scene)
        assert verdicts and all(v is True for v in verdicts), row["id"]
        assert 2 <= len(sample.reference_steps) <= 6
    row = next(r for r in rows if r["task"] == "count")
    sample = Sample.model_validate(row)
    fact = sample.reference_steps[-1].facts[0]
    wrong = fact.model_copy(update={"value": fact.value + 1})
    assert check_steps([sample.reference_steps[-1].model_copy(update={"facts": [wrong]})], _scene(out, row)) == [False]


def test_splits_are_full_balanced_and_disjoint(splits):
    _, train = splits["train"]
    test_out, test = splits["test"]
    for rows in (train, test):
        per_task = Counter(r["task"] for r in rows)
        assert all(per_task[name] == SIZE for name in TASKS), per_task
        buckets = defaultdict(Counter)
        for r in rows:
            buckets[(r["task"], r["question"])][_content(r)] += 1
        for (task, _), counts in buckets.items():
            share = max(counts.values()) / sum(counts.values())
            assert counts.total() < 8 or share <= 1 / len(TASKS[task].buckets) + 0.03 + 1 / counts.total()
        for name in TASKS:
            picked = [r for r in rows if r["task"] == name and r["choices"]]
            sizes = {len(r["choices"]) for r in picked}
            if len(sizes) == 1:  # answers spread evenly over the letters: no letter is a better guess
                letters = Counter(r["answer"] for r in picked)
                assert len(letters) == sizes.pop() and max(letters.values()) - min(letters.values()) <= 1, letters
    assert not {r["scene_id"] for r in train} & {r["scene_id"] for r in test}
    used = {r["scene"] for r in test}
    on_disk = {f"scenes/{p.name}" for p in (test_out / "scenes").glob("*.json")}
    assert used == on_disk  # nothing unused left behind
    for r in test:
        assert all((test_out / image).is_file() for image in r["images"])


def test_a_blind_model_scores_at_chance(splits):
    """The best answer from the question text alone (learned on train) is no better than
    chance + 5 points on test, per task (with two standard errors of slack at this size);
    so is the best guess from the options' texts."""
    _assert_blind_at_chance(splits["train"][1], splits["test"][1])
    _assert_option_prior_at_chance(splits["train"][1], splits["test"][1])


def test_trajectory_questions_say_nothing_about_the_scene(splits):
    """One wording for every plan: a question that stated the ego's speed would let a model
    that never looks extrapolate it (the ego-status shortcut of open-loop planning)."""
    for _, rows in splits.values():
        assert len({r["question"] for r in rows if r["answer_type"] == "waypoints"}) == 1


@pytest.mark.slow
def test_a_blind_model_scores_at_chance_on_larger_splits(tmp_path):
    rows = {}
    for split in ("train", "test"):
        build(tmp_path / split, select_tasks(), split, 150, workers=2)
        rows[split] = [json.loads(line) for line in (tmp_path / split / "samples.jsonl").read_text().splitlines()]
    _assert_blind_at_chance(rows["train"], rows["test"])
    _assert_option_prior_at_chance(rows["train"], rows["test"])


def _at_most_chance(name: str, hits: int, chance: float, n: int, what: str) -> None:
    accuracy, chance = hits / n, chance / n
    noise = 2 * (chance * (1 - chance) / n) ** 0.5  # two standard errors at this size
    assert accuracy <= chance + 0.05 + noise, f"{name}: {what} {accuracy:.2f} vs chance {chance:.2f}"


def _assert_option_prior_at_chance(train: list[dict], test: list[dict]) -> None:
    """A blind model that scores each option by how often its text was right in train."""
    right: Counter[tuple[str, str]] = Counter()
    offered: Counter[tuple[str, str]] = Counter()
    for r in train:
        for option in r["choices"] or []:
            offered[(r["task"], option[3:])] += 1
            right[(r["task"], option[3:])] += option[0] == r["answer"]
    for name in TASKS:
        rows = [r for r in test if r["task"] == name and r["choices"]]
        if not rows:
            continue
        hits = 0
        for r in rows:
            n = len(r["choices"])
            score = {o[0]: (right[(name, o[3:])] + 1) / (offered[(name, o[3:])] + n) for o in r["choices"]}
            hits += max(score, key=score.get) == r["answer"]
        _at_most_chance(name, hits, sum(1 / len(r["choices"]) for r in rows), len(rows), "option prior")


def _assert_blind_at_chance(train: list[dict], test: list[dict]) -> None:
    prior: dict[tuple[str, str], Counter] = defaultdict(Counter)
    overall: dict[str, Counter] = defaultdict(Counter)
    for r in train:
        prior[(r["task"], r["question"])][_content(r)] += 1
        overall[r["task"]][_content(r)] += 1
    for name in TASKS:
        rows = [r for r in test if r["task"] == name]
        hits, chance = 0, 0.0
        for r in rows:
            guesses = prior.get((name, r["question"])) or overall[name]
            hits += guesses.most_common(1)[0][0] == _content(r)
            chance += 1 / len(r["choices"] or TASKS[name].buckets)
        _at_most_chance(name, hits, chance, len(rows), "question prior")


def test_builds_are_deterministic(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    tasks = select_tasks(["count", "side"])
    build(a, tasks, "val", 4, workers=1)
    build(b, tasks, "val", 4, workers=2)
    assert (a / "samples.jsonl").read_bytes() == (b / "samples.jsonl").read_bytes()
    assert sorted(p.name for p in (a / "scenes").iterdir()) == sorted(p.name for p in (b / "scenes").iterdir())


def test_every_task_gives_valid_answers_over_many_scenes():
    """Fuzz: hundreds of scenes of every kind, every candidate well-formed for its type."""
    rng = np.random.default_rng(0)
    config = BENCH_CONFIG.model_copy(update={"density": 2.0})
    for seed in range(200):
        scene = render_scene(generate_scene(seed, config)).scene
        for name, t in TASKS.items():
            for sample in t.propose(scene, rng):
                assert sample.task == name and sample.meta["bucket"] in t.buckets
                if sample.choices:
                    assert sample.answer in [c[0] for c in sample.choices]
                    assert len(set(sample.choices)) == len(sample.choices)
                elif sample.answer_type == "yes_no":
                    assert sample.answer in ("yes", "no")
                elif sample.answer_type == "number":
                    assert isinstance(sample.answer, int) and sample.answer >= 0
                elif sample.answer_type == "box":
                    x1, y1, x2, y2 = sample.answer
                    spec = scene.cameras["CAM_FRONT"]
                    assert 0 <= x1 < x2 <= spec.width and 0 <= y1 < y2 <= spec.height
                elif sample.answer_type == "waypoints":
                    assert len(sample.answer) == 6 and all(len(p) == 2 for p in sample.answer)
                    assert sample.answer[-1][0] >= sample.answer[0][0] - 0.5  # nobody reverses
                else:
                    assert sample.answer_type == "meta_action" and sample.answer in t.buckets
                assert 2 <= len(sample.reference_steps) <= 6


def test_unknown_names_are_refused_with_the_known_ones():
    with pytest.raises(RoadthinkError, match=r"unknown task 'nope'; known: .*count"):
        select_tasks(["nope"])
    with pytest.raises(RoadthinkError, match=r"unknown family 'vibes'; known: perception"):
        select_tasks(families=["vibes"])
    with pytest.raises(RoadthinkError, match="unknown split"):
        build(Path("/tmp/never"), select_tasks(["count"]), "dev", 1)
