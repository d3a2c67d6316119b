"""Supervised fine-tuning with TRL's SFTTrainer on a benchmark train split: the model learns to
answer as the reference does, reasoning in ``<think>`` and answering in ``<answer>``.

The same command trains the tiny CPU recipe from scratch (``--model tiny``: a Qwen2-VL built
here, its tokenizer learnt from the split's text) or a real model on a GPU (``--model
hf:Qwen/Qwen2.5-VL-3B-Instruct --device cuda``). Checkpoints go to the output folder every
``save_steps``; running the command again resumes from the last one. The finished folder is a
model folder: ``roadthink eval --model hf:OUT``.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from transformers import TrainerCallback
from transformers.trainer_utils import get_last_checkpoint
from trl import SFTConfig, SFTTrainer

from roadthink.eval.bench import Bench, load_bench
from roadthink.eval.runner import RunConfig, run
from roadthink.models.hf_backend import HFModel, load, pick_device, pick_dtype
from roadthink.models.tiny import TinyConfig, bench_corpus, build_tiny_qwen2vl
from roadthink.tasks.build import load_rows
from roadthink.train.data import sft_dataset, train_split

RECIPE = TinyConfig(  # the CPU recipe: about 3 M parameters, 30 samples/s on 2 cores
    vocab_size=2048,
    hidden_size=256,
    intermediate_size=512,
    layers=4,
    heads=4,
    kv_heads=2,
    vision_depth=2,
    vision_width=128,
    vision_heads=4,
    min_pixels=112 * 112,
    max_pixels=224 * 224,
)


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
    val_every: int = 0  # steps between accuracy checks on the val split (0: only at the end)
    val_size: int = 64


def initial_model(spec: str, bench: Bench, out: Path, seed: int) -> Path:
    """The folder training starts from: ``tiny`` builds the CPU recipe (its tokenizer learnt
    from the split's text) under OUT/init once; ``hf:PATH`` or a plain folder is used as is."""
    if spec == "tiny":
        init = out / "init"
        if not (init / "config.json").is_file():
            build_tiny_qwen2vl(init, bench_corpus(load_rows(bench.path)), replace(RECIPE, seed=seed))
        return init
    return Path(spec.removeprefix("hf:"))


class LogLines(TrainerCallback):
    """Every log (loss, learning rate, accuracy on val…) as one JSON line in OUT/log.jsonl,
    appended, so a resumed run keeps the history."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        with self.path.open("a") as f:
            f.write(json.dumps({"step": state.global_step, **(logs or {})}) + "\n")


class ValAccuracy(TrainerCallback):
    """Accuracy on the first samples of a val split, measured by the evaluation itself on the
    model as it trains, every ``every`` steps (and at the end)."""

    def __init__(self, val: Bench, size: int, every: int, processor: Any, out: Path) -> None:
        self.val, self.size, self.every, self.processor, self.out = val, size, every, processor, out
        self.trainer: Any = None

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.every and state.global_step % self.every == 0:
            self.measure(state.global_step, kwargs["model"])

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.measure(state.global_step, kwargs["model"])

    def measure(self, step: int, model: Any) -> None:
        accuracy = val_accuracy(self.val, self.size, self.processor, model, self.out / "val" / f"step-{step}")
        if self.trainer is not None:
            self.trainer.log({"val_accuracy": accuracy})


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


def train_sft(
    bench_path: Path, out: Path, model: str = "tiny", settings: TrainSettings = TrainSettings(), val: Path | None = None
) -> Path:
    """Fine-tune ``model`` on the train split at ``bench_path``; resumes from OUT's last
    checkpoint; returns OUT, a model folder."""
    bench = train_split(bench_path)
    out.mkdir(parents=True, exist_ok=True)
    (out / "train_settings.json").write_text(json.dumps({"model": model, **asdict(settings)}, indent=2))
    device = pick_device(settings.device)
    processor, network = load(str(initial_model(model, bench, out, settings.seed)), device, pick_dtype("auto", device))
    config = SFTConfig(
        output_dir=str(out),
        max_steps=settings.steps,
        per_device_train_batch_size=settings.batch_size,
        learning_rate=settings.learning_rate,
        warmup_steps=max(1, round(settings.warmup_ratio * settings.steps)),
        lr_scheduler_type="cosine",
        logging_steps=settings.logging_steps,
        save_steps=settings.save_steps,
        save_total_limit=2,
        seed=settings.seed,
        report_to=[],
        use_cpu=device == "cpu",
        bf16=device.startswith("cuda"),
        dataloader_num_workers=0,
        max_length=None,  # a cut would drop image tokens and break the image-token count
    )
    callbacks: list[TrainerCallback] = [LogLines(out / "log.jsonl")]
    checker = None
    if val is not None:
        checker = ValAccuracy(load_bench(val), settings.val_size, settings.val_every, processor, out)
        callbacks.append(checker)
    trainer = SFTTrainer(
        model=network,
        args=config,
        train_dataset=sft_dataset(bench, settings.limit),
        processing_class=processor,
        callbacks=callbacks,
    )
    if checker is not None:
        checker.trainer = trainer
    last = get_last_checkpoint(str(out)) if any(out.glob("checkpoint-*")) else None
    trainer.train(resume_from_checkpoint=last)
    trainer.save_model(str(out))
    processor.save_pretrained(str(out))
    return out
