"""Jagged nested tensors (``torch.nested``, ``layout=torch.jagged``) through torch_ext's ops.

torch.nn.functional's activations take a jagged nested tensor and return one with the same
nesting; so do ours. A jagged tensor packs its components into one dense ``values`` tensor,
and an elementwise op is the same op on those values: each rule here runs the op on them and
wraps the result with the input's nesting. Autograd works as for the native ops (our
autograd keeps a nested input rather than a sign mask, and its backward ops run here too).

PReLU (its channel dim 1 is the ragged dim of a jagged tensor) and the monitor's counting
ops refuse a jagged tensor with an error that says so. Strided nested tensors are refused by
the ops' dtype and layout checks, as before.
"""

from __future__ import annotations

from typing import Any

import torch

__all__: list[str] = []

# Elementwise ops: (out of place, in place). Every tensor argument of one call must be a
# jagged tensor of the same nesting.
_ELEMENTWISE = [
    "leaky_relu",
    "leaky_relu_",
    "leaky_relu_backward",
    "elu",
    "elu_",
    "selu",
    "selu_",
    "celu",
    "celu_",
    "elu_backward",
]
_UNSUPPORTED = {
    "prelu": "its weight is per channel (dim 1), the ragged dim of a jagged tensor",
    "prelu_backward": "its weight is per channel (dim 1), the ragged dim of a jagged tensor",
    "prelu_counted": "the dead-neuron monitor counts units of dense tensors only",
    "leaky_relu_counted": "the dead-neuron monitor counts units of dense tensors only",
    "elu_counted": "the dead-neuron monitor counts units of dense tensors only",
    "count_active_": "the dead-neuron monitor counts units of dense tensors only",
    "abs_sum_": "the dead-neuron monitor sums units of dense tensors only",
}


def _on_values(func: torch._ops.OpOverload, args: tuple, kwargs: dict[str, Any]) -> Any:
    from torch.nested._internal.nested_tensor import NestedTensor
    from torch.nested._internal.ops import extract_kwargs

    nested = [a for a in args if isinstance(a, NestedTensor)]
    first = nested[0]
    name = func.name()
    for other in nested[1:]:
        if other.shape != first.shape:
            raise RuntimeError(
                f"{name}: expected jagged nested tensors of one nesting, but got shapes "
                f"{tuple(first.shape)} and {tuple(other.shape)}"
            )
    if any(isinstance(a, torch.Tensor) and not isinstance(a, NestedTensor) for a in args):
        raise RuntimeError(f"{name}: cannot mix a jagged nested tensor with a dense tensor")
    values = [a.values() if isinstance(a, NestedTensor) else a for a in args]
    out = func(*values, **kwargs)
    if func.name().endswith("_"):  # an in-place op (elu_, ...): it wrote the values
        return args[0]
    return NestedTensor(out, **extract_kwargs(first))


def _refuse(reason: str):
    def rule(mode, func, types, args, kwargs):
        raise NotImplementedError(
            f"{func.name()}: jagged nested tensors are not supported: {reason}; "
            "run it on the nested tensor's .values() instead"
        )

    return rule


def _register() -> None:
    try:
        from torch.nested._internal.nested_tensor import NestedTensor
    except ImportError:  # pragma: no cover - a torch without jagged nested tensors
        return
    for name in _ELEMENTWISE:
        torch.library.register_torch_dispatch(
            f"torch_ext::{name}",
            NestedTensor,
            lambda mode, func, types, args, kwargs: _on_values(func, args, kwargs or {}),
        )
    for name, reason in _UNSUPPORTED.items():
        torch.library.register_torch_dispatch(f"torch_ext::{name}", NestedTensor, _refuse(reason))


_register()
