"""Which modules the monitor watches: the activations it has a rule for (every elementwise
activation of torch.nn and Hugging Face), those it recognises but skips, and the
``modules=`` selectors."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Union

import torch

from ..activations import ACTIVATIONS, activation_of
from .rules import RULED_NN_ACTIVATIONS, rule_for_module

#: The ReLU family's modules (``ReLU``, ``LeakyReLU``, ``PReLU``, ``ELU``, ``SELU`` and
#: ``CELU`` of ``torch.nn``; ``torch_ext.nn``'s subclass these), whose rule comes from the C++
#: activation definitions. The monitor also counts every activation of
#: :mod:`torch_ext.monitor.rules` by default (GELU, SiLU, Tanh, ..., Hugging Face's).
KNOWN_ACTIVATIONS: tuple[type[torch.nn.Module], ...] = tuple(
    spec.native for spec in ACTIVATIONS.values()
)

#: Activation modules of ``torch.nn`` the monitor recognises but does not count: they are not
#: elementwise (a unit's output depends on other units), so ``|f'(z)|`` per unit is not
#: defined. :attr:`~torch_ext.monitor.DeadNeuronMonitor.skipped_modules` lists the model's
#: modules of these kinds (and other activation-like modules without a rule); selecting one
#: with ``modules=`` is an error.
UNSUPPORTED_ACTIVATIONS: tuple[type[torch.nn.Module], ...] = (
    torch.nn.GLU,
    torch.nn.Softmax,
    torch.nn.Softmin,
    torch.nn.LogSoftmax,
    torch.nn.Softmax2d,
)

# Class names of activation modules from other libraries: Hugging Face's (those without a
# rule, such as XIELUActivation, whose parameters are learned), timm's GELUTanh, Swish,
# HardMish, ...
_ACTIVATION_CLASS_NAME = re.compile(r"(Activation|GELU|GELUTanh|SiLU|Swish|Mish|Tanh|Sigmoid)$")


def counted_by_default(module: torch.nn.Module) -> bool:
    """Whether the monitor counts `module` without ``modules=``: an activation with a rule,
    of the ReLU family or of :mod:`torch_ext.monitor.rules`."""
    return activation_of(module) is not None or rule_for_module(module) is not None


def ruleless_activation(module: torch.nn.Module) -> bool:
    """Whether `module` is an activation the monitor recognises but has no rule for: one of
    :data:`UNSUPPORTED_ACTIVATIONS`, a subclass of a ``torch.nn`` activation that overrides
    ``forward`` (it may compute something else), or a module without submodules whose class
    is named like an activation (``XIELUActivation``, timm's ``GELUTanh``, ...). Such a
    module is never counted by another activation's rule. (A container named so, such as
    torchvision's ``Conv2dNormActivation``, is not one.)"""
    if counted_by_default(module):
        return False
    if isinstance(module, UNSUPPORTED_ACTIVATIONS):
        return True
    if isinstance(module, RULED_NN_ACTIVATIONS):  # a subclass overriding forward
        return True
    if any(cls.__module__ == "transformers.activations" for cls in type(module).__mro__[1:]):
        return True  # a subclass of a Hugging Face activation: it may compute otherwise
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
