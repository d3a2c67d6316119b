"""A scene at another moment of its own track: past frames for prediction questions and the
imagined future, rendered by the same renderer as the present."""

from __future__ import annotations

import math

from roadthink.errors import RoadthinkError
from roadthink.scene.layouts import light_at
from roadthink.scene.types import Agent, Box3D, Pose, Scene, TrackPoint


def track_times(scene: Scene) -> list[float]:
    """The moments a scene can be shown at: its stored past, now, and its future."""
    return [p.t for p in scene.ego.past] + [0.0] + [p.t for p in scene.ego.future]


def _point_at(past: list[TrackPoint], future: list[TrackPoint], t: float) -> TrackPoint | None:
    return next((p for p in [*past, *future] if abs(p.t - t) < 1e-6), None)


def scene_at(scene: Scene, t: float) -> Scene:
    """``scene`` as it is ``t`` seconds from now (negative: ago), seen from the ego then.

    Agents stand where their tracks put them, expressed in the ego frame of that moment;
    the ego's world pose moves along its own track; lights show their phase at that time.
    Tracks and camera annotations of the snapshot are empty: they belong to the present.
    """
    if abs(t) < 1e-9:
        return scene
    ego_then = _point_at(scene.ego.past, scene.ego.future, t)
    if ego_then is None:
        times = ", ".join(f"{x:g}" for x in track_times(scene))
        raise RoadthinkError(f"{scene.scene_id}: no track point at t={t:g} s; available: {times}")
    ex, ey, _ = ego_then.center
    eyaw = ego_then.yaw
    c, s = math.cos(eyaw), math.sin(eyaw)

    def to_then(x: float, y: float) -> tuple[float, float]:
        dx, dy = x - ex, y - ey
        return round(dx * c + dy * s, 3), round(-dx * s + dy * c, 3)

    agents = []
    for agent in scene.agents:
        point = _point_at(agent.past, agent.future, t)
        if point is None:
            continue
        x, y = to_then(*point.center[:2])
        yaw = round(math.remainder(point.yaw - eyaw, math.tau), 4)
        agents.append(
            agent.model_copy(
                update={
                    "box": Box3D(center=(x, y, point.center[2]), size=agent.box.size, yaw=yaw),
                    "velocity": (round(point.speed * math.cos(yaw), 3), round(point.speed * math.sin(yaw), 3)),
                    "past": [],
                    "future": [],
                    "cameras": {},
                }
            )
        )
    pose = scene.ego.pose
    pc, ps = math.cos(pose.yaw), math.sin(pose.yaw)
    world_pose = Pose(
        x=round(pose.x + pc * ex - ps * ey, 4),
        y=round(pose.y + ps * ex + pc * ey, 4),
        yaw=round(math.remainder(pose.yaw + eyaw, math.tau), 4),
    )
    lights = [
        light.model_copy(update={"state": state, "time_to_change": round(left, 2)})
        for light in scene.map.lights
        for state, left in [light_at(light, t)]
    ]
    ego = scene.ego.model_copy(update={"pose": world_pose, "speed": ego_then.speed, "past": [], "future": []})
    return scene.model_copy(
        update={
            "ego": ego,
            "agents": _by_distance(agents),
            "map": scene.map.model_copy(update={"lights": lights}),
        }
    )


def _by_distance(agents: list[Agent]) -> list[Agent]:
    """Agents keep their ids (a question about 'a03' means the same road user in every
    frame); only their order follows distance, as in a generated scene."""
    return sorted(agents, key=lambda a: math.hypot(*a.box.center[:2]))
