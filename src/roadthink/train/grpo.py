"""GRPO with verifiable rewards (R1-V, AlphaMaze, AutoVLA style), with TRL's GRPOTrainer: for
each prompt the model samples a group of completions, the rewards of ``train/rewards.py``
score them, and the policy moves toward the better ones of each group. Starts from a model
folder, typically what ``roadthink train sft`` wrote; resumable like it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from trl import GRPOConfig, GRPOTrainer

from roadthink.errors import RoadthinkError
from roadthink.train.data import grpo_dataset
from roadthink.train.rewards import select_rewards
from roadthink.train.run import TrainSettings, callbacks, starting_point, train_and_save, trainer_arguments

DEFAULT_REWARDS = ("accuracy", "format", "waypoint", "collision_free", "meta_action")


@dataclass(frozen=True)
class GRPOSettings:
    rewards: tuple[str, ...] = DEFAULT_REWARDS
    weights: tuple[float, ...] | None = None  # one per reward; None: all 1
    generations: int = 8  # completions per prompt: the group whose rewards are compared
    max_completion: int = 96  # tokens
    temperature: float = 1.0
    beta: float = 0.0  # KL penalty to the initial model (0: none, as DAPO and Dr. GRPO)


def check_model_folder(path: Path) -> None:
    """The starting point must be a model: a one-line error otherwise."""
    if not (path / "config.json").is_file():
        raise RoadthinkError(f"{path} is not a model folder (no config.json): pass what `roadthink train sft` wrote")


def train_grpo(
    init: Path,
    bench_path: Path,
    out: Path,
    settings: TrainSettings | None = None,
    grpo: GRPOSettings | None = None,
    val: Path | None = None,
) -> Path:
    """GRPO from the model at ``init`` on the train split at ``bench_path``; resumes from
    OUT's last checkpoint; returns OUT, a model folder."""
    trainer = grpo_trainer(init, bench_path, out, settings, grpo, val)
    return train_and_save(trainer, trainer.processing_class, out)


def grpo_trainer(
    init: Path,
    bench_path: Path,
    out: Path,
    settings: TrainSettings | None = None,
    grpo: GRPOSettings | None = None,
    val: Path | None = None,
) -> GRPOTrainer:
    """TRL's GRPOTrainer as ``train_grpo`` runs it (the settings recorded in OUT), not yet trained."""
    settings, grpo = settings or TrainSettings(), grpo or GRPOSettings()
    check_model_folder(init)
    rewards = select_rewards(grpo.rewards)
    if grpo.weights is not None and len(grpo.weights) != len(rewards):
        raise RoadthinkError(f"{len(grpo.weights)} reward weights for {len(rewards)} rewards: give one per reward")
    if settings.batch_size % grpo.generations:
        raise RoadthinkError(
            f"batch size {settings.batch_size} must be a multiple of the {grpo.generations} generations per prompt"
        )
    bench, device, processor, network = starting_point("grpo", bench_path, out, str(init), settings, asdict(grpo))
    config = GRPOConfig(
        **trainer_arguments(settings, out, device),
        num_generations=grpo.generations,
        max_completion_length=grpo.max_completion,
        temperature=grpo.temperature,
        beta=grpo.beta,
        reward_weights=list(grpo.weights) if grpo.weights is not None else None,
    )
    return GRPOTrainer(
        model=network,
        args=config,
        train_dataset=grpo_dataset(bench, processor, settings.limit, out / "images", settings.families, settings.tasks),
        processing_class=processor,
        reward_funcs=rewards,
        callbacks=callbacks(out, processor, settings, val),
    )
