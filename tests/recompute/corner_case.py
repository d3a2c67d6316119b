from __future__ import annotations

from recompute.common import front

ODD = {"debris", "animal", "traffic_cone", "barrier"}


def _response(scene, row) -> str:
    slowdown = scene.ego.speed - min(p.speed for p in scene.ego.future)
    if scene.ego.intent.startswith("changing_lane"):
        return "change lanes to pass it"
    return "slow down, stopping if needed" if slowdown > 1.5 else "continue at the same speed"


ANSWERS = {
    "unusual_obstacle": lambda scene, row: (
        "yes" if any(a.category in ODD and abs(a.box.center[1]) < 6 for a in front(scene)) else "no"
    ),
    "obstacle_response": _response,
}
