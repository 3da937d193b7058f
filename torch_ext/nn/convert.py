"""Adopting torch_ext in an existing model, and leaving it for a runtime without torch_ext:
swap :mod:`torch.nn`'s Leaky ReLU, PReLU, ELU, SELU and CELU modules for
:mod:`torch_ext.nn`'s (and back), in place, wherever they sit in the model."""

from __future__ import annotations

from collections.abc import Callable

import torch

from . import modules as ours

__all__ = ["replace_activations", "restore_activations"]

# torch.nn class -> the torch_ext.nn module computing the same function, built from the
# original (its parameters and flags kept; PReLU's learned slopes copied).
_OURS: dict[type[torch.nn.Module], Callable[[torch.nn.Module], torch.nn.Module]] = {
    torch.nn.LeakyReLU: lambda m: ours.LeakyReLU(m.negative_slope, m.inplace),
    torch.nn.ELU: lambda m: ours.ELU(m.alpha, m.inplace),
    torch.nn.SELU: lambda m: ours.SELU(m.inplace),
    torch.nn.CELU: lambda m: ours.CELU(m.alpha, m.inplace),
    torch.nn.PReLU: lambda m: _with_weight(ours.PReLU(m.num_parameters), m),
}

# torch_ext.nn class -> the torch.nn module computing the same function.
_NATIVE: dict[type[torch.nn.Module], Callable[[torch.nn.Module], torch.nn.Module]] = {
    ours.LeakyReLU: lambda m: torch.nn.LeakyReLU(m.negative_slope, m.inplace),
    ours.ELU: lambda m: torch.nn.ELU(m.alpha, m.inplace),
    ours.SELU: lambda m: torch.nn.SELU(m.inplace),
    ours.CELU: lambda m: torch.nn.CELU(m.alpha, m.inplace),
    ours.PReLU: lambda m: _with_weight(torch.nn.PReLU(m.num_parameters), m),
}

_RELU_REMEDIES = ("leaky_relu", "prelu")


def _with_weight(new: torch.nn.PReLU, old: torch.nn.PReLU) -> torch.nn.PReLU:
    """`new` holding `old`'s slopes (a copy, on its device and dtype, as trainable)."""
    with torch.no_grad():
        new.weight = torch.nn.Parameter(
            old.weight.detach().clone(), requires_grad=old.weight.requires_grad
        )
    new.train(old.training)
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
        build = _OURS.get(type(module))  # exact classes: a subclass may compute otherwise
        if build is not None:
            return build(module)
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

    def make(module: torch.nn.Module) -> torch.nn.Module | None:
        build = _NATIVE.get(type(module))
        return None if build is None else build(module)

    return _swap(model, make)
