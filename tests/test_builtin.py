"""The shipped ``builtin`` model: it loads offline from the package, answers a benchmark sample
on CPU in under a second, in the form the question asks for, and is named as itself."""

from __future__ import annotations

import asyncio
import time

import pytest

from roadthink.errors import RoadthinkError
from roadthink.eval.bench import load_bench
from roadthink.eval.parsing import parse_answer
from roadthink.eval.prompt import messages_for
from roadthink.models import builtin
from roadthink.models.base import resolve_model
from roadthink.tasks.sample import AnswerType


@pytest.fixture(scope="module")
def model():
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_HUB_OFFLINE", "1")  # nothing may come from the Hub
        yield resolve_model("builtin", device="cpu")


def test_the_shipped_model_answers_a_bench_sample_on_cpu_in_under_a_second(model, splits) -> None:
    bench = load_bench(splits["test"][0])
    sample = next(s for s in bench.samples if s.answer_type is AnswerType.CHOICE and len(s.images) == 1)
    messages = messages_for(sample, [(bench.path / rel).resolve().as_uri() for rel in sample.images])
    asyncio.run(model.generate(messages))  # the first call warms up the kernels
    start = time.perf_counter()
    reply = asyncio.run(model.generate(messages))
    elapsed = time.perf_counter() - start
    assert elapsed < 1.0, f"{elapsed:.2f} s"
    assert "<answer>" in reply.text and "</answer>" in reply.text
    assert parse_answer(reply.text, sample.answer_type, sample.choices).value is not None, reply.text


def test_the_shipped_model_is_named_builtin_and_carries_its_card(model) -> None:
    assert model.name == "builtin"
    card = (builtin.FOLDER / "README.md").read_text()
    assert "sft+grpo" in card and "blind" in card and "oracle" in card
    assert (builtin.FOLDER / "model.safetensors").stat().st_size <= 20 * 2**20


def test_builtin_takes_no_argument_and_says_when_its_files_are_missing(tmp_path, monkeypatch) -> None:
    with pytest.raises(RoadthinkError, match="builtin takes no argument"):
        resolve_model("builtin:other")
    monkeypatch.setattr(builtin, "FOLDER", tmp_path)
    with pytest.raises(RoadthinkError, match="missing from this install"):
        resolve_model("builtin")
