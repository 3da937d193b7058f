"""Modules of torch_ext's activations, shaped like :mod:`torch.nn`."""

from .convert import replace_activations, restore_activations
from .modules import CELU, ELU, SELU, CountedActivation, LeakyReLU, PReLU, UnitCounter

__all__ = [
    "CELU",
    "CountedActivation",
    "ELU",
    "LeakyReLU",
    "PReLU",
    "SELU",
    "UnitCounter",
    "replace_activations",
    "restore_activations",
]
