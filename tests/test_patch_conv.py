"""Patch embeddings computed as matrix products give the convolution's numbers and gradients."""

from __future__ import annotations

import copy

import pytest
import torch
from transformers import AutoModelForImageTextToText

from roadthink.models.hf_backend import load
from roadthink.models.patch_conv import PatchConv3d, patch_embeddings_as_matmuls


@pytest.mark.parametrize("bias", [False, True])
def test_patch_conv_matches_the_convolution_forward_and_backward(bias: bool) -> None:
    torch.manual_seed(0)
    conv = torch.nn.Conv3d(3, 16, kernel_size=(2, 14, 14), stride=(2, 14, 14), bias=bias)
    fast = copy.deepcopy(conv)
    assert patch_embeddings_as_matmuls(torch.nn.Sequential(fast)) == 1 and isinstance(fast, PatchConv3d)
    patches = torch.randn(40, 3, 2, 14, 14)
    expected, got = conv(patches), fast(patches)
    assert got.shape == expected.shape and torch.allclose(got, expected, atol=1e-5)
    expected.square().sum().backward()
    got.square().sum().backward()
    assert torch.allclose(fast.weight.grad, conv.weight.grad, rtol=1e-4, atol=1e-4)
    larger = torch.randn(2, 3, 4, 28, 28)  # not one kernel in size: the convolution as it was
    assert torch.allclose(fast(larger), conv(larger), atol=1e-5)


def test_only_convolutions_whose_kernel_is_their_stride_change() -> None:
    model = torch.nn.Sequential(
        torch.nn.Conv3d(3, 4, kernel_size=3, stride=1), torch.nn.Conv3d(3, 4, kernel_size=2, stride=2, padding=1)
    )
    assert patch_embeddings_as_matmuls(model) == 0
    assert all(type(m) is torch.nn.Conv3d for m in model)


def test_loaded_models_embed_patches_as_matmuls_and_save_the_same_weights(tiny_model, tmp_path) -> None:
    _, model = load(str(tiny_model), "cpu", torch.float32)
    assert isinstance(model.model.visual.patch_embed.proj, PatchConv3d)
    copy.deepcopy(model)  # reference models for GRPO's KL are copies
    model.save_pretrained(tmp_path / "again")
    saved = AutoModelForImageTextToText.from_pretrained(tmp_path / "again").state_dict()
    assert saved.keys() == model.state_dict().keys()
    assert all(torch.equal(saved[k], v) for k, v in model.state_dict().items())
