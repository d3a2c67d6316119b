"""The agent: tools as typed functions, each tool's behaviour, the multi-turn loop with both
tool-call formats, error observations, limits, and the thinking modes, driven by scripted
agents (no VLM needed)."""

from __future__ import annotations

import asyncio
import json
import math
import time
from pathlib import Path

import numpy as np
import pytest

from roadthink.agent.loop import Limits, run_episode
from roadthink.agent.modes import AgentConfig, agreement, complexity, solve
from roadthink.agent.registry import ToolError, call_tool, select_tools
from roadthink.agent.scripted import ScriptedModel, in_text, native, written
from roadthink.agent.tools import constant_velocity, crop_window, to_original
from roadthink.agent.workspace import AgentSettings, Workspace, sample_images
from roadthink.eval.bench import load_bench
from roadthink.eval.prompt import messages_for
from roadthink.models.base import resolve_model
from roadthink.models.types import Completion, Message
from roadthink.scene.io import load_scene
from roadthink.tasks.sample import AnswerType


@pytest.fixture(scope="module")
def bench(splits):
    return load_bench(splits["test"][0])


def case(bench, task: str, out: Path, **settings):
    """The first sample of ``task``: its messages and a workspace over its images and scene."""
    sample = next(s for s in bench.samples if s.task == task)
    paths = [bench.path / rel for rel in sample.images]
    workspace = Workspace(
        scene=load_scene(bench.path / sample.scene),
        images=sample_images(paths),
        out=out,
        settings=AgentSettings(**settings),
    )
    return sample, messages_for(sample, [p.as_uri() for p in paths]), workspace


def test_every_tool_has_a_schema_from_its_signature() -> None:
    tools = select_tools(None)
    names = {t.name for t in tools}
    assert {"zoom", "view", "past_frame", "detect", "measure", "imagine"} <= names
    for t in tools:
        function = t.schema()["function"]
        assert function["name"] == t.name and len(function["description"]) > 20
        assert function["parameters"]["type"] == "object"
    zoom = next(t for t in tools if t.name == "zoom").schema()["function"]["parameters"]
    assert zoom["required"] == ["view", "bbox"]
    assert zoom["properties"]["bbox"]["minItems"] == 4 and "description" in zoom["properties"]["bbox"]
    with pytest.raises(ValueError, match="unknown tool 'teleport'; known: "):
        select_tools(["zoom", "teleport"])


@pytest.mark.parametrize(
    "name, arguments, message",
    [
        ("teleport", "{}", "unknown tool 'teleport'; available: zoom"),
        ("zoom", '{"view": "CAM_FRONT", bbox: [1]}', "zoom: arguments are not JSON"),
        ("zoom", "[1, 2]", "arguments must be a JSON object"),
        ("zoom", '{"view": "CAM_FRONT"}', "zoom: bbox: Field required"),
        ("zoom", '{"view": "CAM_FRONT", "bbox": [1, 2, 3]}', "zoom: bbox: List should have at least 4 items"),
        ("zoom", '{"view": "CAM_FRONT", "bbox": ["a", 2, 3, 4]}', "zoom: bbox.0: Input should be a valid number"),
        ("zoom", '{"view": "CAM_FRONT", "bbox": [1, 2, 3, 4], "x": 1}', "zoom: x: Extra inputs are not permitted"),
        ("zoom", '{"view": "CAM_FRONT", "bbox": [50, 50, 50, 90]}', "has no area"),
        ("zoom", '{"view": "CAM_FRONT", "bbox": [700, 10, 900, 90]}', "lies outside the image (640x360)"),
        ("zoom", '{"view": "CAM_ROOF", "bbox": [1, 2, 3, 4]}', "no view 'CAM_ROOF'; views: CAM_FRONT"),
    ],
)
def test_bad_calls_are_one_line_tool_errors(bench, tmp_path, name, arguments, message) -> None:
    _, _, workspace = case(bench, "count", tmp_path)
    with pytest.raises(ToolError) as caught:
        call_tool(workspace, select_tools(["zoom"]), name, arguments)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_zoom_maps_shown_coordinates_to_the_original() -> None:
    assert to_original([100, 50, 300, 150], (1000, 1000), (640, 360)) == (64.0, 18.0, 192.0, 54.0)
    assert crop_window((100, 100, 200, 150), (640, 360), 28, 4.0) == (100, 100, 200, 150)
    assert crop_window((-50, -20, 60, 40), (640, 360), 28, 4.0) == (0, 0, 60, 40)  # clamped
    x1, y1, x2, y2 = crop_window((300, 200, 302, 201), (640, 360), 28, 4.0)
    assert (x2 - x1, y2 - y1) == (28, 28) and x1 <= 300 and x2 >= 302  # at least 28 px, around the box
    x1, y1, x2, y2 = crop_window((0, 100, 640, 110), (640, 360), 28, 4.0)
    assert (x2 - x1) / (y2 - y1) <= 4.0 + 1e-9  # a sliver is widened to the aspect cap
    assert crop_window((630, 350, 640, 360), (640, 360), 28, 4.0) == (612, 332, 640, 360)  # shifted inside


def test_zoom_returns_the_region_enlarged(bench, tmp_path) -> None:
    _, _, workspace = case(bench, "count", tmp_path, coords="normalized")
    result = call_tool(workspace, select_tools(["zoom"]), "zoom", {"view": "CAM_FRONT", "bbox": [250, 250, 500, 500]})
    assert result.data["window"] == [160, 90, 320, 180]  # 0-1000 coordinates in the 640x360 image
    (enlarged,) = result.images
    assert max(enlarged.shape[:2]) == workspace.settings.zoom_side
    original = workspace.image("CAM_FRONT")[90:180, 160:320].astype(float)
    shrunk = enlarged[:: enlarged.shape[0] // 90, :: enlarged.shape[1] // 160][:90, :160].astype(float)
    assert np.abs(shrunk - original).mean() < 20  # the same picture, larger


def test_other_views_are_rendered_once_under_the_runs_condition(bench, tmp_path) -> None:
    _, _, workspace = case(bench, "count", tmp_path)
    workspace.condition = lambda image, key: np.zeros_like(image)  # e.g. text-only: every view black
    tools = select_tools(["view", "past_frame"])
    back = call_tool(workspace, tools, "view", {"camera": "CAM_BACK"})
    assert back.images[0].shape == (360, 640, 3) and back.images[0].max() == 0
    assert "CAM_BACK" in workspace.images and workspace.images["CAM_BACK"].is_file()
    bev = call_tool(workspace, tools, "view", {"camera": "BEV"})
    assert bev.images[0].ndim == 3
    past = call_tool(workspace, tools, "past_frame", {"camera": "CAM_FRONT_LEFT", "seconds_ago": 1.5})
    assert past.data["view"] == "CAM_FRONT_LEFT@-1.5s"
    with pytest.raises(ToolError, match=r"seconds_ago must be one of 0\.5, 1, 1\.5, 2"):
        call_tool(workspace, tools, "past_frame", {"camera": "CAM_FRONT", "seconds_ago": 0.7})
    imagined = call_tool(workspace, select_tools(["imagine"]), "imagine", {"seconds": 2})
    assert imagined.images[0].max() == 0  # the imagined future is seen under the run's condition too
    with pytest.raises(ToolError, match=r"imagine: seconds must be one of 0\.5, 1, 1\.5, 2, 2\.5, 3"):
        call_tool(workspace, select_tools(["imagine"]), "imagine", {"seconds": 4})


def test_past_frames_the_sample_has_are_not_rendered_again(bench, tmp_path) -> None:
    _, _, workspace = case(bench, "motion", tmp_path)
    before = dict(workspace.images)
    result = call_tool(workspace, select_tools(["past_frame"]), "past_frame", {"camera": "CAM_FRONT", "seconds_ago": 1})
    assert workspace.images == before and not list(tmp_path.iterdir())
    assert np.array_equal(result.images[0], workspace.image("CAM_FRONT@-1s"))


def test_a_perfect_detector_finds_the_ground_truth_and_measure_its_range(bench, tmp_path) -> None:
    _, _, workspace = case(
        bench, "count", tmp_path, detector_recall=1.0, detector_false_positives=0.0, detector_box_noise=0.0,
        measure_noise=0.0, bearing_noise_deg=0.0,
    )  # fmt: skip
    tools = select_tools(["detect", "measure"])
    found = call_tool(workspace, tools, "detect", {"camera": "CAM_FRONT"}).data["detections"]
    truth = {a.id: a for a in workspace.scene.agents if "CAM_FRONT" in a.cameras}
    assert len(found) == len(truth) > 0
    boxes = sorted(tuple(d["box"]) for d in found)
    assert boxes == sorted(tuple(round(v, 1) for v in a.cameras["CAM_FRONT"].bbox) for a in truth.values())
    first = workspace.detections["d1"]
    measured = call_tool(workspace, tools, "measure", {"a": "d1"}).data
    x, y = truth[first.truth].box.center[:2]
    assert measured["distance"] == pytest.approx(math.hypot(x, y), abs=0.1)
    assert measured["bearing"] == pytest.approx(math.degrees(math.atan2(y, x)), abs=1.0)  # positions in 0.1 m
    with pytest.raises(ToolError, match="no object 'd99'; known: ego, d1"):
        call_tool(workspace, tools, "measure", {"a": "d99"})


def test_a_noisy_detector_misses_and_invents_but_repeats_itself(bench, tmp_path) -> None:
    _, _, workspace = case(bench, "count", tmp_path, detector_recall=0.5, detector_false_positives=3.0)
    tools = select_tools(["detect"])
    runs = [call_tool(workspace, tools, "detect", {"camera": "CAM_FRONT"}).data["detections"] for _ in range(2)]
    assert [d["box"] for d in runs[0]] == [d["box"] for d in runs[1]]  # deterministic per seed
    assert {d["id"] for d in runs[0]}.isdisjoint({d["id"] for d in runs[1]})  # ids stay unique in an episode
    truths = [d.truth for d in workspace.detections.values()]
    assert None in truths  # false positives
    cars = call_tool(workspace, tools, "detect", {"camera": "CAM_FRONT", "category": "car"}).data["detections"]
    assert {d["category"] for d in cars} <= {"car"}


def test_imagine_rolls_everyone_forward_at_constant_velocity(bench) -> None:
    scene = load_scene(bench.path / bench.samples[0].scene)
    later = constant_velocity(scene, 2.0)
    now = {a.id: a for a in scene.agents}
    for agent in later.agents:
        before = now[agent.id]
        expected_x = before.box.center[0] + before.velocity[0] * 2.0 - scene.ego.speed * 2.0
        if abs(scene.ego.yaw_rate) < 1e-6:
            assert agent.box.center[0] == pytest.approx(expected_x, abs=0.05)
    assert later.ego.pose.x != scene.ego.pose.x or scene.ego.speed == 0


def look_model() -> ScriptedModel:
    return ScriptedModel(
        "look",
        [
            native("zoom", view="CAM_FRONT", bbox=[160, 90, 480, 270]),
            in_text("view", camera="BEV"),
        ],
    )


def test_a_looking_episode_records_both_call_formats_and_answers(bench, tmp_path) -> None:
    sample, messages, workspace = case(bench, "count", tmp_path / "ep")
    model = look_model()
    options = {"sample": sample, "scene": workspace.scene}
    reply, trace = asyncio.run(
        run_episode(model, messages, workspace, select_tools(None), run_folder=tmp_path, **options)
    )
    assert trace.stopped == "answer" and trace.model_calls == 3
    assert [t.call_format for t in trace.turns] == ["native", "text", None]
    zoom, bev = trace.tool_calls
    assert zoom.name == "zoom" and zoom.error is None and zoom.data["window"] == [160, 90, 480, 270]
    assert bev.name == "view" and (tmp_path / bev.images[0]).is_file()
    assert "<answer>" in reply and trace.tool_errors == 0


def test_malformed_calls_come_back_as_errors_and_the_episode_goes_on(bench, tmp_path) -> None:
    sample, messages, workspace = case(bench, "count", tmp_path)
    model = resolve_model("scripted:clumsy")
    seen: list[list[Message]] = []
    original = model.generate

    async def spy(history, **options):
        seen.append(list(history))
        return await original(history, **options)

    model.generate = spy
    reply, trace = asyncio.run(
        run_episode(model, messages, workspace, select_tools(None), sample=sample, scene=workspace.scene)
    )
    assert trace.stopped == "answer" and "<answer>" in reply
    errors = [c.error for c in trace.tool_calls]
    assert len(errors) == 4 and all(errors)
    assert "not JSON" in errors[0] and "unknown tool 'teleport'" in errors[1]
    assert "has no area" in errors[2] and "no view 'CAM_ROOF'" in errors[3]
    told = [m.text for m in seen[-1] if m.role in ("tool", "user")]
    assert any("could not be read" in t for t in told) and any(t.startswith("error: unknown tool") for t in told)


@pytest.mark.parametrize(
    "limits, stop", [(Limits(turns=3), "turns"), (Limits(tool_calls=2), "tool_calls"), (Limits(tokens=250), "tokens")]
)
def test_limits_end_the_tool_phase_with_one_forced_answer(bench, tmp_path, limits, stop) -> None:
    sample, messages, workspace = case(bench, "count", tmp_path)
    model = resolve_model("scripted:stubborn")
    reply, trace = asyncio.run(
        run_episode(model, messages, workspace, select_tools(["view"]), limits, sample=sample, scene=workspace.scene)
    )
    assert trace.stopped == stop
    assert trace.turns[-1].note == f"limit: {stop}" and not trace.turns[-1].calls
    assert "<answer>" in reply
    assert len(trace.tool_calls) <= limits.tool_calls and trace.model_calls <= limits.turns + 1


def test_wall_time_limit_stops_a_slow_model(bench, tmp_path) -> None:
    _, messages, workspace = case(bench, "count", tmp_path)

    class Slow:
        name = "slow"

        async def generate(self, messages, **options):
            await asyncio.sleep(5)
            return Completion(text="late")

    started = time.monotonic()
    reply, trace = asyncio.run(run_episode(Slow(), messages, workspace, select_tools(["view"]), Limits(seconds=0.3)))
    assert trace.stopped == "time" and reply == ""
    assert time.monotonic() - started < 2


def test_fast_mode_is_one_short_call_without_tools(bench, tmp_path) -> None:
    sample, messages, workspace = case(bench, "count", tmp_path)
    seen = []

    class Recorder:
        name = "recorder"

        async def generate(self, messages, **options):
            seen.append((messages, options))
            return Completion(text="<answer>A</answer>", prompt_tokens=50, completion_tokens=3)

    reply, trace = asyncio.run(solve(Recorder(), messages, workspace, AgentConfig(mode="fast"), sample=sample))
    assert reply == "<answer>A</answer>" and trace.model_calls == 1 and trace.mode == "fast"
    history, options = seen[0]
    assert options["max_tokens"] == 64 and "tools" not in options
    assert "without explanation" in history[0].text


def test_auto_mode_routes_by_agreement_and_complexity(bench, tmp_path) -> None:
    sample, messages, workspace = case(bench, "count", tmp_path, detector_false_positives=0.0)
    calm = AgentConfig(mode="auto", busy=10.0)  # never busy enough to go slow at once
    sure = ScriptedModel("sure", [], final="<answer>2</answer>")  # a count question: a number
    reply, trace = asyncio.run(solve(sure, messages, workspace, calm, sample=sample))
    assert trace.route.startswith("fast: 3 short answers agree") and trace.model_calls == 3
    unsure_replies = iter(["<answer>1</answer>", "<answer>2</answer>", "<answer>1</answer>"])

    class Unsure:
        name = "unsure"

        async def generate(self, messages, **options):
            if options.get("tools"):
                return Completion(text="<think>Looking closer.</think><answer>3</answer>")
            return Completion(text=next(unsure_replies))

    reply, trace = asyncio.run(solve(Unsure(), messages, workspace, calm, sample=sample))
    assert trace.route.startswith("slow: 3 short answers disagree") and reply.endswith("<answer>3</answer>")
    assert trace.model_calls == 4
    busy = AgentConfig(mode="auto", busy=0.0)
    reply, trace = asyncio.run(solve(sure, messages, workspace, busy, sample=sample))
    assert trace.route.startswith("slow: scene complexity") and trace.model_calls == 1
    assert 0.0 <= complexity(sample, workspace) <= 1.0


def test_agreement_of_short_answers() -> None:
    assert agreement(["A", "A", "A"], AnswerType.CHOICE) == 0
    assert agreement(["A", "B", "A"], AnswerType.CHOICE) is None
    assert agreement(["A", None, "A"], AnswerType.CHOICE) is None
    assert agreement([[0, 0, 10, 10], [1, 1, 10, 10]], AnswerType.BOX) == 0
    assert agreement([[0, 0, 10, 10], [20, 20, 30, 30]], AnswerType.BOX) is None
    plan = [[i, 0] for i in range(1, 7)]
    assert agreement([plan, [[i, 0.5] for i in range(1, 7)]], AnswerType.WAYPOINTS) == 0
    assert agreement([plan, [[i, 5] for i in range(1, 7)]], AnswerType.WAYPOINTS) is None


def test_scripted_policies_resolve_by_name() -> None:
    assert resolve_model("scripted:look").name == "scripted:look"
    with pytest.raises(Exception, match="unknown scripted policy 'x'; known: look, sense, clumsy, stubborn"):
        resolve_model("scripted:x")
    assert json.loads(written('{"a": 1}')([]).text) == {"a": 1}


def test_python_tool_runs_code_on_the_images_and_reports_escapes(bench, tmp_path) -> None:
    sample, messages, workspace = case(bench, "count", tmp_path / "ep")
    crop = "img = images['CAM_FRONT']\nprint(img.size)\nshow(img.crop((0, 0, 64, 32)))"
    model = ScriptedModel(
        "coder",
        [
            native("python", code=crop),
            native("python", code="print(open('/etc/passwd').read())"),
            native("python", code="1/0"),
        ],
    )
    reply, trace = asyncio.run(
        run_episode(
            model,
            messages,
            workspace,
            select_tools(["python"]),
            run_folder=tmp_path,
            sample=sample,
            scene=workspace.scene,
        )
    )
    ran, escaped, failed = trace.tool_calls
    assert ran.error is None and ran.observation == "(640, 360)"
    assert len(ran.images) == 1 and (tmp_path / ran.images[0]).is_file()
    assert "blocked: reading /etc/passwd" in escaped.error
    assert "ZeroDivisionError" in failed.error
    assert trace.stopped == "answer" and "<answer>" in reply


def test_check_rules_gives_the_verifiers_verdict_and_refuses_gibberish(bench, tmp_path) -> None:
    from roadthink.rules import situation_from_scene, verify

    _, _, workspace = case(bench, "meta_action", tmp_path, rules_from="scene")
    tools = select_tools(["check_rules"])
    for action in ("accelerate, straight", "stop, straight", "keep, left lane change"):
        result = call_tool(workspace, tools, "check_rules", {"action": action})
        expected = verify(situation_from_scene(workspace.scene), action)
        assert result.data["verdict"] == expected.model_dump(mode="json")
        assert ("Safest legal action" in result.text) != expected.legal
    with pytest.raises(ToolError, match=r"check_rules: .*'fly to the moon'") as caught:
        call_tool(workspace, tools, "check_rules", {"action": "fly to the moon"})
    assert "\n" not in str(caught.value)
    _, _, perceiving = case(bench, "meta_action", tmp_path / "p")
    verdict = call_tool(perceiving, tools, "check_rules", {"action": "keep, straight"}).data["verdict"]
    assert verdict["action"]["speed"] == "keep" and isinstance(verdict["legal"], bool)
    assert {"CAM_BACK", "CAM_FRONT_LEFT"} <= set(perceiving.images)  # it looked all around


def test_a_tool_that_crashes_is_an_observation_not_the_end(bench, tmp_path) -> None:
    from pydantic import BaseModel

    from roadthink.agent.registry import Tool

    class NoArguments(BaseModel):
        pass

    def boom(workspace):
        raise KeyError("lost")

    sample, messages, workspace = case(bench, "count", tmp_path)
    model = ScriptedModel("m", [native("boom")])
    tools = [Tool("boom", "Explodes.", NoArguments, boom)]
    reply, trace = asyncio.run(run_episode(model, messages, workspace, tools, sample=sample, scene=workspace.scene))
    assert trace.tool_calls[0].error == "boom failed: KeyError: 'lost'"
    assert trace.stopped == "answer" and "<answer>" in reply


def test_auto_mode_trusts_a_confident_short_answer_and_doubts_an_unsure_one(bench, tmp_path) -> None:
    from roadthink.models.types import TokenLogprob

    sample, messages, workspace = case(bench, "count", tmp_path, detector_false_positives=0.0)
    calm = AgentConfig(mode="auto", busy=10.0)

    class Calibrated:
        name = "calibrated"

        def __init__(self, p: float) -> None:
            self.p, self.calls = p, 0

        async def generate(self, messages, **options):
            self.calls += 1
            if options.get("tools"):
                return Completion(text="<answer>3</answer>")
            assert options["logprobs"] is True
            tokens = [("<answer>", 0.0), ("2", math.log(self.p)), ("</answer>", 0.0)]
            return Completion(
                text="<answer>2</answer>", logprobs=[TokenLogprob(token=t, logprob=lp) for t, lp in tokens]
            )

    sure = Calibrated(0.95)
    reply, trace = asyncio.run(solve(sure, messages, workspace, calm, sample=sample))
    assert reply == "<answer>2</answer>" and sure.calls == 1
    assert trace.route.startswith("fast: answer confidence 0.95 >= 0.8")
    unsure = Calibrated(0.4)
    reply, trace = asyncio.run(solve(unsure, messages, workspace, calm, sample=sample))
    assert reply == "<answer>3</answer>" and unsure.calls == 2
    assert trace.route.startswith("slow: answer confidence 0.40 < 0.8")


def test_answer_confidence_reads_the_first_answer_token() -> None:
    from roadthink.agent.modes import answer_confidence
    from roadthink.models.types import TokenLogprob

    def reply(*tokens: tuple[str, float]) -> Completion:
        return Completion(text="", logprobs=[TokenLogprob(token=t, logprob=math.log(p)) for t, p in tokens])

    assert answer_confidence(
        reply(("I", 0.2), (" think", 0.3), ("<", 0.9), ("answer", 1.0), (">", 1.0), ("B", 0.7))
    ) == (pytest.approx(0.7))
    assert answer_confidence(reply((" ", 0.5), ("yes", 0.6))) == pytest.approx(0.6)  # no tag: the first word
    assert answer_confidence(Completion(text="B")) is None
