"""What counting rests on: the gradient-alive threshold of each activation (for modules and
for functional call sites), the functions ``functional=True`` counts, when autograd is
recomputing a forward, and the base of the hooks a monitor puts on a model."""

from __future__ import annotations

import contextlib
import math
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import torch
from torch import Tensor

from ..activations import activation_of
from .rules import FUNCTION_RULES, ActivationRule, rule_for_module


# --- thresholds ------------------------------------------------------------------------------
class FunctionalRule:
    """Stands for the activation module of a functional call site: what the monitor's alive
    rule reads (the function's kind and parameter; PReLU's slopes; the rule of a function
    outside the ReLU family, such as ``F.gelu``)."""

    def __init__(
        self,
        kind: str,
        param: float = 0.0,
        weight: Tensor | None = None,
        rule: ActivationRule | None = None,
    ) -> None:
        self.kind = kind
        self.param = param
        self.weight = weight
        self.rule = rule


def activation_rule(module: object) -> ActivationRule | None:
    """The derived rule (see :mod:`torch_ext.monitor.rules`) of an activation outside the
    ReLU family: a module (GELU, SiLU, Tanh, Hugging Face's GELUActivation, ...) or a
    functional call site; None for the ReLU family and for modules without a rule."""
    if isinstance(module, FunctionalRule):
        return module.rule
    if module is None or activation_of(module) is not None:
        return None
    return rule_for_module(module)


def condition_of(module: object) -> str:
    """What a unit of `module` that passes no gradient is called: ``"dead"``, or
    ``"saturated"`` for activations flat on both sides (Tanh, Sigmoid, Hardtanh, ...)."""
    rule = activation_rule(module)
    return "dead" if rule is None else rule.condition


def alive_rule(module: object) -> tuple | None:
    """What decides when a unit of `module` passes gradient, as a hashable key (the
    activation formula and its parameters), or None for PReLU, whose learned slopes are
    tensors read on the device."""
    rule = activation_rule(module)
    if rule is not None:
        return rule.key
    if isinstance(module, FunctionalRule):  # a functional call site of the ReLU family
        return None if module.kind == "prelu" else (module.kind, float(module.param))
    spec = activation_of(module)
    if spec is None:
        return "relu", 0.0  # modules of the user's own, selected by modules=: ReLU's rule
    return None if spec.rule == "prelu" else (spec.rule, spec.param(module))


def alive_threshold(module: torch.nn.Module, units: int, grad_eps: float, device) -> Tensor:
    """``count_active_``'s ``alive_threshold`` for the activation ``module``: where
    ``|f'(z)| > grad_eps``. For the ReLU family a half-line ``z > t`` (float32 ``(units,)``,
    from the C++ activation definitions, ``torch.ops.torch_ext.alive_threshold``; PReLU's
    per unit from its learned slopes); for other activations the interval of
    :mod:`torch_ext.monitor.rules` (float32 ``(4, units)``: lo, hi, band_lo, band_hi).
    Modules of the user's own (selected by ``modules=``) get ReLU's rule: gradient flows
    only for ``z > 0``.

    Args:
        module: the activation module (or a functional call site's rule).
        units: the layer's number of units.
        grad_eps: a unit is gradient-alive on a sample when ``|f'(z)| > grad_eps``.
        device: where the result goes (the counts' device).

    Returns:
        A float32 tensor of shape ``(units,)`` or ``(4, units)``.

    Raises:
        NoRule: the activation's alive set cannot be counted for this ``grad_eps``.
    """
    rule = activation_rule(module)
    if rule is not None:
        return rule.bounds(grad_eps, units, device)
    key = alive_rule(module)
    if key is None:
        slopes = torch.ops.torch_ext.slopes_alive_threshold(module.weight, units, grad_eps)
        # The op's result takes the default dtype (float64 under set_default_dtype).
        return slopes.to(device=device, dtype=torch.float32)
    value = torch.ops.torch_ext.alive_threshold(key[0], key[1], grad_eps)
    if value < -torch.finfo(torch.float32).max:
        value = -math.inf  # every finite float32 z is above it (CELU with a huge alpha)
    return torch.full((units,), value, dtype=torch.float32, device=device)


# --- counting --------------------------------------------------------------------------------
def recomputing() -> bool:
    """True while autograd runs a backward pass on this thread (activation checkpointing
    recomputes forwards there)."""
    return not torch.compiler.is_compiling() and torch._C._current_graph_task_id() != -1


def unfollowed() -> bool:
    """Whether the forward running now is one the monitor does not follow (its hooks still
    count it, under the module's name): one Dynamo is tracing (torch.compile), or one inside
    a torch.func transform (grad, vmap, ...), whose tensors are wrappers without storage
    that no link tracing can read."""
    return torch.compiler.is_compiling() or torch._C._are_functorch_transforms_active()


def inside_forward_of(model: torch.nn.Module) -> bool:
    """Whether a forward of `model` is running below the one starting now: the model called
    inside its own forward. (A forward cut short by KeyboardInterrupt, which skips the
    always_call hooks that would have ended it, is not on the stack any more.)"""
    call_impl = torch.nn.Module._call_impl.__code__
    frame, calls = sys._getframe(1), 0
    while frame is not None:
        if frame.f_code is call_impl and frame.f_locals.get("self") is model:
            calls += 1
            if calls > 1:
                return True
        frame = frame.f_back
    return False


def outside_inference_mode() -> AbstractContextManager[Any]:
    """Counters outlive the call that creates them: made inside ``torch.inference_mode()``
    they would be inference tensors, which no later training step may update."""
    if not torch.compiler.is_compiling() and torch.is_inference_mode_enabled():
        return torch.inference_mode(False)
    return contextlib.nullcontext()


# --- hooks -----------------------------------------------------------------------------------
class InertHook:
    """What a monitor's hook becomes in a copy or a pickle of the model: nothing."""

    def __call__(self, *args: Any) -> None:
        return None


class Hook:
    """Base of the hooks a monitor puts on a model. ``copy.deepcopy(model)`` (an EMA or
    teacher copy) and ``torch.save(model)`` copy a module's hooks with it: those copies
    become :class:`InertHook`, so a copy never counts into the monitor and the model
    pickles while watched."""

    def __reduce__(self) -> tuple[type, tuple]:
        return InertHook, ()


# --- the functions functional=True counts ------------------------------------------------
# Function name (in-place forms without their "_") -> (kind, its parameter from the call,
# the activation's class name in reports).
def _positional(index: int, name: str, default: Any) -> Callable[[tuple, dict], Any]:
    return lambda args, kwargs: kwargs.get(name, args[index] if len(args) > index else default)


def _none(args: tuple, kwargs: dict) -> float:
    return 0.0


FUNCTIONS: dict[str, tuple[Callable[[tuple, dict], Any], str]] = {
    "relu": (_none, "ReLU"),
    "leaky_relu": (_positional(1, "negative_slope", 0.01), "LeakyReLU"),
    "elu": (_positional(1, "alpha", 1.0), "ELU"),
    "celu": (_positional(1, "alpha", 1.0), "CELU"),
    "selu": (_none, "SELU"),
    "prelu": (_positional(1, "weight", None), "PReLU"),
}


def function_kind(func: Any) -> str | None:
    """The activation `func` computes (``"relu"``, ``"gelu"``, ``"tanh"``, ...: a key of
    :data:`FUNCTIONS` or of :data:`~torch_ext.monitor.rules.FUNCTION_RULES`), or None.
    Torch functions, Tensor methods and registered ops (``torch.ops.torch_ext.elu``,
    ``...elu.default``) reach a torch-function mode under their own names."""
    name = getattr(func, "__name__", "")
    name = name.split(".")[0]  # an OpOverload: "elu.default"
    if name == "_threshold":  # F.threshold
        name = "threshold"
    if name.endswith("_") and not name.endswith("__"):
        name = name[:-1]
    return name if name in FUNCTIONS or name in FUNCTION_RULES else None


def function_activation_name(kind: str) -> str:
    """The class name reports give a functional call site of `kind`."""
    return FUNCTIONS[kind][1] if kind in FUNCTIONS else FUNCTION_RULES[kind][1]
