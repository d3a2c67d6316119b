from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np

HISTORY = ["CAM_FRONT@-1s.png", "CAM_FRONT@-0.5s.png", "CAM_FRONT.png"]


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


def _waypoints(scene, row) -> list:
    assert [Path(p).name for p in row["images"]] == HISTORY
    assert "m/s" not in row["question"]  # the speed is for the model to see, not to read
    return [[round(p.center[0], 1), round(p.center[1], 1)] for p in scene.ego.future]


# action_safety, restated: the manoeuvre is rolled out for 3 s every 0.1 s along lane
# centrelines; it is "yes" only if no light, stop sign or marking forbids it and the ego's
# box, stretched 0.5 s of travel forward, never overlaps anyone's box stretched the same way.
# The task does not ask when a gap is within 0.5 m of touching, so 0.25 m splits the cases.
ACTIONS = {
    "keep driving in its lane": (0.0, 0, False),
    "speed up in its lane": (1.5, 0, False),
    "change lanes to the left": (0.0, 1, False),
    "change lanes to the right": (0.0, -1, False),
    "drive straight through the junction": (1.5, 0, True),
}


def _to_ego(scene, xy) -> np.ndarray:
    p = scene.ego.pose
    d = np.asarray(xy, float) - (p.x, p.y)
    c, s = np.cos(p.yaw), np.sin(p.yaw)
    return np.stack([c * d[:, 0] + s * d[:, 1], -s * d[:, 0] + c * d[:, 1]], 1)


def _lanes_ahead(scene, lane_id, into_junction) -> list:
    lanes = {lane.id: lane for lane in scene.map.lanes}
    chain = [lanes[lane_id]]
    while chain[-1].successors and len(chain) < 4:
        nxt = [lanes[i] for i in chain[-1].successors]
        if len(nxt) > 1:
            nxt = [n for n in nxt if n.turn == "straight"]
        if not nxt or (nxt[0].in_junction and not into_junction):
            break
        chain.append(nxt[0])
    return chain


def _polyline(scene, chain) -> tuple[np.ndarray, np.ndarray]:
    """Ego-frame points and their arc lengths (repeated points dropped)."""
    pts = _to_ego(scene, np.concatenate([lane.centerline for lane in chain]))
    keep = np.concatenate([[True], np.hypot(*np.diff(pts, axis=0).T) > 1e-9])
    pts = pts[keep]
    return pts, np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(pts, axis=0).T))])


def _along(pts, arc, s) -> np.ndarray:
    return np.stack([np.interp(s, arc, pts[:, 0]), np.interp(s, arc, pts[:, 1])], -1)


def _station(pts, arc, q) -> tuple[float, float]:
    """Arc length of the point of the polyline nearest to ``q``, and the distance to it."""
    a, b = pts[:-1], pts[1:]
    ab = b - a
    u = np.clip(np.einsum("ij,ij->i", q - a, ab) / np.maximum(np.einsum("ij,ij->i", ab, ab), 1e-12), 0, 1)
    foot = a + u[:, None] * ab
    d = np.hypot(*(q - foot).T)
    i = int(np.argmin(d))
    return arc[i] + u[i] * np.hypot(*ab[i]), float(d[i])


def _box(x, y, yaw, length, width, v) -> np.ndarray:
    """Corners of a box stretched forward by 0.5 s of travel at ``v``."""
    ext = 0.5 * v
    cx, cy = x + np.cos(yaw) * ext / 2, y + np.sin(yaw) * ext / 2
    local = np.array([[1, 1], [-1, 1], [-1, -1], [1, -1]]) * [(length + ext) / 2, width / 2]
    rot = np.array([[np.cos(yaw), -np.sin(yaw)], [np.sin(yaw), np.cos(yaw)]])
    return local @ rot.T + [cx, cy]


def _gap(p, q) -> float:
    """0 when convex polygons overlap (no separating axis), else the least vertex-to-edge distance."""
    axes = [np.array([-e[1], e[0]]) for poly in (p, q) for e in np.diff(np.vstack([poly, poly[:1]]), axis=0)]
    if all(max(p @ n) >= min(q @ n) and max(q @ n) >= min(p @ n) for n in axes):
        return 0.0
    best = np.inf
    for a_poly, b_poly in ((p, q), (q, p)):
        for v in a_poly:
            for a, b in zip(b_poly, np.roll(b_poly, -1, axis=0), strict=True):
                u = np.clip(np.dot(v - a, b - a) / np.dot(b - a, b - a), 0, 1)
                best = min(best, float(np.hypot(*(v - a - u * (b - a)))))
    return best


def _crosses(seg_a, seg_b, p, q) -> bool:
    def side(o, a, b):
        return np.sign((a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0]))

    return side(seg_a, seg_b, p) != side(seg_a, seg_b, q) and side(p, q, seg_a) != side(p, q, seg_b)


def _legal_at_lines(scene, chain, pts, arc, s_front, v, t) -> bool:
    ids = {lane.id for lane in chain}
    for stop in scene.map.stop_lines:
        if not ids & set(stop.lane_ids):
            continue
        a, b = _to_ego(scene, stop.points)
        hits = [i for i in range(len(pts) - 1) if _crosses(a, b, pts[i], pts[i + 1])]
        if not hits:
            continue
        s_line = _station(pts, arc, _cross_point(a, b, pts[hits[0]], pts[hits[0] + 1]))[0]
        if s_front[0] > s_line + 0.5 or s_front[-1] < s_line:
            continue
        light = next((lt for lt in scene.map.lights if set(lt.lane_ids) & set(stop.lane_ids)), None)
        if light is not None:
            if light.state == "yellow":
                return s_line - s_front[0] < v[0] ** 2 / 6.0
            return light.state == "green"
        stop_sign = any(s.kind == "stop" and set(s.lane_ids) & set(stop.lane_ids) for s in scene.map.signs)
        return not stop_sign or v[int(np.argmax(s_front >= s_line))] <= 0.5
    return True


def _cross_point(a, b, p, q) -> np.ndarray:
    d1, d2 = b - a, q - p
    u = ((p[0] - a[0]) * d2[1] - (p[1] - a[1]) * d2[0]) / (d1[0] * d2[1] - d1[1] * d2[0])
    return (a + u * d1)[None]


def _solid_between(scene, own, goal) -> bool:
    """Whether a solid line runs between the lanes over the stretch of the change: some of
    its points (every 0.5 m) lie between the two centre paths, clear of both."""
    own_arc = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(own, axis=0).T))])
    goal_arc = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(goal, axis=0).T))])
    width = float(np.hypot(*(goal[0] - own[0])))
    for m in scene.map.markings:
        if m.kind == "dashed_white":
            continue
        pts = _to_ego(scene, m.points)
        fine = np.concatenate(
            [np.linspace(a, b, int(np.hypot(*(b - a)) / 0.5) + 2) for a, b in itertools.pairwise(pts)]
        )
        fine = fine[(fine[:, 0] > -5) & (fine[:, 0] < own[-1, 0] + 5) & (np.abs(fine[:, 1]) < 10)]
        between = 0
        for q in fine:
            d_own, d_goal = _station(own, own_arc, q[None])[1], _station(goal, goal_arc, q[None])[1]
            between += d_own > 0.2 and d_goal > 0.2 and d_own + d_goal < width + 0.1
        if between >= 2:
            return True
    return False


def _action_safety(scene, row) -> str:
    assert [Path(p).name for p in row["images"]] == HISTORY
    accel, side, through = next(spec for phrase, spec in ACTIONS.items() if phrase in row["question"])
    ego = scene.ego
    lane = next(lane for lane in scene.map.lanes if lane.id == ego.lane_id)
    chain = _lanes_ahead(scene, lane.id, through)
    t = np.round(np.arange(31) * 0.1, 10)
    v = np.maximum(ego.speed, np.minimum(lane.speed_limit, ego.speed + accel * t))
    travel = np.concatenate([[0.0], np.cumsum((v[1:] + v[:-1]) / 2 * 0.1)])
    pts, arc = _polyline(scene, chain)
    s = _station(pts, arc, np.zeros((1, 2)))[0] + travel
    centres = _along(pts, arc, s)
    heading = _along(pts, arc, s + 0.5) - centres
    yaw = np.arctan2(heading[:, 1], heading[:, 0])
    legal = ego.speed <= lane.speed_limit + 0.5 and _legal_at_lines(scene, chain, pts, arc, s + ego.size[0] / 2, v, t)
    if side:
        target = lane.left_neighbor if side > 0 else lane.right_neighbor
        if target is None:
            return "no"
        tpts, tarc = _polyline(scene, _lanes_ahead(scene, target, False))
        goal = _along(tpts, tarc, _station(tpts, tarc, np.zeros((1, 2)))[0] + travel)
        legal = legal and not _solid_between(scene, centres, goal)
        u = t / 3.0
        offset = goal - centres
        centres = centres + (3 * u**2 - 2 * u**3)[:, None] * offset
        lateral = offset[:, 1] * np.cos(yaw) - offset[:, 0] * np.sin(yaw)
        yaw = yaw + np.arctan2(lateral * (6 * u - 6 * u**2) / 3.0, np.maximum(v, 0.1))
    if not legal:
        return "no"
    mine = [_box(*centres[k], yaw[k], ego.size[0], ego.size[1], v[k]) for k in range(31)]
    for agent in scene.agents:
        if agent.lane_id == ego.lane_id and agent.box.center[0] < 0:
            continue  # following traffic keeps its own distance
        track = [(0.0, *agent.box.center[:2], agent.box.yaw, float(np.hypot(*agent.velocity)))]
        track += [(p.t, *p.center[:2], p.yaw, p.speed) for p in agent.future]
        tt, x, y, a_yaw, a_v = np.array(track).T
        a_yaw = np.unwrap(a_yaw)
        for k in range(31):
            theirs = _box(
                np.interp(t[k], tt, x), np.interp(t[k], tt, y), np.interp(t[k], tt, a_yaw),
                agent.box.size[0], agent.box.size[1], np.interp(t[k], tt, a_v),
            )  # fmt: skip
            reach = (np.hypot(*(mine[k][0] - mine[k][2])) + np.hypot(*(theirs[0] - theirs[2]))) / 2 + 0.25
            if np.hypot(*(theirs.mean(0) - mine[k].mean(0))) < reach and _gap(mine[k], theirs) < 0.25:
                return "no"
    return "yes"


ANSWERS = {"meta_action": _meta_action, "waypoints": _waypoints, "action_safety": _action_safety}
