from __future__ import annotations

import math
import re

from roadthink.models.rules.common import named
from roadthink.models.rules.prediction import _agent, box, lane_status, ttc

LEVELS = ["0 (none)", "1 (low)", "2 (medium)", "3 (high)"]


def level(scene, agent) -> int:
    """3: ahead in or entering the ego lane with under 4 s to collision; 2: 4 to 8 s;
    else 1 within 20 m and closing faster than 1 m/s; else 0."""
    ahead = (
        min(x for x, _ in box(agent.box.center, agent.box.size, agent.box.yaw).exterior.coords) > scene.ego.size[0] / 2
    )
    if ahead and lane_status(scene, agent) != "out":
        t = ttc(scene, agent)
        if t < 8:
            return 3 if t < 4 else 2
    x, y = agent.box.center[:2]
    rate = (x * (agent.velocity[0] - scene.ego.speed) + y * agent.velocity[1]) / math.hypot(x, y)
    return 1 if math.hypot(x, y) < 20 and rate < -1 else 0


def _most_dangerous(scene, row) -> str:
    options = [c[3:] for c in row["choices"]]
    assert len(options) == 2 and re.search(r"higher risk", row["question"])
    levels = {o: level(scene, named(scene, o.removeprefix("the "))) for o in options}
    best = max(levels.values())
    assert best >= 1 and list(levels.values()).count(best) == 1
    return next(o for o, lv in levels.items() if lv == best)


ANSWERS = {
    "risk_level": lambda scene, row: LEVELS[level(scene, _agent(scene, row, r"What risk does the ([a-z ]+?) pose"))],
    "most_dangerous": _most_dangerous,
}
