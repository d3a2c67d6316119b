"""What the training commands share: settings, the trainer arguments that follow from them,
a per-step log, accuracy on a val split measured by the evaluation, resumption, and saving
the result as a model folder."""

from __future__ import annotations

import asyncio
import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from transformers import TrainerCallback
from transformers.trainer_utils import get_last_checkpoint
from trl import SFTConfig, SFTTrainer

from roadthink.errors import RoadthinkError
from roadthink.eval.bench import Bench, load_bench
from roadthink.eval.runner import RunConfig, run
from roadthink.models.hf_backend import HFModel, load, pick_device, pick_dtype
from roadthink.models.tiny import TinyConfig, bench_corpus, build_tiny_qwen2vl
from roadthink.tasks.build import load_rows
from roadthink.train.curves import draw_log
from roadthink.train.data import train_split


@dataclass(frozen=True)
class TrainSettings:
    steps: int = 300
    batch_size: int = 16
    learning_rate: float = 2e-3  # from scratch; fine-tuning a pretrained model wants ~1e-5
    warmup_ratio: float = 0.05
    seed: int = 0
    device: str = "auto"
    save_steps: int = 100
    logging_steps: int = 10
    limit: int | None = None  # train samples used (None: all)
    families: tuple[str, ...] | None = None  # train only on these task families (None: all)
    tasks: tuple[str, ...] | None = None  # and only on these tasks (None: all)
    val_every: int = 0  # steps between accuracy checks on the val split (0: only at the end)
    val_size: int = 64
    gradient_checkpointing: bool = False  # on for a large model on a small GPU
    freeze_vision: bool = False  # keep the vision tower as it is; its merger (the projector) still trains
    caption_share: float = 0.0  # SFT: the share of rows that are captions of scene images (train/captions.py)
    # SFT (and GRPO's guidance): tasks whose replies read the image in the captions' words (captions.looking)
    look_first: tuple[str, ...] = ()
    # SFT: tasks whose samples are focus_share of the split's rows, repeated as needed (data.focused)
    focus: tuple[str, ...] = ()
    focus_share: float = 0.0


RECIPE = TinyConfig(  # the CPU recipe: 4.0 M parameters, 6 samples/s in SFT on 2 cores
    vocab_size=2048,
    hidden_size=256,
    intermediate_size=512,
    layers=4,
    # 16 heads of 16 (2 for keys and values) at an initial scale of 1/sqrt(hidden): on a synthetic option lookup
    # (scripts/option_recall.py) 4 heads of 64 at 0.02 stayed at chance for 750 steps; these reach 86 % in 500
    heads=16,
    kv_heads=2,
    init=256**-0.5,
    vision_depth=2,
    vision_width=128,
    vision_heads=4,
    min_pixels=112 * 112,
    max_pixels=224 * 224,
)


def initial_model(spec: str, bench: Bench, out: Path, seed: int) -> Path:
    """The folder training starts from: ``tiny`` builds the CPU recipe (its tokenizer learnt
    from the split's text) under OUT/init once; ``hf:PATH`` or a plain folder is used as is."""
    if spec == "tiny":
        init = out / "init"
        if not (init / "config.json").is_file():
            build_tiny_qwen2vl(init, bench_corpus(load_rows(bench.path)), replace(RECIPE, seed=seed))
        return init
    return Path(spec.removeprefix("hf:"))


def trainer_arguments(settings: TrainSettings, out: Path, device: str) -> dict[str, Any]:
    """The TrainingArguments both trainers take from ``settings``."""
    return {
        "output_dir": str(out),
        "max_steps": settings.steps,
        "per_device_train_batch_size": settings.batch_size,
        "learning_rate": settings.learning_rate,
        "warmup_steps": max(1, round(settings.warmup_ratio * settings.steps)),
        "lr_scheduler_type": "cosine",
        "logging_steps": settings.logging_steps,
        "save_steps": settings.save_steps,
        "save_total_limit": 2,
        "seed": settings.seed,
        "report_to": [],
        "use_cpu": device == "cpu",
        "bf16": device.startswith("cuda"),
        "dataloader_num_workers": 0,
        # TRL turns it on by default: it saves memory a small model does not need, for a third more compute
        "activation_checkpointing": settings.gradient_checkpointing,
    }


def vision_tower(model: Any) -> Any:
    """A Qwen-VL's vision tower (``model.model.visual``), or a one-line error naming the model."""
    visual = getattr(getattr(model, "model", model), "visual", None)
    if visual is None:
        raise RoadthinkError(f"{type(model).__name__} has no vision tower at .model.visual: a Qwen-VL model is needed")
    return visual


def freeze_vision_tower(model: Any) -> None:
    """Stop training a Qwen-VL's vision tower but for its merger, the projector into the
    language model (LLaVA's stage 2): a tower pre-trained on what images show keeps it while
    the language model learns to read it."""
    for name, parameter in vision_tower(model).named_parameters():
        if not name.startswith("merger."):
            parameter.requires_grad_(False)


def starting_point(
    kind: str, bench_path: Path, out: Path, model: str, settings: TrainSettings, more: dict[str, Any] | None = None
) -> tuple[Bench, str, Any, Any]:
    """What a stage that trains the language model starts from: the train split (any other is a
    one-line error), the device, and the processor and network of ``model`` (``tiny``: built
    from the split), the tower frozen but for its merger when ``settings.freeze_vision``; the
    settings (and a stage's ``more`` of its own) are recorded in OUT."""
    bench = train_split(bench_path)
    record(out, kind, model, settings, more)
    device = pick_device(settings.device)
    processor, network = load(str(initial_model(model, bench, out, settings.seed)), device, pick_dtype("auto", device))
    if settings.freeze_vision:
        freeze_vision_tower(network)
    return bench, device, processor, network


def fine_tune(
    network: Any,
    processor: Any,
    rows: Any,
    settings: TrainSettings,
    out: Path,
    device: str,
    found: list[TrainerCallback],
) -> Path:
    """TRL's SFTTrainer on conversational prompt-completion ``rows`` (the loss on the
    completion only), resumed from OUT's last checkpoint; returns OUT, a model folder."""
    # max_length=None: a cut would drop image tokens and break the image-token count. Batches
    # stay random: grouped by length they hold one task each, and the model learnt none well.
    config = SFTConfig(**trainer_arguments(settings, out, device), max_length=None)
    trainer = SFTTrainer(model=network, args=config, train_dataset=rows, processing_class=processor, callbacks=found)
    return train_and_save(trainer, processor, out)


def record(out: Path, kind: str, model: str, settings: TrainSettings, more: dict[str, Any] | None = None) -> None:
    """OUT/train_settings.json: what the stage was asked to do."""
    out.mkdir(parents=True, exist_ok=True)
    written = {"kind": kind, "model": model, **asdict(settings), **(more or {})}
    (out / "train_settings.json").write_text(json.dumps(written, indent=2))


def callbacks(out: Path, processor: Any, settings: TrainSettings, val: Path | None) -> list[TrainerCallback]:
    """The per-step log, and the val accuracy check when a val split is given."""
    found: list[TrainerCallback] = [LogLines(out / "log.jsonl")]
    if val is not None:  # before the log lines, so that its figures join the step's line
        found.insert(0, ValAccuracy(load_bench(val), settings.val_size, settings.val_every, processor, out))
    return found


def train_and_save(trainer: Any, processor: Any, out: Path) -> Path:
    """Train, resuming from OUT's last checkpoint when there is one, then save the model and
    its processor to OUT (a folder ``hf:OUT`` loads) and draw its log to OUT/curves.png."""
    for callback in trainer.callback_handler.callbacks:
        if isinstance(callback, StepMetrics):
            callback.trainer = trainer
    last = get_last_checkpoint(str(out)) if any(out.glob("checkpoint-*")) else None
    if last is not None:
        load_weights(trainer.model, Path(last))
    trainer.train(resume_from_checkpoint=last)
    trainer.save_model(str(out))
    processor.save_pretrained(str(out))
    draw_log(out)
    return out


def load_weights(model: Any, checkpoint: Path) -> None:
    """The checkpoint's weights into ``model``, read as ``from_pretrained`` reads them. The
    trainer's own resume loads the saved tensors by name, without the key renaming transformers
    5 applies to some models (Qwen2-VL saves ``visual.*``, holds ``model.visual.*``): it skipped
    nearly every weight with a warning and trained on from the initial ones. Loaded here first,
    the weights it skips are the right ones already."""
    saved = type(model).from_pretrained(str(checkpoint), dtype=model.dtype)
    model.load_state_dict(saved.state_dict(), strict=True)


class LogLines(TrainerCallback):
    """Every log (loss, learning rate, accuracy on val…) as one JSON line in OUT/log.jsonl,
    appended, so a resumed run keeps the history."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        with self.path.open("a") as f:
            f.write(json.dumps({"step": state.global_step, **(logs or {})}) + "\n")


class StepMetrics(TrainerCallback):
    """Figures measured on the model as it trains, every ``every`` steps and at the end (once). A
    step's figures join that step's log line (with its loss): logged on their own from a step's
    end, they took the place of the loss in the trainer's log."""

    def __init__(self, every: int) -> None:
        self.every = every
        self.waiting: dict[str, float] = {}
        self.trainer: Any = None
        self.measured_at = -1  # the step last measured

    def measure(self, step: int, model: Any) -> dict[str, float]:
        raise NotImplementedError

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.every and state.global_step % self.every == 0:
            self.waiting = self.measure(state.global_step, kwargs["model"])
            self.measured_at = state.global_step
            control.should_log = True

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        if logs is not None and self.waiting:
            logs.update(self.waiting)
            self.waiting = {}

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.measured_at == state.global_step:
            return  # the last step was measured, and its figures logged with it
        figures = self.measure(state.global_step, kwargs["model"])
        if self.trainer is not None:
            self.trainer.log(figures)


class ValAccuracy(StepMetrics):
    """Accuracy on the first samples of a val split, measured by the evaluation itself on the
    model as it trains."""

    def __init__(self, val: Bench, size: int, every: int, processor: Any, out: Path) -> None:
        super().__init__(every)
        self.val, self.size, self.processor, self.out = val, size, processor, out

    def measure(self, step: int, model: Any) -> dict[str, float]:
        accuracy = val_accuracy(self.val, self.size, self.processor, model, self.out / "val" / f"step-{step}")
        return {"val_accuracy": accuracy} if accuracy is not None else {}


def val_accuracy(val: Bench, size: int, processor: Any, model: Any, out: Path) -> float | None:
    """The evaluation's accuracy of ``model`` (in memory, as it is) on ``size`` val samples."""
    was_training = model.training
    model.eval()
    side = processor.tokenizer.padding_side
    try:
        backend = HFModel(str(out), loaded=(processor, model), max_tokens=96, batch_size=16)
        config = RunConfig(backend.name, val.path, ["clean"], limit=size, concurrency=16)
        metrics = asyncio.run(run(backend, val, out, config, show_progress=False))
    finally:
        processor.tokenizer.padding_side = side
        model.train(was_training)
    return metrics["overall"]["accuracy"]
