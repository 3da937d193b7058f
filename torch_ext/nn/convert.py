"""Adopting torch_ext in an existing model, and leaving it for a runtime without torch_ext:
swap :mod:`torch.nn`'s Leaky ReLU, PReLU, ELU, SELU and CELU modules for
:mod:`torch_ext.nn`'s (and back), in place, wherever they sit in the model."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from . import modules as ours

__all__ = ["replace_activations", "restore_activations"]

# Each torch.nn class, the torch_ext.nn class computing the same function, and the
# constructor arguments both take from a module of either (PReLU's learned slopes are
# copied besides, see _rebuilt).
_PAIRS: tuple[tuple[type[torch.nn.Module], type[torch.nn.Module], Callable[[Any], tuple]], ...] = (
    (torch.nn.LeakyReLU, ours.LeakyReLU, lambda m: (m.negative_slope, m.inplace)),
    (torch.nn.ELU, ours.ELU, lambda m: (m.alpha, m.inplace)),
    (torch.nn.SELU, ours.SELU, lambda m: (m.inplace,)),
    (torch.nn.CELU, ours.CELU, lambda m: (m.alpha, m.inplace)),
    (torch.nn.PReLU, ours.PReLU, lambda m: (m.num_parameters,)),
)
_OURS = {native: (mine, args) for native, mine, args in _PAIRS}
_NATIVE = {mine: (native, args) for native, mine, args in _PAIRS}

_RELU_REMEDIES = ("leaky_relu", "prelu")


def _rebuilt(
    module: torch.nn.Module, pair: tuple[type[torch.nn.Module], Callable[[Any], tuple]] | None
) -> torch.nn.Module | None:
    """`module` as the other class of its pair, with the same arguments (a PReLU holding a
    copy of its slopes, on their device and dtype, as trainable); None without a pair."""
    if pair is None:
        return None
    cls, args = pair
    new = cls(*args(module))
    if isinstance(module, torch.nn.PReLU):
        new.weight = torch.nn.Parameter(
            module.weight.detach().clone(), requires_grad=module.weight.requires_grad
        )
    return new


def _swap(
    model: torch.nn.Module, make: Callable[[torch.nn.Module], torch.nn.Module | None]
) -> dict[str, tuple[str, str]]:
    """Replace every submodule `make` returns a module for; one new module per original, so
    a module registered at several places (a ResNet block's one ``relu``) stays shared."""
    made: dict[int, torch.nn.Module | None] = {}
    replaced: dict[str, tuple[str, str]] = {}
    for path, child in list(model.named_modules(remove_duplicate=False)):
        if not path:
            continue  # the model itself: its owner is not ours to rewrite
        if id(child) not in made:
            made[id(child)] = make(child)
        new = made[id(child)]
        if new is None:
            continue
        new.train(child.training)
        parent_path, _, name = path.rpartition(".")
        setattr(model.get_submodule(parent_path), name, new)
        replaced[path] = (type(child).__name__, type(new).__name__)
    return replaced


def replace_activations(
    model: torch.nn.Module, relu: str | None = None, negative_slope: float = 0.01
) -> dict[str, tuple[str, str]]:
    """Swap, in place, every :mod:`torch.nn` ``LeakyReLU``, ``PReLU``, ``ELU``, ``SELU`` and
    ``CELU`` of `model` (at any depth: ``Sequential``, ``ModuleList``, ``ModuleDict``, nested
    modules) for the :mod:`torch_ext.nn` module of the same class name, with the same
    parameters and ``inplace`` flag (PReLU's learned slopes copied): the model's outputs
    and gradients stay what they were, and so does its ``state_dict``.

    Args:
        model: the model to convert (changed in place).
        relu: also turn every ``torch.nn.ReLU`` into the remedy for dying units:
            ``"leaky_relu"`` (torch_ext's Leaky ReLU of `negative_slope`, ``inplace`` kept)
            or ``"prelu"`` (torch_ext's PReLU, one learned slope, initially 0.25). This
            changes what the model computes. Default: ``None`` (ReLUs kept).
        negative_slope: the Leaky ReLU slope for ``relu="leaky_relu"``. Default: ``0.01``.

    Returns:
        ``{module path: (old class name, new class name)}`` for every place replaced (a
        module registered at several places is one new module, listed at each).

    Example::

        model = torchvision.models.resnet18()
        torch_ext.nn.replace_activations(model, relu="leaky_relu")
    """
    if relu is not None and relu not in _RELU_REMEDIES:
        raise ValueError(
            f"replace_activations: relu must be one of {_RELU_REMEDIES} or None, got {relu!r}"
        )

    first = next(model.parameters(), None)  # where a new PReLU's slope goes

    def make(module: torch.nn.Module) -> torch.nn.Module | None:
        new = _rebuilt(module, _OURS.get(type(module)))  # exact: a subclass may differ
        if new is not None:
            return new
        if type(module) is torch.nn.ReLU and relu == "leaky_relu":
            return ours.LeakyReLU(negative_slope, module.inplace)
        if type(module) is torch.nn.ReLU and relu == "prelu":
            prelu = ours.PReLU()
            return prelu if first is None else prelu.to(first.device, first.dtype)
        return None

    return _swap(model, make)


def restore_activations(model: torch.nn.Module) -> dict[str, tuple[str, str]]:
    """The reverse of :func:`replace_activations`: every :mod:`torch_ext.nn` module of
    `model` becomes the :mod:`torch.nn` module of the same class name and parameters, for a
    runtime without torch_ext (ONNX, a LibTorch program that does not link it, another
    process). The outputs stay what they were.

    Returns:
        ``{module path: (old class name, new class name)}`` for every place replaced.
    """

    return _swap(model, lambda module: _rebuilt(module, _NATIVE.get(type(module))))
