"""torch.func over torch_ext's ops (torch_ext/transforms/func.py): every transform (grad, vjp,
jacrev, jacfwd, jvp, hessian, vmap, vmap(grad)) of every op, in place and out of place,
equals the same transform of torch.nn.functional's op; per-sample gradients equal a loop of
torch.autograd.grad; torch.compile of vmap(grad) equals eager. Float64 throughout.

Every test runs with functorch's vmap fallback (a per-sample loop) disabled, so a vmap that
passes ran a batching rule of ours. Eager calls keep the C++ autograd."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F
from helpers import ACTIVATIONS, Activation, ids
from torch.func import functional_call, grad, hessian, jacfwd, jacrev, jvp, vjp, vmap

import torch_ext
import torch_ext.functional as X

ops = torch.ops.torch_ext
aten = torch.ops.aten


@pytest.fixture(autouse=True)
def no_vmap_fallback():
    """vmap raises "hit the vmap fallback which is currently disabled" on an op without a
    batching rule, instead of looping over the samples."""
    previous = torch._C._functorch._is_vmap_fallback_enabled()
    torch._C._functorch._set_vmap_fallback_enabled(False)
    yield
    torch._C._functorch._set_vmap_fallback_enabled(previous)


pytestmark = pytest.mark.usefixtures("device")


def with_zeros(*shape: int) -> torch.Tensor:
    x = torch.randn(*shape, dtype=torch.float64)
    x.view(-1)[::7] = 0.0  # the kink: both take the negative branch's derivative there
    return x


def scalar(f: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
    """A scalar of f's output, not linear in it: hessian then sees f's second derivative."""
    return lambda *args: f(*args).sin().sum()


# --- elementwise activations: each transform, ours against native ---------------------------

# transform(f, x): x is a batch for the vmaps; the others take it whole.
TRANSFORMS: dict[str, Callable] = {
    "grad": lambda f, x: grad(scalar(f))(x),
    "vjp": lambda f, x: vjp(f, x)[1](x.cos()),
    "jacrev": lambda f, x: jacrev(f)(x),
    "jacfwd": lambda f, x: jacfwd(f)(x),
    "jvp": lambda f, x: jvp(f, (x,), (x.cos(),)),
    "hessian": lambda f, x: hessian(scalar(f))(x),
    "vmap": lambda f, x: vmap(f)(x),
    "vmap_in_dims_1": lambda f, x: vmap(f, in_dims=1)(x),
    "vmap(grad)": lambda f, x: vmap(grad(scalar(f)))(x),
    "vmap(jacrev)": lambda f, x: vmap(jacrev(f))(x),
}


def in_place_on_a_view(act: Activation, native: bool) -> Callable[[torch.Tensor], torch.Tensor]:
    """The in-place form on part of a fresh tensor. A negative parameter, whose in-place
    derivative PyTorch refuses (it comes from the result), meets native's out-of-place op."""

    def f(x: torch.Tensor) -> torch.Tensor:
        h = x * 1.0
        if native and not act.inplace_backward_ok:
            h[1:].copy_(act.run(h[1:].clone(), native=True))
        else:
            act.run(h[1:], inplace=True, native=native)
        return h

    return f


@pytest.mark.parametrize("transform", TRANSFORMS, ids=str)
@pytest.mark.parametrize("inplace", [False, True], ids=["out_of_place", "in_place"])
@pytest.mark.parametrize("act", ACTIVATIONS, ids=ids(ACTIVATIONS))
def test_transform_matches_native(act: Activation, inplace: bool, transform: str):
    x = with_zeros(4, 3, 5)
    if inplace:
        ours, native = in_place_on_a_view(act, False), in_place_on_a_view(act, True)
    else:
        ours, native = act.run, (lambda t: act.run(t, native=True))
    run = TRANSFORMS[transform]
    torch.testing.assert_close(run(ours, x), run(native, x))


# --- PReLU: derivatives in the input and the weight, per-sample weights --------------------

# transform(f, x, w): x a batch of samples [N, C, L] (C = 4); w shared or one per channel.
PRELU_TRANSFORMS: dict[str, Callable] = {
    "grad": lambda f, x, w: grad(scalar(f), argnums=(0, 1))(x[0], w),
    "vjp": lambda f, x, w: vjp(f, x[0], w)[1](x[0].cos()),
    "jacrev": lambda f, x, w: jacrev(f, argnums=(0, 1))(x[0], w),
    "jacfwd": lambda f, x, w: jacfwd(f, argnums=(0, 1))(x[0], w),
    "jvp": lambda f, x, w: jvp(f, (x[0], w), (x[0].cos(), w.cos())),
    "hessian": lambda f, x, w: hessian(scalar(f), argnums=(0, 1))(x[0], w),
    "vmap": lambda f, x, w: vmap(f, in_dims=(0, None))(x, w),
    "vmap_in_dims_3": lambda f, x, w: vmap(f, in_dims=(3, None))(x.movedim(0, 3), w),
    "vmap_per_sample_weights": lambda f, x, w: vmap(f)(x, w * torch.arange(1.0, 6.0)[:, None]),
    "vmap_one_input_many_weights": lambda f, x, w: vmap(f, in_dims=(None, 0))(
        x[0], w * torch.arange(-2.0, 3.0)[:, None]
    ),
    "vmap(grad)": lambda f, x, w: vmap(grad(scalar(f), argnums=(0, 1)), in_dims=(0, None))(x, w),
    "vmap(grad)_per_sample_weights": lambda f, x, w: vmap(grad(scalar(f), argnums=(0, 1)))(
        x, w * torch.arange(1.0, 6.0)[:, None]
    ),
}
FORWARD_MODE = {"jacfwd", "jvp", "hessian"}


# Native's own batching of prelu with batched weights resizes an output, and says so.
@pytest.mark.filterwarnings("ignore:An output with one or more elements was resized")
@pytest.mark.parametrize("transform", PRELU_TRANSFORMS, ids=str)
@pytest.mark.parametrize("channels", [1, 4], ids=["shared", "per_channel"])
def test_prelu_transform_matches_native(channels: int, transform: str):
    """At x == 0 PyTorch's PReLU jvp takes slope 1 where its gradient takes the weight;
    ours takes the weight in both (test_forward_ad.py), so forward mode meets native away
    from 0 (test_prelu_jacfwd_equals_jacrev_at_zero covers 0)."""
    x = torch.randn(5, 3, 4, 2, dtype=torch.float64) if transform in FORWARD_MODE else None
    x = with_zeros(5, 3, 4, 2) if x is None else x
    w = torch.tensor([0.25, -0.5, 1.5, 0.0], dtype=torch.float64)[:channels].reshape(channels)
    run = PRELU_TRANSFORMS[transform]
    torch.testing.assert_close(run(X.prelu, x, w), run(F.prelu, x, w))


def test_prelu_jacfwd_equals_jacrev_at_zero():
    x = torch.tensor([[-1.0, 0.0], [2.0, 0.0]], dtype=torch.float64)
    w = torch.tensor([0.25, -3.0], dtype=torch.float64)
    forward = jacfwd(X.prelu, argnums=(0, 1))(x, w)
    reverse = jacrev(X.prelu, argnums=(0, 1))(x, w)
    torch.testing.assert_close(forward, reverse, rtol=0, atol=0)


def test_prelu_vmap_refuses_a_wrong_weight_in_eager_words():
    x = torch.randn(5, 3, 4, dtype=torch.float64)
    with pytest.raises(RuntimeError, match="torch_ext::prelu: expected argument 'weight'"):
        vmap(X.prelu, in_dims=(0, None))(x, torch.ones(3, dtype=torch.float64))


# --- the backward ops: their own derivatives and batching ----------------------------------


def native_prelu_backward(g: torch.Tensor, x: torch.Tensor, w: torch.Tensor):
    return vjp(F.prelu, x, w)[1](g.expand_as(x))  # ours broadcasts grad_output, as ATen's


# name -> (ours, native): functions of (grad_output, self_or_result).
BACKWARD_OPS = {
    "leaky_relu_backward": (
        lambda g, s: ops.leaky_relu_backward(g, s, -0.2, False),
        lambda g, s: aten.leaky_relu_backward(g, s, -0.2, False),
    ),
    "leaky_relu_backward_from_result": (
        lambda g, s: ops.leaky_relu_backward(g, s, 0.3, True),
        lambda g, s: aten.leaky_relu_backward(g, s, 0.3, True),
    ),
    "elu_backward": (  # CELU-like: an input scale
        lambda g, s: ops.elu_backward(g, s, 1.3, 1.5, False, 0.5),
        lambda g, s: aten.elu_backward(g, 1.3, 1.5, 0.5, False, s),
    ),
    "elu_backward_from_result": (
        lambda g, s: ops.elu_backward(g, s, 0.7, 1.0, True, 1.0),
        lambda g, s: aten.elu_backward(g, 0.7, 1.0, 1.0, True, s),
    ),
    "prelu_backward": (
        lambda g, s: ops.prelu_backward(g, s, torch.tensor([0.3, -1.2, 2.0], dtype=s.dtype)),
        lambda g, s: native_prelu_backward(g, s, torch.tensor([0.3, -1.2, 2.0], dtype=s.dtype)),
    ),
}


def total(out) -> torch.Tensor:
    return sum(t.sin().sum() for t in (out if isinstance(out, tuple) else (out,)))


# transform(f, g, s): g, s batches of 4 samples [2, 3, 5] for the vmaps.
BACKWARD_TRANSFORMS: dict[str, Callable] = {
    "grad": lambda f, g, s: grad(lambda *a: total(f(*a)), argnums=(0, 1))(g[0], s[0]),
    "jacfwd": lambda f, g, s: jacfwd(f, argnums=(0, 1))(g[0], s[0]),
    "hessian": lambda f, g, s: hessian(lambda *a: total(f(*a)), argnums=(0, 1))(g[0], s[0]),
    "vmap": lambda f, g, s: vmap(f)(g, s),
    "vmap_unbatched_grad": lambda f, g, s: vmap(f, in_dims=(None, 0))(g[0], s),
    "vmap_unbatched_input": lambda f, g, s: vmap(f, in_dims=(0, None))(g, s[0]),
    "vmap_broadcast_grad": lambda f, g, s: vmap(f)(g[:, :, :1], s),
    "vmap(grad)": lambda f, g, s: vmap(grad(lambda *a: total(f(*a)), argnums=(0, 1)))(g, s),
}


@pytest.mark.parametrize("transform", BACKWARD_TRANSFORMS, ids=str)
@pytest.mark.parametrize("name", BACKWARD_OPS, ids=str)
def test_backward_op_transform_matches_native(name: str, transform: str):
    """At x == 0 PyTorch's PReLU double backward takes slope 1 where its backward takes the
    weight; ours, eager's C++ too, takes the weight (test_second_derivatives_equal_eager
    covers 0), so prelu_backward's derivatives meet native away from 0."""
    ours, native = BACKWARD_OPS[name]
    differentiates = transform in {"grad", "jacfwd", "hessian", "vmap(grad)"}
    if name == "prelu_backward" and differentiates:
        s = torch.randn(4, 2, 3, 5, dtype=torch.float64)
    else:
        s = with_zeros(4, 2, 3, 5)
    if name.endswith("from_result"):  # a result of the activation: its sign is the input's
        s = s.abs() * torch.where(torch.rand_like(s) < 0.5, -0.5, 1.0)
    g = torch.randn(4, 2, 3, 5, dtype=torch.float64)
    run = BACKWARD_TRANSFORMS[transform]
    torch.testing.assert_close(run(ours, g, s), run(native, g, s))


@pytest.mark.parametrize("name", BACKWARD_OPS, ids=str)
def test_second_derivatives_equal_eager(name: str):
    """torch.func's gradient of each backward op equals eager's double backward (the C++
    autograd), at x == 0 too."""
    ours, _ = BACKWARD_OPS[name]
    s, g = with_zeros(2, 3, 5), torch.randn(2, 3, 5, dtype=torch.float64)
    if name.endswith("from_result"):
        s = s.abs()
    transformed = grad(lambda *a: total(ours(*a)), argnums=(0, 1))(g, s)
    g_, s_ = g.clone().requires_grad_(), s.clone().requires_grad_()
    eager = torch.autograd.grad(total(ours(g_, s_)), (g_, s_), allow_unused=True)
    eager = tuple(torch.zeros_like(s) if e is None else e for e in eager)
    torch.testing.assert_close(transformed, eager)


# --- per-sample gradients of a model ---------------------------------------------------------

FIRST_ACTIVATIONS = {
    "elu": (lambda: torch_ext.nn.ELU(0.7), lambda: torch.nn.ELU(0.7)),
    "leaky_relu": (lambda: torch_ext.nn.LeakyReLU(0.1), lambda: torch.nn.LeakyReLU(0.1)),
    "selu": (torch_ext.nn.SELU, torch.nn.SELU),
    "celu": (lambda: torch_ext.nn.CELU(1.3), lambda: torch.nn.CELU(1.3)),
    "prelu": (lambda: torch_ext.nn.PReLU(8), lambda: torch.nn.PReLU(8)),
}


def mixed_model(first: torch.nn.Module, prelu: type[torch.nn.PReLU]) -> torch.nn.Module:
    """Linear -> `first` -> Linear -> PReLU with one slope per channel."""
    torch.manual_seed(1)
    model = torch.nn.Sequential(torch.nn.Linear(5, 8), first, torch.nn.Linear(8, 4), prelu(4))
    with torch.no_grad():
        model[3].weight.copy_(torch.tensor([0.25, -0.5, 1.5, 0.1]))
    return model.double()


def per_sample_loss(model: torch.nn.Module):
    def loss(params: dict, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return (functional_call(model, params, (x[None],)) - y).pow(2).sum()

    return loss


@pytest.mark.parametrize("first", FIRST_ACTIVATIONS, ids=str)
def test_per_sample_gradients_equal_a_loop_of_autograd_grad(first: str):
    ours_first, native_first = FIRST_ACTIVATIONS[first]
    model = mixed_model(ours_first(), torch_ext.nn.PReLU)
    native = mixed_model(native_first(), torch.nn.PReLU)
    params = {k: v.detach() for k, v in model.named_parameters()}
    x, y = with_zeros(6, 5), torch.randn(6, 4, dtype=torch.float64)
    per_sample = vmap(grad(per_sample_loss(model)), in_dims=(None, 0, 0))(params, x, y)
    native_per_sample = vmap(grad(per_sample_loss(native)), in_dims=(None, 0, 0))(params, x, y)
    for name, p in model.named_parameters():
        loop = [
            torch.autograd.grad((model(x[i : i + 1]) - y[i]).pow(2).sum(), p)[0]
            for i in range(len(x))
        ]
        torch.testing.assert_close(per_sample[name], torch.stack(loop), msg=name)
        torch.testing.assert_close(per_sample[name], native_per_sample[name], msg=name)


@pytest.mark.filterwarnings("ignore:dynamo_pgo force disabled")
def test_compiled_vmap_of_grad_equals_eager():
    """torch.compile(vmap(grad(...))), graph whole (fullgraph), Inductor, no cache: the
    Functions' rules trace as functorch runs them."""
    import torch._inductor.config as inductor_config

    model = mixed_model(torch_ext.nn.ELU(0.7), torch_ext.nn.PReLU)
    params = {k: v.detach() for k, v in model.named_parameters()}
    x, y = with_zeros(6, 5), torch.randn(6, 4, dtype=torch.float64)
    per_sample = vmap(grad(per_sample_loss(model)), in_dims=(None, 0, 0))
    torch._dynamo.reset()
    with inductor_config.patch(force_disable_caches=True):
        compiled = torch.compile(per_sample, fullgraph=True)(params, x, y)
    eager = per_sample(params, x, y)
    for name in eager:
        torch.testing.assert_close(compiled[name], eager[name], msg=name)


# --- eager mode, functionalize, counted ops --------------------------------------------------


def test_eager_calls_keep_the_cpp_autograd():
    """The rules are reached only inside a transform: eager grad_fns stay C++ Functions."""
    x = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    w = torch.rand(4, dtype=torch.float64, requires_grad=True)
    for out in (X.elu(x), X.leaky_relu(x), X.selu(x), X.celu(x), X.prelu(x, w)):
        assert type(out.grad_fn).__name__ == "CppFunction"
    h = x * 1.0
    X.elu(h, inplace=True)
    assert type(h.grad_fn).__name__ == "CppFunction"


def test_functionalize_matches_eager_and_removes_the_mutation():
    from torch.fx.experimental.proxy_tensor import make_fx

    x, w = with_zeros(3, 4), torch.rand(4, dtype=torch.float64)

    def f(a: torch.Tensor) -> torch.Tensor:
        h = a * 1.0
        X.elu(h, 0.5, inplace=True)
        return X.prelu(h, w) + X.leaky_relu(a, 0.1)

    functional = torch.func.functionalize(f)
    torch.testing.assert_close(functional(x), f(x))
    graph = make_fx(functional)(x).graph
    targets = {str(node.target) for node in graph.nodes if node.op == "call_function"}
    assert "torch_ext.elu.default" in targets and "torch_ext.elu_.default" not in targets


COUNTED = {
    "leaky_relu_counted": (
        lambda x, counts: ops.leaky_relu_counted(x, 0.1, counts, 1, torch.zeros(4)),
        lambda x: X.leaky_relu(x, 0.1),
        "torch_ext::leaky_relu ",
    ),
    "elu_counted": (
        lambda x, counts: ops.elu_counted(x, 0.5, 1.0, counts, 1, torch.zeros(4), False, 2.0),
        lambda x: X.celu(x, 0.5),
        "torch_ext::elu, selu or celu",
    ),
    "prelu_counted": (
        lambda x, counts: ops.prelu_counted(
            x, torch.tensor([0.3]).double(), counts, 1, torch.zeros(4)
        ),
        lambda x: X.prelu(x, torch.tensor([0.3]).double()),
        "torch_ext::prelu ",
    ),
}


@pytest.mark.parametrize("name", COUNTED, ids=str)
def test_counted_ops_differentiate_and_count_under_grad_and_refuse_vmap(name: str):
    counted, plain, hint = COUNTED[name]
    x = with_zeros(6, 4)
    counts = torch.zeros(2, 4, dtype=torch.int64)
    gradient = grad(lambda a: counted(a, counts).sin().sum())(x)
    torch.testing.assert_close(gradient, grad(lambda a: plain(a).sin().sum())(x))
    assert counts[0].tolist() == (x > 0).sum(0).tolist()  # counted once, the real values
    for transform in (vmap, torch.func.functionalize):
        with pytest.raises(RuntimeError, match=f"torch_ext::{name}: not supported") as error:
            transform(lambda a: counted(a, counts))(x)
        assert hint in str(error.value)
