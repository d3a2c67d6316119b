"""Training curves: every stage's ``log.jsonl`` (``run.LogLines``) drawn as one picture, a panel
per kind of figure: the training loss, accuracy on held-out data beside its reference (the
majority class, dashed), GRPO's rewards by name, its reply length and KL to the start. Several
runs overlay, one colour each, so two recipes compare at a glance.

Drawn to OUT/curves.png when a stage finishes; ``roadthink train curves RUN… --out PNG``
redraws or compares."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

from roadthink.errors import RoadthinkError

# panel title → how a key of a log line belongs to it (the part after the prefix names the line)
PANELS: dict[str, tuple[str, ...]] = {
    "training loss": ("loss",),
    "held-out accuracy": ("val_accuracy", "val_facts", "val_captions"),
    "rewards (mean per completion)": ("rewards/",),
    "reply length (tokens)": ("completions/mean_length",),
    "KL to the starting model": ("kl",),
}
REFERENCE = "_majority"  # a held-out figure's reference: the same key with this suffix


def read_log(path: Path) -> list[dict[str, float]]:
    """The lines of a log.jsonl that carry a step; a malformed line is a one-line error."""
    lines = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            lines.append(json.loads(line))
        except json.JSONDecodeError as e:
            raise RoadthinkError(f"{path}:{number}: not a JSON line ({e.msg})") from None
    return [line for line in lines if isinstance(line.get("step"), int | float)]


def series(lines: list[dict[str, float]], keys: tuple[str, ...]) -> dict[str, list[tuple[float, float]]]:
    """The (step, value) points of every key that ``keys`` select: a key equal to one, or for a
    prefix ending in ``/``, any key under it (named by what follows, e.g. accuracy_reward)."""
    found: dict[str, list[tuple[float, float]]] = {}
    for line in lines:
        for key, value in line.items():
            name = _member(key, keys)
            if name is not None and isinstance(value, int | float) and math.isfinite(value):
                found.setdefault(name, []).append((float(line["step"]), float(value)))
    return found


def _member(key: str, keys: tuple[str, ...]) -> str | None:
    for wanted in keys:
        if wanted.endswith("/") and key.startswith(wanted) and key.endswith("/mean"):
            return key[len(wanted) : -len("/mean")]
        if key in (wanted, wanted + REFERENCE):
            return key
    return None


def draw_curves(runs: Sequence[Path], out: Path) -> Path:
    """Draw the logs of ``runs`` (stage folders holding log.jsonl) to ``out`` (a PNG); panels
    without data are left out. Returns ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    logs = {}
    for run in runs:
        log = run / "log.jsonl"
        if not log.is_file():
            raise RoadthinkError(f"{run}: no log.jsonl (not a folder `roadthink train` wrote)")
        logs[run.name] = read_log(log)
    panels = {title: {name: series(lines, keys) for name, lines in logs.items()} for title, keys in PANELS.items()}
    panels = {title: found for title, found in panels.items() if any(found.values())}
    if not panels:
        raise RoadthinkError(f"nothing to draw: no steps logged in {', '.join(str(r) for r in runs)}")
    columns = min(3, len(panels))
    rows = -(-len(panels) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(4.6 * columns, 3.4 * rows), squeeze=False)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for axis, (title, found) in zip(axes.flat, panels.items(), strict=False):
        picked: dict[tuple[str, str], str] = {}  # (run, figure) → colour; a reference takes its figure's
        for run, lines in found.items():
            for name, points in lines.items():
                base = name.removesuffix(REFERENCE)
                colour = picked.setdefault((run, base), colours[len(picked) % len(colours)])
                steps, values = zip(*points, strict=True)
                axis.plot(
                    steps,
                    values,
                    linestyle="--" if name.endswith(REFERENCE) else "-",
                    marker="" if len(points) > 3 else "o",
                    color=colour,
                    label=name if len(found) == 1 else f"{run}: {name}",
                )
        values = [v for lines in found.values() for points in lines.values() for _, v in points]
        if title == "training loss":  # from scratch, the loss falls by orders of magnitude
            axis.set_yscale("log" if min(values) > 0 else "symlog", **({} if min(values) > 0 else {"linthresh": 0.01}))
        axis.set_title(title, fontsize=10)
        axis.set_xlabel("step")
        axis.grid(alpha=0.3)
        if sum(len(lines) for lines in found.values()) > 1:
            axis.legend(fontsize=7)
    for axis in list(axes.flat)[len(panels) :]:
        axis.axis("off")
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=110)
    plt.close(figure)
    return out


def draw_log(folder: Path) -> Path | None:
    """A finished stage's own curves, FOLDER/curves.png, when its log holds any figure (a run
    of a step or two may log none); the training it follows never fails for want of a picture."""
    lines = read_log(folder / "log.jsonl") if (folder / "log.jsonl").is_file() else []
    if not any(series(lines, keys) for keys in PANELS.values()):
        return None
    return draw_curves([folder], folder / "curves.png")
