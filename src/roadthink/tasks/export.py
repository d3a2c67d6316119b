"""A built split as one self-contained Parquet file: images and scenes embedded, loadable
with ``datasets.load_dataset("parquet", ...)`` (images decode to PIL images)."""

from __future__ import annotations

import os
from pathlib import Path

from roadthink.errors import RoadthinkError


def write_parquet(bench: Path, path: Path) -> Path:
    """Write ``bench``'s samples.jsonl with every image's bytes and the scene JSON inlined.

    The samples are read back with the same JSON loader users use, so the Parquet file has
    exactly the columns and types of ``load_dataset("json", ...)`` plus ``scene_json``.
    """
    try:
        from datasets import Image, List, Value, load_dataset
    except ImportError:
        raise RoadthinkError("--format parquet needs the datasets library: pip install datasets") from None
    from datasets.utils.logging import disable_progress_bar, set_verbosity_error

    disable_progress_bar()  # the build shows its own progress
    set_verbosity_error()
    rows = load_dataset("json", data_files=str(bench / "samples.jsonl"), split="train")

    def embed(row: dict) -> dict:
        images = [{"bytes": (bench / p).read_bytes(), "path": p} for p in row["images"]]
        return {"images": images, "scene_json": (bench / row["scene"]).read_text()}

    features = rows.features.copy()
    features["images"] = List(Image())
    features["scene_json"] = Value("string")
    embedded = rows.map(embed, features=features)
    tmp = path.with_name(f".{path.name}.tmp")
    embedded.to_parquet(str(tmp))
    os.replace(tmp, path)  # atomic: a reader never sees half a file
    return path
