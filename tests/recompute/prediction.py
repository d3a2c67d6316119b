from __future__ import annotations

from pathlib import Path

from recompute.common import described


def _motion(scene, row) -> str:
    assert [Path(p).name for p in row["images"]] == ["CAM_FRONT@-1s.png", "CAM_FRONT@-0.5s.png", "CAM_FRONT.png"]
    return "moving" if described(scene, row["question"]).speed > 1.0 else "stationary"


ANSWERS = {"motion": _motion}
