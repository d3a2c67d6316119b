"""The agent's tools: look again (zoom, another view, a past frame, the imagined future),
sense (detect, measure), check a decision against the traffic rules, and run code on the
images. Each is a typed function registered with ``@tool``; its docstring is what the model
reads, so it says what the tool does and how to call it.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path
from typing import Annotated

import cv2
import numpy as np
from pydantic import Field

from roadthink.agent.registry import ToolError, ToolResult, tool
from roadthink.agent.sandbox import run_python
from roadthink.agent.workspace import VIEW_NAMES, Workspace, view_key
from roadthink.render import BEV, render_bev
from roadthink.rules import Situation, parse_action, situation_from_scene, verify
from roadthink.scene.cameras import CAMERA_NAMES
from roadthink.scene.timeline import scene_at
from roadthink.scene.types import Scene, TrackPoint

PAST = (0.5, 1.0, 1.5, 2.0)  # seconds back the scene keeps
FUTURE = (0.5, 1.0, 1.5, 2.0, 2.5, 3.0)

View = Annotated[str, Field(description=f"a view: {', '.join(VIEW_NAMES)}, or a past frame such as CAM_FRONT@-1s")]
Camera = Annotated[str, Field(description=f"one of {', '.join(VIEW_NAMES)}")]


def _view(workspace: Workspace, key: str) -> np.ndarray:
    """The image of a view the model named; an unknown name is a ToolError listing the known ones."""
    camera, _, when = key.partition("@")
    if camera not in VIEW_NAMES or (when and when not in {f"-{s:g}s" for s in PAST}):
        known = ", ".join([*VIEW_NAMES, *(f"{name}@-{s:g}s" for name in ("CAM_FRONT",) for s in PAST)])
        raise ToolError(f"no view {key!r}; views: {known}")
    try:
        return workspace.image(key)
    except ValueError as e:
        raise ToolError(str(e)) from None


def _one_of(what: str, value: float, allowed: tuple[float, ...]) -> None:
    """The moments a scene holds are fixed (2 Hz): anything else is a ToolError naming them."""
    if not any(abs(value - a) < 1e-6 for a in allowed):
        raise ToolError(f"{what} must be one of {', '.join(f'{a:g}' for a in allowed)}")


def to_original(box: list[float], shown: tuple[int, int], original: tuple[int, int]) -> tuple[float, ...]:
    """A box in the frame the model sees (``shown`` = width, height) in original pixels."""
    sx, sy = original[0] / shown[0], original[1] / shown[1]
    return (box[0] * sx, box[1] * sy, box[2] * sx, box[3] * sy)


def crop_window(
    box: tuple[float, ...], size: tuple[int, int], min_side: int, max_aspect: float
) -> tuple[int, int, int, int]:
    """The pixel window a zoom shows: ``box`` clamped to the image, grown around its centre to
    at least ``min_side`` pixels and to an aspect ratio within ``max_aspect``, then shifted
    back inside the image. Raises ToolError for boxes that are not boxes or miss the image."""
    width, height = size
    x1, y1, x2, y2 = box
    if not all(math.isfinite(v) for v in box):
        raise ToolError("zoom: bbox must be four finite numbers")
    if x2 <= x1 or y2 <= y1:
        raise ToolError(f"zoom: bbox {[round(v, 1) for v in box]} has no area (need x1 < x2 and y1 < y2)")
    x1, x2 = max(0.0, x1), min(float(width), x2)
    y1, y2 = max(0.0, y1), min(float(height), y2)
    if x2 <= x1 or y2 <= y1:
        raise ToolError(f"zoom: bbox {[round(v, 1) for v in box]} lies outside the image ({width}x{height})")
    w, h = max(x2 - x1, min_side), max(y2 - y1, min_side)
    w, h = max(w, h / max_aspect), max(h, w / max_aspect)
    w, h = min(w, width), min(h, height)
    cx = min(max((x1 + x2) / 2, w / 2), width - w / 2)
    cy = min(max((y1 + y2) / 2, h / 2), height - h / 2)
    return (round(cx - w / 2), round(cy - h / 2), round(cx + w / 2), round(cy + h / 2))


@tool
def zoom(
    workspace: Workspace,
    view: View,
    bbox: Annotated[
        list[float], Field(min_length=4, max_length=4, description="[x1, y1, x2, y2] in the image's coordinates")
    ],
) -> ToolResult:
    """Zoom into a region of an image to see small or distant things: returns the region
    enlarged, cut from the full-resolution image."""
    image = _view(workspace, view)
    height, width = image.shape[:2]
    shown = workspace.shown_size(image)
    s = workspace.settings
    x1, y1, x2, y2 = crop_window(to_original(bbox, shown, (width, height)), (width, height), s.min_crop, s.max_aspect)
    crop = image[y1:y2, x1:x2]
    scale = s.zoom_side / max(crop.shape[:2])
    size = (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale)))
    enlarged = cv2.resize(crop, size, interpolation=cv2.INTER_CUBIC if scale > 1 else cv2.INTER_AREA)
    text = f"{view} zoomed to x {x1}-{x2}, y {y1}-{y2} of its {width}x{height} pixels ({scale:.1f}x)."
    return ToolResult(text, [enlarged], {"view": view, "requested": list(bbox), "window": [x1, y1, x2, y2]})


@tool
def view(workspace: Workspace, camera: Camera) -> ToolResult:
    """Look through another camera, or at the bird's-eye view (BEV: the ego at the centre,
    heading up)."""
    image = _view(workspace, camera)
    return ToolResult(f"{camera}: {image.shape[1]}x{image.shape[0]} pixels.", [image], {"view": camera})


@tool
def past_frame(
    workspace: Workspace,
    camera: Camera,
    seconds_ago: Annotated[float, Field(description=f"one of {', '.join(f'{s:g}' for s in PAST)}")],
) -> ToolResult:
    """See what a camera showed a moment ago, to judge how things move."""
    _one_of("past_frame: seconds_ago", seconds_ago, PAST)
    key = view_key(camera, seconds_ago)
    image = _view(workspace, key)
    return ToolResult(f"{camera} {seconds_ago:g} s ago ({key}).", [image], {"view": key})


@tool
def detect(
    workspace: Workspace,
    camera: View,
    category: Annotated[str | None, Field(description="only this kind, e.g. car, pedestrian, traffic_cone")] = None,
) -> ToolResult:
    """Run an object detector on a view: boxes with a category, a score and an estimated
    position. Detectors miss things and see things that are not there: check what matters.
    Ids (d1, d2, …) can be given to measure."""
    image = _view(workspace, camera)
    t = -float(camera.partition("@")[2].removesuffix("s") or 0.0)
    scene = workspace.scene if t == 0 or workspace.scene is None else scene_at(workspace.scene, -t)
    try:
        found = workspace.detector.detect(image, camera, scene, workspace.seed)
    except ValueError as e:
        raise ToolError(f"detect: {e}") from None
    if category is not None:
        found = [d for d in found if d.category == category.strip().lower().replace(" ", "_")]
    start = len(workspace.detections)
    named = []
    for i, detection in enumerate(found, start + 1):
        detection = type(detection)(**{**detection.__dict__, "id": f"d{i}"})
        workspace.detections[detection.id] = detection
        named.append(detection)
    shown = workspace.shown_size(image)
    height, width = image.shape[:2]
    lines = [
        f"{d.id} {d.category} score {d.score:.2f} box "
        f"{[round(v) for v in to_original(list(d.box), (width, height), shown)]} "
        f"about {d.position[0]:.0f} m ahead, {d.position[1]:+.0f} m left"
        for d in named
    ]
    text = f"{len(named)} objects in {camera}" + (":\n" + "\n".join(lines) if lines else ".")
    boxes = [{"id": d.id, "category": d.category, "box": list(d.box), "score": d.score} for d in named]
    return ToolResult(text, [], {"view": camera, "detections": boxes})


@tool
def measure(
    workspace: Workspace,
    a: Annotated[str, Field(description="an object id from detect (e.g. d2), or ego")],
    b: Annotated[str, Field(description="another object id, or ego")] = "ego",
) -> ToolResult:
    """Distance and bearing from b to a, as a range sensor gives them (with its noise);
    bearing 0 is straight ahead, positive to the left."""
    pa, pb = _position(workspace, a), _position(workspace, b)
    rng = np.random.default_rng([workspace.seed, len(a), len(b), int(1000 * (pa[0] + pb[1]))])
    s = workspace.settings
    dx, dy = pa[0] - pb[0], pa[1] - pb[1]
    distance = math.hypot(dx, dy) * (1 + rng.normal(0, s.measure_noise))
    bearing = math.degrees(math.atan2(dy, dx)) + rng.normal(0, s.bearing_noise_deg)
    text = f"{a} from {b}: {distance:.1f} m at bearing {bearing:+.0f} deg."
    return ToolResult(text, [], {"a": a, "b": b, "distance": round(distance, 2), "bearing": round(bearing, 1)})


def _position(workspace: Workspace, name: str) -> tuple[float, float]:
    if name.strip().lower() == "ego":
        return (0.0, 0.0)
    if name not in workspace.detections:
        known = ", ".join(workspace.detections) or "none yet: call detect first"
        raise ToolError(f"measure: no object {name!r}; known: ego, {known}")
    return workspace.detections[name].position


@tool
def imagine(
    workspace: Workspace,
    seconds: Annotated[float, Field(description=f"how far ahead: one of {', '.join(f'{s:g}' for s in FUTURE)}")],
) -> ToolResult:
    """Imagine the bird's-eye view some seconds ahead if everyone kept their current velocity
    (and the ego its speed and turn rate): a picture of where things are heading."""
    _one_of("imagine: seconds", seconds, FUTURE)
    scene = workspace.need_scene("imagine")
    image = workspace.condition(render_bev(constant_velocity(scene, seconds)), f"{BEV}@+{seconds:g}s")
    return ToolResult(f"The bird's-eye view imagined {seconds:g} s ahead.", [image], {"seconds": seconds})


def constant_velocity(scene: Scene, t: float) -> Scene:
    """``scene`` at ``t`` seconds if agents kept their velocity and the ego its speed and yaw
    rate: a prediction from what is observable now, not the scene's recorded future."""
    ego = scene.ego
    yaw = ego.yaw_rate * t
    if abs(ego.yaw_rate) > 1e-6:
        radius = ego.speed / ego.yaw_rate
        ego_at = (radius * math.sin(yaw), radius * (1 - math.cos(yaw)))
    else:
        ego_at = (ego.speed * t, 0.0)
    agents = [
        a.model_copy(
            update={
                "future": [
                    TrackPoint(
                        t=t,
                        center=(
                            a.box.center[0] + a.velocity[0] * t,
                            a.box.center[1] + a.velocity[1] * t,
                            a.box.center[2],
                        ),
                        yaw=a.box.yaw,
                        speed=a.speed,
                    )
                ],
                "past": [],
            }
        )
        for a in scene.agents
    ]
    ego_point = TrackPoint(t=t, center=(*ego_at, 0.0), yaw=yaw, speed=ego.speed)
    predicted = scene.model_copy(update={"agents": agents, "ego": ego.model_copy(update={"future": [ego_point]})})
    return scene_at(predicted, t)


@tool
def python(
    workspace: Workspace,
    code: Annotated[str, Field(description="Python 3 source; print what you want to read")],
) -> ToolResult:
    """Run Python on the images (crop, enhance, count pixels, measure, draw): `images` maps
    view names to RGB PIL images, and numpy (np), PIL (Image, ImageDraw) and cv2 are there;
    call show(img) to see an image. It runs in a sandbox: no network, no files but its own."""
    with tempfile.TemporaryDirectory(prefix="roadthink-python-") as tmp:
        result = run_python(code, workspace.images, workspace.settings.sandbox, Path(tmp))
        shown = [cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB) for p in result.images if (bgr := cv2.imread(str(p))) is not None]
    if not result.ok:
        printed = f"; it printed: {result.stdout.strip()[:300]}" if result.stdout.strip() else ""
        raise ToolError(f"python: {result.error}{printed}".replace("\n", " "))
    text = result.stdout.strip() or "(no output)"
    return ToolResult(text, shown, {"seconds": result.seconds, "images": len(shown)})


@tool
def check_rules(
    workspace: Workspace,
    action: Annotated[str, Field(description='e.g. "decelerate, straight" or "keep, left lane change"')],
) -> ToolResult:
    """Check a driving action against the traffic rules (lights, stop signs, pedestrians on
    crosswalks, the gap to the car ahead, lane changes, speed limit, obstacles in the lane):
    the verdict, the rules it breaks and why, and the safest legal action. It reasons over
    the road users the detector perceives around the car, not over what you assume."""
    try:
        parsed = parse_action(action)
    except ValueError as e:
        raise ToolError(f"check_rules: {e}") from None
    verdict = verify(situation_for_rules(workspace), parsed)
    text = verdict.explanation if verdict.legal else f"{verdict.explanation} Safest legal action: {verdict.safest}."
    return ToolResult(text, [], {"verdict": verdict.model_dump(mode="json")})


def situation_for_rules(workspace: Workspace) -> Situation:
    """The situation the rules reason over: the map (lanes, lines, lights, signs) with every
    road user as the scene has them, or as the detector perceives them around the car (all
    six cameras, one detection per road user)."""
    scene = workspace.need_scene("check_rules")
    if workspace.settings.rules_from == "scene":
        return situation_from_scene(scene)
    perceived: dict[str, dict] = {}
    for camera in CAMERA_NAMES:
        for found in workspace.detector.detect(workspace.image(camera), camera, scene, workspace.seed):
            key = found.truth or f"{camera}-{len(perceived)}"
            vx, vy = found.velocity or (0.0, 0.0)
            x, y = found.position
            perceived.setdefault(key, {"id": key, "category": found.category, "x": x, "y": y, "vx": vx, "vy": vy})
    return situation_from_scene(scene, perceived.values())
