"""What the oracle's rules share: who is seen, and which agent a phrase of a question names."""

from __future__ import annotations

import re

VISIBLE = 0.25  # an agent counts as seen from this visible fraction on
COLOURS = {"white", "black", "silver", "red", "blue", "green", "yellow", "orange", "brown", "grey"}


def front(scene, camera: str = "CAM_FRONT") -> list:
    return [a for a in scene.agents if camera in a.cameras and a.cameras[camera].visible_fraction >= VISIBLE]


def named(scene, phrase: str, camera: str = "CAM_FRONT"):
    """The one visible agent that 'the [colour] category' (without 'the') names."""
    words = phrase.split()
    colour = words[0] if words[0] in COLOURS else None
    category = "_".join(words[1:] if colour else words)
    found = [a for a in front(scene, camera) if a.category == category and (colour is None or a.color.name == colour)]
    assert len(found) == 1, phrase
    return found[0]


def described(scene, question: str):
    """The agent named by the first 'the [colour] category' phrase of the question."""
    phrase = re.search(
        r"(?:Is|How far is|bounding box of) the ([a-z ]+?) (?:to the|from|in the|moving or)", question
    ).group(1)
    return named(scene, phrase)
