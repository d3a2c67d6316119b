"""Spatial: where things are relative to the ego."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import shapely

from roadthink.scene.types import CORNER_CASES, STATIC_OBJECTS, VEHICLES, Agent, AreaKind, Category, Lane, Scene
from roadthink.tasks.facts import DISTANCE_TOLERANCE, agent_by_id, checker
from roadthink.tasks.lanes import LaneShape, ego_corridor, lane_shapes
from roadthink.tasks.registry import choice_sample, task
from roadthink.tasks.sample import AnswerType, Fact, Sample, Step, View
from roadthink.tasks.views import MOVING, distance, named, noun, plural, seen

CAMERA = "CAM_FRONT"
FAMILY = "spatial"
DISTANCE_BINS = (
    (0.0, 10.0, "under 10 m"),
    (10.0, 20.0, "10 to 20 m"),
    (20.0, 40.0, "20 to 40 m"),
    (40.0, 1e9, "over 40 m"),
)
MARGIN = 0.5  # metres: too close to a boundary to call is not asked
SIDES = ("left", "right")  # of the ego's heading line (side_of)


@task("side", FAMILY, AnswerType.CHOICE, buckets=list(SIDES))
def side(scene: Scene, rng: np.random.Generator) -> Iterator[Sample]:
    """Whether a described road user is to the left or the right of the ego's heading."""
    for agent, name, identified in named(scene):
        answer = side_of(agent)
        if answer is None:
            continue
        located = Step(
            text=f"It is {abs(agent.box.center[1]):.1f} m to the {answer} of the ego's heading line.",
            facts=[Fact(type="side", agent=agent.id, value=answer)],
        )
        question = f"Is {name} to the left or to the right of the ego vehicle's direction of travel?"
        yield choice_sample(
            scene, FAMILY, "side", name, question, ["left", "right"], answer, [identified, located], rng
        )


def side_of(agent: Agent) -> str | None:
    """ "left" or "right" of the ego's heading line, or None within MARGIN of it."""
    lateral = agent.box.center[1]
    return None if abs(lateral) < MARGIN else "left" if lateral > 0 else "right"


def distance_bin(metres: float) -> str | None:
    """The bin of ``metres``, or None within MARGIN of a bin edge."""
    for low, high, label in DISTANCE_BINS:
        if low + MARGIN <= metres < high - MARGIN or (low == 0.0 and metres < high - MARGIN):
            return label
    return None


@task("distance", FAMILY, AnswerType.CHOICE, buckets=[label for _, _, label in DISTANCE_BINS])
def distance_to(scene: Scene, rng: np.random.Generator) -> Iterator[Sample]:
    """How far a described road user is from the ego, in bins."""
    for agent, name, identified in named(scene):
        metres = distance(agent)
        label = distance_bin(metres)
        if label is None:
            continue
        measured = Step(
            text=f"It is {metres:.1f} m away, so {label}.",
            facts=[Fact(type="distance", agent=agent.id, value=round(metres, 1))],
        )
        question = f"How far is {name} from the ego vehicle (centre to centre)?"
        bins = [b for _, _, b in DISTANCE_BINS]
        yield choice_sample(scene, FAMILY, "distance", name, question, bins, label, [identified, measured], rng)


# --- where a road user is: one axis of an offset ---------------------------------------------

AXES = ("ahead", "left", "behind", "right")  # counter-clockwise from the heading, 90 deg apart
AXIS_MARGIN = 15.0  # degrees: an offset closer than this to a diagonal has no dominant axis
MIN_SEPARATION = 2.0  # metres: two road users closer than this are not compared


def dominant_axis(dx: float, dy: float, margin: float = AXIS_MARGIN) -> str | None:
    """The axis ("ahead", "left", "behind", "right") an offset in a forward-left frame mostly
    points along, or None when it is within ``margin`` degrees of a diagonal."""
    angle = np.degrees(np.arctan2(dy, dx)) % 360.0
    sector = round(angle / 90.0) % 4
    off_axis = abs(angle - 90.0 * round(angle / 90.0))
    return AXES[sector] if off_axis <= 45.0 - margin else None


def _offset(agent: Agent) -> tuple[float, float]:
    return float(agent.box.center[0]), float(agent.box.center[1])


def _where(agent: Agent) -> str:
    """ "12.0 m ahead and 3.1 m to the left" of the ego, for reference steps."""
    x, y = _offset(agent)
    return f"{abs(x):.1f} m {'ahead' if x >= 0 else 'behind'} and {abs(y):.1f} m to the {'left' if y >= 0 else 'right'}"


@checker("offset")
def _offset_fact(scene: Scene, f: dict) -> bool | None:
    agent = agent_by_id(scene, f["agent"])
    if agent is None:
        return None
    x, y = _offset(agent)
    return float(np.hypot(x - f["value"][0], y - f["value"][1])) <= DISTANCE_TOLERANCE


@checker("position")
def _position_fact(scene: Scene, f: dict) -> bool | None:
    agent = agent_by_id(scene, f["agent"])
    return None if agent is None else dominant_axis(*_offset(agent), margin=0.0) == f["value"]


@checker("relative")
def _relative_fact(scene: Scene, f: dict) -> bool | None:
    agent, other = agent_by_id(scene, f["agent"]), agent_by_id(scene, f["other"])
    if agent is None or other is None:
        return None
    (ax, ay), (bx, by) = _offset(agent), _offset(other)
    return dominant_axis(ax - bx, ay - by, margin=0.0) == f["value"]


# --- the bird's-eye view ------------------------------------------------------------------------

BEV = (View(camera="BEV"),)
BEV_COLOURS = {  # names of style.CATEGORY_COLORS, so a question can say how a kind is drawn
    Category.CAR: "blue",
    Category.TRUCK: "orange",
    Category.BUS: "purple",
    Category.MOTORCYCLE: "magenta",
    Category.BICYCLE: "cyan",
    Category.PEDESTRIAN: "crimson",
    Category.TRAFFIC_CONE: "yellow",
    Category.BARRIER: "brown",
    Category.DEBRIS: "olive",
    Category.ANIMAL: "green",
}
NEAREST_RATIO, NEAREST_GAP = 1.3, 3.0  # "nearest" only when every other one of its kind is this much farther
PLACED_AHEAD = STATIC_OBJECTS | CORNER_CASES  # scenarios put these ahead: their kind would give it away
POSITIONS = {"ahead": "ahead", "behind": "behind", "left": "to the left", "right": "to the right"}


def _bev_pixels(scene: Scene, agent: Agent) -> np.ndarray:
    """(4, 2) BEV pixels of the agent's footprint: (u, v) = (cx - y / res, cy - x / res)."""
    spec = scene.bev
    footprint = agent.box.footprint()
    return np.stack(
        [spec.width / 2 - footprint[:, 1] / spec.resolution, spec.height / 2 - footprint[:, 0] / spec.resolution], -1
    )


def _bev_overlap(scene: Scene, agent: Agent) -> tuple[bool, bool]:
    """Whether the agent is drawn wholly inside the BEV image, and whether any of it is."""
    px = _bev_pixels(scene, agent)
    size = np.array([scene.bev.width, scene.bev.height])
    inside = bool(((px >= 0) & (px <= size)).all())
    touches = bool((px.max(0) > 0).all() and (px.min(0) < size).all())
    return inside, touches


@checker("in_bev")
def _in_bev(scene: Scene, f: dict) -> bool | None:
    agent = agent_by_id(scene, f["agent"])
    return None if agent is None else _bev_overlap(scene, agent)[0]


def bev_name(agent: Agent, drawn: list[Agent]) -> str | None:
    """How to single the agent out in the BEV, which draws kinds but not paint colours:
    "the truck" when it is the only one drawn, "the truck nearest to the ego" when every
    other one is clearly farther, else None."""
    others = [distance(a) for a in drawn if a.category is agent.category and a is not agent]
    if not others:
        return f"the {noun(agent.category)}"
    if min(others) >= max(NEAREST_RATIO * distance(agent), distance(agent) + NEAREST_GAP):
        return f"the {noun(agent.category)} nearest to the ego"
    return None


def _bev_described(scene: Scene) -> Iterator[tuple[Agent, str, Step]]:
    """Agents wholly inside the BEV that a name singles out among all drawn there, with the
    step naming them."""
    overlap = {a.id: _bev_overlap(scene, a) for a in scene.agents}
    drawn = [a for a in scene.agents if overlap[a.id][1]]
    for agent in drawn:
        name = bev_name(agent, drawn) if overlap[agent.id][0] else None
        if name is not None:
            u, v = _bev_pixels(scene, agent).mean(0)
            step = Step(
                text=f"{name.capitalize()} ({agent.id}) is the {BEV_COLOURS[agent.category]} box at pixel "
                f"({u:.0f}, {v:.0f}); the ego is the white box at the centre.",
                facts=[Fact(type="in_bev", agent=agent.id)],
            )
            yield agent, name, step


@task("position", FAMILY, AnswerType.CHOICE, buckets=list(POSITIONS.values()))
def position(scene: Scene, rng: np.random.Generator) -> Iterator[Sample]:
    """Where a road user is relative to the ego in the bird's-eye view: ahead, behind, left or right."""
    for agent, name, identified in _bev_described(scene):
        axis = dominant_axis(*_offset(agent))
        if axis is None or agent.category in PLACED_AHEAD:
            continue
        x, y = _offset(agent)
        located = Step(
            text=f"It is {_where(agent)} of the ego.", facts=[Fact(type="offset", agent=agent.id, value=[x, y])]
        )
        decided = Step(
            text=f"The {'forward' if axis in ('ahead', 'behind') else 'sideways'} distance dominates, so it is "
            f"{POSITIONS[axis]}.",
            facts=[Fact(type="position", agent=agent.id, value=axis)],
        )
        question = (
            "This is a bird's-eye view centred on the ego vehicle, the white box in the middle pointing up "
            "(up is the ego's heading, the image's left is the ego's left). Road users are boxes coloured by "
            f"kind, with a triangle at their front; {plural(agent.category)} are {BEV_COLOURS[agent.category]}. "
            f"Where is {name} relative to the ego vehicle?"
        )
        sample = choice_sample(
            scene,
            FAMILY,
            "position",
            name,
            question,
            list(POSITIONS.values()),
            POSITIONS[axis],
            [identified, located, decided],
            rng,
        )
        yield sample.model_copy(update={"views": list(BEV)})


# --- one road user relative to another ---------------------------------------------------------

RELATIVE = {"left": "to the left", "right": "to the right", "ahead": "further ahead", "behind": "nearer"}


def _pairs(scene: Scene) -> Iterator[tuple[tuple[Agent, str, Step], tuple[Agent, str, Step]]]:
    """Ordered pairs of distinct described front-camera road users at least MIN_SEPARATION apart."""
    described = list(named(scene))
    for first in described:
        for second in described:
            if first[0] is not second[0] and _separation(first[0], second[0]) >= MIN_SEPARATION:
                yield first, second


def _pair_key(a: Agent, b: Agent) -> str:
    """Balance key of a question about two road users: their kinds, whose typical places
    (pedestrians on the side, cars in lanes) a text-only model could otherwise exploit."""
    return f"{noun(a.category)}|{noun(b.category)}"


def _separation(a: Agent, b: Agent) -> float:
    return float(np.hypot(a.box.center[0] - b.box.center[0], a.box.center[1] - b.box.center[1]))


@task("relative_position", FAMILY, AnswerType.CHOICE, buckets=list(RELATIVE.values()))
def relative_position(scene: Scene, rng: np.random.Generator) -> Iterator[Sample]:
    """Where one road user is relative to another, seen from the ego: left, right, further ahead or nearer."""
    for (a, name_a, id_a), (b, name_b, id_b) in _pairs(scene):
        (ax, ay), (bx, by) = _offset(a), _offset(b)
        axis = dominant_axis(ax - bx, ay - by)
        if axis is None:
            continue
        located = Step(
            text=f"{name_a.capitalize()} is {_where(a)} of the ego; {name_b} is {_where(b)}.",
            facts=[Fact(type="offset", agent=a.id, value=[ax, ay]), Fact(type="offset", agent=b.id, value=[bx, by])],
        )
        decided = Step(
            text=f"So {name_a} is {abs(ax - bx):.1f} m {'further' if ax >= bx else 'nearer'} along the ego's heading "
            f"and {abs(ay - by):.1f} m to the {'left' if ay >= by else 'right'} of {name_b}: mostly {RELATIVE[axis]}.",
            facts=[Fact(type="relative", agent=a.id, other=b.id, value=axis)],
        )
        question = (
            f"From the ego vehicle's point of view, is {name_a} to the left of {name_b}, to the right of it, "
            "further ahead than it, or nearer than it? Answer with the direction that dominates."
        )
        yield choice_sample(
            scene,
            FAMILY,
            "relative_position",
            _pair_key(a, b),
            question,
            list(RELATIVE.values()),
            RELATIVE[axis],
            [id_a, id_b, located, decided],
            rng,
        )


# --- perspective taking: left or right as another road user sees it ---------------------------

SIDE_MARGIN = 20.0  # degrees: nearly straight ahead of or behind the observer is neither side
HEADING_TOLERANCE = 10.0  # degrees
ROLES = {
    Category.PEDESTRIAN: "{name}",
    Category.MOTORCYCLE: "the rider of {name}",
    Category.BICYCLE: "the rider of {name}",
}


def _has_heading(agent: Agent) -> bool:
    """Whether the agent faces a clear way: a vehicle or a pedestrian that is moving."""
    return (agent.category in VEHICLES or agent.category is Category.PEDESTRIAN) and agent.speed > MOVING


def seen_from(observer: Agent, other: Agent) -> tuple[float, float]:
    """``other``'s offset in the observer's frame: (forward, left) metres along its heading."""
    dx, dy = other.box.center[0] - observer.box.center[0], other.box.center[1] - observer.box.center[1]
    c, s = np.cos(observer.box.yaw), np.sin(observer.box.yaw)
    return float(c * dx + s * dy), float(-s * dx + c * dy)


def _observer_side(observer: Agent, other: Agent) -> str | None:
    """ "left" or "right" of the observer, or None when nearly straight ahead of or behind it."""
    forward, left = seen_from(observer, other)
    bearing = abs(np.degrees(np.arctan2(left, forward)))
    if abs(left) < MARGIN * 2 or not SIDE_MARGIN <= bearing <= 180.0 - SIDE_MARGIN:
        return None
    return "left" if left > 0 else "right"


@checker("heading")
def _heading_fact(scene: Scene, f: dict) -> bool | None:
    agent = agent_by_id(scene, f["agent"])
    if agent is None:
        return None
    error = (np.degrees(agent.box.yaw) - float(f["value"]) + 180.0) % 360.0 - 180.0
    return bool(abs(error) <= HEADING_TOLERANCE)


@checker("perspective")
def _perspective_fact(scene: Scene, f: dict) -> bool | None:
    observer, other = agent_by_id(scene, f["agent"]), agent_by_id(scene, f["other"])
    if observer is None or other is None:
        return None
    return ("left" if seen_from(observer, other)[1] > 0 else "right") == f["value"]


@task("perspective", FAMILY, AnswerType.CHOICE, buckets=["left", "right"])
def perspective(scene: Scene, rng: np.random.Generator) -> Iterator[Sample]:
    """Whether a road user is on the left or the right of another moving road user, as that one sees it."""
    for (a, name_a, id_a), (b, name_b, id_b) in _pairs(scene):
        if not _has_heading(a):
            continue
        answer = _observer_side(a, b)
        if answer is None:
            continue
        forward, left = seen_from(a, b)
        heading = Step(
            text=f"{name_a.capitalize()} moves at {a.speed:.1f} m/s heading {np.degrees(a.box.yaw):+.0f} deg from the "
            "ego's heading.",
            facts=[
                Fact(type="speed", agent=a.id, value=round(a.speed, 2)),
                Fact(type="heading", agent=a.id, value=round(float(np.degrees(a.box.yaw)), 1)),
            ],
        )
        turned = Step(
            text=f"Turned into its frame, {name_b} is {abs(forward):.1f} m {'ahead of' if forward >= 0 else 'behind'} "
            f"it and {abs(left):.1f} m to its {answer}.",
            facts=[Fact(type="perspective", agent=a.id, other=b.id, value=answer)],
        )
        role = ROLES.get(a.category, "the driver of {name}").format(name=name_a)
        question = f"Imagine you are {role}, facing the way it is heading. Is {name_b} on your left or on your right?"
        yield choice_sample(
            scene,
            FAMILY,
            "perspective",
            _pair_key(a, b),
            question,
            ["left", "right"],
            answer,
            [id_a, id_b, heading, turned],
            rng,
        )


# --- lanes --------------------------------------------------------------------------------------

LANE_MARGIN = 0.5  # metres: a centre this close to a lane edge straddles it
ONCOMING = -0.87  # a lane whose direction has a forward component below this (cos 150 deg) opposes the ego
LANES = {
    "ego": "the ego's lane",
    "left": "the lane to the left of the ego's",
    "right": "the lane to the right of the ego's",
    "oncoming": "an oncoming lane",
    "none": "not in a driving lane",
}


def _roads(scene: Scene) -> shapely.Geometry:
    """The road surface in the ego frame (lanes and junction boxes), without shoulders."""
    polygons = [
        shapely.Polygon(scene.world_to_ego(np.asarray(a.polygon))) for a in scene.map.areas if a.kind is AreaKind.ROAD
    ]
    return shapely.union_all(polygons)


def lane_at(shapes: dict[str, LaneShape], x: float, y: float) -> tuple[bool, Lane | None]:
    """(clear, lane): the one lane whose strip holds the point, or None when no strip comes
    within LANE_MARGIN of it; not clear when the point straddles an edge or lanes overlap."""
    point = shapely.Point(x, y)
    near = [s for s in shapes.values() if s.area.distance(point) < LANE_MARGIN]
    if not near:
        return True, None
    if len(near) == 1 and near[0].area.contains(point) and near[0].area.exterior.distance(point) >= LANE_MARGIN:
        return True, near[0].lane
    return False, None


def _direction(shape: LaneShape, x: float, y: float) -> np.ndarray:
    """Unit direction of travel of the lane at its point nearest to (x, y), ego frame."""
    s = shape.line.project(shapely.Point(x, y))
    a, b = shape.line.interpolate(max(s - 0.5, 0.0)), shape.line.interpolate(min(s + 0.5, shape.line.length))
    d = np.array([b.x - a.x, b.y - a.y])
    return d / np.linalg.norm(d)


def lane_label(scene: Scene, shapes: dict[str, LaneShape], x: float, y: float, roads: shapely.Geometry) -> str | None:
    """Which LANES key holds the point relative to the ego's lane, or None when that is not
    clear-cut (an edge, a junction, a lane none of the answers names)."""
    clear, lane = lane_at(shapes, x, y)
    if not clear:
        return None
    if lane is None:
        return None if roads.distance(shapely.Point(x, y)) < LANE_MARGIN else "none"
    ego = scene.map.lane(scene.ego.lane_id)
    if lane.in_junction:
        return None
    if lane.id == ego.id:
        return "ego"
    if lane.id in (ego.left_neighbor, ego.right_neighbor):
        return "left" if lane.id == ego.left_neighbor else "right"
    return "oncoming" if _direction(shapes[lane.id], x, y)[0] < ONCOMING else None


def lane_of_vehicle(scene: Scene, agent: Agent, shapes: dict[str, LaneShape], roads: shapely.Geometry) -> str | None:
    """The LANES key of a vehicle's centre (``lane_label``); None for other road users, whose
    place follows from their kind, and where the ego is in no lane."""
    if agent.category not in VEHICLES or scene.ego.lane_id is None:
        return None
    return lane_label(scene, shapes, *_offset(agent), roads)


@dataclass(frozen=True)
class Placement:
    """Where a road user is, in the words the side, distance and lane questions answer with;
    None where such a question is not asked (too close to a boundary to call)."""

    side: str | None  # "left" or "right"
    distance: str | None  # a DISTANCE_BINS label
    lane: str | None  # a LANES key

    def parts(self) -> list[str]:
        """``["left", "20 to 40 m", "the lane to the left of the ego's"]``: what is known, in the options' words."""
        return [p for p in (self.side, self.distance, LANES[self.lane] if self.lane else None) if p]

    def words(self) -> str:
        """``left, 20 to 40 m, the lane to the left of the ego's``: ``parts`` as one phrase."""
        return ", ".join(self.parts())


def placements(scene: Scene, agents: Iterable[Agent]) -> dict[str, Placement]:
    """The placement of each of ``agents`` by id (the scene's lanes computed once)."""
    shapes, roads = lane_shapes(scene), _roads(scene)
    return {
        a.id: Placement(side_of(a), distance_bin(distance(a)), lane_of_vehicle(scene, a, shapes, roads)) for a in agents
    }


@checker("ego_lane")
def _ego_lane_fact(scene: Scene, f: dict) -> bool:
    return scene.ego.lane_id == f["value"]


@checker("in_lane")
def _in_lane_fact(scene: Scene, f: dict) -> bool | None:
    """The agent's centre lies in lane ``lane`` (None: in no lane)."""
    agent = agent_by_id(scene, f["agent"])
    if agent is None:
        return None
    point = shapely.Point(*_offset(agent))
    holding = {s.lane.id for s in lane_shapes(scene).values() if s.area.contains(point)}
    return holding == ({f["lane"]} if f["lane"] else set())


@checker("lane_of")
def _lane_of_fact(scene: Scene, f: dict) -> bool | None:
    agent = agent_by_id(scene, f["agent"])
    if agent is None:
        return None
    return lane_label(scene, lane_shapes(scene), *_offset(agent), _roads(scene)) == f["value"]


@task("lane", FAMILY, AnswerType.CHOICE, buckets=list(LANES.values()))
def lane_of(scene: Scene, rng: np.random.Generator) -> Iterator[Sample]:
    """Which lane a described road user is in, relative to the ego's lane."""
    if scene.ego.lane_id is None:
        return
    shapes, roads = lane_shapes(scene), _roads(scene)
    ego_lane = Step(
        text=f"The ego drives in lane {scene.ego.lane_id}.", facts=[Fact(type="ego_lane", value=scene.ego.lane_id)]
    )
    for agent, name, identified in named(scene):
        label = lane_of_vehicle(scene, agent, shapes, roads)
        if label is None:
            continue
        _, lane = lane_at(shapes, *_offset(agent))
        placed = Step(
            text=f"Its centre, {_where(agent)} of the ego, lies "
            + (f"well inside lane {lane.id}." if lane else "outside every driving lane."),
            facts=[Fact(type="in_lane", agent=agent.id, lane=lane.id if lane else None)],
        )
        decided = Step(
            text=f"So the answer is: {LANES[label]}.", facts=[Fact(type="lane_of", agent=agent.id, value=label)]
        )
        question = f"Which lane is {name} in?"
        yield choice_sample(
            scene,
            FAMILY,
            "lane",
            noun(agent.category),
            question,
            list(LANES.values()),
            LANES[label],
            [identified, ego_lane, placed, decided],
            rng,
        )


# --- the nearest road user ahead in the ego's lane ---------------------------------------------


def _along(shapes: dict[str, LaneShape], chain: list[str]) -> Callable[[float, float], float]:
    """Distance along the corridor's centreline from the ego to the point nearest (x, y)."""
    line = shapely.LineString(np.concatenate([np.asarray(shapes[i].line.coords) for i in chain]))
    start = line.project(shapely.Point(0.0, 0.0))
    return lambda x, y: line.project(shapely.Point(x, y)) - start


def _in_corridor(scene: Scene) -> list[tuple[float, Agent, bool]]:
    """Agents ahead whose centre is in the ego's corridor or on its edge, nearest first:
    (metres along it, agent, whether it is clearly in it, not on an edge or in a junction)."""
    shapes, chain = lane_shapes(scene), ego_corridor(scene)
    along = _along(shapes, chain)
    found = []
    for agent in scene.agents:
        x, y = _offset(agent)
        clear, lane = lane_at(shapes, x, y)
        inside = clear and lane is not None and lane.id in chain
        edge = not clear and any(shapes[i].area.distance(shapely.Point(x, y)) < LANE_MARGIN for i in chain)
        s = along(x, y)
        if (inside or edge) and s > 0:
            found.append((s, agent, inside and not lane.in_junction))
    return sorted(found, key=lambda f: f[0])


def nearest_in_corridor(scene: Scene) -> Agent | None:
    """The rule without margins: the agent ahead whose centre is in the corridor, nearest along it."""
    shapes, chain = lane_shapes(scene), ego_corridor(scene)
    along = _along(shapes, chain)
    inside = [
        (along(*_offset(a)), a)
        for a in scene.agents
        if any(shapes[i].area.contains(shapely.Point(*_offset(a))) for i in chain)
    ]
    return min(((s, a) for s, a in inside if s > 0), key=lambda f: f[0], default=(0.0, None))[1]


@checker("in_ego_lane")
def _in_ego_lane_fact(scene: Scene, f: dict) -> bool | None:
    agent = agent_by_id(scene, f["agent"])
    if agent is None:
        return None
    shapes, point = lane_shapes(scene), shapely.Point(*_offset(agent))
    return any(shapes[i].area.contains(point) for i in ego_corridor(scene)) == f["value"]


@checker("nearest_in_lane")
def _nearest_in_lane_fact(scene: Scene, f: dict) -> bool:
    nearest = nearest_in_corridor(scene)
    return (nearest.id if nearest else None) == f["value"]


NEAREST = {  # fixed options, grouped so that each comes up often enough to balance
    "car": "a car",
    "other road user": "another road user (truck, bus, motorcycle, bicycle or pedestrian)",
    "obstacle": "an obstacle (cone, barrier, debris or animal)",
    "nobody": "nobody: the lane ahead is clear",
}


def nearest_group(category: Category) -> str:
    if category is Category.CAR:
        return "car"
    return "obstacle" if category in STATIC_OBJECTS | CORNER_CASES else "other road user"


@task("nearest_in_lane", FAMILY, AnswerType.CHOICE, buckets=list(NEAREST.values()))
def nearest_in_lane(scene: Scene, rng: np.random.Generator) -> Iterator[Sample]:
    """What is nearest ahead in the ego's lane: a car, another road user, an obstacle, or nobody.

    The options are the same four every time: options naming the road users in view would
    let a model guess from the names alone (an animal is nearly always the answer).
    """
    if scene.ego.lane_id is None:
        return
    ahead = _in_corridor(scene)
    target = ahead[0][1] if ahead else None
    if target is not None and (not ahead[0][2] or target.id not in {a.id for a in seen(scene, CAMERA)}):
        return  # on an edge, in a junction, or not clearly seen: not asked
    chain = ego_corridor(scene)
    steps = [
        Step(
            text=f"The ego drives in lane {chain[0]}"
            + (f", which continues straight on as {', '.join(chain[1:])}." if len(chain) > 1 else "."),
            facts=[Fact(type="ego_lane", value=chain[0])],
        )
    ]
    if target is None:
        group = "nobody"
        steps.append(
            Step(
                text="No road user or obstacle has its centre in that lane ahead of the ego.",
                facts=[Fact(type="nearest_in_lane", value=None)],
            )
        )
    else:
        group = nearest_group(target.category)
        steps.append(
            Step(
                text=f"The nearest in it is {target.id}, a {noun(target.category)} {ahead[0][0]:.1f} m ahead along "
                "the lane.",
                facts=[
                    Fact(type="visible", agent=target.id, camera=CAMERA),
                    Fact(type="in_ego_lane", agent=target.id, value=True),
                    Fact(type="nearest_in_lane", value=target.id),
                ],
            )
        )
    question = "What is nearest ahead of the ego vehicle in the ego's own lane, as seen in the front camera image?"
    options, answer = list(NEAREST.values()), NEAREST[group]
    yield choice_sample(scene, FAMILY, "nearest_in_lane", "nearest_in_lane", question, options, answer, steps, rng)
