"""Supervised fine-tuning with TRL's SFTTrainer on a benchmark train split: the model learns to
answer as the reference does, reasoning in ``<think>`` and answering in ``<answer>``.

The same command trains the tiny CPU recipe from scratch (``--model tiny``: a Qwen2-VL built
here, its tokenizer learnt from the split's text) or a real model on a GPU (``--model
hf:Qwen/Qwen2.5-VL-3B-Instruct --device cuda``). Checkpoints go to the output folder every
``save_steps``; running the command again resumes from the last one. The finished folder is a
model folder: ``roadthink eval --model hf:OUT``.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from trl import SFTConfig, SFTTrainer

from roadthink.eval.bench import Bench
from roadthink.models.hf_backend import load, pick_device, pick_dtype
from roadthink.models.tiny import TinyConfig, bench_corpus, build_tiny_qwen2vl
from roadthink.tasks.build import load_rows
from roadthink.train.data import sft_dataset, train_split
from roadthink.train.run import TrainSettings, callbacks, freeze_vision_tower, record, train_and_save, trainer_arguments

RECIPE = TinyConfig(  # the CPU recipe: 4.2 M parameters, 6 samples/s in SFT on 2 cores
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


def initial_model(spec: str, bench: Bench, out: Path, seed: int) -> Path:
    """The folder training starts from: ``tiny`` builds the CPU recipe (its tokenizer learnt
    from the split's text) under OUT/init once; ``hf:PATH`` or a plain folder is used as is."""
    if spec == "tiny":
        init = out / "init"
        if not (init / "config.json").is_file():
            build_tiny_qwen2vl(init, bench_corpus(load_rows(bench.path)), replace(RECIPE, seed=seed))
        return init
    return Path(spec.removeprefix("hf:"))


def train_sft(
    bench_path: Path, out: Path, model: str = "tiny", settings: TrainSettings | None = None, val: Path | None = None
) -> Path:
    """Fine-tune ``model`` on the train split at ``bench_path``; resumes from OUT's last
    checkpoint; returns OUT, a model folder."""
    settings = settings or TrainSettings()
    bench = train_split(bench_path)
    record(out, "sft", model, settings)
    device = pick_device(settings.device)
    processor, network = load(str(initial_model(model, bench, out, settings.seed)), device, pick_dtype("auto", device))
    if settings.freeze_vision:
        freeze_vision_tower(network)
    # max_length=None: a cut would drop image tokens and break the image-token count. Batches
    # stay random: grouped by length they hold one task each, and the model learnt none well.
    config = SFTConfig(**trainer_arguments(settings, out, device), max_length=None)
    trainer = SFTTrainer(
        model=network,
        args=config,
        train_dataset=sft_dataset(bench, processor, settings.limit, out / "images", settings.families),
        processing_class=processor,
        callbacks=callbacks(out, processor, settings, val),
    )
    return train_and_save(trainer, processor, out)
