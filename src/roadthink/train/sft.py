"""Supervised fine-tuning with TRL's SFTTrainer on a benchmark train split: the model learns to
answer as the reference does, reasoning in ``<think>`` and answering in ``<answer>``.

The same command trains the tiny CPU recipe from scratch (``--model tiny``: a Qwen2-VL built
here, its tokenizer learnt from the split's text) or a real model on a GPU (``--model
hf:Qwen/Qwen2.5-VL-3B-Instruct --device cuda``). Checkpoints go to the output folder every
``save_steps``; running the command again resumes from the last one. The finished folder is a
model folder: ``roadthink eval --model hf:OUT``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from datasets import concatenate_datasets

from roadthink.eval.bench import Bench
from roadthink.tasks.sample import Sample
from roadthink.train.captions import caption_rows, looking
from roadthink.train.data import sft_dataset, target
from roadthink.train.run import TrainSettings, callbacks, fine_tune, starting_point


def train_sft(
    bench_path: Path,
    out: Path,
    model: str = "tiny",
    settings: TrainSettings | None = None,
    val: Path | None = None,
    captions: Sequence[Path] = (),
) -> Path:
    """Fine-tune ``model`` on the train split at ``bench_path``, with captions of the scene
    folders ``captions`` as ``settings.caption_share`` of the rows when it is above 0, and the
    samples of ``settings.focus`` as ``settings.focus_share`` of the split's rows when given; resumes
    from OUT's last checkpoint; returns OUT, a model folder."""
    settings = settings or TrainSettings()
    bench, device, processor, network = starting_point("sft", bench_path, out, model, settings)
    reply = taught(bench, settings)
    focus = (settings.focus, settings.focus_share) if settings.focus else None
    dataset = sft_dataset(
        bench, processor, settings.limit, out / "images", settings.families, reply, settings.tasks, focus
    )
    if settings.caption_share:
        found = caption_rows(captions, processor, out / "images", settings.caption_share, len(dataset))
        dataset = concatenate_datasets([dataset.select_columns(["prompt", "completion", "images"]), found])
    return fine_tune(network, processor, dataset, settings, out, device, callbacks(out, processor, settings, val))


def taught(bench: Bench, settings: TrainSettings) -> Callable[[Sample], str]:
    """The reply SFT teaches for each sample: opened by what the image shows for the tasks of
    ``settings.look_first`` (``captions.looking``), the reference reasoning and answer for the rest."""
    return looking(bench, settings.look_first) if settings.look_first else target
