"""What the tools of one episode work on: the images the model has seen (and can ask to see
again), the scene behind them for the simulated sensors, and a folder for what tools draw.

Views are named as the benchmark names them: ``CAM_FRONT``, ``BEV``, ``CAM_FRONT@-1s``. A view
the sample did not include is rendered from the scene on demand and passed through the run's
image condition (the same corruption as the question's images), so looking again never shows
a cleaner world than the first look did.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

import cv2
import numpy as np

from roadthink.agent.detector import Detection, Detector, SimulatedDetector
from roadthink.agent.sandbox import SandboxLimits
from roadthink.render import BEV, render_bev, render_camera, save_png
from roadthink.scene.cameras import CAMERA_NAMES, rig
from roadthink.scene.timeline import scene_at
from roadthink.scene.types import Scene
from roadthink.tasks.sample import View

VIEW_NAMES = (*CAMERA_NAMES, BEV)
Condition = Callable[[np.ndarray, str], np.ndarray]  # (RGB image, view key) -> what the model sees


def view_key(camera: str, seconds_ago: float = 0.0) -> str:
    return View(camera=camera, t=-seconds_ago).key


@dataclass
class AgentSettings:
    """Knobs of the tools (HighwayEnv style: defaults here, overrides per run)."""

    zoom_side: int = 448  # longer side of a zoomed crop as shown
    min_crop: int = 28  # pixels: a crop is never smaller (one vision patch pair)
    max_aspect: float = 4.0  # a crop is widened until its sides are within this ratio
    coords: str = "pixels"  # boxes in pixels of the image as shown, or "normalized" (0-1000, Qwen2-VL)
    measure_noise: float = 0.05  # sigma of range error, as a share of the range
    bearing_noise_deg: float = 1.0
    detector_recall: float = 0.9
    detector_false_positives: float = 0.3  # expected spurious boxes per call
    detector_box_noise: float = 0.05  # sigma of box-edge jitter, as a share of the box size
    rules_from: str = "perception"  # check_rules reasons over "perception" (the detector) or the "scene"
    sandbox: SandboxLimits = field(default_factory=SandboxLimits)  # the python tool's limits


@dataclass
class Workspace:
    scene: Scene | None
    images: dict[str, Path]  # view key -> image file as the model sees it
    out: Path  # where this episode's tool images go
    condition: Condition = lambda image, key: image
    settings: AgentSettings = field(default_factory=AgentSettings)
    seed: int = 0
    detector: Detector | None = None
    detections: dict[str, Detection] = field(default_factory=dict)  # ids the model may refer to
    saved: int = 0

    def __post_init__(self) -> None:
        if self.detector is None:
            s = self.settings
            self.detector = SimulatedDetector(
                s.detector_recall, s.detector_false_positives, s.detector_box_noise, s.measure_noise
            )

    def need_scene(self, what: str) -> Scene:
        if self.scene is None:
            raise ValueError(f"{what} needs the scene, and this sample has none")
        return self.scene

    def image(self, key: str) -> np.ndarray:
        """The RGB image of a view, rendering it (and its condition) when first asked for."""
        if key not in self.images:
            self.images[key] = self.save(self._render(key), key.replace("@", "_at_"))
        bgr = cv2.imread(str(self.images[key]), cv2.IMREAD_COLOR)
        if bgr is None:
            raise ValueError(f"image of view {key} does not read")
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

    def _render(self, key: str) -> np.ndarray:
        view = View(camera=key.split("@")[0], t=_seconds(key))
        scene = self.need_scene(f"view {key}")
        moment = scene_at(scene, view.t)
        if view.camera == BEV:
            return self.condition(render_bev(moment), key)
        if view.camera not in moment.cameras:
            moment = moment.model_copy(update={"cameras": moment.cameras | rig([view.camera])})
        return self.condition(render_camera(moment, view.camera).image, key)

    def save(self, image: np.ndarray, name: str) -> Path:
        """Write a tool's image; files are numbered in the order the episode made them."""
        self.saved += 1
        path = self.out / f"{self.saved:02d}-{name}.png"
        save_png(path, image)
        return path

    def shown_size(self, image: np.ndarray) -> tuple[int, int]:
        """(width, height) of the coordinate frame the model gives boxes in for ``image``."""
        if self.settings.coords == "normalized":
            return (1000, 1000)
        height, width = image.shape[:2]
        return (width, height)


def _seconds(key: str) -> float:
    """``CAM_FRONT@-1s`` -> -1.0; a key without a time is now."""
    _, _, when = key.partition("@")
    return float(when.removesuffix("s")) if when else 0.0


def sample_images(urls_or_paths: list[str] | list[Path]) -> dict[str, Path]:
    """The images the model was shown (file paths or file: URLs) by view key: a bench stores
    each view as ``<key>.png`` (``CAM_FRONT.png``, ``CAM_FRONT@-1s.png``), corrupted copies too."""
    paths = [
        Path(url2pathname(urlparse(u).path)) if u.startswith("file:") else Path(u) for u in map(str, urls_or_paths)
    ]
    return {path.stem: path for path in paths}
