"""The activations the study compares, by name, each as a maker of the module for a layer
of ``units`` units (a Linear's features or a convolution's channels).

The ReLU family comes from torch_ext's own table (:data:`torch_ext.activations.ACTIVATIONS`:
its ops, as torch_ext.nn modules). GELU and SiLU, the smooth activations that replaced ReLU
in transformers and many CNNs, have no torch_ext op: the study uses torch.nn's modules,
which the monitor counts by their own derivative (a unit is dead when no sample gives
``|f'(z)| > 1e-3``: every z below about -3.81 for GELU, -8.99 for SiLU).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..activations import ACTIVATIONS as SUPPORTED

# The ReLU family as torch_ext runs it, in the order the report lists it.
RELU_FAMILY = ("ReLU", "LeakyReLU", "PReLU", "ELU", "SELU")
# The smooth activations, compared with ReLU in the report's summary.
SMOOTH = ("GELU", "SiLU")

ACTIVATIONS: dict[str, Callable[[int], torch.nn.Module]] = {
    **{name: SUPPORTED[name].make for name in RELU_FAMILY},
    "GELU": lambda units: torch.nn.GELU(),
    "SiLU": lambda units: torch.nn.SiLU(),
}
