"""``builtin``: the small Qwen2-VL that roadthink trains itself (``roadthink train vision``,
``captions``, ``sft``, then ``grpo``, on a roadthink-bench train split and more scenes; the stage
more accurate on the val split is kept) and ships inside the package, so
the whole loop runs on a fresh machine with nothing to download. Its folder holds the weights
(safetensors), the tokenizer and processor, and the model card (``README.md``) with the
recipe and the measured accuracy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from roadthink.errors import RoadthinkError
from roadthink.models.base import register
from roadthink.models.hf_backend import HFModel, hf_settings

FOLDER = Path(__file__).with_name("builtin_vlm")


def _factory(argument: str, settings: dict[str, Any]) -> HFModel:
    """The shipped model through the transformers backend, with the same settings as ``hf:``."""
    if argument:
        raise RoadthinkError(f"builtin takes no argument (got builtin:{argument}); for another model use hf:<folder>")
    if not (FOLDER / "model.safetensors").is_file():
        raise RoadthinkError(f"builtin: the shipped model is missing from this install ({FOLDER}); reinstall roadthink")
    return HFModel(str(FOLDER), name="builtin", **hf_settings(settings))


register("builtin", _factory)
