"""The one model interface, and model strings resolved to models.

Every backend answers ``await model.generate(messages, **options)`` with a Completion.
Options a backend does not use are ignored, which is how the evaluation runner can hand
every model the same call: baselines read ``sample`` (the benchmark Sample being asked)
and ``scene``; a real VLM reads only the messages. A model that reads ``scene`` says so with
``reads_scene = True``, so the runner loads scene files only for such models (and for the
replies whose scoring needs them).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from roadthink.errors import RoadthinkError
from roadthink.models.types import Completion, Message


@runtime_checkable
class Model(Protocol):
    name: str

    async def generate(self, messages: list[Message], **options: Any) -> Completion: ...


def reads_scene(model: Model) -> bool:
    """Whether ``model`` reads ``generate(..., scene=)``; models that do not say are taken not to."""
    return bool(getattr(model, "reads_scene", False))


Factory = Callable[[str, dict[str, Any]], Model]  # (argument after "name:", settings) -> model
FACTORIES: dict[str, Factory] = {}


def register(name: str, factory: Factory) -> None:
    """Make ``name`` (or ``name:<argument>``) a model string."""
    FACTORIES[name] = factory


def resolve_model(spec: str, **settings: Any) -> Model:
    """The model a string names: ``random``, ``blind``, ``oracle``, or ``kind:<argument>``
    for backends that take one. An unknown name is an error listing the known ones, raised
    before any work starts."""
    from roadthink.agent import scripted  # noqa: F401  (registers the scripted agents)
    from roadthink.models import baselines, builtin, hf_backend, openai_backend, oracle  # noqa: F401  (register them)

    name, _, argument = spec.partition(":")
    if name not in FACTORIES:
        raise RoadthinkError(f"unknown model {spec!r}; known: {', '.join(sorted(FACTORIES))}")
    return FACTORIES[name](argument, settings)
