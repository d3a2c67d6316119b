"""Scenes per second for generate + BEV + front camera, beside highway-env in the same run.

Anchors, all measured here:
- highway-env ``render()`` of one fixed state, frames/s (the issue's anchor; re-draws the
  same frame, so it is an upper bound on highway-env's drawing speed);
- highway-env ``reset()`` + ``render()``, frames/s: a new highway-env scene, drawn — the
  closest counterpart of generating and drawing a roadthink scene;
- highway-env ``step()`` + ``render()``, frames/s: what a new highway-env frame costs.

Run: ``make bench`` (installs the ``sim`` extra), or
``SDL_VIDEODRIVER=offscreen SDL_NO_SIGNAL_HANDLERS=1 .venv/bin/python benchmarks/render_speed.py``.
"""

from __future__ import annotations

import argparse
import os
import time
from concurrent.futures import ProcessPoolExecutor

os.environ.setdefault("SDL_VIDEODRIVER", "offscreen")  # "dummy" renders black frames
os.environ.setdefault("SDL_NO_SIGNAL_HANDLERS", "1")


def roadthink_scene(seed: int) -> float:
    """Generate one scene and render its BEV and front camera; returns seconds spent."""
    from roadthink.render import render_bev, render_camera
    from roadthink.scene import generate_scene

    start = time.perf_counter()
    scene = generate_scene(seed)
    render_bev(scene)
    render_camera(scene, "CAM_FRONT")
    return time.perf_counter() - start


def roadthink_rate(n: int, workers: int) -> tuple[float, dict[str, float]]:
    """Scenes/s over ``n`` scenes; with one worker also the split generate vs render."""
    from roadthink.render import render_bev, render_camera
    from roadthink.scene import generate_scene

    roadthink_scene(10_000)  # imports and caches outside the timing
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            list(pool.map(roadthink_scene, range(workers)))
            start = time.perf_counter()
            list(pool.map(roadthink_scene, range(n), chunksize=8))
            return n / (time.perf_counter() - start), {}
    parts = {"generate": 0.0, "bev": 0.0, "camera": 0.0}
    start = time.perf_counter()
    for seed in range(n):
        t0 = time.perf_counter()
        scene = generate_scene(seed)
        t1 = time.perf_counter()
        render_bev(scene)
        t2 = time.perf_counter()
        render_camera(scene, "CAM_FRONT")
        t3 = time.perf_counter()
        parts["generate"] += t1 - t0
        parts["bev"] += t2 - t1
        parts["camera"] += t3 - t2
    total = time.perf_counter() - start
    return n / total, {k: 1000 * v / n for k, v in parts.items()}


def highway_rates(frames: int, steps: int) -> tuple[float, float, float]:
    import gymnasium as gym
    import highway_env  # noqa: F401  (registers the environments)

    env = gym.make("highway-v0", render_mode="rgb_array")
    env.reset(seed=0)
    frame = env.render()
    assert frame is not None and frame.mean() > 10, "highway-env rendered a black frame (SDL_VIDEODRIVER?)"
    start = time.perf_counter()
    for _ in range(frames):
        env.render()
    render_fps = frames / (time.perf_counter() - start)
    start = time.perf_counter()
    for _ in range(steps):
        env.step(env.action_space.sample())
        env.render()
    step_fps = steps / (time.perf_counter() - start)
    start = time.perf_counter()
    for seed in range(steps):
        env.reset(seed=seed)
        env.render()
    reset_fps = steps / (time.perf_counter() - start)
    env.close()
    return render_fps, reset_fps, step_fps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=int, default=200)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    render_fps, reset_fps, step_fps = highway_rates(frames=300, steps=20)
    single, parts = roadthink_rate(args.scenes, 1)
    print(f"highway-env render() of a fixed state : {render_fps:8.1f} frames/s")
    print(f"highway-env reset() + render()         : {reset_fps:8.1f} frames/s")
    print(f"highway-env step() + render()          : {step_fps:8.1f} frames/s")
    print(f"roadthink generate + BEV + CAM_FRONT   : {single:8.1f} scenes/s (1 process)")
    print("  per scene: " + ", ".join(f"{k} {v:.1f} ms" for k, v in parts.items()))
    print(f"ratio vs highway-env render()          : {single / render_fps:8.2f}x (goal >= 3x)")
    print(f"ratio vs highway-env reset + render    : {single / reset_fps:8.2f}x")
    print(f"ratio vs highway-env step + render     : {single / step_fps:8.2f}x")
    if args.workers > 1:
        multi, _ = roadthink_rate(args.scenes, args.workers)
        print(f"roadthink with {args.workers} worker processes        : {multi:8.1f} scenes/s")
        print(f"ratio vs highway-env render()          : {multi / render_fps:8.2f}x")
        print(f"ratio vs highway-env reset + render    : {multi / reset_fps:8.2f}x")


if __name__ == "__main__":
    main()
