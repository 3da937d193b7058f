"""Which dim of an activation's input holds its units, read from the autograd graph that
made the input. The graph is followed back through steps that keep each dim's meaning
(elementwise arithmetic and activations, casts, dropout's mask, norm layers, slices,
chunks, concatenations, padding, pooling, upsampling) or move dims (permute, transpose,
squeeze, unsqueeze) to what made it: a layer's output whose units the forward tracker
knows, a matrix product of the data with a weight (``F.linear``, ``x @ W``: features
last) or a convolution (channels, dim 1). Shapes are carried along, so an operand that
only broadcasts into the input tells nothing."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import torch

__all__ = ["unit_dim_in_graph"]

# A shape on the way back; None where a size is not known (a concatenated dim).
Shape = tuple[int | None, ...]
# A node's output's unit dim as far as the tracker knows it (a layer's output, with its
# shape; the dim None where that layer's own input told nothing); None for other nodes.
KnownUnits = Callable[[Any], "tuple[int | None, torch.Size] | None"]

_ELEMENTWISE_NODES = frozenset(
    {
        *(f"{op}Backward{i}" for op in ("Add", "Sub", "Rsub", "Mul", "Div") for i in (0, 1)),
        *(f"{op}Backward0" for op in ("Neg", "Clone", "ToCopy", "NativeDropout", "Abs", "Exp")),
        *(f"{op}Backward0" for op in ("Tanh", "Sigmoid", "Relu", "Gelu", "Silu", "Mish")),
        *(f"{op}Backward0" for op in ("Elu", "LeakyRelu", "Hardtanh", "Hardswish", "Softplus")),
        *("PowBackward0", "SqrtBackward0", "MaximumBackward0", "MinimumBackward0"),
        *("WhereBackward0", "EluBackward1", "LeakyReluBackward1", "CeluBackward0"),
        *("NativeBatchNormBackward0", "CudnnBatchNormBackward0", "MiopenBatchNormBackward0"),
        *("NativeLayerNormBackward0", "NativeGroupNormBackward0"),
    }
)
# Nodes whose input keeps the output's dims, at sizes they saved.
_RESIZED_NODES = frozenset(
    {
        "SliceBackward0",
        "SplitBackward0",
        "SplitWithSizesBackward0",
        *(
            f"Upsample{mode}{n}DBackward0"
            for mode in ("Nearest", "Linear", "Bilinear")
            for n in "123"
        ),
        *(f"{pool}{n}DBackward0" for pool in ("AvgPool", "AdaptiveAvgPool") for n in "23"),
        *(f"MaxPool{n}DWithIndicesBackward0" for n in "23"),
        *(f"AdaptiveMaxPool{n}DBackward0" for n in "23"),
    }
)
_MATMUL_NODES = frozenset({"MmBackward0", "AddmmBackward0"})
_VIEW_NODES = frozenset({"ViewBackward0", "UnsafeViewBackward0"})
_CONVOLUTION_NODES = frozenset({"ConvolutionBackward0"})
_TRANSPOSED_LEAF_NODES = frozenset({"TBackward0", "PermuteBackward0", "TransposeBackward0"})
_MAX_NODES = 64  # how far back an input is followed


def unit_dim_in_graph(z: torch.Tensor, known: KnownUnits) -> int | None:
    """The dim of `z` (0 .. z.dim() - 1) that its makers in the autograd graph say holds its
    units, or None: no maker found, or two that disagree."""
    if z.grad_fn is None:
        return None
    dims = _unit_dims(z.grad_fn, tuple(z.shape), known, [_MAX_NODES])
    return dims.pop() if len(dims) == 1 else None


def _unit_dims(node: Any, shape: Shape, known: KnownUnits, budget: list[int]) -> set[int]:
    """The unit dims (of the tensor `node` made, shaped `shape`) its makers say."""
    if node is None or budget[0] <= 0:
        return set()
    budget[0] -= 1
    made = known(node)
    if made is not None and made[0] is not None:  # a layer's output, if shaped so
        dim, made_shape = made
        return {dim % len(shape)} if _same(made_shape, shape) else set()
    name = type(node).__name__
    if name in _CONVOLUTION_NODES:
        return {1}
    if name in _VIEW_NODES:
        return {len(shape) - 1} if _viewed_matmul(node, shape) else set()
    found: set[int] = set()
    for child, child_shape, to_ours in _inputs(node, name, shape):
        for dim in _unit_dims(child, child_shape, known, budget):
            if to_ours[dim] is not None:
                found.add(to_ours[dim])
    return found


def _inputs(node: Any, name: str, shape: Shape) -> Iterator[tuple[Any, Shape, list[int | None]]]:
    """For each input of `node` followed back: its node, its shape, and for each of its dims
    the output dim it became (None where it is gone)."""
    ndim = len(shape)
    same = list(range(ndim))
    if name in _ELEMENTWISE_NODES:
        for child, _ in node.next_functions:
            yield child, shape, same
    elif name == "CatBackward0":
        dim = _dim(node._saved_dim, ndim)
        for child, _ in node.next_functions:
            yield child, tuple(None if i == dim else s for i, s in enumerate(shape)), same
    elif name in _RESIZED_NODES:
        yield node.next_functions[0][0], _saved_shape(node, shape), same
    elif name == "ConstantPadNdBackward0":
        pads, sizes = node._saved_pad, list(shape)
        for i in range(len(pads) // 2):
            if sizes[ndim - 1 - i] is not None:
                sizes[ndim - 1 - i] -= pads[2 * i] + pads[2 * i + 1]
        yield node.next_functions[0][0], tuple(sizes), same
    elif name == "UnsqueezeBackward0":
        dim = _dim(node._saved_dim, ndim)
        to_ours = [i if i < dim else i + 1 for i in range(ndim - 1)]
        yield node.next_functions[0][0], shape[:dim] + shape[dim + 1 :], to_ours
    elif name == "SqueezeBackward1":
        sizes = tuple(node._saved_self_sym_sizes)
        dim = _dim(node._saved_dim, len(sizes))
        to_ours = [None if i == dim else i if i < dim else i - 1 for i in range(len(sizes))]
        yield node.next_functions[0][0], sizes, to_ours
    elif name in ("PermuteBackward0", "TransposeBackward0"):
        moved = _moved_dims(node, ndim)  # output dim i is input dim moved[i]
        source = [0] * ndim
        for i, j in enumerate(moved):
            source[j] = shape[i]
        yield node.next_functions[0][0], tuple(source), [moved.index(j) for j in range(ndim)]


def _saved_shape(node: Any, shape: Shape) -> Shape:
    """The input's shape a resizing node saved (its sizes, or its saved input tensor's)."""
    sizes = getattr(node, "_saved_self_sym_sizes", None)
    if sizes is None:
        saved = getattr(node, "_saved_self", None)
        sizes = saved.shape if isinstance(saved, torch.Tensor) else None
    return tuple(sizes) if sizes is not None and len(sizes) == len(shape) else (None,) * len(shape)


def _same(made: torch.Size, shape: Shape) -> bool:
    return len(made) == len(shape) and all(s is None or s == m for m, s in zip(made, shape))


def _viewed_matmul(node: Any, shape: Shape) -> bool:
    """A 2-D product [rows, features] of the data with a weight on the right (``x @ W``,
    ``F.linear``), viewed as `shape` (features last)."""
    product = node.next_functions[0][0]
    sizes = tuple(node._saved_self_sym_sizes)
    if type(product).__name__ not in _MATMUL_NODES or len(shape) <= 2 or None in shape:
        return False
    rows = 1
    for size in shape[:-1]:
        rows *= size
    *_, left, right = (child for child, _ in product.next_functions)
    # A weight on the left, the data on the right (W @ x): features along dim -2.
    weight_first = _is_leaf(left) and not _is_leaf(right)
    return sizes == (rows, shape[-1]) and not weight_first


def _is_leaf(node: Any) -> bool:
    """A leaf that takes gradients, or its transpose: a weight, in a model's graph (None,
    where an operand takes none, says nothing: data, or a frozen weight)."""
    while node is not None and type(node).__name__ in _TRANSPOSED_LEAF_NODES:
        node = node.next_functions[0][0]
    return node is not None and type(node).__name__ == "AccumulateGrad"


def _moved_dims(node: Any, ndim: int) -> list[int]:
    """For a permute or transpose node: which input dim each output dim is."""
    if type(node).__name__ == "PermuteBackward0":
        return [_dim(d, ndim) for d in node._saved_dims]
    order = list(range(ndim))
    a, b = _dim(node._saved_dim0, ndim), _dim(node._saved_dim1, ndim)
    order[a], order[b] = order[b], order[a]
    return order


def _dim(saved: int, ndim: int) -> int:
    """A saved dim as 0 .. ndim - 1: autograd hands a negative one (``.mT``'s -2, -1) back
    as an unsigned 64-bit integer."""
    if saved >= 1 << 63:
        saved -= 1 << 64
    return saved % ndim
