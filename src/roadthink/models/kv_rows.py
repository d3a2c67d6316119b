"""The rows a transformers model decodes together in continuous batching (``hf_backend``): one
KV cache for all of them, left-padded to one length, that rows join and leave between steps.

Imported once torch is (``hf_backend._torch`` sets OpenMP's wait policy first)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from transformers.cache_utils import DynamicLayer


@dataclass
class Rows:
    """The rows being decoded: one per request, with the KV cache of everything each has read
    so far (``mask`` says which of its columns are real), the position id of the token each
    reads next, and that token."""

    key: str  # the generation settings the rows share
    requests: list[Any]
    cache: Any
    mask: torch.Tensor  # (rows, columns): 1 where the cache holds a real token
    positions: torch.Tensor  # (rows,)
    tokens: torch.Tensor | None  # (rows,); None until the first are picked
    generator: torch.Generator | None  # the sampling stream (None when greedy)
    seen: torch.Tensor | None  # (rows, vocabulary): tokens read, for a repetition penalty (None without one)


class RoomyLayer(DynamicLayer):
    """transformers' DynamicLayer with room to grow: a step writes its token into buffers with
    spare columns instead of copying the whole cache (``torch.cat``), which took a fifth of each
    decode step on CPU. ``keys`` and ``values`` are views of the buffers."""

    buffers: tuple[torch.Tensor, torch.Tensor] | None = None
    spare = 64  # columns allocated beyond the need, so buffers grow once per this many steps

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        used, new = self.keys.shape[-2], key_states.shape[-2]
        if self.buffers is None or self.buffers[0].shape[-2] < used + new:
            shape = (*self.keys.shape[:2], used + new + self.spare, self.keys.shape[-1])
            self.buffers = (self.keys.new_empty(shape), self.values.new_empty(shape))
            self.buffers[0][:, :, :used] = self.keys
            self.buffers[1][:, :, :used] = self.values
        keys, values = self.buffers
        keys[:, :, used : used + new] = key_states
        values[:, :, used : used + new] = value_states
        self.keys, self.values = keys[:, :, : used + new], values[:, :, : used + new]
        return self.keys, self.values

    def replace(self, keys: torch.Tensor, values: torch.Tensor) -> None:
        """New keys and values (rows joined or left): the buffers start again from them."""
        self.keys, self.values, self.buffers = keys, values, None


def roomy(cache: Any) -> bool:
    """Make ``cache``'s DynamicLayers RoomyLayers; False (and nothing changed) when it holds
    layers of another kind (sliding windows…), whose rows cannot be joined or cut here."""
    layers = list(getattr(cache, "layers", None) or [])
    if not layers or any(type(layer) not in (DynamicLayer, RoomyLayer) for layer in layers):
        return False
    for layer in layers:
        layer.__class__ = RoomyLayer
    return True


def _layers(cache: Any) -> list[RoomyLayer]:
    return list(cache.layers)  # made RoomyLayers by roomy() when the rows were formed


def beside(running: Rows, joining: Rows) -> Rows:
    """The rows of ``joining`` after those of ``running``, in one cache: the shorter side is
    left-padded (masked out), so every row keeps its tokens and positions."""
    width = max(running.mask.shape[1], joining.mask.shape[1])

    def padded(value: torch.Tensor, dim: int) -> torch.Tensor:
        missing = width - value.shape[dim]
        if missing == 0:
            return value
        shape = list(value.shape)
        shape[dim] = missing
        return torch.cat([value.new_zeros(shape), value], dim=dim)

    for mine, theirs in zip(_layers(running.cache), _layers(joining.cache), strict=True):
        mine.replace(
            torch.cat([padded(mine.keys, 2), padded(theirs.keys, 2)]),
            torch.cat([padded(mine.values, 2), padded(theirs.values, 2)]),
        )
    running.requests = running.requests + joining.requests
    running.mask = torch.cat([padded(running.mask, 1), padded(joining.mask, 1)])
    running.positions = torch.cat([running.positions, joining.positions])
    if running.seen is not None and joining.seen is not None:
        running.seen = torch.cat([running.seen, joining.seen])
    return running


def select(rows: Rows, keep: list[int]) -> Rows:
    """Only the rows ``keep``; columns no kept row uses (padding) are cut from the left."""
    index = torch.tensor(keep, device=rows.mask.device)
    mask = rows.mask[index]
    used = mask.any(0).nonzero()
    cut = int(used[0]) if len(used) else 0
    for layer in _layers(rows.cache):
        layer.replace(layer.keys[index, :, cut:], layer.values[index, :, cut:])
    rows.requests = [rows.requests[i] for i in keep]
    rows.mask = mask[:, cut:]
    rows.positions = rows.positions[index]
    rows.tokens = None if rows.tokens is None else rows.tokens[index]
    rows.seen = None if rows.seen is None else rows.seen[index]
    return rows
