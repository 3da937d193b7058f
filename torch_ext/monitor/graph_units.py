"""Which dim of an activation's input holds its units, read from the autograd graph that
made the input: followed back through steps that keep each dim's meaning (elementwise
arithmetic, casts, dropout's mask) or move dims (permute, transpose) to what made it: a
layer's output whose units the forward tracker knows, a matrix product with a weight
(``F.linear``, ``x @ W``: features last) or a convolution (channels, dim 1)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

__all__ = ["unit_dim_in_graph"]

# Nodes whose output has the layout of their (first) input, dim for dim.
_SAME_LAYOUT_NODES = frozenset(
    {
        *(f"{op}Backward{i}" for op in ("Add", "Sub", "Rsub", "Mul", "Div") for i in (0, 1)),
        "NegBackward0",
        "CloneBackward0",
        "ToCopyBackward0",
        "NativeDropoutBackward0",
    }
)
# A matrix product on inputs above 2-D is a 2-D product viewed back to them.
_MATMUL_NODES = frozenset({"MmBackward0", "AddmmBackward0"})
_VIEW_NODES = frozenset({"ViewBackward0", "UnsafeViewBackward0"})
_CONVOLUTION_NODES = frozenset({"ConvolutionBackward0"})
_MAX_NODES = 32  # how far back an input is followed

# A node's output's unit dim as far as the tracker knows it (a layer's output, with its
# shape); None for a node no layer returned.
KnownUnits = Callable[[Any], "tuple[int | None, torch.Size] | None"]


def unit_dim_in_graph(z: torch.Tensor, known: KnownUnits) -> int | None:
    """The dim of `z` (0 .. z.dim() - 1) that its makers in the autograd graph say holds its
    units, or None: no maker found, or two that disagree."""
    if z.grad_fn is None:
        return None
    budget = [_MAX_NODES]
    dims = _unit_dims(z.grad_fn, tuple(z.shape), known, budget)
    return dims.pop() if len(dims) == 1 else None


def _unit_dims(node: Any, shape: tuple[int, ...], known: KnownUnits, budget: list[int]) -> set:
    """The unit dims (of the tensor `node` made, shaped `shape`) its makers say."""
    if node is None or budget[0] <= 0:
        return set()
    budget[0] -= 1
    made = known(node)
    if made is not None:  # a layer's output: only where shaped so (not a broadcast operand)
        dim, made_shape = made
        return {dim % len(shape)} if dim is not None and tuple(made_shape) == shape else set()
    name = type(node).__name__
    if name in _CONVOLUTION_NODES:
        return {1}
    if name in _VIEW_NODES:
        return {len(shape) - 1} if _viewed_matmul(node, shape) else set()
    if name in _SAME_LAYOUT_NODES:
        found: set = set()
        for child, _ in node.next_functions:
            found |= _unit_dims(child, shape, known, budget)
        return found
    moved = _moved_dims(node, len(shape))
    if moved is None:
        return set()
    # output dim i is input dim moved[i]
    source_shape = [0] * len(shape)
    for i, j in enumerate(moved):
        source_shape[j] = shape[i]
    source = _unit_dims(node.next_functions[0][0], tuple(source_shape), known, budget)
    return {moved.index(d) for d in source}


def _viewed_matmul(node: Any, shape: tuple[int, ...]) -> bool:
    """A 2-D matrix product [rows, features] viewed as `shape` (features last)."""
    product = node.next_functions[0][0]
    sizes = tuple(node._saved_self_sym_sizes)
    rows = 1
    for size in shape[:-1]:
        rows *= size
    return type(product).__name__ in _MATMUL_NODES and len(shape) > 2 and sizes == (rows, shape[-1])


def _moved_dims(node: Any, ndim: int) -> list[int] | None:
    """For a permute or transpose node: which input dim each output dim is; else None."""
    name = type(node).__name__
    if name == "PermuteBackward0":
        dims = [_dim(d, ndim) for d in node._saved_dims]
        return dims if sorted(dims) == list(range(ndim)) else None
    if name == "TransposeBackward0":
        order = list(range(ndim))
        a, b = _dim(node._saved_dim0, ndim), _dim(node._saved_dim1, ndim)
        order[a], order[b] = order[b], order[a]
        return order
    return None


def _dim(saved: int, ndim: int) -> int:
    """A saved dim as 0 .. ndim - 1: autograd hands a negative one (``.mT``'s -2, -1) back
    as an unsigned 64-bit integer."""
    if saved >= 1 << 63:
        saved -= 1 << 64
    return saved % ndim
