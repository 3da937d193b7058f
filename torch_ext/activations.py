"""The supported activations, listed once: their :mod:`torch.nn` class (which the
:mod:`torch_ext.nn` module subclasses), the rule the monitor counts gradient-alive units by,
what a dead unit outputs (for :func:`torch_ext.revive`), and how to make the torch_ext
module (for the study and the benchmarks). SELU's constants come from the C++ library,
where the kernels read them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

__all__ = ["ACTIVATIONS", "Activation", "SELU_ALPHA", "SELU_SCALE", "activation_of"]

from . import nn
from .functional import SELU_ALPHA, SELU_SCALE  # re-exported: the C++ library's constants


@dataclass(frozen=True)
class Activation:
    """One supported activation.

    Attributes:
        name: the name reports use (the torch.nn class name).
        native: the torch.nn class; torch_ext.nn's module of the same name subclasses it.
        rule: the activation's name for ``torch.ops.torch_ext.alive_threshold``.
        param: the rule's parameter read from a module (slope or alpha; 0 where unused).
        dead_output: what a dead (saturated) unit of a module outputs, f(z) for z -> -inf,
            or None where it is not a constant (a Leaky ReLU unit outputs slope * z).
        make: a torch_ext.nn module for a layer of ``units`` units, with the defaults the
            study and the benchmarks use.
    """

    name: str
    native: type[torch.nn.Module]
    rule: str
    param: Callable[[torch.nn.Module], float]
    dead_output: Callable[[torch.nn.Module], float | None]
    make: Callable[[int], torch.nn.Module]


def _none(module: torch.nn.Module) -> float:
    return 0.0


def _leaky_dead_output(module: torch.nn.Module) -> float | None:
    return 0.0 if module.negative_slope == 0 else None


def _prelu_dead_output(module: torch.nn.Module) -> float | None:
    return None  # per unit: 0 only where the learned slope is 0 (revive checks the slopes)


#: The supported activations by name (``"ReLU"``, ``"LeakyReLU"``, ``"PReLU"``, ``"ELU"``,
#: ``"SELU"``, ``"CELU"``): the ReLU family torch_ext computes, whose monitor rule comes from
#: the C++ definitions and whose dead units :func:`torch_ext.revive` revives exactly. (The
#: monitor counts every other elementwise activation too: see torch_ext.monitor.rules.)
ACTIVATIONS: dict[str, Activation] = {
    spec.name: spec
    for spec in (
        Activation(
            "ReLU", torch.nn.ReLU, "relu", _none, lambda m: 0.0, lambda units: torch.nn.ReLU()
        ),
        Activation(
            "LeakyReLU",
            torch.nn.LeakyReLU,
            "leaky_relu",
            lambda m: float(m.negative_slope),
            _leaky_dead_output,
            lambda units: nn.LeakyReLU(0.01),
        ),
        Activation(
            "PReLU",
            torch.nn.PReLU,
            "prelu",
            _none,
            _prelu_dead_output,
            lambda units: nn.PReLU(units),
        ),
        Activation(
            "ELU",
            torch.nn.ELU,
            "elu",
            lambda m: float(m.alpha),
            lambda m: -float(m.alpha),
            lambda units: nn.ELU(1.0),
        ),
        Activation(
            "SELU",
            torch.nn.SELU,
            "selu",
            _none,
            lambda m: -SELU_SCALE * SELU_ALPHA,
            lambda units: nn.SELU(),
        ),
        Activation(
            "CELU",
            torch.nn.CELU,
            "celu",
            lambda m: float(m.alpha),
            lambda m: -float(m.alpha),
            lambda units: nn.CELU(1.0),
        ),
    )
}


def activation_of(module: object) -> Activation | None:
    """The supported activation `module` is (an instance of its torch.nn class), or None."""
    for spec in ACTIVATIONS.values():
        if isinstance(module, spec.native):
            return spec
    return None
