"""GRPO with verifiable rewards (R1-V, AlphaMaze, AutoVLA style), with TRL's GRPOTrainer: for
each prompt the model samples a group of completions, the rewards of ``train/rewards.py``
score them, and the policy moves toward the better ones of each group. Starts from a model
folder, typically what ``roadthink train sft`` wrote; resumable like it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from trl import GRPOConfig, GRPOTrainer

from roadthink.errors import RoadthinkError
from roadthink.train.data import grpo_dataset
from roadthink.train.rewards import select_rewards
from roadthink.train.run import TrainSettings, callbacks, starting_point, train_and_save, trainer_arguments
from roadthink.train.sft import taught

DEFAULT_REWARDS = ("accuracy", "format", "waypoint", "collision_free", "meta_action")


@dataclass(frozen=True)
class GRPOSettings:
    rewards: tuple[str, ...] = DEFAULT_REWARDS
    weights: tuple[float, ...] | None = None  # one per reward; None: all 1
    generations: int = 8  # completions per prompt: the group whose rewards are compared
    max_completion: int = 96  # tokens
    temperature: float = 1.0
    beta: float = 0.0  # KL penalty to the initial model (0: none, as DAPO and Dr. GRPO)
    # completions of each group that are the reply SFT teaches, not samples (off-policy guidance, as LUFFY): 0: none
    guidance: int = 0


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
    if not 0 <= grpo.guidance < grpo.generations:
        raise RoadthinkError(
            f"guidance {grpo.guidance} must leave at least one of the {grpo.generations} generations sampled"
        )
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
    reference = taught(bench, settings) if grpo.guidance else None
    return GuidedGRPOTrainer(
        model=network,
        args=config,
        train_dataset=grpo_dataset(
            bench, processor, settings.limit, out / "images", settings.families, settings.tasks, reference
        ),
        processing_class=processor,
        reward_funcs=rewards,
        callbacks=callbacks(out, processor, settings, val),
        guidance=grpo.guidance,
    )


class GuidedGRPOTrainer(GRPOTrainer):
    """TRL's GRPOTrainer, where the last ``guidance`` completions of each group are the reply SFT
    teaches rather than samples (off-policy guidance, LUFFY: Yan et al., 2025). A group the model
    answers all wrong then still holds a right reply, which its advantage among the sampled ones
    pulls the policy toward; where the samples are right as well, its advantage is near 0. Its
    tokens are scored by the current policy as sampled ones are (a ratio of 1 at the step it
    joins: an advantage-weighted likelihood step on it). The rewards logged count it too, and the
    replies it replaces are still sampled (a group is generated whole). With ``guidance`` 0 it is
    the GRPOTrainer itself."""

    def __init__(self, *args: Any, guidance: int = 0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.guidance = guidance
        self.reference_tokens: dict[str, list[int]] = {}  # each reference reply's tokens, checked before any step
        if guidance:
            ends, longest = self.eos_token_ids[0], self.max_completion_length
            self.reference_tokens = tokenized(self.train_dataset["reference"], self._tokenizer, ends, longest)
        self.references: list[list[int]] = []  # the tokens of the batch being generated's references

    def _generate_and_score_completions(self, inputs: list[dict[str, Any]]) -> dict[str, Any]:
        if self.guidance:
            self.references = [self.reference_tokens[example["reference"]] for example in inputs]
        return super()._generate_and_score_completions(inputs)

    def _generate_single_turn(self, prompt_ids: Any, images: Any, fields: Any, generations: int, *more: Any) -> Any:
        completion_ids, logprobs = super()._generate_single_turn(prompt_ids, images, fields, generations, *more)
        if self.guidance and self.model.training:
            for i in guided(len(completion_ids), generations, self.guidance):
                completion_ids[i] = self.references[i]
        return completion_ids, logprobs


def tokenized(replies: list[str], tokenizer: Any, end: int, longest: int) -> dict[str, list[int]]:
    """Each reply's tokens as the model would end it (with its end-of-turn token ``end``), once;
    one longer than ``longest`` is a one-line error before any step, not at the step that draws it."""
    found = {text: [*tokenizer(text, add_special_tokens=False).input_ids, end] for text in dict.fromkeys(replies)}
    text, ids = max(found.items(), key=lambda item: len(item[1]))
    if len(ids) > longest:
        raise RoadthinkError(
            f"a reference reply of {len(ids)} tokens is longer than max_completion {longest}: raise it ({text[:60]!r}…)"
        )
    return found


def guided(completions: int, generations: int, guidance: int) -> list[int]:
    """The indices of the guided completions: the last ``guidance`` of each group of ``generations``
    (TRL's sampler puts a prompt's completions next to each other)."""
    return [i for i in range(completions) if i % generations >= generations - guidance]
