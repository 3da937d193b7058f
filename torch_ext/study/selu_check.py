"""The self-normalising check: in a deep SELU MLP with LeCun-normal init the activations
of every layer keep mean ~0 and variance ~1 on the data (Klambauer et al. 2017); ReLU and
ELU networks of the same shape and init drift."""

from __future__ import annotations

import math

import torch

from ..activations import ACTIVATIONS as SUPPORTED

# The activations compared, by their name in torch_ext.activations.ACTIVATIONS.
ACTIVATIONS = ("SELU", "ReLU", "ELU")


@torch.no_grad()
def layer_moments(
    x: torch.Tensor, activation: str, width: int = 128, depth: int = 16, seed: int = 0
) -> list[dict[str, float]]:
    """Mean and variance of each hidden layer's activations over all samples and units."""
    torch.manual_seed(seed)
    h, moments = x, []
    act = SUPPORTED[activation].make(width)
    for _ in range(depth):
        linear = torch.nn.Linear(h.shape[1], width)
        torch.nn.init.normal_(linear.weight, std=1 / math.sqrt(h.shape[1]))
        torch.nn.init.zeros_(linear.bias)
        h = act(linear(h))
        moments.append({"mean": h.mean().item(), "variance": h.var().item()})
    return moments
