"""What counting rests on: the gradient-alive threshold of each activation (for modules and
for functional call sites), the functions ``functional=True`` counts, when autograd is
recomputing a forward, and the base of the hooks a monitor puts on a model."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import torch
from torch import Tensor

from ..activations import activation_of


# --- thresholds ------------------------------------------------------------------------------
class FunctionalRule:
    """Stands for the activation module of a functional call site: what the monitor's alive
    rule reads (the function's kind and parameter; PReLU's slopes)."""

    def __init__(self, kind: str, param: float = 0.0, weight: Tensor | None = None) -> None:
        self.kind = kind
        self.param = param
        self.weight = weight


def alive_rule(module: torch.nn.Module | None) -> tuple[str, float] | None:
    """The activation formula and parameter that decide when a unit of `module` passes
    gradient, or None for PReLU, whose learned slopes are tensors read on the device."""
    if isinstance(module, FunctionalRule):  # a functional call site
        return None if module.kind == "prelu" else (module.kind, float(module.param))
    spec = activation_of(module)
    if spec is None:
        return "relu", 0.0  # modules the monitor does not know: gradient flows only for z > 0
    return None if spec.rule == "prelu" else (spec.rule, spec.param(module))


def alive_threshold(module: torch.nn.Module, units: int, grad_eps: float, device) -> Tensor:
    """Per-unit z above which ``|f'(z)| > grad_eps`` for the activation ``module``, from the
    activation definitions (``torch.ops.torch_ext.alive_threshold``), as the float32 tensor
    ``count_active_`` takes. Modules the monitor does not know get ReLU's rule (gradient
    flows only for ``z > 0``).

    Args:
        module: the activation module (PReLU's thresholds come from its learned slopes).
        units: the layer's number of units.
        grad_eps: a unit is gradient-alive on a sample when ``|f'(z)| > grad_eps``.
        device: where the result goes (the counts' device).

    Returns:
        A float32 tensor of shape ``(units,)``.
    """
    rule = alive_rule(module)
    if rule is None:
        slopes = torch.ops.torch_ext.slopes_alive_threshold(module.weight, units, grad_eps)
        # The op's result takes the default dtype (float64 under set_default_dtype).
        return slopes.to(device=device, dtype=torch.float32)
    value = torch.ops.torch_ext.alive_threshold(rule[0], rule[1], grad_eps)
    return torch.full((units,), value, dtype=torch.float32, device=device)


# --- counting --------------------------------------------------------------------------------
def recomputing() -> bool:
    """True while autograd runs a backward pass on this thread (activation checkpointing
    recomputes forwards there)."""
    return not torch.compiler.is_compiling() and torch._C._current_graph_task_id() != -1


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
    """The supported activation `func` computes (``"relu"``, ...), or None. Torch functions,
    Tensor methods and registered ops (``torch.ops.torch_ext.elu``, ``...elu.default``)
    reach a torch-function mode under their own names."""
    name = getattr(func, "__name__", "")
    name = name.split(".")[0]  # an OpOverload: "elu.default"
    if name.endswith("_") and not name.endswith("__"):
        name = name[:-1]
    return name if name in FUNCTIONS else None
