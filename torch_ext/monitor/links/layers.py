"""The layers a link is made of: the weighted layers (Linear, Conv, Hugging Face's Conv1D)
that feed and read an activation, the norm layers that may stand between, and where their
features lie."""

from __future__ import annotations

import torch

from ..layer_kinds import (  # re-exported
    NORM_LAYERS,
    WEIGHTED_LAYERS,
    features_last,
    hf_conv1d,
    is_weighted,
)

__all__ = [
    "NORM_LAYERS",
    "WEIGHTED_LAYERS",
    "feature_dim",
    "features_last",
    "in_features",
    "is_weighted",
    "out_features",
    "weight_out_dim",
    "weight_out_in",
]


def out_features(module: torch.nn.Module) -> int:
    if isinstance(module, torch.nn.Linear):
        return module.out_features
    return module.nf if hf_conv1d(module) else module.out_channels


def in_features(module: torch.nn.Module) -> int:
    if isinstance(module, torch.nn.Linear):
        return module.in_features
    return module.nx if hf_conv1d(module) else module.in_channels


def feature_dim(module: torch.nn.Module, ndim: int) -> int:
    """The dim of a weighted layer's `ndim`-D input or output that holds its features: the
    last for Linear and Conv1D; the channels for a convolution (dim 0 for an unbatched
    input)."""
    if isinstance(module, torch.nn.Linear) or hf_conv1d(module):
        return ndim - 1
    return 0 if ndim == len(module.kernel_size) + 1 else 1


def weight_out_dim(module: torch.nn.Module) -> int:
    """The dim of a weighted layer's weight that indexes its output features (Conv1D stores
    its weight transposed, ``[in, out]``)."""
    return 1 if hf_conv1d(module) else 0


def weight_out_in(module: torch.nn.Module) -> torch.Tensor:
    """The weight as ``[out, in, *kernel]``: a view, so writing into it writes the weight."""
    return module.weight.t() if hf_conv1d(module) else module.weight
