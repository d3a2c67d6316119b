"""Render an HTML file to PNG with headless Chromium, to look at a report as a reader would.

``.venv/bin/python scripts/screenshot.py RUN/report.html out.png [--width 1400] [--height 2400]``

Chromium runs with a throw-away profile and every background network feature off: a report
is self-contained, so a page that needed the network would show up as broken here too.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

CHROMIUM = ("chromium", "chromium-browser", "google-chrome")
TIMEOUT_S = 120


def find_chromium() -> str | None:
    """The first Chromium-like browser on PATH."""
    return next((path for name in CHROMIUM if (path := shutil.which(name))), None)


def screenshot(html: Path, png: Path, width: int = 1400, height: int = 2400, browser: str | None = None) -> Path:
    """Write a ``width`` x ``height`` screenshot of the top of ``html`` to ``png``."""
    browser = browser or find_chromium()
    if browser is None:
        raise RuntimeError(f"no Chromium found (looked for {', '.join(CHROMIUM)}); apt-get install chromium")
    png.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        command = [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            f"--window-size={width},{height}",
            f"--screenshot={png.resolve()}",
            html.resolve().as_uri(),
        ]
        done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_S)
    if done.returncode != 0 or not png.is_file():
        raise RuntimeError(f"chromium failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    return png


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("html", type=Path)
    parser.add_argument("png", type=Path)
    parser.add_argument("--width", type=int, default=1400)
    parser.add_argument("--height", type=int, default=2400)
    args = parser.parse_args()
    if not args.html.is_file():
        sys.exit(f"{args.html}: no such file")
    try:
        print(screenshot(args.html, args.png, args.width, args.height))
    except (RuntimeError, subprocess.TimeoutExpired) as e:
        sys.exit(str(e))


if __name__ == "__main__":
    main()
