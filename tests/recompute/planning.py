from __future__ import annotations


def _meta_action(scene, row) -> str:
    end = scene.ego.future[-1]
    if end.speed < 0.3:
        return "stop, straight"
    change = end.speed - scene.ego.speed
    speed = "accelerate" if change > 1.0 else "decelerate" if change < -1.0 else "keep"
    if end.yaw > 0.35 or (abs(end.yaw) < 0.15 and end.center[1] > 2.0):
        return f"{speed}, left"
    if end.yaw < -0.35 or (abs(end.yaw) < 0.15 and end.center[1] < -2.0):
        return f"{speed}, right"
    return f"{speed}, straight"


ANSWERS = {"meta_action": _meta_action}
