"""Corner cases: unusual obstacles on the road, the lanes they block, animals, and what the ego should do."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from roadthink.scene.types import Agent, Category, Intent, Scene
from roadthink.tasks.facts import agent_by_id, checker
from roadthink.tasks.registry import choice_sample, make_sample, task
from roadthink.tasks.sample import AnswerType, Fact, Sample, Step
from roadthink.tasks.views import HISTORY, SHOWN, describe, distance, glimpsed, noun, seen

CAMERA = "CAM_FRONT"
FAMILY = "corner_case"
UNUSUAL = (Category.DEBRIS, Category.ANIMAL, Category.TRAFFIC_CONE, Category.BARRIER)
ON_ROAD = 6.0  # metres either side of the ego's heading line that count as "the road ahead"
RESPONSES = ("change lanes to pass it", "slow down, stopping if needed", "continue at the same speed")


def _obstacles(scene: Scene, camera: str = CAMERA) -> tuple[list, bool]:
    """Unusual obstacles clearly seen ahead on the road, and whether one is only glimpsed."""
    ahead = [a for a in seen(scene, camera) if a.category in UNUSUAL and abs(a.box.center[1]) < ON_ROAD]
    unsure = any(a.category in UNUSUAL for a in glimpsed(scene, camera))
    return ahead, unsure


@task("unusual_obstacle", FAMILY, AnswerType.YES_NO, buckets=["yes", "no"])
def unusual_obstacle(scene: Scene, rng: np.random.Generator) -> Iterator[Sample]:
    """Whether debris, an animal, or cones and barriers are on the road ahead."""
    ahead, unsure = _obstacles(scene)
    if unsure:
        return
    answer = "yes" if ahead else "no"
    listed = ", ".join(f"{a.id} ({noun(a.category)}, {distance(a):.0f} m ahead)" for a in ahead) or "nothing unusual"
    steps = [
        Step(
            text=f"On the road ahead I see {listed}.",
            facts=[Fact(type="visible", agent=a.id, camera=CAMERA) for a in ahead],
        ),
        Step(
            text=f"So the answer is {answer}.",
            facts=[Fact(type="unusual_ahead", camera=CAMERA, value=bool(ahead))],
        ),
    ]
    question = (
        "Is there an unusual obstacle on the road ahead in the front camera image, such as debris, an animal, "
        "or cones closing a lane? Answer yes or no."
    )
    yield make_sample(scene, FAMILY, "unusual_obstacle", "any", answer, question, answer, AnswerType.YES_NO, steps)


@checker("unusual_ahead")
def _unusual_ahead(scene: Scene, f: dict) -> bool:
    ahead, _ = _obstacles(scene, f["camera"])
    return bool(ahead) == f["value"]


@checker("ego_response")
def _ego_response(scene: Scene, f: dict) -> bool:
    return response(scene) == f["value"]


def response(scene: Scene) -> str | None:
    """What the reference plan does about the road ahead, in words (None if it is unclear)."""
    ego = scene.ego
    if ego.intent in (Intent.CHANGING_LANE_LEFT, Intent.CHANGING_LANE_RIGHT):
        return RESPONSES[0]
    slowdown = ego.speed - min(p.speed for p in ego.future)
    if slowdown > 1.5:
        return RESPONSES[1]
    if slowdown < 0.5:
        return RESPONSES[2]
    return None


@task("obstacle_response", FAMILY, AnswerType.CHOICE, buckets=list(RESPONSES))
def obstacle_response(scene: Scene, rng: np.random.Generator) -> Iterator[Sample]:
    """What the ego should do about the nearest unusual obstacle ahead."""
    ahead, _ = _obstacles(scene)  # a glimpsed one does not matter: the question names what is seen
    answer = response(scene)
    if not ahead or answer is None:
        return
    nearest = min(ahead, key=distance)
    ego = scene.ego
    steps = [
        Step(
            text=f"There is a {noun(nearest.category)} ({nearest.id}) {distance(nearest):.0f} m ahead.",
            facts=[Fact(type="visible", agent=nearest.id, camera=CAMERA)],
        ),
        Step(
            text=f"The safe plan is to {answer}: over the next 3 s the speed goes from {ego.speed:.1f} to "
            f"{ego.future[-1].speed:.1f} m/s.",
            facts=[Fact(type="ego_response", value=answer)],
        ),
    ]
    # the wording names no obstacle: what it is, and where, must come from the image
    question = "There is an unusual obstacle on the road ahead. What should the ego vehicle do about it?"
    yield choice_sample(scene, FAMILY, "obstacle_response", "any", question, list(RESPONSES), answer, steps, rng)


LANE_EDGE_MARGIN = 0.25  # metres either side of a lane edge where an obstacle's lane is too close to call
LANES = {"ego": "the ego's lane", "left": "the lane to the left", "right": "the lane to the right"}
NO_LANE = "none"


def lane_offset(scene: Scene, point: tuple[float, float]) -> float | None:
    """Signed distance (left positive) of an ego-frame point from the ego lane's centreline,
    or None when the point lies before or beyond that lane (its place is then unknown)."""
    line = scene.world_to_ego(np.asarray(scene.map.lane(scene.ego.lane_id).centerline))
    p = np.asarray(point, dtype=float)
    starts, ends = line[:-1], line[1:]
    seg = ends - starts
    t = np.einsum("ij,ij->i", p - starts, seg) / np.einsum("ij,ij->i", seg, seg)
    i = int(np.argmin(np.linalg.norm(starts + np.clip(t, 0, 1)[:, None] * seg - p, axis=1)))
    if (i == 0 and t[i] < 0) or (i == len(seg) - 1 and t[i] > 1):
        return None
    d = p - starts[i]
    return float((seg[i, 0] * d[1] - seg[i, 1] * d[0]) / np.linalg.norm(seg[i]))


def lane_of(scene: Scene, agent: Agent) -> str | None:
    """Which lane ahead ``agent`` stands in ("ego", "left", "right"), "off" when beyond
    them, None when too close to a lane edge or past the ends of the ego lane to tell."""
    offset = lane_offset(scene, agent.box.center[:2])
    if offset is None or agent.box.center[0] <= 0:
        return None
    half = scene.map.lane(scene.ego.lane_id).width / 2
    edges = (-3 * half, -half, half, 3 * half)
    if any(abs(offset - e) < LANE_EDGE_MARGIN for e in edges):
        return None
    if abs(offset) < half:
        return "ego"
    if abs(offset) > 3 * half:
        return "off"
    return "left" if offset > 0 else "right"


def blocked(scene: Scene, camera: str = CAMERA) -> tuple[str | None, list[tuple[Agent, str]]]:
    """The one lane ahead that cones, barriers or debris stand in (NO_LANE when none), with
    the obstacles seen in it; None when the image cannot settle it: an obstacle or animal
    too near a lane edge, a half-hidden one in another lane, or more than one lane blocked."""
    visible = seen(scene, camera)
    placed = [(a, lane_of(scene, a)) for a in [*visible, *glimpsed(scene, camera)] if a.category in UNUSUAL]
    if any(where is None or (a.category is Category.ANIMAL and where != "off") for a, where in placed):
        return None, []  # an animal in a lane: whether it "blocks" it is a matter of opinion
    lane = scene.map.lane(scene.ego.lane_id)
    exists = {"ego": True, "left": lane.left_neighbor is not None, "right": lane.right_neighbor is not None}
    hit = {where for _, where in placed if where != "off"}
    in_sight = [(a, where) for a, where in placed if a in visible and where != "off"]
    if len(hit) > 1 or any(not exists[h] for h in hit) or hit != {where for _, where in in_sight}:
        return None, []
    return (LANES[hit.pop()] if hit else NO_LANE), in_sight


@checker("obstacle_lane")
def _obstacle_lane(scene: Scene, f: dict) -> bool | None:
    agent = agent_by_id(scene, f["agent"])
    return None if agent is None else lane_of(scene, agent) == f["value"]


@checker("blocked_lane")
def _blocked_lane(scene: Scene, f: dict) -> bool:
    return blocked(scene, f["camera"])[0] == f["value"]


@task("blocked_lane", FAMILY, AnswerType.CHOICE, buckets=[*LANES.values(), NO_LANE])
def blocked_lane(scene: Scene, rng: np.random.Generator) -> Iterator[Sample]:
    """Which lane ahead cones, barriers or debris block: the ego's, its left or right neighbour, or none."""
    if scene.ego.lane_id is None:
        return
    answer, in_sight = blocked(scene)
    if answer is None:
        return
    lane = scene.map.lane(scene.ego.lane_id)
    neighbours = f"left neighbour {lane.left_neighbor or 'none'}, right neighbour {lane.right_neighbor or 'none'}"
    listed = ", ".join(f"{a.id} ({noun(a.category)}, {a.box.center[0]:.0f} m ahead)" for a, _ in in_sight)
    steps = [
        Step(
            text=f"The ego drives in lane {lane.id} ({lane.width:.1f} m wide; {neighbours}).",
            facts=[Fact(type="ego_neighbours", lane=lane.id, left=lane.left_neighbor, right=lane.right_neighbor)],
        ),
        Step(
            text=f"Obstacles on the lanes ahead: {listed or 'none'}.",
            facts=[
                fact
                for a, where in in_sight
                for fact in (
                    Fact(type="visible", agent=a.id, camera=CAMERA),
                    Fact(type="obstacle_lane", agent=a.id, value=where),
                )
            ],
        ),
        Step(text=f"So the blocked lane is: {answer}.", facts=[Fact(type="blocked_lane", camera=CAMERA, value=answer)]),
    ]
    question = "Which lane ahead is blocked by cones, barriers or debris, as seen in the front camera image?"
    options = [*LANES.values(), NO_LANE]
    yield choice_sample(scene, FAMILY, "blocked_lane", "lanes", question, options, answer, steps, rng)


@checker("ego_neighbours")
def _ego_neighbours(scene: Scene, f: dict) -> bool:
    lane = scene.map.lane(f["lane"])
    return scene.ego.lane_id == lane.id and (lane.left_neighbor, lane.right_neighbor) == (f["left"], f["right"])


ANIMAL_ACTIONS = ("standing still", "crossing from left to right", "crossing from right to left")
STILL, MOVING = 0.2, 0.5  # m/s: clearly standing, clearly walking; in between is not asked


def animal_action_of(agent: Agent) -> str | None:
    """What an animal does, from its velocity: standing, or walking mostly across the ego's
    heading (None when slow, or heading too much along the road, to call)."""
    vx, vy = agent.velocity
    if agent.speed < STILL:
        return ANIMAL_ACTIONS[0]
    if agent.speed < MOVING or abs(vy) < 2 * abs(vx):
        return None
    return ANIMAL_ACTIONS[1] if vy < 0 else ANIMAL_ACTIONS[2]


@checker("animal_action")
def _animal_action(scene: Scene, f: dict) -> bool | None:
    agent = agent_by_id(scene, f["agent"])
    return None if agent is None else animal_action_of(agent) == f["value"]


@task("animal_action", FAMILY, AnswerType.CHOICE, buckets=ANIMAL_ACTIONS)
def animal_action(scene: Scene, rng: np.random.Generator) -> Iterator[Sample]:
    """Whether an animal on the road stands still or crosses it, and which way, from three frames."""
    visible = seen(scene, CAMERA)
    for agent in visible:
        name = describe(agent, visible)
        answer = animal_action_of(agent)
        if agent.category is not Category.ANIMAL or name is None or answer is None:
            continue
        vx, vy = agent.velocity
        steps = [
            Step(
                text=f"{name.capitalize()} is {agent.id}, {distance(agent):.0f} m away.",
                facts=[
                    Fact(type="visible", agent=agent.id, camera=CAMERA),
                    Fact(type="distance", agent=agent.id, value=round(distance(agent), 1)),
                ],
            ),
            Step(
                text=f"Across the frames it moves at {agent.speed:.1f} m/s "
                f"({vx:+.1f} m/s along the ego's heading, {vy:+.1f} m/s to the left).",
                facts=[Fact(type="speed", agent=agent.id, value=round(agent.speed, 2))],
            ),
            Step(text=f"So it is {answer}.", facts=[Fact(type="animal_action", agent=agent.id, value=answer)]),
        ]
        question = f"{SHOWN} What is {name} on the road doing, as seen from the ego vehicle?"
        sample = choice_sample(scene, FAMILY, "animal_action", name, question, list(ANIMAL_ACTIONS), answer, steps, rng)
        yield sample.model_copy(update={"views": list(HISTORY)})
