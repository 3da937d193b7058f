"""Which modules the monitor watches: the activation kinds it has a dead-unit rule for,
those it recognises but skips, and the ``modules=`` selectors."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Union

import torch

from ..activations import ACTIVATIONS, activation_of

#: The activation modules the monitor attaches to by default (``torch_ext.nn``'s subclass
#: these): ``ReLU``, ``LeakyReLU``, ``PReLU``, ``ELU``, ``SELU`` and ``CELU`` of ``torch.nn``.
KNOWN_ACTIVATIONS: tuple[type[torch.nn.Module], ...] = tuple(
    spec.native for spec in ACTIVATIONS.values()
)

#: Activation modules the monitor recognises but does not count: no dead-unit rule, as their
#: gradient-alive set ``{z : |f'(z)| > grad_eps}`` is not a half-line ``z > threshold``, which
#: counting assumes (smooth activations, or ones flat on both sides). Without ``modules=``,
#: :attr:`~torch_ext.monitor.DeadNeuronMonitor.skipped_modules` lists the model's modules of
#: these kinds and :meth:`~torch_ext.monitor.DeadNeuronMonitor.attach` logs them; selecting
#: one with ``modules=`` is an error.
UNSUPPORTED_ACTIVATIONS: tuple[type[torch.nn.Module], ...] = (
    torch.nn.GELU,
    torch.nn.SiLU,
    torch.nn.Mish,
    torch.nn.Hardswish,
    torch.nn.Hardsigmoid,
    torch.nn.Hardtanh,  # ReLU6 too
    torch.nn.Sigmoid,
    torch.nn.LogSigmoid,
    torch.nn.Tanh,
    torch.nn.Softplus,
    torch.nn.Softsign,
    torch.nn.RReLU,
    torch.nn.Threshold,
    torch.nn.Hardshrink,
    torch.nn.Softshrink,
    torch.nn.Tanhshrink,
    torch.nn.GLU,
    torch.nn.Softmax,
    torch.nn.Softmin,
    torch.nn.LogSoftmax,
    torch.nn.Softmax2d,
)

# Class names of activation modules from other libraries: Hugging Face's GELUActivation,
# NewGELUActivation, FastGELUActivation, QuickGELUActivation, SiLUActivation,
# ReLUSquaredActivation, ...; timm's GELUTanh, Swish, HardMish, ...
_ACTIVATION_CLASS_NAME = re.compile(r"(Activation|GELU|GELUTanh|SiLU|Swish|Mish|Tanh|Sigmoid)$")


def ruleless_activation(module: torch.nn.Module) -> bool:
    """Whether `module` is an activation the monitor recognises but has no dead-unit rule
    for: one of :data:`UNSUPPORTED_ACTIVATIONS`, or a module without submodules whose class
    is named like an activation (``GELUActivation``, ``SiLUActivation``, ...) and is not one
    the monitor counts. Such a module is never counted by another activation's rule.
    (A container named so, such as torchvision's ``Conv2dNormActivation``, is not one.)"""
    if activation_of(module) is not None:
        return False
    if isinstance(module, UNSUPPORTED_ACTIVATIONS):
        return True
    is_leaf = next(module.children(), None) is None
    return is_leaf and _ACTIVATION_CLASS_NAME.search(type(module).__name__) is not None


ModuleSelector = Union[str, type, Callable[[str, torch.nn.Module], bool]]


def matches(selectors: Iterable[ModuleSelector], name: str, module: torch.nn.Module) -> bool:
    """Whether a name, type or ``(name, module) -> bool`` predicate of `selectors` picks
    module `name`."""
    for selector in selectors:
        if isinstance(selector, str) and selector == name:
            return True
        if isinstance(selector, type) and isinstance(module, selector):
            return True
        if callable(selector) and not isinstance(selector, type) and selector(name, module):
            return True
    return False
