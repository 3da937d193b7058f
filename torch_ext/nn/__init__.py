"""Modules of torch_ext's activations, shaped like :mod:`torch.nn`."""

from .modules import ELU, SELU, CountedActivation, LeakyReLU, PReLU, UnitCounter

__all__ = ["CountedActivation", "ELU", "LeakyReLU", "PReLU", "SELU", "UnitCounter"]
