"""Object detection for the agent's ``detect`` tool, behind one small interface.

The simulated detector reads the scene's exact 2D boxes and degrades them the way a real
detector fails: it misses objects (more often the more they are hidden), reports spurious
boxes, and jitters box edges and 3D positions. A real detector (YOLO, Grounding DINO…)
implements the same :class:`Detector` protocol from pixels alone.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from roadthink.scene.cameras import rig
from roadthink.scene.types import Category, Scene

VISIBLE_FOR_FULL_RECALL = 0.5  # below this visible share, recall falls off in proportion
MIN_BOX = 4.0  # pixels


@dataclass(frozen=True)
class Detection:
    id: str  # what the model calls it ("d3"); ids are unique within an episode
    category: str
    view: str
    box: tuple[float, float, float, float]  # x1, y1, x2, y2 in the view's image pixels
    score: float
    position: tuple[float, float]  # estimated ego-frame x (ahead), y (left), metres
    velocity: tuple[float, float] | None = None  # estimated, ego frame, m/s
    truth: str | None = None  # the agent it came from; None for a false positive (never shown)


class Detector(Protocol):
    def detect(self, image: np.ndarray, view: str, scene: Scene | None, seed: int) -> list[Detection]:
        """Objects in ``image`` (the view as the model sees it), ids left for the caller."""
        ...


@dataclass(frozen=True)
class SimulatedDetector:
    recall: float = 0.9
    false_positives: float = 0.3  # expected per image
    box_noise: float = 0.05  # sigma of each edge, as a share of the box's size
    range_noise: float = 0.05  # sigma of the position, as a share of the range

    def detect(self, image: np.ndarray, view: str, scene: Scene | None, seed: int) -> list[Detection]:
        if scene is None:
            raise ValueError("the simulated detector needs the scene")
        camera = view.split("@")[0]
        rng = np.random.default_rng([seed, zlib.crc32(view.encode())])
        height, width = image.shape[:2]
        found = []
        for agent_id, category, box, visible, centre, velocity in _ground_truth(scene, camera):
            if rng.random() > self.recall * min(1.0, visible / VISIBLE_FOR_FULL_RECALL):
                continue
            found.append(
                Detection(
                    id="",
                    category=category,
                    view=view,
                    box=self._jitter(box, rng, width, height),
                    score=round(float(np.clip(0.55 + 0.45 * visible + rng.normal(0, 0.05), 0.3, 0.99)), 2),
                    position=self._noisy(centre, rng),
                    velocity=tuple(round(float(v + rng.normal(0, 0.3)), 1) for v in velocity),
                    truth=agent_id,
                )
            )
        for _ in range(rng.poisson(self.false_positives)):
            found.append(self._spurious(rng, view, width, height))
        return sorted(found, key=lambda d: (d.box[0], d.box[1]))

    def _jitter(
        self, box: tuple[float, ...], rng: np.random.Generator, width: int, height: int
    ) -> tuple[float, float, float, float]:
        x1, y1, x2, y2 = box
        sx, sy = self.box_noise * (x2 - x1), self.box_noise * (y2 - y1)
        x1, x2 = sorted((x1 + rng.normal(0, sx), x2 + rng.normal(0, sx)))
        y1, y2 = sorted((y1 + rng.normal(0, sy), y2 + rng.normal(0, sy)))
        x1, x2 = np.clip([x1, max(x2, x1 + MIN_BOX)], 0, width)
        y1, y2 = np.clip([y1, max(y2, y1 + MIN_BOX)], 0, height)
        return (round(float(x1), 1), round(float(y1), 1), round(float(x2), 1), round(float(y2), 1))

    def _noisy(self, centre: tuple[float, float], rng: np.random.Generator) -> tuple[float, float]:
        scale = 1.0 + rng.normal(0, self.range_noise)
        return (round(centre[0] * scale, 1), round(centre[1] * scale, 1))

    def _spurious(self, rng: np.random.Generator, view: str, width: int, height: int) -> Detection:
        w, h = rng.uniform(15, 80), rng.uniform(15, 60)
        x, y = rng.uniform(0, width - w), rng.uniform(height * 0.4, height - h)
        distance, bearing = rng.uniform(5, 40), rng.uniform(-0.5, 0.5)
        category = [Category.CAR, Category.PEDESTRIAN, Category.TRAFFIC_CONE][int(rng.integers(3))].value
        position = (round(distance * math.cos(bearing), 1), round(distance * math.sin(bearing), 1))
        box = (round(x, 1), round(y, 1), round(x + w, 1), round(y + h, 1))
        score = round(float(rng.uniform(0.3, 0.6)), 2)
        return Detection("", category, view, box, score, position, (0.0, 0.0), None)


def _ground_truth(scene: Scene, camera: str) -> list[tuple]:
    """(agent id, category, box, visible share, ego-frame centre, velocity) of every agent the
    camera shows: from the scene's own annotations, or rendered when it has none for it."""
    annotations = {a.id: a.cameras[camera] for a in scene.agents if camera in a.cameras}
    if camera not in scene.cameras or not annotations:
        from roadthink.render import render_camera

        with_camera = (
            scene if camera in scene.cameras else scene.model_copy(update={"cameras": scene.cameras | rig([camera])})
        )
        annotations = render_camera(with_camera, camera).annotations
    agents = {a.id: a for a in scene.agents}
    return [
        (
            agent_id,
            agents[agent_id].category.value,
            tuple(note.bbox),
            note.visible_fraction,
            tuple(agents[agent_id].box.center[:2]),
            tuple(agents[agent_id].velocity),
        )
        for agent_id, note in annotations.items()
        if agent_id in agents
    ]
