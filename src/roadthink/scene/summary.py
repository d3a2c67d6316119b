"""A scene as a person reads it: what, where, how it moves (for ``roadthink scenes show``)."""

from __future__ import annotations

import math

from rich.console import RenderableType
from rich.table import Table
from rich.text import Text

from roadthink.scene.checks import check_scene
from roadthink.scene.types import Scene, Sign


def _bearing(x: float, y: float) -> str:
    """Clock-face direction of an ego-frame point: 12 is straight ahead, 9 is left."""
    hour = round(-math.degrees(math.atan2(y, x)) / 30) % 12
    return f"{hour or 12} o'clock"


def _sign(sign: Sign) -> str:
    return f"{sign.kind} {sign.value:g}" if sign.value else str(sign.kind)


def summary_table(scene: Scene) -> list[RenderableType]:
    env, ego = scene.environment, scene.ego
    header = Text.assemble(
        (f"{scene.scene_id}", "bold"),
        f"  seed {scene.seed}  layout {scene.layout}  scenario {scene.scenario}  {env.weather}, {env.time_of_day}\n",
        f"ego: {ego.intent} at {ego.speed:.1f} m/s (accel {ego.accel:+.1f}) in lane {ego.lane_id}; ",
        f"lights {', '.join(f'{lt.id}={lt.state}' for lt in scene.map.lights) or 'none'}; ",
        f"signs {', '.join(_sign(sg) for sg in scene.map.signs) or 'none'}; ",
        f"cameras {', '.join(scene.cameras)}",
    )
    table = Table(title=f"{len(scene.agents)} agents (ego frame: x forward, y left)")
    for col in ("id", "category", "colour", "x", "y", "dist", "where", "speed", "intent", "seen by"):
        table.add_column(col, justify="right" if col in ("x", "y", "dist", "speed") else "left")
    for a in scene.agents:
        x, y, _ = a.box.center
        seen = ", ".join(f"{cam.removeprefix('CAM_')} {ann.visible_fraction:.0%}" for cam, ann in a.cameras.items())
        table.add_row(
            a.id,
            a.category,
            a.color.name,
            f"{x:.1f}",
            f"{y:.1f}",
            f"{math.hypot(x, y):.1f}",
            _bearing(x, y),
            f"{a.speed:.1f}",
            a.intent,
            seen or "-",
        )
    problems = check_scene(scene)
    verdict = Text("checks: ok (no overlaps, everyone placed legally, smooth tracks)", style="green")
    if problems:
        verdict = Text("checks: " + "; ".join(problems), style="red")
    return [header, table, verdict]
