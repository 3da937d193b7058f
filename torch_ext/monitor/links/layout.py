"""Where a unit's values lie in a tensor (UnitLayout), and the operations that keep units
apart on their way from an activation to the layers reading it (pooling, dropout, flatten,
views: each a step from one layout to the next), with those that only read metadata and
those that make a residual use."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor


# --- where a unit's values lie -------------------------------------------------------------
@dataclass(frozen=True)
class UnitLayout:
    """Where unit ``c`` of a layer with ``units`` units lies in a tensor: along ``dim``, at
    the indices ``p * units * block + c * block + j`` for ``p < outer``, ``j < block``. A
    flatten of ``[N, C, H, W]`` from dim 1 puts channel ``c`` at block ``c`` of ``H * W``."""

    dim: int
    outer: int = 1
    block: int = 1

    def width(self, units: int) -> int:
        return self.outer * units * self.block

    def indices(self, units: int, which: Tensor) -> Tensor:
        """The indices along :attr:`dim` of the units `which` (a 1-D int64 tensor)."""
        outer = torch.arange(self.outer, device=which.device) * units * self.block
        inner = torch.arange(self.block, device=which.device)
        grid = outer[:, None, None] + which[None, :, None] * self.block + inner[None, None, :]
        return grid.permute(1, 0, 2).reshape(-1)


# A step through an operation that keeps units apart: the layout after it, or why not.
Step = Callable[[UnitLayout], "UnitLayout | str"]


def _pool_step(op: str, spatial: int, ndim: int) -> Step:
    def step(layout: UnitLayout) -> UnitLayout | str:
        if layout.outer != 1 or layout.block != 1 or layout.dim >= ndim - spatial:
            return f"{op} pools over the dim its units lie along"
        return layout

    return step


def _flatten_step(shape: tuple[int, ...], start: int, end: int) -> Step:
    ndim = len(shape)
    start, end = start % max(ndim, 1), end % max(ndim, 1)

    def step(layout: UnitLayout) -> UnitLayout | str:
        d = layout.dim
        if d < start:
            return layout
        if d > end:
            return UnitLayout(d - (end - start), layout.outer, layout.block)
        return UnitLayout(
            start,
            layout.outer * math.prod(shape[start:d]),
            layout.block * math.prod(shape[d + 1 : end + 1]),
        )

    return step


def _identity_step(layout: UnitLayout) -> UnitLayout:
    return layout


def _arg(args: tuple, kwargs: dict, index: int, name: str, default: Any) -> Any:
    if name in kwargs:
        return kwargs[name]
    return args[index] if len(args) > index else default


_POOLS = {
    f"{kind}_pool{k}d": k
    for kind in ("max", "avg", "adaptive_avg", "adaptive_max", "lp")
    for k in (1, 2, 3)
}
_DROPOUTS = {"dropout", "dropout1d", "dropout2d", "dropout3d"}
RESIDUAL_OPS = {"add", "add_", "__add__", "__radd__", "__iadd__"}
GATE_OPS = {"mul", "__mul__", "__rmul__"}  # act(gate(x)) * up(x): see gate_pass_through
# Reads of a tensor's metadata: not uses of its values.
METADATA_OPS = {
    "size",
    "dim",
    "ndimension",
    "numel",
    "nelement",
    "stride",
    "storage_offset",
    "is_contiguous",
    "is_floating_point",
    "element_size",
    "get_device",
    "data_ptr",
    "__len__",
    # autograd bookkeeping, which reads no value: FSDP2 registers its pre-backward hook on
    # every output of a sharded module (a feeder's output would look used elsewhere)
    "register_hook",
    "register_post_accumulate_grad_hook",
    "retain_grad",
    "requires_grad_",
}


@dataclass(frozen=True)
class PassThrough:
    """What an operation keeping units apart does to them: the step, and whether a unit's
    constant value comes out the same constant (true of zero for all of them)."""

    op: str
    step: Step
    keeps_constant: bool
    # The most it multiplies a unit's value by: 1/(1-p) for dropout in training.
    scale: float = 1.0


def pass_through(func: Any, args: tuple, kwargs: dict, result: Any) -> PassThrough | None:
    """How `func(*args, **kwargs) == result` maps the units of its first argument, or None
    when it is not an operation that keeps them apart."""
    name = getattr(func, "__name__", "")
    source = args[0] if args else None
    if not isinstance(source, Tensor) or not isinstance(result, Tensor):
        return None
    if name in _POOLS:
        keeps = name.startswith(("max", "adaptive"))  # lp pooling scales a constant
        if name.startswith("avg"):  # an average over zero padding, or by an override, changes it
            padding = _arg(args, kwargs, 3, "padding", 0)
            keeps = (
                not any(padding) if isinstance(padding, (tuple, list)) else padding == 0
            ) and _arg(args, kwargs, 6, "divisor_override", None) is None
        return PassThrough(name, _pool_step(name, _POOLS[name], source.dim()), keeps)
    if name in _DROPOUTS:
        training, p = _arg(args, kwargs, 2, "training", True), _arg(args, kwargs, 1, "p", 0.5)
        scale = 1.0 / (1.0 - p) if training and p < 1 else 1.0
        return PassThrough(name, _identity_step, keeps_constant=not training, scale=scale)
    if name == "flatten":
        start, end = _arg(args, kwargs, 1, "start_dim", 0), _arg(args, kwargs, 2, "end_dim", -1)
        return PassThrough(name, _flatten_step(tuple(source.shape), start, end), True)
    if name in ("view", "reshape"):
        return _view_pass_through(name, tuple(source.shape), tuple(result.shape))
    if name in ("contiguous", "clone"):
        return PassThrough(name, _identity_step, True)
    return None


def _view_pass_through(
    op: str, before: tuple[int, ...], after: tuple[int, ...]
) -> PassThrough | None:
    """A view or reshape that is a flatten of the trailing dims (``x.view(x.size(0), -1)``)."""
    if before == after:
        return PassThrough(op, _identity_step, True)
    start = len(after) - 1
    if before[:start] == after[:start] and math.prod(before[start:]) == after[-1]:
        return PassThrough(op, _flatten_step(before, start, -1), True)
    return None


def gate_pass_through(name: str, args: tuple, result: Any) -> PassThrough | None:
    """A gate, ``h * g`` of two tensors shaped as the product (Llama's ``act(gate(x)) * up(x)``,
    T5's gated GELU): each unit stays where it was, scaled by the other branch's value at its
    place, so a constant 0 stays 0 and nothing else stays constant."""
    if name not in GATE_OPS or len(args) < 2 or not isinstance(result, Tensor):
        return None
    if not all(isinstance(a, Tensor) and a.shape == result.shape for a in args[:2]):
        return None
    return PassThrough(name, _identity_step, keeps_constant=False)
