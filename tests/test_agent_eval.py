"""Agents in evaluation runs: traces in RUN/samples.jsonl, tool-use metrics, the report
drawing zoom windows and tool pictures, traffic-rule checks and the verifier's veto."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from roadthink.cli import app
from roadthink.eval.result import finished_results


def evaluate(bench: Path, out: Path, *args: str) -> dict:
    result = CliRunner().invoke(app, ["eval", "--bench", str(bench), "--out", str(out), *args])
    assert result.exit_code == 0, result.output
    return json.loads((out / "metrics.json").read_text())


def test_a_looking_agent_run_records_traces_and_tool_use(splits, tmp_path: Path) -> None:
    bench = splits["test"][0]
    out = tmp_path / "look"
    metrics = evaluate(bench, out, "--model", "scripted:look", "--agent", "slow", "--limit", "20")
    agent = metrics["overall"]["agent"]
    assert agent["n"] == 20 and agent["tool_use_rate"] == 1.0 and agent["tool_success_rate"] == 1.0
    assert agent["by_tool"] == {"past_frame": {"calls": 20, "errors": 0}, "zoom": {"calls": 20, "errors": 0}}
    assert metrics["overall"]["accuracy"] == 1.0  # looking again did not get in the way of the answer
    results, _ = finished_results(out / "samples.jsonl")
    zoom = results[0].trace.turns[0].calls[0]
    assert zoom.name == "zoom" and (out / zoom.images[0]).is_file()
    assert zoom.images[0].startswith("traces/clean/")
    config = json.loads((out / "config.json").read_text())
    assert config["agent"]["mode"] == "slow" and config["agent"]["limits"]["turns"] == 6
    page = (out / "report.html").read_text()
    assert "Agent: tool use and cost" in page and "zoom window on CAM_FRONT" in page
    assert "past_frame(camera=" in page


def test_a_clumsy_agent_loses_no_sample(splits, tmp_path: Path) -> None:
    metrics = evaluate(
        splits["test"][0], tmp_path / "c", "--model", "scripted:clumsy", "--agent", "slow", "--limit", "6"
    )
    agent = metrics["overall"]["agent"]
    assert agent["n"] == 6 and agent["tool_success_rate"] == 0.0
    assert metrics["overall"]["accuracy"] == 1.0 and metrics["overall"]["errors"]["count"] == 0


def test_limits_from_the_command_line(splits, tmp_path: Path) -> None:
    args = ["--model", "scripted:stubborn", "--agent", "slow", "--limit", "4", "--max-tool-calls", "2"]
    metrics = evaluate(splits["test"][0], tmp_path / "s", *args, "--tools", "view")
    assert metrics["overall"]["agent"]["stopped"] == {"tool_calls": 4}
    assert metrics["overall"]["agent"]["tool_calls_per_sample"] == 2.0


@pytest.mark.parametrize(
    "args, message",
    [
        (["--agent", "pondering"], "--agent: unknown mode 'pondering'; known: fast, slow, auto"),
        (["--agent", "slow", "--tools", "zoom,teleport"], "--tools: unknown tool 'teleport'"),
        (["--tools", "zoom"], "--tools needs --agent slow or auto"),
        (["--rules-from", "dreams"], "--rules-from: 'dreams'; use perception or scene"),
    ],
)
def test_bad_agent_options_are_one_line_errors(splits, tmp_path: Path, args: list[str], message: str) -> None:
    result = CliRunner().invoke(
        app, ["eval", "--model", "random", "--bench", str(splits["test"][0]), "--out", str(tmp_path / "x"), *args]
    )
    assert result.exit_code == 2 and message in result.output
    assert not (tmp_path / "x").exists()


def test_the_verifier_vetoes_illegal_plans(splits, tmp_path: Path) -> None:
    """Random meta-actions against the rules: without the verifier some break them; with it
    enforced (over the true scene), every vetoed plan is replaced by a legal one."""
    bench = splits["test"][0]
    free = evaluate(bench, tmp_path / "free", "--model", "random", "--tasks", "meta_action")["overall"]["rules"]
    shielded = evaluate(
        bench,
        tmp_path / "shield",
        "--model",
        "random",
        "--tasks",
        "meta_action",
        "--enforce-rules",
        "--rules-from",
        "scene",
    )["overall"]["rules"]
    assert free["n"] == shielded["n"] > 0
    assert free["vetoed"] == 0 and free["violation_rate"] == free["proposed_violation_rate"] > 0
    assert shielded["proposed_violation_rate"] == free["proposed_violation_rate"]
    assert shielded["vetoed"] > 0 and shielded["violation_rate"] < free["violation_rate"]
    results, _ = finished_results(tmp_path / "shield" / "samples.jsonl")
    for r in results:
        if r.rules["vetoed"]:
            assert r.parsed == r.rules["final"] and r.rules["final_legal"]
    page = (tmp_path / "shield" / "report.html").read_text()
    assert "Traffic rules: planned actions" in page and "Vetoed: the verifier chose" in page
