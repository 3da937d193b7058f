"""The rules of torch_ext's ops under torch.func (see :mod:`torch_ext.transforms.func`):
for each op, its vector-Jacobian and Jacobian-vector products and its batching rule, in one
table, :data:`RULES`, over the op's positional arguments. The derivatives call the
``*_backward`` ops, which have rules of their own, so derivatives of any order work.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from ..functional import SELU_ALPHA, SELU_SCALE

__all__ = ["COUNTED", "IN_PLACE", "RULES", "Rule", "counted_refusal"]

ops = torch.ops.torch_ext

Args = Sequence[Any]
InDims = Sequence[int | None]


@dataclass(frozen=True)
class Rule:
    """An op's derivatives and batching rule, over its positional arguments ``args``.

    Attributes:
        inputs: positions of the differentiable tensor arguments.
        vjp: ``(args, grad_outputs, needs_grad) -> grads``, one per ``inputs`` position;
            None where ``needs_grad`` is False or the gradient is zero.
        jvp: ``(args, tangents) -> output tangent(s)``; ``tangents`` one per ``inputs``
            position, None where the input has none.
        vmap: ``(op, args, in_dims, batch_size) -> (outputs, out_dims)`` over the unwrapped
            ``args``; ``in_dims`` as :func:`torch.func.vmap` gives them.
    """

    inputs: tuple[int, ...]
    vjp: Callable[[Args, Sequence[Tensor], Sequence[bool]], Sequence[Tensor | None]]
    jvp: Callable[[Args, Sequence[Tensor | None]], Any]
    vmap: Callable[[torch._ops.OpOverload, Args, InDims, int], tuple[Any, Any]]


def _or_zeros(t: Tensor | None, like: Tensor) -> Tensor:
    """A tangent, or zeros where the input has none."""
    return torch.zeros_like(like) if t is None else t


def _given(t: Tensor | None, term: Callable[[Tensor], Tensor]) -> Tensor | None:
    """`term(t)`, or None where there is no `t` (an input without a tangent adds nothing)."""
    return None if t is None else term(t)


def _sum_present(terms: Sequence[Tensor | None], zeros: Callable[[], Tensor]) -> Tensor:
    """The sum of the terms that exist (a missing tangent contributes none), else `zeros()`."""
    present = [t for t in terms if t is not None]
    if not present:
        return zeros()
    total = present[0]
    for term in present[1:]:
        total = total + term
    return total


# --- batching ------------------------------------------------------------------------------


def _lined_up(t: Tensor, in_dim: int | None, rank: int) -> Tensor:
    """A batched `t` with its batch dim first and singleton dims after it up to `rank`
    dims per sample, so that broadcasting against the other operands (unbatched ones
    included) lines the samples up; an unbatched `t` as it is."""
    if in_dim is None:
        return t
    t = t.movedim(in_dim, 0)
    for _ in range(rank - (t.dim() - 1)):
        t = t.unsqueeze(1)
    return t


def _elementwise_vmap(
    op: torch._ops.OpOverload, args: Args, in_dims: InDims, batch_size: int
) -> tuple[Any, int]:
    """Elementwise ops (the activations, their backward ops, which broadcast as ATen's do):
    one call on the whole batch, each sample where broadcasting puts it."""
    tensors = [i for i, a in enumerate(args) if isinstance(a, Tensor)]
    rank = max(args[i].dim() - (in_dims[i] is not None) for i in tensors)
    lined_up = [
        _lined_up(a, d, rank) if i in tensors else a for i, (a, d) in enumerate(zip(args, in_dims))
    ]
    return op(*lined_up), 0


# PReLU's weight is per channel (dim 1 of a sample), so a batch of samples cannot go
# through one call as it is: the batch joins the channels instead. A sample seen as
# [N, C, L] (an input of fewer than 2 dims is one channel) and a batch as [B, N, C, L]
# become [N, B * C, L], with each sample's slopes repeated into a weight of B * C: one call
# then gives every sample its own slopes (per-sample weights, as vmap over parameters has)
# and, from prelu_backward, its own weight gradient.


def _channels(sample: torch.Size) -> tuple[int, int, int]:
    """(N, C, L) of one sample of PReLU's input."""
    if len(sample) < 2:
        return 1, 1, math.prod(sample)
    return sample[0], sample[1], math.prod(sample[2:])


def _fold(t: Tensor, sample: torch.Size) -> Tensor:
    """[B, *sample] -> [N, B * C, L]."""
    n, c, length = _channels(sample)
    batch = t.shape[0]
    return t.reshape(batch, n, c, length).transpose(0, 1).reshape(n, batch * c, length)


def _unfold(t: Tensor, batch: int, sample: torch.Size) -> Tensor:
    """[N, B * C, L] -> [B, *sample]."""
    n, c, length = _channels(sample)
    return t.reshape(n, batch, c, length).transpose(0, 1).reshape(batch, *sample)


def _fold_weight(weight: Tensor, channels: int) -> Tensor:
    """[B, *weight] -> [B * C]: each sample's slopes, a shared one repeated per channel."""
    return weight.reshape(weight.shape[0], -1).expand(-1, channels).reshape(-1)


def _unfold_weight_grad(grad: Tensor, batch: int, channels: int, shape: torch.Size) -> Tensor:
    """[B * C] -> [B, *shape]: a shared slope's gradient sums over its channels."""
    per_channel = grad.reshape(batch, channels)
    if math.prod(shape) == 1:
        per_channel = per_channel.sum(1)
    return per_channel.reshape(batch, *shape)


def _prelu_vmap(
    op: torch._ops.OpOverload, args: Args, in_dims: InDims, batch_size: int
) -> tuple[Any, Any]:
    """prelu(input, weight) and prelu_backward(grad_output, input, weight), folded."""
    batched = [
        t.expand(batch_size, *t.shape) if d is None else t.movedim(d, 0)
        for t, d in zip(args, in_dims)
    ]
    sample, weight_shape = batched[-2].shape[1:], batched[-1].shape[1:]
    channels = _channels(sample)[1]
    if len(weight_shape) > 1 or math.prod(weight_shape) not in (1, channels):
        op(*(t[0] for t in batched))  # one sample raises the op's own error, eager's words
    # grad_output broadcasts to the input's shape, as in the op.
    data = [_lined_up(t, 0, len(sample)).expand(batch_size, *sample) for t in batched[:-1]]
    out = op(*(_fold(t, sample) for t in data), _fold_weight(batched[-1], channels))
    if isinstance(out, Tensor):
        return _unfold(out, batch_size, sample), 0
    grad_input, grad_weight = out
    return (
        _unfold(grad_input, batch_size, sample),
        _unfold_weight_grad(grad_weight, batch_size, channels, weight_shape),
    ), (0, 0)


# --- derivatives ---------------------------------------------------------------------------


def _unary(derivative: Callable[[Tensor, Args], Tensor]) -> Rule:
    """An elementwise activation of argument 0. Its Jacobian is diagonal, so the
    vector-Jacobian and Jacobian-vector products are one product, `derivative(v, args)` =
    f'(x) * v, which its backward op computes."""
    return Rule(
        inputs=(0,),
        vjp=lambda args, grads, needs: (derivative(grads[0], args),),
        jvp=lambda args, tangents: derivative(_or_zeros(tangents[0], args[0]), args),
        vmap=_elementwise_vmap,
    )


def _leaky_relu_derivative(v: Tensor, args: Args) -> Tensor:
    return ops.leaky_relu_backward(v, args[0], args[1], False)


def _elu_derivative(
    params: Callable[[Args], tuple[float, float, float]],
) -> Callable[[Tensor, Args], Tensor]:
    """ELU, SELU and CELU are one formula in (alpha, scale, input_scale), as in ATen;
    `params` reads a member's from its arguments."""

    def derivative(v: Tensor, args: Args) -> Tensor:
        alpha, scale, input_scale = params(args)
        return ops.elu_backward(v, args[0], alpha, scale, False, input_scale)

    return derivative


def _channel_view(weight: Tensor, input: Tensor) -> Tensor:
    """PReLU's `weight` broadcast against `input`: [1, C, 1, ...] or a scalar."""
    if weight.numel() == 1 or input.dim() < 2:
        return weight.reshape(())
    return weight.reshape(1, -1, *([1] * (input.dim() - 2)))


def _reduce_to_weight(per_element: Tensor, weight: Tensor) -> Tensor:
    """A per-element weight gradient summed to `weight`'s shape."""
    if weight.numel() == 1 or per_element.dim() < 2:
        return per_element.sum().reshape(weight.shape)
    dims = [d for d in range(per_element.dim()) if d != 1]
    return per_element.sum(dims).reshape(weight.shape)


def _where_negative(input: Tensor, value: Tensor) -> Tensor:
    """`value` where PReLU takes its negative branch (x <= 0), else 0."""
    return torch.where(input > 0, 0.0, value)


def _prelu_vjp(args: Args, grads: Sequence[Tensor], needs: Sequence[bool]) -> Sequence[Tensor]:
    return ops.prelu_backward(grads[0], args[0], args[1])  # both in one pass


def _prelu_jvp(args: Args, tangents: Sequence[Tensor | None]) -> Tensor:
    """f'(x) dx + (x > 0 ? 0 : x) dw, dw per channel."""
    input, weight = args[0], args[1]
    t_input, t_weight = tangents
    return _sum_present(
        [
            _given(t_input, lambda t: ops.prelu_backward(t, input, weight)[0]),
            _given(t_weight, lambda t: _where_negative(input, input * _channel_view(t, input))),
        ],
        lambda: torch.zeros_like(input),
    )


def _prelu_backward_vjp(
    args: Args, grads: Sequence[Tensor], needs: Sequence[bool]
) -> Sequence[Tensor]:
    """grad_input = g * (x > 0 ? 1 : w) and grad_weight = sum(x > 0 ? 0 : x * g) are
    linear in g; x enters through x * g, w through grad_input."""
    grad_output, input, weight = args[:3]
    gg_input, gg_weight = grads
    gg_weight = _channel_view(gg_weight, input)
    return (
        ops.prelu_backward(gg_input, input, weight)[0] + _where_negative(input, input * gg_weight),
        _where_negative(input, grad_output * gg_weight),
        _reduce_to_weight(_where_negative(input, gg_input * grad_output), weight),
    )


def _prelu_backward_jvp(args: Args, tangents: Sequence[Tensor | None]) -> tuple[Tensor, Tensor]:
    """d grad_input = f'(x) dg + (x > 0 ? 0 : g dw), d grad_weight = sum(x > 0 ? 0 :
    dx g + x dg)."""
    grad_output, input, weight = args[:3]
    t_grad, t_input, t_weight = (_or_zeros(t, a) for t, a in zip(tangents, args[:3]))
    return (
        ops.prelu_backward(t_grad, input, weight)[0]
        + _where_negative(input, grad_output * _channel_view(t_weight, input)),
        _reduce_to_weight(_where_negative(input, t_input * grad_output + input * t_grad), weight),
    )


def _leaky_relu_backward_vjp(
    args: Args, grads: Sequence[Tensor], needs: Sequence[bool]
) -> Sequence[Tensor | None]:
    """Linear in grad_output, piecewise constant in self_or_result (derivative 0)."""
    return ops.leaky_relu_backward(grads[0], *args[1:]), None


def _leaky_relu_backward_jvp(args: Args, tangents: Sequence[Tensor | None]) -> Tensor:
    return ops.leaky_relu_backward(_or_zeros(tangents[0], args[0]), *args[1:])


def _elu_curvature(h: Tensor, args: Args) -> Tensor:
    """h * f''(s) for elu_backward(grad_output, s, alpha, scale, is_result, input_scale):
    from the input f''(x) = input_scale * f'(x) for x < 0; from the result d f'/dy =
    input_scale for y < 0; 0 elsewhere, at s = +-0 too, as ATen's elu_double_backward."""
    s, alpha, scale, is_result, input_scale = args[1:6]
    scaled = h * input_scale
    curvature = (
        scaled if is_result else ops.elu_backward(scaled, s, alpha, scale, False, input_scale)
    )
    return curvature * (s < 0).to(curvature.dtype)


def _elu_backward_vjp(
    args: Args, grads: Sequence[Tensor], needs: Sequence[bool]
) -> Sequence[Tensor | None]:
    """grad_input = g * f'(s): d/dg is the same backward, d/ds is g * f''(s)."""
    grad_output, s = args[:2]
    (gg,) = grads
    return (
        ops.elu_backward(gg, s, *args[2:]) if needs[0] else None,
        _elu_curvature(gg * grad_output, args) if needs[1] else None,
    )


def _elu_backward_jvp(args: Args, tangents: Sequence[Tensor | None]) -> Tensor:
    grad_output, s = args[:2]
    t_grad, t_s = tangents
    return _sum_present(
        [
            _given(t_grad, lambda t: ops.elu_backward(t, s, *args[2:])),
            _given(t_s, lambda t: _elu_curvature(t * grad_output, args)),
        ],
        lambda: ops.elu_backward(torch.zeros_like(grad_output), s, *args[2:]),
    )


# --- counted ops ---------------------------------------------------------------------------

# Counted op -> its plain op or ops (the same values and gradients), for messages.
COUNTED = {
    "leaky_relu_counted": "leaky_relu",
    "elu_counted": "elu, selu or celu",
    "prelu_counted": "prelu",
}


# Why each transform cannot run a counted op.
_COUNTED_REASONS = {
    "vmap": "its per-unit statistics go into one unbatched 'counts' (and 'abs_sum'), which "
    "cannot take a count per sample",
    "functionalize": "it writes its per-unit statistics into its 'counts' (and 'abs_sum') "
    "argument, a mutation functionalize cannot remove from a custom op",
}


def counted_refusal(name: str, transform: str) -> RuntimeError:
    return RuntimeError(
        f"torch_ext::{name}: not supported under torch.func.{transform}: "
        f"{_COUNTED_REASONS[transform]}. Inside the transform call torch_ext::{COUNTED[name]} "
        "(the same values and gradients: torch_ext.functional, or a torch_ext.nn module "
        "without a counter) and count outside it (torch_ext::count_active_)."
    )


def _counted(rule: Rule, name: str) -> Rule:
    """A counted op differentiates as its plain op; below the last level its forward, the
    op itself, counts the real tensors. vmap would need a counter per sample: refused."""

    def refuse(op: torch._ops.OpOverload, args: Args, in_dims: InDims, batch_size: int) -> Any:
        raise counted_refusal(name, "vmap")

    return Rule(inputs=rule.inputs, vjp=rule.vjp, jvp=rule.jvp, vmap=refuse)


# --- the table -----------------------------------------------------------------------------

_LEAKY_RELU = _unary(_leaky_relu_derivative)
_PRELU = Rule(inputs=(0, 1), vjp=_prelu_vjp, jvp=_prelu_jvp, vmap=_prelu_vmap)

#: Each out-of-place op's derivatives and batching rule, over its positional arguments.
RULES: dict[str, Rule] = {
    "leaky_relu": _LEAKY_RELU,
    "elu": _unary(_elu_derivative(lambda a: (a[1], 1.0, 1.0))),
    "selu": _unary(_elu_derivative(lambda a: (SELU_ALPHA, SELU_SCALE, 1.0))),
    "celu": _unary(_elu_derivative(lambda a: (a[1], 1.0, 1.0 / a[1]))),
    "prelu": _PRELU,
    "leaky_relu_backward": Rule(
        inputs=(0, 1),
        vjp=_leaky_relu_backward_vjp,
        jvp=_leaky_relu_backward_jvp,
        vmap=_elementwise_vmap,
    ),
    "elu_backward": Rule(
        inputs=(0, 1), vjp=_elu_backward_vjp, jvp=_elu_backward_jvp, vmap=_elementwise_vmap
    ),
    "prelu_backward": Rule(
        inputs=(0, 1, 2), vjp=_prelu_backward_vjp, jvp=_prelu_backward_jvp, vmap=_prelu_vmap
    ),
    # (input, negative_slope, counts, ...), (input, alpha, scale, counts, unit_dim,
    # alive_threshold, save_output, input_scale, abs_sum), (input, weight, counts, ...)
    "leaky_relu_counted": _counted(_LEAKY_RELU, "leaky_relu_counted"),
    "elu_counted": _counted(_unary(_elu_derivative(lambda a: (a[1], a[2], a[7]))), "elu_counted"),
    "prelu_counted": _counted(_PRELU, "prelu_counted"),
}

#: In-place op -> its out-of-place op.
IN_PLACE = {"leaky_relu_": "leaky_relu", "elu_": "elu", "selu_": "selu", "celu_": "celu"}
