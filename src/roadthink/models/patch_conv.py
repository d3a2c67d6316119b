"""Patch embeddings as matrix products: a VLM's vision tower cuts images into patches with a
3-D convolution whose kernel is its stride (Qwen2-VL and Qwen2.5-VL: 2×14×14), run on inputs
one kernel in size. On CPU, oneDNN takes a slow path for that convolution: ~9× slower than
the one matrix product it amounts to (forward, 3840 patches, 1 thread), a third of the tiny
tower's forward and backward on 32 images (0.35 s against 0.23) and a share of every prefill.
``load`` swaps such layers for ``PatchConv3d`` (same weights, same numbers)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F


class PatchConv3d(torch.nn.Conv3d):
    """A Conv3d that computes inputs one kernel in size as one matrix product."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape[2:]) != self.kernel_size or self.groups != 1:
            return super().forward(x)
        out = F.linear(x.reshape(len(x), -1), self.weight.reshape(self.out_channels, -1), self.bias)
        return out.view(len(x), self.out_channels, 1, 1, 1)


def patch_embeddings_as_matmuls(model: Any) -> int:
    """Make every plain Conv3d of ``model`` whose kernel is its stride, unpadded, a
    ``PatchConv3d``; returns how many were changed."""
    changed = 0
    for module in model.modules():
        if type(module) is torch.nn.Conv3d and module.kernel_size == module.stride and module.padding == (0, 0, 0):
            module.__class__ = PatchConv3d
            changed += 1
    return changed
