"""Physical sanity of a scene: nothing overlaps, everyone stands where they may, tracks
are continuous with bounded acceleration. Run on every scene ``scenes show`` prints, and
by the property tests over many seeds."""

from __future__ import annotations

import numpy as np
import shapely

from roadthink.scene.types import (
    STATIC_OBJECTS,
    VEHICLES,
    AreaKind,
    Category,
    Intent,
    Scene,
    TrackPoint,
    box_corners,
)

MAX_ACCEL = 9.0  # m/s^2, a hard stop; anything beyond is a teleport
ON_ROAD_INTENTS = {Intent.CROSSING}  # pedestrians allowed off the sidewalk


def _ego_polygon(scene: Scene, points: list) -> shapely.Geometry:
    """Map polygons moved into the ego frame, merged."""
    return (
        shapely.union_all([shapely.Polygon(scene.world_to_ego(np.asarray(p))) for p in points])
        if points
        else shapely.Polygon()
    )


def footprints(scene: Scene) -> list[tuple[str, shapely.Polygon]]:
    """Ground footprints in the ego frame, the ego first."""
    ego = ("ego", shapely.Polygon(box_corners(np.zeros(3), np.asarray(scene.ego.size), 0.0)[:4, :2]))
    return [ego] + [(a.id, shapely.Polygon(a.box.footprint())) for a in scene.agents]


def overlaps(scene: Scene) -> list[tuple[str, str]]:
    """Pairs of boxes whose footprints intersect."""
    fps = footprints(scene)
    tree = shapely.STRtree([p for _, p in fps])
    pairs = tree.query([p for _, p in fps], predicate="intersects")
    return sorted(
        {(fps[i][0], fps[j][0]) for i, j in pairs.T if i < j and fps[i][1].intersection(fps[j][1]).area > 1e-6}
    )


def placement_violations(scene: Scene) -> list[str]:
    """Agents standing where their category may not: vehicles and obstacles off the road,
    pedestrians on the road unless crossing."""
    areas = scene.map.areas
    drivable = _ego_polygon(scene, [a.polygon for a in areas if a.kind in (AreaKind.ROAD, AreaKind.SHOULDER)])
    walkable = _ego_polygon(
        scene, [a.polygon for a in areas if a.kind is AreaKind.SIDEWALK] + [c.polygon for c in scene.map.crosswalks]
    )
    bad = []
    for agent in scene.agents:
        centre = shapely.Point(agent.box.center[:2])
        if agent.category in VEHICLES or agent.category in STATIC_OBJECTS:
            ok = drivable.buffer(0.05).contains(centre)
        elif agent.category is Category.PEDESTRIAN:
            ok = walkable.buffer(0.05).contains(centre) or (
                agent.intent in ON_ROAD_INTENTS and drivable.contains(centre)
            )
        else:  # animals roam anywhere on the ground
            ok = True
        if not ok:
            x, y, _ = agent.box.center
            bad.append(f"{agent.id} ({agent.category}, {agent.intent}) at ({x:.1f}, {y:.1f})")
    return bad


def track_accelerations(points: list[TrackPoint]) -> np.ndarray:
    """Second differences of a 2 Hz track in m/s^2."""
    if len(points) < 3:
        return np.zeros(0)
    xy = np.array([p.center[:2] for p in points])
    dt = np.diff([p.t for p in points])
    vel = np.diff(xy, axis=0) / dt[:, None]
    return np.hypot(*(np.diff(vel, axis=0) / ((dt[1:] + dt[:-1]) / 2)[:, None]).T)


def motion_violations(scene: Scene) -> list[str]:
    """Tracks with a jump: acceleration beyond what a car can do."""
    ego = scene.ego
    tracks = {"ego": [*ego.past, TrackPoint(t=0.0, center=(0.0, 0.0, 0.0), yaw=0.0, speed=ego.speed), *ego.future]}
    for a in scene.agents:
        now = TrackPoint(t=0.0, center=a.box.center, yaw=a.box.yaw, speed=a.speed)
        tracks[f"{a.id} ({a.category})"] = [*a.past, now, *a.future]
    bad = []
    for who, points in tracks.items():
        acc = track_accelerations(points)
        if acc.size and acc.max() > MAX_ACCEL:
            bad.append(f"{who} accelerates at {acc.max():.1f} m/s^2")
    return bad


def check_scene(scene: Scene) -> list[str]:
    """Every problem found, one line each; empty when the scene is sound."""
    problems = [f"overlap: {a} and {b}" for a, b in overlaps(scene)]
    problems += [f"misplaced: {v}" for v in placement_violations(scene)]
    problems += [f"motion: {v}" for v in motion_violations(scene)]
    return problems
