"""Adopting torch_ext in an existing model, and leaving it for a runtime without torch_ext:
swap :mod:`torch.nn`'s Leaky ReLU, PReLU, ELU, SELU and CELU modules for
:mod:`torch_ext.nn`'s (and back), in place, wherever they sit in the model."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.nn.utils import parametrize

from . import modules as ours

__all__ = ["replace_activations", "restore_activations"]

# Each torch.nn class, the torch_ext.nn class computing the same function, and the
# constructor arguments both take from a module of either (PReLU's learned slopes are
# moved over besides, see _rebuilder).
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


def _rebuilder(
    module: torch.nn.Module, pair: tuple[type[torch.nn.Module], Callable[[Any], tuple]] | None
) -> Callable[[], torch.nn.Module] | None:
    """What builds `module` as the other class of its pair, with the same arguments (a
    PReLU holding the very Parameter of its slopes, as ``SyncBatchNorm.convert_sync_batchnorm``
    keeps its weights: an optimizer, a tie or a wrapper made before the swap still sees the
    slopes trained); None without a pair. Built only once every check has passed."""
    if pair is None:
        return None
    cls, args = pair

    def build() -> torch.nn.Module:
        new = cls(*args(module))
        if isinstance(module, torch.nn.PReLU):
            new.weight = module.weight
        return new

    return build


# A module's hooks, by the attribute torch.nn.Module keeps them in: a new module has none.
_HOOKS = {
    "forward pre-hooks": "_forward_pre_hooks",
    "forward hooks": "_forward_hooks",
    "backward pre-hooks": "_backward_pre_hooks",
    "backward hooks": "_backward_hooks",
    "state_dict hooks": "_state_dict_hooks",
    "state_dict pre-hooks": "_state_dict_pre_hooks",
    "load_state_dict pre-hooks": "_load_state_dict_pre_hooks",
    "load_state_dict post-hooks": "_load_state_dict_post_hooks",
}


def _class_of(module: torch.nn.Module) -> type:
    """The class `module` was made as: a parametrized one's
    (``torch.nn.utils.parametrize``) is a subclass made for it, ``ParametrizedPReLU``."""
    return type(module).__bases__[0] if parametrize.is_parametrized(module) else type(module)


def _parametrizations(module: torch.nn.Module) -> list[str]:
    if not parametrize.is_parametrized(module):
        return []
    names = ", ".join(f"'{name}'" for name in module.parametrizations)
    return [f"parametrizations of {names} (torch.nn.utils.parametrize)"]


def _refuse_hooked(replaced: dict[str, torch.nn.Module], caller: str) -> None:
    """Raise, before anything is swapped, where a module to be replaced carries hooks,
    parametrizations or a monitor's counter: its replacement would silently run without
    them (a DeadNeuronMonitor's, a user's, ``torch.nn.utils.weight_norm``'s, a
    parametrized PReLU's weight)."""
    hooked = {
        path: [kind for kind, attribute in _HOOKS.items() if getattr(module, attribute, None)]
        + _parametrizations(module)
        + (["a DeadNeuronMonitor's counter"] if getattr(module, "counter", None) else [])
        for path, module in replaced.items()
    }
    hooked = {path: kinds for path, kinds in hooked.items() if kinds}
    if hooked:
        where = "; ".join(f"'{path}': {', '.join(kinds)}" for path, kinds in hooked.items())
        raise ValueError(
            f"{caller}: modules to replace carry hooks or parametrizations, which their "
            f"replacements would not have ({where}); nothing was replaced. Remove them "
            f"(remove a DeadNeuronMonitor), convert, then register them again"
        )


def _swap(
    model: torch.nn.Module,
    rebuilder: Callable[[torch.nn.Module], Callable[[], torch.nn.Module] | None],
    caller: str,
) -> dict[str, tuple[str, str]]:
    """Replace every submodule `rebuilder` gives a builder for; one new module per
    original, so a module registered at several places (a ResNet block's one ``relu``)
    stays shared. Nothing is built or replaced where one of them carries hooks
    (:func:`_refuse_hooked`)."""
    builders: dict[int, Callable[[], torch.nn.Module] | None] = {}
    planned: dict[str, torch.nn.Module] = {}
    for path, child in list(model.named_modules(remove_duplicate=False)):
        if not path:
            continue  # the model itself: its owner is not ours to rewrite
        if id(child) not in builders:
            builders[id(child)] = rebuilder(child)
        if builders[id(child)] is not None:
            planned[path] = child
    _refuse_hooked(planned, caller)
    made: dict[int, torch.nn.Module] = {}
    replaced = {}
    for path, child in planned.items():
        if id(child) not in made:
            made[id(child)] = builders[id(child)]()
            made[id(child)].train(child.training)
        parent_path, _, name = path.rpartition(".")
        setattr(model.get_submodule(parent_path), name, made[id(child)])
        replaced[path] = (type(child).__name__, type(made[id(child)]).__name__)
    return replaced


def replace_activations(
    model: torch.nn.Module, relu: str | None = None, negative_slope: float = 0.01
) -> dict[str, tuple[str, str]]:
    """Swap, in place, every :mod:`torch.nn` ``LeakyReLU``, ``PReLU``, ``ELU``, ``SELU`` and
    ``CELU`` of `model` (at any depth: ``Sequential``, ``ModuleList``, ``ModuleDict``, nested
    modules) for the :mod:`torch_ext.nn` module of the same class name, with the same
    parameters and ``inplace`` flag (a PReLU keeps its slopes' Parameter itself, so an
    optimizer made before still trains them): the model's outputs and gradients stay what
    they were, and so does its ``state_dict``. Subclasses of those classes, which may compute
    otherwise, are left as they are. A module to be replaced that carries hooks (forward,
    backward, state_dict) or parametrizations (``torch.nn.utils.parametrize``) is an error,
    and nothing is replaced: its replacement would run without them.

    Args:
        model: the model to convert (changed in place).
        relu: also turn every ``torch.nn.ReLU`` into the remedy for dying units:
            ``"leaky_relu"`` (torch_ext's Leaky ReLU of `negative_slope`, ``inplace`` kept)
            or ``"prelu"`` (torch_ext's PReLU, one learned slope, initially 0.25: a new
            parameter, so make the optimizer after converting). This changes what the
            model computes. Default: ``None`` (ReLUs kept).
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

    def rebuilder(module: torch.nn.Module) -> Callable[[], torch.nn.Module] | None:
        build = _rebuilder(module, _OURS.get(_class_of(module)))  # a subclass may differ
        if build is not None or type(module) is not torch.nn.ReLU or relu is None:
            return build
        if relu == "leaky_relu":
            return lambda: ours.LeakyReLU(negative_slope, module.inplace)
        if first is None:
            return ours.PReLU
        return lambda: ours.PReLU().to(first.device, first.dtype)

    return _swap(model, rebuilder, "replace_activations")


def restore_activations(model: torch.nn.Module) -> dict[str, tuple[str, str]]:
    """The reverse of :func:`replace_activations`: every :mod:`torch_ext.nn` module of
    `model` becomes the :mod:`torch.nn` module of the same class name and parameters, for a
    runtime without torch_ext (ONNX, a LibTorch program that does not link it, another
    process). The outputs stay what they were, PReLU's slopes are the same Parameters, and
    modules carrying hooks or parametrizations are refused as there.

    Returns:
        ``{module path: (old class name, new class name)}`` for every place replaced.
    """

    return _swap(
        model,
        lambda module: _rebuilder(module, _NATIVE.get(_class_of(module))),
        "restore_activations",
    )
