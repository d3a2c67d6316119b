"""The HTML report: self-contained, faithful to metrics.json, escaping model text, drawing
answers where they belong, comparing runs, and naming a broken run folder."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from roadthink.cli import app
from roadthink.errors import RoadthinkError
from roadthink.eval.bench import load_bench
from roadthink.eval.metrics import aggregate, score
from roadthink.eval.report import (
    DOT,
    LINE,
    PREDICTION,
    TRUTH,
    card_images,
    draw_boxes,
    draw_trajectories,
    load_run,
    pick_cards,
    render_report,
    write_comparison,
    write_report,
    zoom,
)
from roadthink.eval.result import Parsed, Result
from roadthink.eval.runner import RunConfig, run
from roadthink.models.base import resolve_model
from roadthink.scene.io import load_scene
from roadthink.tasks import select_tasks
from roadthink.tasks.build import build

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
SCRIPT = "<script>alert('pwned')</script>"
LATENCIES = [0.01, 0.02, 0.03, 0.04, 0.05, 0.06]  # s: p50 35 ms, p95 57.5 ms (linear interpolation)


@pytest.fixture(scope="module")
def bench(tmp_path_factory) -> Path:
    """Two samples each of a choice, a box and a trajectory task."""
    out = tmp_path_factory.mktemp("bench")
    build(out, select_tasks(["category", "box", "waypoints"]), "test", 2, workers=1)
    return out


def _results(bench: Path, condition: str = "clean", all_wrong: bool = False) -> list[Result]:
    """Hand-made replies to the six samples, in file order per task:
    category: right (with a <script> in its text), then wrong;
    box: shifted right by half its width (IoU 1/3), then unparsable;
    waypoints: 0.5 m ahead of the reference at every step (L2 0.5 m under both conventions).
    ``all_wrong`` turns every right answer wrong (the text-only condition of a robustness run)."""
    split = load_bench(bench)
    seen: dict[str, int] = {}
    results = []
    for i, sample in enumerate(sorted(split.samples, key=lambda s: s.task)):
        nth = seen[sample.task] = seen.get(sample.task, 0) + 1
        text, value, error = "", None, None
        if sample.task == "category":
            wrong = next(c[0] for c in sample.choices if c[0] != sample.answer)
            value = sample.answer if nth == 1 and not all_wrong else wrong
            text = f"{SCRIPT} The answer is {value}." if nth == 1 else f"Option {value}"
        elif sample.task == "box":
            x1, y1, x2, y2 = sample.answer
            value = [x1 + (x2 - x1) / 2, y1, x2 + (x2 - x1) / 2, y2] if nth == 1 else None
            text, error = (json.dumps(value), None) if nth == 1 else ("no idea", "no box in the reply")
        else:
            value = [[x + 0.5, y] for x, y in sample.answer]
            text = json.dumps(value)
        scene = load_scene(bench / sample.scene)
        scored = score(sample, Parsed(value=value, error=error), scene)
        results.append(
            Result(
                id=sample.id,
                family=sample.family,
                task=sample.task,
                answer_type=str(sample.answer_type),
                prediction=text,
                parsed=value,
                correct=scored.correct,
                score=scored.score,
                error=error,
                strict=i % 2 == 0,
                details=scored.details,
                latency_s=LATENCIES[i],
                condition=condition,
            )
        )
    return results


def _write_run(folder: Path, bench: Path, results: list[Result], model: str = "fake") -> Path:
    folder.mkdir(parents=True)
    conditions = sorted({r.condition for r in results}, key=lambda c: c != "clean")
    (folder / "config.json").write_text(json.dumps({"model": model, "bench": str(bench), "conditions": conditions}))
    (folder / "samples.jsonl").write_text("".join(r.model_dump_json() + "\n" for r in results))
    (folder / "metrics.json").write_text(json.dumps(aggregate(results)))
    return folder


@pytest.fixture(scope="module")
def report(bench, tmp_path_factory) -> tuple[Path, str]:
    folder = _write_run(tmp_path_factory.mktemp("run") / "fake", bench, _results(bench))
    return folder, write_report(folder).read_text()


def test_the_page_is_self_contained(report):
    _, html = report
    assert "http://" not in html and "https://" not in html
    assert "file:" not in html
    assert "<link" not in html and "<script" not in html
    sources = re.findall(r"""\bsrc=["']?([^"'\s>]+)""", html)
    assert sources, "the cards show images"
    assert all(s.startswith("data:image/jpeg;base64,") for s in sources)


def test_headline_numbers_come_from_metrics(report, bench):
    _, html = report
    row = html.split("<h2>Headline</h2>")[1].split("</tbody>")[0].split("<tbody>")[1]
    cells = re.findall(r"<td[^>]*>(.*?)</td>", row)
    assert cells == [
        "fake",
        bench.name,
        "clean",
        "6",
        "<b>25.0%</b>",  # 1 right of 4 judged (trajectories have no right or wrong)
        "4.6–69.9",  # Wilson 95 % interval of 1/4, by hand: 0.0459 to 0.6994
        "50.0%",  # format compliance: 3 of 6 strict
        "1 (16.7%)",  # one error in six
        "35 ms / 57.5 ms",  # latency p50 / p95
        "0 / 0",  # tokens
        "–",  # no reasoning facts stated
    ]


def test_task_measures_and_both_l2_conventions(report):
    _, html = report
    assert "mean IoU 0.17" in html  # IoU 1/3 and an unread box (0) average to 1/6
    assert "UniAD (at horizon)" in html and "ST-P3 (mean to horizon)" in html
    l2_rows = re.findall(r"L2 \(m\), [^<]+</td>((?:<td class=num>[^<]*</td>){3})", html)
    assert len(l2_rows) == 2
    for row in l2_rows:
        assert re.findall(r">([^<]*)<", row)[::2] == ["0.50", "0.50", "0.50"]


def test_one_card_per_selected_sample_with_escaped_text(report):
    _, html = report
    assert html.count('<article class="card ') == 6  # up to 3 per task, 2 per task here
    assert SCRIPT not in html
    assert "&lt;script&gt;alert(&#x27;pwned&#x27;)&lt;/script&gt;" in html
    assert "no box in the reply" in html


def test_a_bench_the_caller_has_loaded_gives_the_same_page(report, bench, tmp_path):
    folder, html = report
    assert write_report(folder, tmp_path / "given.html", bench=load_bench(bench)).read_text() == html


def test_cards_show_the_worst_first(bench):
    results = _results(bench)
    ids = {r.task: [x.id for x in results if x.task == r.task] for r in results}
    chosen = [r.id for r in pick_cards(results, per_task=1)]
    # box: the unread one (score 0) before IoU 1/3; category: the wrong one; waypoints: equal, file order
    assert chosen == [ids["box"][1], ids["category"][1], ids["waypoints"][0]]


def test_heat_map_only_when_the_run_has_several_conditions(report, bench, tmp_path):
    _, single = report
    assert "accuracy drop per condition and family" not in single
    results = _results(bench) + _results(bench, "text_only", all_wrong=True)
    html = write_report(_write_run(tmp_path / "robust", bench, results)).read_text()
    assert "accuracy drop per condition and family" in html
    # perception: 1/2 right when clean, 0/2 text-only: 50 points lost; grounding: 0 to 0
    cells = re.findall(r"<text[^>]*>([^<]*)</text>", html.split("accuracy drop per condition")[1].split("</svg>")[0])
    assert cells[:3] == ["grounding", "perception", "planning"]
    assert cells[3:] == ["text_only", "+0.0", "+50.0", "n/a"]


def test_comparison_lists_every_run(bench, tmp_path):
    a = _write_run(tmp_path / "a", bench, _results(bench), model="alpha")
    b = _write_run(tmp_path / "b", bench, _results(bench, all_wrong=True), model="beta")
    html = write_comparison([a, b], tmp_path / "cmp.html").read_text()
    assert "alpha (a)" in html and "beta (b)" in html
    runs_table = html.split("<h2>Runs</h2>")[1].split("</table>")[0]
    assert runs_table.count("<tr>") == 3  # header and one row per run
    assert "<b>25.0%</b>" in runs_table and "<b>0.0%</b>" in runs_table
    assert "http" not in html and "<script" not in html


def _changed(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    return (before != after).any(axis=2)


def test_box_drawn_exactly_on_its_outline():
    image = np.full((100, 120, 3), 90, np.uint8)
    drawn = draw_boxes(image, [20, 30, 60, 70], None)
    changed = _changed(image, drawn)
    ys, xs = np.nonzero(changed)
    near_x = (np.abs(xs - 20) <= LINE) | (np.abs(xs - 60) <= LINE)
    near_y = (np.abs(ys - 30) <= LINE) | (np.abs(ys - 70) <= LINE)
    assert (near_x | near_y).all(), "only the outline changes"
    assert (xs >= 20 - LINE).all() and (xs <= 60 + LINE).all() and (ys >= 30 - LINE).all() and (ys <= 70 + LINE).all()
    assert not changed[30 + 2 * LINE : 70 - 2 * LINE, 20 + 2 * LINE : 60 - 2 * LINE].any(), "inside untouched"
    assert changed[50, 20] and changed[50, 60] and changed[30, 40] and changed[70, 40], "every side drawn"
    assert tuple(drawn[50, 20]) == PREDICTION
    assert tuple(draw_boxes(image, None, [20, 30, 60, 70])[50, 20]) == TRUTH
    assert np.array_equal(draw_boxes(image, "not a box", None), image)


def test_trajectory_drawn_exactly_along_its_points():
    bev = np.full((200, 200, 3), 90, np.uint8)
    plan = [[x, 0.0] for x in (1, 2, 3, 4, 5, 6)]  # straight ahead: up the centre column
    drawn = draw_trajectories(bev, 0.5, plan, None)
    ys, xs = np.nonzero(_changed(bev, drawn))
    # ego at (100, 100); 6 m ahead at 0.5 m/px is 12 px up: v = 88
    assert (np.abs(xs - 100) <= DOT + 1).all()
    assert ys.min() >= 88 - DOT - 1 and ys.max() <= 100 + LINE
    assert ys.min() <= 88 - DOT + 1, "the last waypoint is drawn"
    assert tuple(drawn[94, 100]) == PREDICTION
    left = [[1.0, y] for y in (1, 2, 3, 4, 5, 6)]  # 1 m ahead, sliding left: columns 98 to 88
    ys, xs = np.nonzero(_changed(bev, draw_trajectories(bev, 0.5, None, left)))
    assert xs.min() >= 88 - DOT - 1 and xs.max() <= 100 + LINE and ys.min() >= 98 - DOT - 1


def test_zoom_keeps_the_ego_at_the_centre():
    bev = np.zeros((400, 400, 3), np.uint8)
    bev[158:163, 198:203] = 255  # a mark 10 m ahead of the ego at 0.25 m/px: (u, v) = (200, 160)
    view, resolution = zoom(bev, 0.25, 10.0)
    # 10 m plus a 6 m margin each way: a 128 px square enlarged to 320 px
    assert resolution == pytest.approx(0.25 * 128 / 320)
    ys, xs = np.nonzero(view[..., 0] > 128)
    assert abs(xs.mean() - 160) <= 1 and abs(ys.mean() - (160 - 10 / resolution)) <= 1


def test_torn_last_line_is_left_out_and_the_file_untouched(bench, tmp_path):
    folder = _write_run(tmp_path / "torn", bench, _results(bench))
    with (folder / "samples.jsonl").open("a") as f:
        f.write('{"id": "half')
    before = (folder / "samples.jsonl").read_bytes()
    assert len(load_run(folder).results) == 6
    assert (folder / "samples.jsonl").read_bytes() == before


def test_broken_run_folders_are_named(bench, tmp_path):
    with pytest.raises(RoadthinkError, match="no such folder"):
        load_run(tmp_path / "missing")
    folder = _write_run(tmp_path / "broken", bench, _results(bench))
    (folder / "samples.jsonl").write_text("not json\n")
    with pytest.raises(RoadthinkError, match=r"samples.jsonl:1: not a result line"):
        load_run(folder)
    (folder / "metrics.json").unlink()
    with pytest.raises(RoadthinkError, match=r"metrics.json: missing"):
        load_run(folder)
    result = CliRunner().invoke(app, ["report", str(tmp_path / "missing")])
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2 and len(lines) == 1 and "missing" in lines[0]


def test_a_missing_bench_keeps_the_numbers_and_says_so(bench, tmp_path):
    folder = _write_run(tmp_path / "nobench", tmp_path / "gone", _results(bench))
    html = render_report(load_run(folder))
    assert "Bench unavailable" in html and "<b>25.0%</b>" in html
    assert html.count('<article class="card ') == 6 and "<img" not in html


def test_cli_writes_one_report_or_a_comparison(report, tmp_path):
    folder, _ = report
    out = tmp_path / "one.html"
    assert CliRunner().invoke(app, ["report", str(folder), "--out", str(out)]).exit_code == 0
    assert "roadthink report: fake" in out.read_text()
    both = tmp_path / "both.html"
    result = CliRunner().invoke(app, ["report", str(folder), str(folder), "--out", str(both)])
    assert result.exit_code == 0 and "comparison of 2 runs" in both.read_text()


def _decode(uri: str) -> np.ndarray:
    jpeg = base64.b64decode(uri.removeprefix("data:image/jpeg;base64,"))
    return np.asarray(Image.open(io.BytesIO(jpeg)).convert("RGB"))


def test_a_finished_run_writes_its_report_with_the_images_the_model_saw(bench, tmp_path):
    out = tmp_path / "oracle"
    config = RunConfig("oracle", bench, ["clean", "text_only"])
    asyncio.run(run(resolve_model("oracle"), load_bench(bench), out, config, False))
    html = (out / "report.html").read_text()
    assert "roadthink report: oracle" in html and "<b>100.0%</b>" in html
    assert "accuracy drop per condition and family" in html
    finished, split = load_run(out), load_bench(bench)
    sample = next(s for s in split.samples if s.task == "category")
    shown = {
        r.condition: _decode(card_images(finished, split, sample, r)[0][1])
        for r in finished.results
        if r.id == sample.id
    }
    assert shown["clean"].mean() > 40, "the bench's own camera image"
    assert shown["text_only"].max() < 10, "the blacked-out copy the runner made under RUN/images/"


@pytest.mark.skipif(not CHROMIUM.is_file(), reason="needs /usr/bin/chromium (apt-get install chromium)")
def test_screenshot_of_the_report_is_a_real_picture(report, tmp_path):
    folder, _ = report
    png = tmp_path / "shot.png"
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "screenshot.py"),
            str(folder / "report.html"),
            str(png),
            "--height",
            "900",
        ],
        check=True,
        timeout=180,
    )
    image = np.asarray(Image.open(png).convert("RGB"))
    assert image.shape == (900, 1400, 3)
    assert image.std() > 20, "not a blank page"
    assert len(np.unique(image.reshape(-1, 3), axis=0)) > 50, "text and charts, not a flat fill"


def test_screenshot_script_reports_a_missing_file(tmp_path):
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "screenshot.py"), str(tmp_path / "no.html"), str(tmp_path / "x.png")],
        capture_output=True,
        text=True,
    )
    assert done.returncode != 0 and "no such file" in done.stderr
    assert not (tmp_path / "x.png").exists()
