from __future__ import annotations

import math
import re

from roadthink.models.rules.common import COLOURS, described, named

RELATION = re.compile(
    r"bounding box of the ([a-z ]+?) (to the left of|to the right of|nearest to) the ([a-z ]+?) in the front camera"
)


def _box_relation(scene, row) -> list:
    """The look-alike (same category, and colour when said) the relation leaves alone, among
    everyone with pixels in the front camera; the others must be clearly out of it."""
    group, relation, anchor_phrase = RELATION.search(row["question"]).groups()
    anchor = named(scene, anchor_phrase)
    words = group.split()
    colour = words[0] if words[0] in COLOURS else None
    category = "_".join(words[1:] if colour else words)
    alike = [
        a
        for a in scene.agents
        if "CAM_FRONT" in a.cameras and a.category == category and (colour is None or a.color.name == colour)
    ]
    if relation == "nearest to":
        gaps = sorted((math.dist(a.box.center[:2], anchor.box.center[:2]), a.id) for a in alike)
        assert len(gaps) == 1 or gaps[1][0] - gaps[0][0] >= 2.0
        target = scene.agent(gaps[0][1])
    else:
        ax = sum(anchor.cameras["CAM_FRONT"].bbox[::2]) / 2
        side = -1 if relation == "to the left of" else 1
        offsets = {a.id: side * (sum(a.cameras["CAM_FRONT"].bbox[::2]) / 2 - ax) for a in alike}
        beyond = [i for i, d in offsets.items() if d > 30]
        assert len(beyond) == 1 and all(d < -30 for i, d in offsets.items() if i != beyond[0])
        target = scene.agent(beyond[0])
    assert len(alike) >= 2 and target.cameras["CAM_FRONT"].visible_fraction >= 0.25
    return list(target.cameras["CAM_FRONT"].bbox)


ANSWERS = {
    "box": lambda scene, row: list(described(scene, row["question"]).cameras["CAM_FRONT"].bbox),
    "box_relation": _box_relation,
}
