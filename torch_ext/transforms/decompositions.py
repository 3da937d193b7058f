"""Inductor decompositions of torch_ext's ops: under ``torch.compile``, where fusion wins.

Inductor cannot look into a C++ kernel: each torch_ext op in a compiled graph is an extern
call, between which only the neighbours (a residual add, a sum) fuse. For every op the C++
autograd can put into a compiled graph (the forwards, the masked Leaky ReLU pair and every
``*_backward``), this module registers a decomposition into the op's ATen twin
(``aten.leaky_relu``, ``aten.elu`` with scale and input_scale, ``aten.prelu``, their
backwards), which Inductor decomposes further and fuses with its neighbours, exactly as it
does the native ops: same generated kernels, same values.

Only Inductor's table gets them (``torch._inductor.decomposition``): eager mode, LibTorch,
TorchScript and ``torch.export`` keep the ``torch_ext`` ops. No Python autograd is needed:
AOTAutograd runs the C++ autograd while it traces the joint graph, and what that calls
below autograd (the forward kernel, the ``*_backward`` op) meets the table there.

Fusion does not always win. On a CPU our kernels are faster than the code Inductor
generates for the native ops, often by more than the fusion saves; so each decomposition
declines (returns ``NotImplemented``: the op stays an extern call to our kernel) on the
device types :data:`KEEP_OURS_ON` lists for its family, chosen by measurement
(``benchmarks/bench_compile.py``; the numbers are in the README). It also declines the
arguments only our op handles as eager does (an error our op raises, the bit-packed mask
our kernel wrote). The counted ops (``*_counted``) stay extern: they write statistics.

Registered at import, unconditionally: the on-disk AOTAutograd cache key does not include
Inductor's decomposition table, so a compile in a process that registered them later (or
switched them) could reuse an artifact compiled without them.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor
from torch._inductor.decomposition import register_decomposition

from ..functional import SELU_ALPHA, SELU_SCALE

__all__ = ["KEEP_OURS_ON", "TWINS", "Twin", "decomposes", "force"]

aten = torch.ops.aten
ops = torch.ops.torch_ext

#: The device types on which each family's ops stay extern calls to our kernels under
#: ``torch.compile`` (our kernel beats Inductor's fused code there); on every other device
#: type Inductor gets the decomposition. Chosen per family and device by
#: ``benchmarks/bench_compile.py`` (compiled training steps, native compiled / ours
#: compiled; the table is in the README). Families: ``leaky_relu`` (with the masked pair),
#: ``elu`` (ELU, SELU, CELU: one kernel and one backward op, ours and ATen's), ``prelu``.
KEEP_OURS_ON: dict[str, frozenset[str]] = {
    # CPU (2 threads, AVX-512): native compiled / ours extern 2.16 (MLP), 1.32 (CNN), 1.01
    # (ResNet-18); decomposed ~1.0, native's code. CUDA: Triton fuses well (not yet measured).
    "leaky_relu": frozenset({"cpu"}),
    "elu": frozenset({"cpu"}),  # CPU: 1.42, 1.26, 1.18
    # CPU: fusion wins (ours extern 0.95, 0.83, 0.93; decomposed 1.01, 0.96, 0.99).
    "prelu": frozenset(),
}


def _forced_from_environment() -> bool | None:
    value = os.environ.get("TORCH_EXT_DECOMPOSE", "")
    return {"1": True, "0": False}.get(value)


#: Overrides :data:`KEEP_OURS_ON` for every op and device: ``True`` decomposes, ``False``
#: keeps our kernels, ``None`` (the default) follows the table. Starts from the environment
#: variable ``TORCH_EXT_DECOMPOSE`` (``1`` or ``0``). For tests and benchmarks: it is read
#: when a graph is traced, and the on-disk compile caches do not see it, so change it only
#: with the caches off (``torch._inductor.config.force_disable_caches``) or fresh.
force: bool | None = _forced_from_environment()


def decomposes(family: str, device: torch.device) -> bool:
    """Return whether Inductor gets the decomposition of ``family``'s ops on ``device``."""
    if force is not None:
        return force
    return device.type not in KEEP_OURS_ON[family]


# --- The ATen twins, on our ops' arguments ----------------------------------------------


def _leaky_relu(self: Tensor, negative_slope: float = 0.01) -> Tensor:
    return aten.leaky_relu(self, negative_slope)


def _leaky_relu_backward(
    grad_output: Tensor, self_or_result: Tensor, negative_slope: float, is_result: bool
) -> Tensor:
    return aten.leaky_relu_backward(grad_output, self_or_result, negative_slope, is_result)


def _leaky_relu_masked(self: Tensor, negative_slope: float) -> tuple[Tensor, Tensor]:
    # The "mask" is the input itself, which decides the gradient as the sign bits do: the
    # backward is then native's, and the partitioner saves what it saves for native (the
    # input, or a recomputable bool), never the bits Inductor could only pack unfused.
    return aten.leaky_relu(self, negative_slope), self


def _leaky_relu_backward_masked(
    grad_output: Tensor, sign_mask: Tensor, negative_slope: float, result_strides: list[int]
) -> Tensor:
    # sign_mask is the input, as _leaky_relu_masked returned it (bits decline: _ours_only).
    return aten.leaky_relu_backward(grad_output, sign_mask, negative_slope, False)


def _elu(self: Tensor, alpha: float = 1.0, *, save_output: bool = False) -> Tensor:
    # save_output only chooses what our autograd keeps; AOTAutograd's partitioner decides.
    return aten.elu(self, alpha)


def _selu(self: Tensor, *, save_output: bool = False) -> Tensor:
    return aten.elu(self, SELU_ALPHA, SELU_SCALE)


def _celu(self: Tensor, alpha: float = 1.0, *, save_output: bool = False) -> Tensor:
    return aten.elu(self, alpha, 1.0, 1.0 / alpha)  # as ATen's celu


def _elu_backward(
    grad_output: Tensor,
    self_or_result: Tensor,
    alpha: float,
    scale: float,
    is_result: bool,
    input_scale: float = 1.0,
) -> Tensor:
    return aten.elu_backward(grad_output, alpha, scale, input_scale, is_result, self_or_result)


def _prelu_weight(self: Tensor, weight: Tensor) -> Tensor:
    """The weight as ATen's prelu shapes it for its kernel: along dim 1 of ``self``."""
    if self.dim() < 2:
        return weight
    return weight.reshape([weight.numel() if d == 1 else 1 for d in range(self.dim())])


def _prelu(self: Tensor, weight: Tensor) -> Tensor:
    return aten.prelu(self, weight)


def _prelu_backward(grad_output: Tensor, self: Tensor, weight: Tensor) -> tuple[Tensor, Tensor]:
    shaped = _prelu_weight(self, weight)
    grad_input, grad_weight = aten._prelu_kernel_backward(grad_output, self, shaped)
    # The weight gradient comes full size, as native autograd reduces it to the weight.
    return grad_input, grad_weight.sum_to_size(shaped.shape).reshape(weight.shape)


# --- The arguments only our ops handle as eager mode does -------------------------------

_FLOATING = (torch.float32, torch.float64, torch.bfloat16, torch.float16)


def _floating(*tensors: Tensor) -> bool:
    return all(t.dtype in _FLOATING for t in tensors)


def _alike(first: Tensor, second: Tensor) -> bool:
    """Same floating dtype, device and shape: what our autograd passes its backward ops.
    Anything else (broadcasting, promotion, a wrong device) keeps our op and its checks."""
    return (
        _floating(first)
        and first.dtype == second.dtype
        and first.device == second.device
        and first.shape == second.shape
    )


def _not_floating(self: Tensor, *args: Any, **kwargs: Any) -> bool:
    return not _floating(self)


def _leaky_relu_backward_ours(
    grad_output: Tensor, self_or_result: Tensor, negative_slope: float, is_result: bool
) -> bool:
    # From the result with a negative slope our op raises (ATen's decomposition would not).
    return not _alike(grad_output, self_or_result) or (is_result and negative_slope < 0)


def _masked_backward_ours(
    grad_output: Tensor, sign_mask: Tensor, negative_slope: float, result_strides: list[int]
) -> bool:
    # Bits our kernel packed (a forward that ran eagerly, or declined): only our kernel
    # reads them. Whatever the device, the decision followed the forward's.
    return sign_mask.dtype == torch.uint8 or not _alike(grad_output, sign_mask)


def _celu_ours(self: Tensor, alpha: float = 1.0, *, save_output: bool = False) -> bool:
    return not _floating(self) or alpha == 0  # CELU's alpha == 0: our op's error


def _elu_backward_ours(
    grad_output: Tensor,
    self_or_result: Tensor,
    alpha: float,
    scale: float,
    is_result: bool,
    input_scale: float = 1.0,
) -> bool:
    return not _alike(grad_output, self_or_result) or (is_result and alpha < 0)


def _prelu_ours(self: Tensor, weight: Tensor) -> bool:
    """Weights our op refuses (with its own messages) stay with it."""
    channels = self.shape[1] if self.dim() >= 2 else 1
    fits = weight.dim() <= 1 and (weight.numel() == 1 or weight.numel() == channels)
    return not (fits and _floating(self) and weight.dtype == self.dtype) or (
        weight.device != self.device
    )


def _prelu_backward_ours(grad_output: Tensor, self: Tensor, weight: Tensor) -> bool:
    return _prelu_ours(self, weight) or not _alike(grad_output, self)


# --- The table ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Twin:
    """One op's decomposition.

    Attributes:
        op: the torch_ext op.
        family: its row of :data:`KEEP_OURS_ON`, or None where the arguments alone decide
            (the masked backward follows what its forward did).
        aten: the ATen twin, called with the op's own arguments.
        ours_only: whether a call's arguments are ones only our op handles as eager mode
            does (its errors, its bit-packed mask); those always stay extern.
    """

    op: torch._ops.OpOverload
    family: str | None
    aten: Callable[..., Any]
    ours_only: Callable[..., bool] = _not_floating


#: Every op the C++ autograd can put into a compiled graph, and its ATen twin. The in-place
#: forms never reach Inductor (functionalization turns them into the out-of-place ops).
TWINS: tuple[Twin, ...] = (
    Twin(ops.leaky_relu.default, "leaky_relu", _leaky_relu),
    Twin(ops.leaky_relu_backward.default, "leaky_relu", _leaky_relu_backward, _leaky_relu_backward_ours),
    Twin(ops.leaky_relu_masked.default, "leaky_relu", _leaky_relu_masked),
    Twin(ops.leaky_relu_backward_masked.default, None, _leaky_relu_backward_masked, _masked_backward_ours),
    Twin(ops.elu.default, "elu", _elu),
    Twin(ops.selu.default, "elu", _selu),
    Twin(ops.celu.default, "elu", _celu, _celu_ours),
    Twin(ops.elu_backward.default, "elu", _elu_backward, _elu_backward_ours),
    Twin(ops.prelu.default, "prelu", _prelu, _prelu_ours),
    Twin(ops.prelu_backward.default, "prelu", _prelu_backward, _prelu_backward_ours),
)  # fmt: skip


def _keep_ours(op: torch._ops.OpOverload) -> Any:
    """Decline: the op stays an extern call. Inductor's implicit fallback for an op not
    lowered refuses one that has a decomposition ("both a fallback and a decomp"), so the
    fallback it would make is registered here, once (Inductor is running: it is imported)."""
    from torch._inductor import lowering
    from torch._library.utils import get_layout_constraint_tag

    if op not in lowering.lowerings:
        constraint = lowering.tag_to_layout_constraint(get_layout_constraint_tag(op))
        lowering.make_fallback(op, constraint, warn=False, override_decomp=True)
    return NotImplemented


def _register(twin: Twin) -> None:
    @register_decomposition([twin.op])
    def decomposition(*args: Any, **kwargs: Any) -> Any:
        first: Tensor = args[0]
        if twin.ours_only(*args, **kwargs) or (
            twin.family is not None and not decomposes(twin.family, first.device)
        ):
            return _keep_ours(twin.op)
        return twin.aten(*args, **kwargs)


for _twin in TWINS:
    _register(_twin)
