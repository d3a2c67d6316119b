"""Typed driving scenes: the world model, the procedural generator, scene files."""

from roadthink.scene.cameras import CAMERA_NAMES, rig
from roadthink.scene.generator import GENERATOR_VERSION, GeneratorConfig, default_config, generate_scene
from roadthink.scene.io import SceneFileError, load_scene, save_scene, scene_to_json
from roadthink.scene.types import SCHEMA_VERSION, Agent, Category, Intent, Scene

__all__ = [
    "CAMERA_NAMES",
    "GENERATOR_VERSION",
    "SCHEMA_VERSION",
    "Agent",
    "Category",
    "GeneratorConfig",
    "Intent",
    "Scene",
    "SceneFileError",
    "default_config",
    "generate_scene",
    "load_scene",
    "rig",
    "save_scene",
    "scene_to_json",
]
