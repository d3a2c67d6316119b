from __future__ import annotations

import numpy as np

from recompute.common import described


def _distance_bin(scene, row) -> str:
    d = float(np.hypot(*described(scene, row["question"]).box.center[:2]))
    return "under 10 m" if d < 10 else "10 to 20 m" if d < 20 else "20 to 40 m" if d < 40 else "over 40 m"


ANSWERS = {
    "side": lambda scene, row: "left" if described(scene, row["question"]).box.center[1] > 0 else "right",
    "distance": _distance_bin,
}
