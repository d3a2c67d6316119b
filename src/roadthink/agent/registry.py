"""Tools as typed functions: the signature and docstring are the JSON schema the model sees,
and the same signature validates what the model sends back.

A tool is ``fn(workspace, **arguments) -> ToolResult``; parameters after the workspace are
annotated (``Annotated[float, Field(description=…)]``), so one definition gives the schema,
the validation and the documentation. Whatever goes wrong in a call (an unknown tool, text
that is not JSON, a missing or mistyped argument, a tool refusing its input) is a
:class:`ToolError` whose one-line message goes back to the model as an observation: the
episode goes on.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, get_type_hints

import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError, create_model

if TYPE_CHECKING:
    from roadthink.agent.workspace import Workspace


class ToolError(ValueError):
    """A call the tool cannot carry out, with a one-line reason for the model."""


@dataclass
class ToolResult:
    """What a tool gives back: text for the model, images it should see, and structured
    data for the trace and the report (boxes drawn, verdicts listed)."""

    text: str
    images: list[np.ndarray] = field(default_factory=list)  # RGB uint8
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    arguments: type[BaseModel]
    fn: Callable[..., ToolResult]

    def schema(self) -> dict[str, Any]:
        """The OpenAI ``tools`` entry: a function with JSON-schema parameters."""
        parameters = self.arguments.model_json_schema()
        parameters.pop("title", None)
        for spec in parameters.get("properties", {}).values():
            spec.pop("title", None)
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": parameters},
        }


TOOLS: dict[str, Tool] = {}


def tool(fn: Callable[..., ToolResult]) -> Callable[..., ToolResult]:
    """Register ``fn`` under its name; its parameters after the first (the workspace) become
    the schema, its docstring's first paragraph the description."""
    hints = get_type_hints(fn, include_extras=True)
    fields: dict[str, Any] = {}
    for name, parameter in list(inspect.signature(fn).parameters.items())[1:]:
        default = ... if parameter.default is inspect.Parameter.empty else parameter.default
        fields[name] = (hints[name], default)
    arguments = create_model(f"{fn.__name__}_arguments", __config__=ConfigDict(extra="forbid"), **fields)
    description = " ".join(inspect.getdoc(fn).split("\n\n")[0].split())
    TOOLS[fn.__name__] = Tool(fn.__name__, description, arguments, fn)
    return fn


def select_tools(names: Iterable[str] | None) -> list[Tool]:
    """Tools by name (all when None); an unknown name is a ValueError listing the known ones."""
    from roadthink.agent import tools  # noqa: F401  (registers the tools)

    if names is None:
        return list(TOOLS.values())
    chosen = list(dict.fromkeys(names))
    unknown = [n for n in chosen if n not in TOOLS]
    if unknown:
        raise ValueError(f"unknown tool {unknown[0]!r}; known: {', '.join(TOOLS)}")
    return [TOOLS[n] for n in chosen]


def call_tool(workspace: Workspace, tools: list[Tool], name: str, arguments: str | dict[str, Any]) -> ToolResult:
    """Run one call the model asked for; every way it can be wrong is a one-line ToolError."""
    offered = {t.name: t for t in tools}
    if name not in offered:
        raise ToolError(f"unknown tool {name!r}; available: {', '.join(offered) or 'none'}")
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments) if arguments.strip() else {}
        except ValueError as e:
            raise ToolError(f"{name}: arguments are not JSON ({e})") from None
    if not isinstance(arguments, dict):
        raise ToolError(f"{name}: arguments must be a JSON object, got {type(arguments).__name__}")
    try:
        checked = offered[name].arguments.model_validate(arguments)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "arguments"
        raise ToolError(f"{name}: {where}: {first['msg']}") from None
    return offered[name].fn(workspace, **dict(checked))
