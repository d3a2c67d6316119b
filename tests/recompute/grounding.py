from __future__ import annotations

from recompute.common import described

ANSWERS = {"box": lambda scene, row: list(described(scene, row["question"]).cameras["CAM_FRONT"].bbox)}
