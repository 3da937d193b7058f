"""Forward-mode AD (torch.autograd.forward_ad, torch.func.jvp/jacfwd): tangents equal
torch.nn.functional's, out of place and in place, with and without a backward graph.
gradcheck/gradgradcheck in test_autograd.py also check forward mode and forward over
reverse against finite differences."""

from __future__ import annotations

import pytest
import torch
import torch.autograd.forward_ad as fwAD
import torch.nn.functional as F
from helpers import ACTIVATIONS, Activation, ids
from ulps import assert_values, forward_ulps, input_grad_ulps

import torch_ext.functional as X

pytestmark = pytest.mark.usefixtures("device")

ops = torch.ops.torch_ext


def tangent_of(
    fn, primal: torch.Tensor, tangent: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """fn's output and its tangent at `primal` in direction `tangent`."""
    with fwAD.dual_level():
        out = fn(fwAD.make_dual(primal, tangent))
        value, out_tangent = fwAD.unpack_dual(out)
    assert out_tangent is not None, "no tangent: forward AD would read it as zero"
    return value, out_tangent


def with_zeros(*shape: int) -> torch.Tensor:
    x = torch.randn(*shape, dtype=torch.float64)
    x.view(-1)[::5] = 0.0  # the kink: both use the negative branch's derivative there
    return x


@pytest.mark.parametrize("requires_grad", [False, True], ids=["no_graph", "graph"])
@pytest.mark.parametrize("act", ACTIVATIONS, ids=ids(ACTIVATIONS))
def test_out_of_place_tangent_matches_native(act: Activation, requires_grad: bool):
    x = with_zeros(4, 5).requires_grad_(requires_grad)
    t = torch.randn(4, 5, dtype=torch.float64)
    (value, tangent) = tangent_of(act.run, x, t)
    (native_value, native_tangent) = tangent_of(lambda d: act.run(d, native=True), x, t)
    # Leaky ReLU bitwise; the ELU family within its stated ulps (an expm1 of its own).
    assert_values(value, native_value, forward_ulps(act.name, x.dtype, act.param), inputs=(x,))
    assert_values(tangent, native_tangent, input_grad_ulps(act.name, x.dtype), inputs=(x, t))


@pytest.mark.parametrize("requires_grad", [False, True], ids=["no_graph", "graph"])
@pytest.mark.parametrize("act", ACTIVATIONS, ids=ids(ACTIVATIONS))
def test_in_place_tangent_matches_native(act: Activation, requires_grad: bool):
    """Against PyTorch's in-place op; with a negative parameter, which PyTorch refuses
    (its in-place derivative comes from the result), against its out-of-place op."""
    x = with_zeros(4, 5).requires_grad_(requires_grad)
    t = torch.randn(4, 5, dtype=torch.float64)
    results = []
    for native in (False, True):
        with fwAD.dual_level():
            h = fwAD.make_dual(x * 1.0, t)  # a non-leaf: in place is allowed
            view = h[1:3]
            if native and not act.inplace_backward_ok:
                view.copy_(act.run(view.clone(), native=True))
            else:
                act.run(view, inplace=True, native=native)
            results.append([*fwAD.unpack_dual(h)])
        if requires_grad:  # the backward graph of the in-place op is intact
            (grad,) = torch.autograd.grad(results[-1][0].sum(), x)
            results[-1].append(grad)
    for ours, native in zip(*results):
        torch.testing.assert_close(ours, native)


def test_prelu_tangent_in_input_and_weight():
    x = torch.randn(3, 4, 5, dtype=torch.float64)  # x == 0: see the next test
    w = torch.tensor([0.25, -0.5, 1.5, 0.0], dtype=torch.float64)
    tx, tw = torch.randn_like(x), torch.randn_like(w)
    for xt, wt in [(tx, None), (None, tw), (tx, tw)]:
        outs = []
        for fn in (X.prelu, F.prelu):
            with fwAD.dual_level():
                dx = fwAD.make_dual(x, xt) if xt is not None else x
                dw = fwAD.make_dual(w, wt) if wt is not None else w
                outs.append(fwAD.unpack_dual(fn(dx, dw)))
        torch.testing.assert_close(outs[0].tangent, outs[1].tangent, rtol=0, atol=1e-15)


def test_prelu_jvp_at_zero_agrees_with_its_gradient():
    """At x == 0 PyTorch's PReLU jvp takes slope 1 while its gradient takes the weight;
    ours takes the weight in both (SEMANTICS.md), so jacfwd equals jacrev."""
    x = torch.tensor([-1.0, 0.0, 2.0], dtype=torch.float64)
    w = torch.tensor([0.25], dtype=torch.float64)
    _, tangent = tangent_of(lambda d: X.prelu(d, w), x, torch.ones_like(x))
    (grad,) = torch.autograd.grad(F.prelu(x.requires_grad_(), w).sum(), x)
    torch.testing.assert_close(tangent, grad, rtol=0, atol=0)


@pytest.mark.parametrize("name", ["leaky_relu", "elu", "celu", "prelu"])
def test_counted_forward_has_the_plain_forwards_tangent(name: str):
    x = with_zeros(6, 4)
    t = torch.randn_like(x)
    counts = torch.zeros(2, 4, dtype=torch.int64)  # per unit: z > 0, z > alive_threshold
    threshold = torch.zeros(4)
    w = torch.tensor([0.3], dtype=torch.float64)
    counted = {
        "leaky_relu": (
            lambda d: ops.leaky_relu_counted(d, 0.1, counts, 1, threshold),
            lambda d: ops.leaky_relu(d, 0.1),
        ),
        "elu": (
            lambda d: ops.elu_counted(d, 1.3, 1.0, counts, 1, threshold),
            lambda d: ops.elu(d, 1.3),
        ),
        "celu": (
            lambda d: ops.elu_counted(d, 0.5, 1.0, counts, 1, threshold, input_scale=2.0),
            lambda d: ops.celu(d, 0.5),
        ),
        "prelu": (
            lambda d: ops.prelu_counted(d, w, counts, 1, threshold),
            lambda d: ops.prelu(d, w),
        ),
    }[name]
    counted_tangent, plain_tangent = (tangent_of(fn, x, t) for fn in counted)
    torch.testing.assert_close(counted_tangent, plain_tangent, rtol=0, atol=0)
    assert counts[0].tolist() == (x > 0).sum(0).tolist()


def test_jvp_and_jacfwd_match_native():
    x, t = with_zeros(7), torch.randn(7, dtype=torch.float64)
    for ours, native in [
        (X.selu, F.selu),
        (lambda a: X.elu(a, 0.5), lambda a: F.elu(a, 0.5)),
        (lambda a: X.celu(a, 0.5), lambda a: F.celu(a, 0.5)),
        (lambda a: X.celu(a, -2.0), lambda a: F.celu(a, -2.0)),
    ]:
        torch.testing.assert_close(
            torch.func.jvp(ours, (x,), (t,)), torch.func.jvp(native, (x,), (t,))
        )
        torch.testing.assert_close(torch.func.jacfwd(ours)(x), torch.func.jacfwd(native)(x))


def test_masked_backward_tangent_in_any_layout():
    """leaky_relu_backward_masked reads its gradient in the result's layout; a tangent laid
    out otherwise (here transposed) must give the same derivative."""
    x = with_zeros(5, 6)
    result, mask = ops.leaky_relu_masked(x, 0.2)
    g = torch.randn(5, 6, dtype=torch.float64)
    tg = torch.randn(6, 5, dtype=torch.float64).t()
    with fwAD.dual_level():
        out = ops.leaky_relu_backward_masked(fwAD.make_dual(g, tg), mask, 0.2, result.stride())
        tangent = fwAD.unpack_dual(out).tangent
    torch.testing.assert_close(tangent, torch.where(x > 0, tg, 0.2 * tg), rtol=0, atol=0)


def test_functorch_grad_transforms_match_native():
    """torch.func.grad/vjp/hessian, which cannot run the C++ autograd Functions, run the
    ops' rules for torch.func (torch_ext/transforms/func.py) and give native's gradients
    (every transform and op: test_func.py)."""
    x = with_zeros(5)
    for transform in (
        lambda f: torch.func.grad(lambda a: f(a).sum()),
        lambda f: lambda a: torch.func.vjp(f, a)[1](torch.ones_like(a)),
        lambda f: torch.func.hessian(lambda a: f(a).sum()),
    ):
        torch.testing.assert_close(transform(X.elu)(x), transform(F.elu)(x))


@pytest.mark.parametrize(
    "name,fn,native",
    [
        ("elu", lambda t, **k: X.elu(t, 1.5, **k), lambda t: F.elu(t, 1.5)),
        ("selu", lambda t, **k: X.selu(t, **k), F.selu),
        ("celu", lambda t, **k: X.celu(t, 2.0, **k), lambda t: F.celu(t, 2.0)),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_forward_over_reverse_with_save_output_matches_native(name, fn, native):
    """The tangent of the gradient (f''(x) * t) survives save_output=True: under forward AD the
    output is not saved (it has no tangent yet when saved), the input is."""
    x = torch.tensor([-1.5, -0.3, 0.7, -4.0], dtype=torch.float64)
    t = torch.tensor([1.0, 2.0, -1.0, 0.5], dtype=torch.float64)
    tangents = []
    for f in (lambda v: fn(v, save_output=True), native):
        with fwAD.dual_level():
            dual = fwAD.make_dual(x.clone().requires_grad_(), t)
            (grad,) = torch.autograd.grad(f(dual).sum(), dual, create_graph=True)
            tangents.append(fwAD.unpack_dual(grad).tangent)
    assert tangents[0] is not None
    torch.testing.assert_close(tangents[0], tangents[1])
