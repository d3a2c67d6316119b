"""The ``roadthink`` command line: thin wrappers over the packages."""

from __future__ import annotations

import functools
import re
from collections import Counter
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from roadthink.errors import RoadthinkError

app = typer.Typer(
    help="roadthink: VLMs reasoning visually about driving scenes.", no_args_is_help=True, add_completion=False
)
scenes_app = typer.Typer(help="Generate and inspect driving scenes.", no_args_is_help=True)
app.add_typer(scenes_app, name="scenes")
bench_app = typer.Typer(help="Build benchmark splits of questions with exact answers.", no_args_is_help=True)
app.add_typer(bench_app, name="bench")
models_app = typer.Typer(help="Build models roadthink makes itself.", no_args_is_help=True)
app.add_typer(models_app, name="models")
train_app = typer.Typer(help="Train models on a benchmark split (TRL: SFT, then GRPO).", no_args_is_help=True)
app.add_typer(train_app, name="train")
console = Console()
err_console = Console(stderr=True)

# Model settings shared by `eval` and `serve`; each backend takes the ones it knows.
MaxTokens = Annotated[int | None, typer.Option(help="Longest reply, in tokens (hf: default 256).")]
Temperature = Annotated[float | None, typer.Option(help="Sampling temperature (hf: 0 or unset decodes greedily).")]
Device = Annotated[str | None, typer.Option(help="hf: cuda, mps, cpu or auto (the first this machine has).")]
Dtype = Annotated[str | None, typer.Option(help="hf: auto, float32, bfloat16 or float16.")]
BatchSize = Annotated[int | None, typer.Option(help="hf: rows decoded together (default 32).")]
Threads = Annotated[int | None, typer.Option(help="hf: torch CPU threads (default: torch's).")]


def _fail(message: str) -> typer.Exit:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(2)


def reports_errors(fn):
    """Turn a RoadthinkError into one red line on stderr and exit status 2."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except RoadthinkError as e:
            raise _fail(str(e)) from None

    return wrapper


def _cameras(value: str) -> list[str]:
    from roadthink.scene.cameras import CAMERA_NAMES

    names = list(CAMERA_NAMES) if value.strip().lower() == "all" else [v.strip() for v in value.split(",") if v.strip()]
    unknown = [n for n in names if n not in CAMERA_NAMES]
    if unknown or not names:
        raise RoadthinkError(
            f"--cameras: unknown camera {unknown[0] if unknown else value!r}; known: {', '.join(CAMERA_NAMES)} or 'all'"
        )
    return names


def _only(option: str, value: str | None, known: dict) -> dict[str, float] | None:
    """``--layout a,b`` -> equal weights for the named options (None keeps the defaults)."""
    if value is None:
        return None
    names = [v.strip() for v in value.split(",") if v.strip()]
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        raise RoadthinkError(
            f"{option}: unknown value {unknown[0] if unknown else value!r}; known: {', '.join(map(str, known))}"
        )
    return {n: 1.0 for n in names}


@scenes_app.command("generate")
@reports_errors
def scenes_generate(
    out: Annotated[Path, typer.Option(help="Output folder (scenes/, images/).")],
    n: Annotated[int, typer.Option("--n", help="Number of scenes.")] = 16,
    seed: Annotated[int, typer.Option(help="Base seed: same seed, same scenes.")] = 0,
    cameras: Annotated[
        str, typer.Option(help="Comma-separated camera names, or 'all' for the 6-camera rig.")
    ] = "CAM_FRONT",
    workers: Annotated[int, typer.Option(help="Worker processes (0: one per core).")] = 0,
    layout: Annotated[str | None, typer.Option(help="Only these layouts (comma-separated).")] = None,
    scenario: Annotated[str | None, typer.Option(help="Only these scenarios (comma-separated).")] = None,
    weather: Annotated[str | None, typer.Option(help="Only these weathers (comma-separated).")] = None,
    time_of_day: Annotated[str | None, typer.Option(help="Only these times of day (comma-separated).")] = None,
    density: Annotated[float, typer.Option(help="Traffic density multiplier.")] = 1.0,
) -> None:
    """Generate scenes with images and exact 2D annotations."""
    from roadthink.scene.generator import GeneratorConfig
    from roadthink.scene.layouts import LAYOUTS
    from roadthink.scene.scenarios import SCENARIOS
    from roadthink.scene.types import TimeOfDay, Weather

    if n <= 0:
        raise RoadthinkError(f"--n must be a positive number of scenes, got {n}")
    overrides: dict = {"cameras": _cameras(cameras), "density": density}
    for key, option, value, known in (
        ("layouts", "--layout", layout, LAYOUTS),
        ("scenarios", "--scenario", scenario, SCENARIOS),
        ("weather", "--weather", weather, {w.value: w for w in Weather}),
        ("time_of_day", "--time-of-day", time_of_day, {t.value: t for t in TimeOfDay}),
    ):
        weights = _only(option, value, known)
        if weights is not None:
            overrides[key] = weights
    try:
        config = GeneratorConfig(**overrides)
    except ValueError as e:
        raise RoadthinkError(f"invalid generator option: {str(e).splitlines()[-1].strip()}") from None
    _generate(out, n, seed, config, workers)


def _generate(out: Path, n: int, seed: int, config, workers: int) -> None:
    """Write ``n`` scenes with a progress bar, then a table of what was made."""
    from roadthink.render.export import export_scenes

    counts = export_scenes(out, n, seed, config, workers)
    table = Table(title=f"{n} scenes in {out}")
    table.add_column("layout / scenario")
    table.add_column("scenes", justify="right")
    for key, count in sorted(counts.items()):
        table.add_row(key, str(count))
    console.print(table)


@scenes_app.command("show")
@reports_errors
def scenes_show(
    file: Annotated[Path, typer.Argument(help="A scene JSON file.")],
    image: Annotated[Path | None, typer.Option(help="Also write a picture: BEV and cameras with 2D boxes.")] = None,
) -> None:
    """Print a readable summary of a scene (and optionally draw it)."""
    from roadthink.scene.io import load_scene
    from roadthink.scene.summary import summary_table

    scene = load_scene(file)
    for renderable in summary_table(scene):
        console.print(renderable)
    if image is not None:
        from roadthink.render import save_png

        save_png(image, _annotated_montage(scene))
        console.print(f"picture: {image}")


def _annotated_montage(scene):
    """BEV and every camera of ``scene``, cameras with their exact 2D boxes drawn."""
    from roadthink.render import draw_annotations, montage, render_scene

    rendered = render_scene(scene)
    return montage(
        {
            name: img if name == "BEV" else draw_annotations(img, rendered.scene, name)
            for name, img in rendered.images.items()
        }
    )


def _names(value: str | None) -> list[str] | None:
    return None if value is None else [v.strip() for v in value.split(",") if v.strip()]


@bench_app.command("build")
@reports_errors
def bench_build(
    out: Annotated[Path, typer.Option(help="Output folder (samples.jsonl, scenes/, images/, README.md).")],
    split: Annotated[str, typer.Option(help="train, val or test: each has its own fixed scene seeds.")] = "test",
    size: Annotated[int, typer.Option(help="Samples per task.")] = 50,
    seed: Annotated[int | None, typer.Option(help="Base scene seed (default: the split's own).")] = None,
    tasks: Annotated[str | None, typer.Option(help="Only these tasks (comma-separated).")] = None,
    families: Annotated[str | None, typer.Option(help="Only these families (comma-separated).")] = None,
    workers: Annotated[int, typer.Option(help="Worker processes (0: one per core).")] = 0,
    fmt: Annotated[
        str,
        typer.Option("--format", help="jsonl, or parquet: also one self-contained file with the images embedded."),
    ] = "jsonl",
) -> None:
    """Build a balanced split: samples with exact answers, their images and scenes, a card."""
    from roadthink.tasks import select_tasks
    from roadthink.tasks.build import build

    chosen = select_tasks(_names(tasks), _names(families))
    report = build(out, chosen, split, size, seed, workers, fmt)
    table = Table(title=f"{split} split in {out}: {sum(report.samples.values())} samples, {report.scenes_used} scenes")
    for col in ("family", "task", "samples", "skipped scenes"):
        table.add_column(col)
    for t in chosen:
        table.add_row(t.family, t.name, str(report.samples[t.name]), str(report.skipped[t.name]))
    console.print(table)
    console.print(f"card: {out / 'README.md'}")


@bench_app.command("show")
@reports_errors
def bench_show(
    bench: Annotated[Path, typer.Argument(help="A built split (the folder with samples.jsonl).")],
    image: Annotated[Path | None, typer.Option(help="Write a picture of sample cards (PNG or JPEG).")] = None,
    tasks: Annotated[str | None, typer.Option(help="Only these tasks (comma-separated).")] = None,
    per_task: Annotated[int, typer.Option(help="Cards per task in the picture.")] = 1,
) -> None:
    """What a split holds: samples and answers per task, and a picture of sample cards."""
    import numpy as np

    from roadthink.render import save_image
    from roadthink.tasks.build import load_rows
    from roadthink.tasks.preview import OPEN, pick, preview
    from roadthink.tasks.registry import option_text

    rows = load_rows(bench)
    names = _names(tasks)
    if names:
        rows = [r for r in rows if r["task"] in names]
    by_task: dict[str, Counter[str]] = {}
    for r in rows:
        shown = (
            option_text(r["choices"], r["answer"])
            if r.get("choices")
            else r["answer_type"]
            if r["answer_type"] in OPEN
            else str(r["answer"])
        )
        by_task.setdefault(f"{r['family']} / {r['task']}", Counter())[shown] += 1
    table = Table(title=f"{bench}: {len(rows)} samples")
    for col in ("family / task", "samples", "most common answers"):
        table.add_column(col)
    for key, answers in by_task.items():
        table.add_row(key, str(answers.total()), ", ".join(f"{a} ({n})" for a, n in answers.most_common(4)))
    console.print(table)
    if image is not None:
        save_image(image, np.asarray(preview(bench, pick(rows, per_task))))
        console.print(f"picture: {image}")


@app.command("eval")
@reports_errors
def eval_(
    model: Annotated[str, typer.Option(help="Model string: random, blind, oracle, hf:<path-or-id>, openai:<model>.")],
    bench: Annotated[Path, typer.Option(help="A built split (roadthink bench build).")],
    out: Annotated[Path, typer.Option(help="Run folder: samples.jsonl, metrics.json, config.json.")],
    limit: Annotated[int | None, typer.Option(help="Only the first N samples.")] = None,
    tasks: Annotated[str | None, typer.Option(help="Only these tasks (comma-separated).")] = None,
    concurrency: Annotated[
        int | None, typer.Option(help="Requests in flight at once (default: twice an hf: model's batch, else 8).")
    ] = None,
    corruption: Annotated[
        str | None, typer.Option(help="NAME[:SEVERITY], or all: clean + every corruption + text-only.")
    ] = None,
    text_only: Annotated[bool, typer.Option("--text-only", help="Black images: what the text alone gives.")] = False,
    seed: Annotated[int, typer.Option(help="Seed of corruptions and random baselines.")] = 0,
    train: Annotated[Path | None, typer.Option(help="Train split the blind model learns its prior from.")] = None,
    base_url: Annotated[
        str | None, typer.Option(help="openai: server URL (default: OPENAI_BASE_URL; key from OPENAI_API_KEY).")
    ] = None,
    timeout: Annotated[float | None, typer.Option(help="openai: seconds per request.")] = None,
    max_retries: Annotated[int | None, typer.Option(help="openai: tries after the first on 429/5xx/timeouts.")] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="openai: do not reuse cached responses.")] = False,
    max_tokens: MaxTokens = None,
    temperature: Temperature = None,
    device: Device = None,
    dtype: Dtype = None,
    batch_size: BatchSize = None,
    threads: Threads = None,
    agent: Annotated[
        str | None,
        typer.Option(help="Agent mode: fast (answer at once), slow (tools), auto (per sample)."),
    ] = None,
    tools: Annotated[
        str | None,
        typer.Option(
            help="Agent tools (comma-separated; default all): zoom, view, past_frame, detect, measure, imagine, "
            "check_rules, python."
        ),
    ] = None,
    max_turns: Annotated[int, typer.Option(help="Agent: model calls that may ask for tools, per sample.")] = 6,
    max_tool_calls: Annotated[int, typer.Option(help="Agent: tool calls per sample.")] = 8,
    agent_seconds: Annotated[float, typer.Option(help="Agent: wall-clock seconds per sample.")] = 120.0,
    rules_from: Annotated[
        str, typer.Option(help="What check_rules and --enforce-rules reason over: perception (a detector) or scene.")
    ] = "perception",
    enforce_rules: Annotated[
        bool,
        typer.Option("--enforce-rules", help="Veto planned actions that break a traffic rule."),
    ] = False,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue a run in --out (runs always resume what they find).")
    ] = False,
) -> None:
    """Evaluate a model on a split: resumable, every sample accounted for."""
    import asyncio

    from roadthink.agent.workspace import AgentSettings
    from roadthink.eval.bench import load_bench
    from roadthink.eval.runner import RunConfig, conditions_for, fitting_concurrency, run
    from roadthink.models.base import resolve_model

    if resume and not (out / "config.json").is_file():
        raise RoadthinkError(f"{out}: nothing to resume (no config.json)")
    agent_config = _agent_config(agent, tools, max_turns, max_tool_calls, agent_seconds)
    if rules_from not in ("perception", "scene"):
        raise RoadthinkError(f"--rules-from: {rules_from!r}; use perception or scene")
    the_model = resolve_model(
        model,
        train=train,
        seed=seed,
        base_url=base_url,
        timeout=timeout,
        max_retries=max_retries,
        cache=False if no_cache else None,
        max_tokens=max_tokens,
        temperature=temperature,
        device=device,
        dtype=dtype,
        batch_size=batch_size,
        threads=threads,
    )
    split = load_bench(bench)
    config = RunConfig(
        model,
        bench,
        conditions_for(corruption, text_only),
        limit,
        _names(tasks),
        concurrency or fitting_concurrency(the_model),
        seed,
        agent=agent_config,
        enforce_rules=enforce_rules,
        tools=AgentSettings(rules_from=rules_from),
    )
    metrics = asyncio.run(run(the_model, split, out, config))
    _print_metrics(metrics, f"{model} on {bench}")
    paths = f"results: {out / 'samples.jsonl'}  metrics: {out / 'metrics.json'}  report: {out / 'report.html'}"
    console.print(paths, soft_wrap=True)  # unwrapped: paths to copy


def _agent_config(mode: str | None, tools: str | None, turns: int, calls: int, seconds: float):
    """The agent of ``roadthink eval --agent``; bad values are one-line errors before anything runs."""
    from roadthink.agent.loop import Limits
    from roadthink.agent.modes import MODES, AgentConfig
    from roadthink.agent.registry import select_tools

    if mode is None:
        if tools is not None:
            raise RoadthinkError("--tools needs --agent slow or auto")
        return None
    if mode not in MODES:
        raise RoadthinkError(f"--agent: unknown mode {mode!r}; known: {', '.join(MODES)}")
    try:
        chosen = tuple(t.name for t in select_tools(_names(tools))) if tools is not None else None
    except ValueError as e:
        raise RoadthinkError(f"--tools: {e}") from None
    limits = Limits(turns=turns, tool_calls=calls, seconds=seconds)
    return AgentConfig(mode=mode, tools=chosen, limits=limits)


@app.command()
@reports_errors
def report(
    runs: Annotated[list[Path], typer.Argument(help="Run folders (roadthink eval --out).")],
    out: Annotated[
        Path | None,
        typer.Option(help="Where the page goes (default: RUN/report.html for one run, ./comparison.html for several)."),
    ] = None,
) -> None:
    """Write a self-contained HTML report of a run, or a page comparing several side by side."""
    from roadthink.eval.report import write_comparison, write_report

    page = write_report(runs[0], out) if len(runs) == 1 else write_comparison(runs, out or Path("comparison.html"))
    console.print(f"report: {page}")


def _print_metrics(metrics: dict, title: str) -> None:
    table = Table(title=title)
    for col in ("family", "n", "accuracy", "95% CI"):
        table.add_column(col, justify="right" if col != "family" else "left")
    rows = [("overall", metrics["overall"]), *sorted(metrics.get("by_family", {}).items())]
    for name, block in rows:
        accuracy = block.get("accuracy")
        low, high = block.get("ci95") or (None, None)
        table.add_row(
            name,
            str(block.get("n", 0)),
            "-" if accuracy is None else f"{100 * accuracy:.1f}",
            "-" if low is None else f"{100 * low:.1f}-{100 * high:.1f}",
        )
    console.print(table)
    conditions = metrics.get("by_condition", {})
    if len(conditions) > 1:
        clean = conditions.get("clean", {}).get("accuracy")
        robustness = Table(title="by image condition")
        for col in ("condition", "n", "accuracy", "drop vs clean (points)"):
            robustness.add_column(col, justify="left" if col == "condition" else "right")
        for name, block in conditions.items():
            accuracy = block.get("accuracy")
            drop = "-" if clean is None or accuracy is None or name == "clean" else f"{100 * (clean - accuracy):+.1f}"
            shown = "-" if accuracy is None else f"{100 * accuracy:.1f}"
            robustness.add_row(name, str(block.get("n", 0)), shown, drop)
        console.print(robustness)


@app.command()
@reports_errors
def serve(
    model: Annotated[str, typer.Option(help="Model string: hf:<path>, openai:<model>, random, blind, oracle.")],
    host: Annotated[str, typer.Option(help="Address to bind (0.0.0.0 opens it to the network).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    api_key: Annotated[
        str | None, typer.Option(envvar="ROADTHINK_API_KEY", help="Require 'Authorization: Bearer KEY'.")
    ] = None,
    train: Annotated[Path | None, typer.Option(help="Train split the blind model learns its prior from.")] = None,
    max_tokens: MaxTokens = None,
    temperature: Temperature = None,
    device: Device = None,
    dtype: Dtype = None,
    batch_size: BatchSize = None,
    threads: Threads = None,
) -> None:
    """Serve a model over an OpenAI-compatible API: /v1/models and /v1/chat/completions."""
    import uvicorn

    from roadthink.models.base import resolve_model
    from roadthink.serve import create_app

    the_model = resolve_model(
        model,
        train=train,
        max_tokens=max_tokens,
        temperature=temperature,
        device=device,
        dtype=dtype,
        batch_size=batch_size,
        threads=threads,
    )
    console.print(f"serving {model} at http://{host}:{port}/v1" + (" (API key required)" if api_key else ""))
    uvicorn.run(create_app(the_model, model, api_key), host=host, port=port)


@models_app.command("tiny")
@reports_errors
def models_tiny(
    out: Annotated[Path, typer.Option(help="Folder for the model (config, weights, tokenizer, processor).")],
    bench: Annotated[
        Path | None, typer.Option(help="Learn the tokenizer from this split's text (default: generated scenes).")
    ] = None,
    hidden_size: Annotated[int, typer.Option(help="Text model width.")] = 64,
    layers: Annotated[int, typer.Option(help="Text model layers.")] = 2,
    heads: Annotated[int, typer.Option(help="Attention heads.")] = 4,
    vision_depth: Annotated[int, typer.Option(help="Vision encoder layers.")] = 1,
    vision_width: Annotated[int, typer.Option(help="Vision encoder width.")] = 32,
    vocab_size: Annotated[int, typer.Option(help="Most tokens the BPE tokenizer learns.")] = 1024,
    seed: Annotated[int, typer.Option(help="Seed of the random weights.")] = 0,
) -> None:
    """Build a tiny Qwen2-VL with random weights and a locally trained tokenizer, for hf:<out>."""
    from roadthink.tasks.build import load_rows

    try:
        from roadthink.models.tiny import TinyConfig, bench_corpus, build_tiny_qwen2vl
    except ImportError as e:
        missing = f"models tiny needs torch and transformers ({e.name} is missing)"
        raise RoadthinkError(f"{missing}: pip install 'roadthink[hf]'") from None

    config = TinyConfig(
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size,
        layers=layers,
        heads=heads,
        kv_heads=max(1, heads // 2),
        vision_depth=vision_depth,
        vision_width=vision_width,
        seed=seed,
    )
    texts = bench_corpus(load_rows(bench)) if bench is not None else None
    build_tiny_qwen2vl(out, texts, config)
    console.print(f"tiny Qwen2-VL in {out}: use it as hf:{out}")


# Options both training commands take.
TrainBench = Annotated[Path, typer.Option(help="A train split (roadthink bench build --split train).")]
TrainOut = Annotated[Path, typer.Option(help="Output folder: checkpoints, log.jsonl, then the model (hf:OUT).")]
LookFirst = Annotated[
    str | None,
    typer.Option(
        help="Tasks (comma-separated: category, color, count, exists, light_state, side, distance, lane) whose "
        "replies open with what the image shows and answer with it, in the captions' words (for a model from "
        "train captions)."
    ),
]
Steps = Annotated[int, typer.Option(help="Optimiser steps.")]
TrainBatch = Annotated[int, typer.Option(help="Samples (GRPO: completions) per step.")]
LearningRate = Annotated[float, typer.Option(help="Peak learning rate (cosine schedule).")]
Val = Annotated[Path | None, typer.Option(help="A val split: accuracy measured by the evaluation.")]
ValEvery = Annotated[int, typer.Option(help="Steps between val accuracy checks (0: at the end only).")]
ValSize = Annotated[int, typer.Option(help="Val samples per check.")]
SaveSteps = Annotated[int, typer.Option(help="Steps between checkpoints (a rerun resumes from the last).")]
Limit = Annotated[int | None, typer.Option(help="Use only the first N train samples.")]
Families = Annotated[str | None, typer.Option(help="Train only on these task families (comma-separated).")]
Tasks = Annotated[str | None, typer.Option(help="Train only on these tasks (comma-separated).")]
TrainDevice = Annotated[str, typer.Option(help="cuda, mps, cpu or auto.")]
TrainSeed = Annotated[int, typer.Option(help="Seed of weights, data order and sampling.")]
Scenes = Annotated[
    list[Path] | None,
    typer.Option(help="Scene folders (roadthink scenes generate) whose images join the split's; repeatable."),
]
FreezeVision = Annotated[
    bool, typer.Option(help="Keep the vision tower (e.g. from train vision) as it is; only its merger trains.")
]


def _train_settings(**values):
    from roadthink.train.run import TrainSettings

    values["learning_rate"] = values.pop("lr")
    families, tasks = values.pop("families"), values.pop("tasks", None)
    return TrainSettings(
        **values,
        families=None if families is None else tuple(_names(families)),
        tasks=None if tasks is None else tuple(_names(tasks)),
    )


@train_app.command("vision")
@reports_errors
def train_vision(
    bench: TrainBench,
    out: TrainOut,
    model: Annotated[
        str, typer.Option(help="tiny (the CPU recipe, built here) or hf:<folder-or-id> (a Qwen-VL).")
    ] = "tiny",
    steps: Steps = 600,
    batch_size: Annotated[int, typer.Option(help="Images per step.")] = 32,
    lr: LearningRate = 2e-3,
    scenes: Scenes = None,
    val: Annotated[
        Path | None, typer.Option(help="A val split or scene folder: each fact head's accuracy on its images.")
    ] = None,
    val_every: ValEvery = 0,
    save_steps: SaveSteps = 200,
    device: TrainDevice = "auto",
    seed: TrainSeed = 0,
) -> None:
    """Pre-train a vision tower on the split's front-camera images and the exact facts of
    their scenes, before SFT (train sft --model hf:OUT); resumable."""
    from roadthink.train.vision import train_vision as run_vision

    settings = _train_settings(
        steps=steps, batch_size=batch_size, lr=lr, seed=seed, device=device, limit=None, families=None,
        val_every=val_every, val_size=0, save_steps=save_steps,
    )  # fmt: skip
    folder = run_vision(bench, out, model, settings, val, scenes or ())
    _print_trained(folder, "roadthink train captions --model")


@train_app.command("captions")
@reports_errors
def train_captions(
    bench: TrainBench,
    out: TrainOut,
    model: Annotated[str, typer.Option(help="hf:<folder> (a Qwen-VL, e.g. from train vision), or tiny.")],
    steps: Steps = 800,
    batch_size: Annotated[int, typer.Option(help="Images per step.")] = 16,
    lr: LearningRate = 2e-3,
    scenes: Scenes = None,
    val: Annotated[
        Path | None, typer.Option(help="A val split or scene folder: each fact's accuracy in its images' captions.")
    ] = None,
    val_every: ValEvery = 0,
    save_steps: SaveSteps = 200,
    freeze_vision: FreezeVision = True,
    device: TrainDevice = "auto",
    seed: TrainSeed = 0,
) -> None:
    """Teach the language model to read the vision tower: it captions the split's (and the scene
    folders') front-camera images with their scenes' exact facts, before SFT; resumable."""
    from roadthink.train.captions import train_captions as run_captions

    settings = _train_settings(
        steps=steps, batch_size=batch_size, lr=lr, seed=seed, device=device, limit=None, families=None,
        val_every=val_every, val_size=0, save_steps=save_steps, freeze_vision=freeze_vision,
    )  # fmt: skip
    folder = run_captions(bench, out, model, settings, val, scenes or ())
    _print_trained(folder, "roadthink train sft --model")


@train_app.command("sft")
@reports_errors
def train_sft(
    bench: TrainBench,
    out: TrainOut,
    model: Annotated[str, typer.Option(help="tiny (the CPU recipe, built here) or hf:<folder-or-id>.")] = "tiny",
    steps: Steps = 300,
    batch_size: TrainBatch = 16,
    lr: LearningRate = 2e-3,
    val: Val = None,
    val_every: ValEvery = 0,
    val_size: ValSize = 64,
    save_steps: SaveSteps = 100,
    limit: Limit = None,
    families: Families = None,
    tasks: Tasks = None,
    freeze_vision: FreezeVision = False,
    captions: Annotated[
        list[Path] | None,
        typer.Option(help="Scene folders whose images are captioned among the samples (as in train captions)."),
    ] = None,
    caption_share: Annotated[
        float, typer.Option(help="The share of rows that are captions (0: none; 0.33 keeps a caption model reading).")
    ] = 0.0,
    look_first: LookFirst = None,
    focus: Annotated[
        str | None,
        typer.Option(help="Tasks (comma-separated) whose samples are --focus-share of the rows, repeated as needed."),
    ] = None,
    focus_share: Annotated[
        float, typer.Option(help="The share of the split's rows that are --focus samples (e.g. 0.67).")
    ] = 0.0,
    device: TrainDevice = "auto",
    seed: TrainSeed = 0,
) -> None:
    """Supervised fine-tuning: reasoning and answers as the split's references give them;
    running it again resumes from the last checkpoint."""
    from roadthink.train.sft import train_sft as run_sft

    if captions and not caption_share:
        raise RoadthinkError("--captions needs --caption-share, the share of rows that are captions (e.g. 0.33)")
    if bool(focus) != bool(focus_share):
        raise RoadthinkError("--focus and --focus-share go together: the tasks, and the share of rows that are theirs")
    settings = _train_settings(
        steps=steps, batch_size=batch_size, lr=lr, seed=seed, device=device, limit=limit, families=families,
        tasks=tasks, val_every=val_every, val_size=val_size, save_steps=save_steps, freeze_vision=freeze_vision,
        caption_share=caption_share, look_first=tuple(_names(look_first)) if look_first else (),
        focus=tuple(_names(focus)) if focus else (), focus_share=focus_share,
    )  # fmt: skip
    folder = run_sft(bench, out, model, settings, val, captions or ())
    _print_trained(folder)


@train_app.command("grpo")
@reports_errors
def train_grpo(
    init: Annotated[Path, typer.Option(help="The model to start from: a folder `train sft` wrote.")],
    bench: TrainBench,
    out: TrainOut,
    rewards: Annotated[
        str,
        typer.Option(
            help="Rewards, comma-separated: accuracy, format, waypoint, collision_free, meta_action, "
            "sight (a look-first reply's opening line checked against the scene), brevity, tool_bonus."
        ),
    ] = "accuracy,format,waypoint,collision_free,meta_action",
    weights: Annotated[str | None, typer.Option(help="One weight per reward, comma-separated (default all 1).")] = None,
    generations: Annotated[int, typer.Option(help="Completions sampled per prompt (the group).")] = 8,
    max_completion: Annotated[int, typer.Option(help="Longest completion, in tokens.")] = 96,
    temperature: Annotated[float, typer.Option(help="Sampling temperature of the completions.")] = 1.0,
    beta: Annotated[
        float, typer.Option(help="KL penalty to the starting model (0: none; 0.04 keeps a small model near it).")
    ] = 0.0,
    guidance: Annotated[
        int,
        typer.Option(
            help="Completions of each group that are the reply SFT teaches, not samples (off-policy guidance; 0: none)."
        ),
    ] = 0,
    look_first: LookFirst = None,
    steps: Steps = 200,
    batch_size: TrainBatch = 32,
    lr: LearningRate = 1e-4,
    val: Val = None,
    val_every: ValEvery = 0,
    val_size: ValSize = 64,
    save_steps: SaveSteps = 50,
    limit: Limit = None,
    families: Families = None,
    tasks: Tasks = None,
    freeze_vision: FreezeVision = False,
    device: TrainDevice = "auto",
    seed: TrainSeed = 0,
) -> None:
    """GRPO with verifiable rewards, each logged by name per step; resumable."""
    from roadthink.train.grpo import GRPOSettings
    from roadthink.train.grpo import train_grpo as run_grpo

    settings = _train_settings(
        steps=steps, batch_size=batch_size, lr=lr, seed=seed, device=device, limit=limit, families=families,
        tasks=tasks, val_every=val_every, val_size=val_size, save_steps=save_steps, freeze_vision=freeze_vision,
        look_first=tuple(_names(look_first)) if look_first else (),
    )  # fmt: skip
    try:
        weighted = None if weights is None else tuple(float(w) for w in _names(weights))
    except ValueError:
        raise RoadthinkError(f"--weights: {weights!r} is not a comma-separated list of numbers") from None
    grpo = GRPOSettings(tuple(_names(rewards)), weighted, generations, max_completion, temperature, beta, guidance)
    folder = run_grpo(init, bench, out, settings, grpo, val)
    _print_trained(folder)


@train_app.command("curves")
@reports_errors
def train_curves(
    runs: Annotated[list[Path], typer.Argument(help="Folders `roadthink train` wrote (their log.jsonl).")],
    out: Annotated[Path, typer.Option(help="The picture (PNG).")] = Path("curves.png"),
) -> None:
    """Draw training curves (loss, held-out accuracy, rewards…), several runs overlaid."""
    from roadthink.train.curves import draw_curves

    console.print(f"curves: {draw_curves(runs, out)}")


def _print_trained(folder: Path, next_use: str = "roadthink eval --model") -> None:
    console.print(
        f"model: {folder} ({next_use} hf:{folder}); log: {folder / 'log.jsonl'}; curves: {folder / 'curves.png'}"
    )


@app.command()
@reports_errors
def corruptions(
    out: Annotated[Path, typer.Option(help="Where the grid picture goes (PNG).")] = Path("corruptions.png"),
    image: Annotated[
        Path | None, typer.Option(help="An image to corrupt (default: a generated scene's front camera).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Corruption seed.")] = 0,
) -> None:
    """Draw every corruption at severities 1, 3 and 5 as one grid picture."""
    import cv2

    from roadthink.render import render_camera, save_png
    from roadthink.render.corrupt import corruption_grid
    from roadthink.scene.generator import generate_scene

    if image is None:
        picture = render_camera(generate_scene(seed), "CAM_FRONT").image
    else:
        bgr = cv2.imread(str(image), cv2.IMREAD_COLOR)
        if bgr is None:
            raise RoadthinkError(f"{image}: not a readable image")
        picture = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    save_png(out, corruption_grid(picture, seed=seed))
    console.print(f"grid: {out}")


def _folder_name(model: str) -> str:
    """A model string as one folder name (``hf:/x/y`` → ``hf-x-y``)."""
    return re.sub(r"[^A-Za-z0-9._]+", "-", model).strip("-") or "model"


def _accuracy_cell(block: dict[str, Any]) -> str:
    """A metrics block's accuracy in percent with its 95 % interval, or "-" where none was judged."""
    if block.get("accuracy") is None:
        return "-"
    low, high = block["ci95"]
    return f"{100 * block['accuracy']:.1f} ({100 * low:.0f}–{100 * high:.0f})"


@app.command()
@reports_errors
def demo(
    out: Annotated[Path, typer.Option(help="Where the demo's benchmark and runs go.")] = Path("runs/demo"),
    size: Annotated[int, typer.Option(help="Samples per task in the demo's test split.")] = 4,
    model: Annotated[str, typer.Option(help="The model to show (default: the shipped built-in VLM).")] = "builtin",
) -> None:
    """Build a small benchmark (cached), evaluate the model on it beside the blind baseline
    (chance) and the oracle (the ceiling), and print how they compare, family by family."""
    import asyncio

    from roadthink.eval.bench import load_bench
    from roadthink.eval.runner import RunConfig, fitting_concurrency, run
    from roadthink.models.base import resolve_model
    from roadthink.tasks import select_tasks
    from roadthink.tasks.build import build

    splits = {"test": (out / "bench-test", size), "train": (out / "bench-train", 2 * size)}
    for split, (folder, n) in splits.items():
        if not (folder / "bench.json").is_file():
            build(folder, select_tasks(), split, n)
    test = splits["test"][0]
    results = {}
    for name in dict.fromkeys((model, "blind", "oracle")):
        the_model = resolve_model(name, train=splits["train"][0])
        config = RunConfig(name, test, ["clean"], concurrency=fitting_concurrency(the_model))
        results[name] = asyncio.run(run(the_model, load_bench(test), out / "runs" / _folder_name(name), config))
    # the interval beside each figure: on a demo's few samples a model and chance differ by luck alone
    table = Table(
        title=f"roadthink demo: {results[model]['overall']['n']} samples of {test}",
        caption="accuracy % (its 95 % interval)",
    )
    table.add_column("family")
    for name in results:
        table.add_column(f"{name} accuracy", justify="right")
    families = sorted(results["oracle"]["by_family"])
    for row, blocks in [("overall", [r["overall"] for r in results.values()])] + [
        (f, [r["by_family"][f] for r in results.values()]) for f in families
    ]:
        table.add_row(row, *map(_accuracy_cell, blocks))
    console.print(table)
    for name in results:  # unwrapped: a path to copy
        console.print(f"{name} report: {out / 'runs' / _folder_name(name) / 'report.html'}", soft_wrap=True)
