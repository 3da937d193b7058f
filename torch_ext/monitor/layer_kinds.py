"""Kinds of layers the monitor reasons about: the weighted layers (Linear, Conv) that feed and
read an activation, the norm layers that may stand between, and which layers hold their
output features in the last dim (so an activation they feed has its units there)."""

from __future__ import annotations

import sys

import torch

__all__ = [
    "NORM_LAYERS",
    "WEIGHTED_LAYERS",
    "features_last",
    "hf_conv1d",
    "hf_conv1d_class",
    "is_weighted",
]

# Layers whose units feed and read activations (what revive() re-initialises).
WEIGHTED_LAYERS = (torch.nn.Linear, torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d)
# Normalisation layers that may stand between a producer and its activation.
NORM_LAYERS = (torch.nn.modules.batchnorm._BatchNorm, torch.nn.LayerNorm, torch.nn.GroupNorm)


def features_last(module: torch.nn.Module | None) -> bool:
    """Whether `module`'s output holds its features in its last dim: a Linear, or a Linear
    under another name (Hugging Face's ``Conv1D`` of GPT-2: a 2-D weight used as
    ``x @ W``). An activation it feeds has its units there, not along dim 1."""
    if isinstance(module, torch.nn.Linear) or hf_conv1d(module):  # subclasses too
        return True
    weight = getattr(module, "weight", None)
    return (
        type(module).__name__ == "Conv1D" and isinstance(weight, torch.Tensor) and weight.dim() == 2
    )


def hf_conv1d_class() -> type | None:
    """Hugging Face's ``Conv1D`` (GPT-2's ``x @ W + b``, its weight stored ``[in, out]``)
    where transformers is loaded; never imported here."""
    kind = getattr(sys.modules.get("transformers.pytorch_utils"), "Conv1D", None)
    return kind if isinstance(kind, type) else None


def hf_conv1d(module: torch.nn.Module | None) -> bool:
    """Whether `module` is Hugging Face's ``Conv1D``. A look-alike of another library is only
    :func:`features_last`: revive writes no weight whose use it cannot vouch for."""
    kind = hf_conv1d_class()
    return kind is not None and isinstance(module, kind)


def is_weighted(module: torch.nn.Module | None) -> bool:
    """A layer whose units revive re-initialises: Linear, Conv1d/2d/3d, Hugging Face's Conv1D."""
    return isinstance(module, WEIGHTED_LAYERS) or hf_conv1d(module)
