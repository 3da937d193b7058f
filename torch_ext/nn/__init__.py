"""Modules of torch_ext's activations, shaped like :mod:`torch.nn`."""

from .modules import ELU, SELU, LeakyReLU, PReLU

__all__ = ["ELU", "LeakyReLU", "PReLU", "SELU"]
