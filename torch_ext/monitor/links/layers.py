"""The layers a link is made of: the weighted layers (Linear, Conv) that feed and read an
activation, the norm layers that may stand between, and where their features lie."""

from __future__ import annotations

import torch

from ..layer_kinds import NORM_LAYERS, WEIGHTED_LAYERS, features_last  # re-exported

__all__ = [
    "NORM_LAYERS",
    "WEIGHTED_LAYERS",
    "feature_dim",
    "features_last",
    "in_features",
    "out_features",
]


def out_features(module: torch.nn.Module) -> int:
    return module.out_features if isinstance(module, torch.nn.Linear) else module.out_channels


def in_features(module: torch.nn.Module) -> int:
    return module.in_features if isinstance(module, torch.nn.Linear) else module.in_channels


def feature_dim(module: torch.nn.Module, ndim: int) -> int:
    """The dim of a weighted layer's `ndim`-D input or output that holds its features: the
    last for Linear; the channels for a convolution (dim 0 for an unbatched input)."""
    if isinstance(module, torch.nn.Linear):
        return ndim - 1
    return 0 if ndim == len(module.kernel_size) + 1 else 1
