from __future__ import annotations

ANSWERS: dict = {}
