"""gradcheck and gradgradcheck in float64, for every op and every backward op: reverse
mode, forward mode (jvp) and forward over reverse."""

from __future__ import annotations

import functools

import pytest
import torch
import torch.nn.functional as F
from helpers import ACTIVATIONS, Activation, ids

import torch_ext.functional as X
import torch_ext.nn as xnn

pytestmark = pytest.mark.usefixtures("device")  # every test, on every device


ops = torch.ops.torch_ext
gradcheck = functools.partial(torch.autograd.gradcheck, check_forward_ad=True)
gradgradcheck = functools.partial(torch.autograd.gradgradcheck, check_fwd_over_rev=True)


def away_from_kink(*shape: int) -> torch.Tensor:
    """float64 values with |x| >= 0.1: finite differences never straddle x == 0."""
    x = torch.randn(*shape, dtype=torch.float64)
    return (x.sign() * (x.abs() + 0.1)).requires_grad_(True)


@pytest.mark.parametrize("act", ACTIVATIONS, ids=ids(ACTIVATIONS))
def test_out_of_place(act: Activation):
    x = away_from_kink(3, 4)
    fn = lambda t: act.run(t)  # noqa: E731
    assert gradcheck(fn, (x,))
    assert gradgradcheck(fn, (x,))


@pytest.mark.parametrize("act", [a for a in ACTIVATIONS if a.inplace_backward_ok], ids=str)
def test_in_place(act: Activation):
    x = away_from_kink(3, 4)
    fn = lambda t: act.run(t * 1.0, inplace=True)  # noqa: E731
    assert gradcheck(fn, (x,))
    assert gradgradcheck(fn, (x,))


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("shape", [(2, 3, 4), (5,), (4, 3, 2, 2)], ids=str)
def test_prelu(shape, channels):
    if len(shape) < 2:
        channels = 1
    x = away_from_kink(*shape)
    w = torch.tensor([0.25, -0.5, 1.5][:channels], dtype=torch.float64, requires_grad=True)
    assert gradcheck(ops.prelu, (x, w))
    assert gradgradcheck(ops.prelu, (x, w))


def test_prelu_channels_last():
    x = away_from_kink(2, 3, 4, 5).detach().contiguous(memory_format=torch.channels_last)
    x.requires_grad_(True)
    w = torch.tensor([0.25, -0.5, 1.5], dtype=torch.float64, requires_grad=True)
    assert gradcheck(ops.prelu, (x, w))
    assert gradgradcheck(ops.prelu, (x, w))


# is_result with a negative slope is invalid (test_errors checks that it raises).
@pytest.mark.parametrize(
    "slope,is_result", [(0.0, False), (0.3, False), (-0.2, False), (0.0, True), (0.3, True)]
)
def test_leaky_relu_backward_op(slope: float, is_result: bool):
    g, s = away_from_kink(6), away_from_kink(6)
    fn = lambda g, s: ops.leaky_relu_backward(g, s, slope, is_result)  # noqa: E731
    assert gradcheck(fn, (g, s))
    assert gradgradcheck(fn, (g, s))


@pytest.mark.parametrize("is_result", [False, True])
@pytest.mark.parametrize(
    "alpha,scale,input_scale",
    [
        (1.0, 1.0, 1.0),
        (0.5, 2.0, 1.0),
        (1.6732632423543772, 1.0507009873554805, 1.0),
        (0.5, 1.0, 2.0),  # CELU(0.5)
        (3.0, 1.0, 1 / 3.0),  # CELU(3)
    ],
)
def test_elu_backward_op(alpha: float, scale: float, input_scale: float, is_result: bool):
    g, s = away_from_kink(6), away_from_kink(6)
    if is_result:  # a valid result: y > -alpha * scale
        s = (s.detach().clamp(min=-alpha * scale + 0.1)).requires_grad_(True)
    fn = lambda g, s: ops.elu_backward(g, s, alpha, scale, is_result, input_scale)  # noqa: E731
    assert gradcheck(fn, (g, s))
    assert gradgradcheck(fn, (g, s))


# From the result needs alpha >= 0 (test_errors checks that it raises).
@pytest.mark.parametrize(
    "alpha,is_result", [(0.5, False), (2.0, False), (-1.5, False), (0.5, True), (2.0, True)]
)
def test_elu_backward_op_with_input_scale_is_celus_derivative(alpha: float, is_result: bool):
    """elu_backward(..., input_scale=1 / alpha) is the gradient of F.celu(x, alpha)."""
    x = away_from_kink(7).detach()
    g = torch.randn(7, dtype=torch.float64)
    leaf = x.clone().requires_grad_(True)
    y = F.celu(leaf, alpha)
    (expected,) = torch.autograd.grad(y, leaf, g)
    s = y.detach() if is_result else x
    got = ops.elu_backward(g, s, alpha, 1.0, is_result, input_scale=1 / alpha)
    torch.testing.assert_close(got, expected)


def test_prelu_backward_op():
    g, x = away_from_kink(2, 3, 4), away_from_kink(2, 3, 4)
    w = torch.tensor([0.25, -0.5, 1.5], dtype=torch.float64, requires_grad=True)
    assert gradcheck(ops.prelu_backward, (g, x, w))
    assert gradgradcheck(ops.prelu_backward, (g, x, w))


def _saved_by(fn, *args, **kwargs):
    saved = []

    def pack(t):
        saved.append(t)
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        y = fn(*args, **kwargs)
    return y, saved


def test_what_each_op_keeps_for_backward():
    """As PyTorch: ELU/SELU/CELU keep their input; Leaky ReLU one bit per element (its input's
    signs, packed LSB first), which decides its gradient exactly."""
    x = torch.randn(8, requires_grad=True)
    for fn, args in ((ops.elu, (1.0,)), (ops.selu, ()), (ops.celu, (0.5,))):
        _, saved = _saved_by(fn, x, *args)
        assert len(saved) == 1 and saved[0].data_ptr() == x.data_ptr()
    _, saved = _saved_by(ops.leaky_relu, x)
    bits = sum(1 << i for i, v in enumerate(x.tolist()) if v > 0)
    assert len(saved) == 1 and saved[0].dtype == torch.uint8 and saved[0].tolist() == [bits]


def test_leaky_relu_gradient_depends_on_the_input_as_natively():
    """Under create_graph the gradient of leaky_relu(x) hangs on x even with a constant
    grad_output (its derivative in x is 0): a second grad returns zeros, as natively."""
    results = []
    x = torch.randn(6, dtype=torch.float64, requires_grad=True)
    for fn in (X.leaky_relu, F.leaky_relu):
        (g,) = torch.autograd.grad(fn(x, 0.2).sum(), x, create_graph=True)
        assert g.requires_grad
        results.append((g, *torch.autograd.grad(g.sum(), x)))
    (g, h), (g_native, h_native) = results
    assert torch.equal(g, g_native) and torch.equal(h, h_native) and not h.any()
    assert h.stride() == h_native.stride()  # a dense zero, which may be written in place
    h.add_(1.0)


@pytest.mark.filterwarnings("ignore:Anomaly Detection has been enabled")
@pytest.mark.parametrize("grad_output_requires_grad", [False, True])
def test_leaky_relu_double_backward_node_is_natives(grad_output_requires_grad: bool):
    """The node of Leaky ReLU's create_graph gradient has native's inputs (grad_output, the
    input) and computes only the gradients asked for: under anomaly mode a NaN that reaches
    no asked-for gradient raises nothing, as natively."""
    nodes = []
    for fn in (X.leaky_relu, F.leaky_relu):
        x = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
        g_out = torch.randn(3, 4, dtype=torch.float64, requires_grad=grad_output_requires_grad)
        (g,) = torch.autograd.grad(fn(x, 0.1), x, g_out, create_graph=True)
        nodes.append([type(f).__name__ if f else None for f, _ in g.grad_fn.next_functions])
        if not grad_output_requires_grad:
            with torch.autograd.detect_anomaly(check_nan=True):
                g.backward(torch.full_like(g, float("nan")))
            assert torch.equal(x.grad, torch.zeros_like(x))
    assert nodes[0] == nodes[1]


@pytest.mark.parametrize(
    "fn,native",
    [
        (ops.leaky_relu_, F.leaky_relu_),
        (ops.elu_, F.elu_),
        (ops.selu_, torch.selu_),
        (ops.celu_, torch.celu_),
    ],
    ids=["leaky_relu_", "elu_", "selu_", "celu_"],
)
def test_in_place_bumps_the_version_once_as_natively(fn, native):
    versions = []
    for f in (fn, native):
        h = torch.randn(5, requires_grad=True) * 1.0
        f(h)
        versions.append(h._version)
    assert versions[0] == versions[1] == 1


def _run_on_copy(act: Activation, x: torch.Tensor, **kwargs) -> torch.Tensor:
    return act.run(x * 1.0, **kwargs)


def _node_names(fn, x: torch.Tensor, *params) -> tuple[str, str, str]:
    """The names of the nodes of fn(x) and of its gradient under create_graph, and how the
    output prints its grad_fn."""
    y = fn(x, *params)
    (g,) = torch.autograd.grad(y, x, torch.randn_like(y), create_graph=True)
    return y.grad_fn.name(), g.grad_fn.name(), repr(y).rsplit("grad_fn=", 1)[-1]


NAMED_CASES = [  # in place only where its backward is defined (a parameter >= 0)
    (act, inplace)
    for act in ACTIVATIONS
    for inplace in (False, True)
    if act.inplace_backward_ok or not inplace
]


@pytest.mark.parametrize(
    "act,inplace",
    NAMED_CASES,
    ids=[f"{a}-{'in_place' if i else 'out_of_place'}" for a, i in NAMED_CASES],
)
def test_nodes_are_named_as_natives(act: Activation, inplace: bool):
    """grad_fn names and how tensors print them are native's (EluBackward0, CeluBackward1, ...:
    SELU's nodes are ELU's, as ATen's), and so is the node of the gradient under
    create_graph."""
    x = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    ours, native = (
        _node_names(functools.partial(_run_on_copy, act, inplace=inplace, native=n), x)
        for n in (False, True)
    )
    assert ours == native


def test_prelu_and_counted_nodes_are_named_as_natives():
    """PReLU's nodes, and those of the counted forwards the monitor runs: named after the op
    the user called (a CELU with alpha != 1 included)."""
    x = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    w = torch.full((3,), 0.25, dtype=torch.float64, requires_grad=True)
    assert _node_names(X.prelu, x, w) == _node_names(F.prelu, x, w)
    counts, alive = torch.zeros(2, 3, dtype=torch.int64), torch.zeros(3)
    counted = [  # (counted op, its arguments after x, native op, its arguments after x)
        (ops.leaky_relu_counted, (0.1, counts, 1, alive), F.leaky_relu, (0.1,)),
        (ops.prelu_counted, (w, counts, 1, alive), F.prelu, (w,)),
        (ops.elu_counted, (0.5, 1.0, counts, 1, alive), F.elu, (0.5,)),
        (ops.elu_counted, (0.5, 1.0, counts, 1, alive, False, 2.0), F.celu, (0.5,)),
    ]
    for op, args, native, native_args in counted:
        assert _node_names(op, x, *args) == _node_names(native, x, *native_args), op


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(
    "fn,args",
    [(X.elu, (1.0,)), (X.elu, (0.5,)), (X.selu, ()), (X.celu, (1.0,)), (X.celu, (0.5,))],
    ids=["elu", "elu0.5", "selu", "celu", "celu0.5"],
)
def test_save_output_keeps_the_output_when_asked(fn, args, dtype):
    x = torch.randn(8, dtype=dtype, requires_grad=True)
    y, saved = _saved_by(fn, x, *args, save_output=True)
    assert len(saved) == 1 and saved[0].data_ptr() == y.data_ptr()
    g = torch.randn(8, dtype=dtype)
    (ours,) = torch.autograd.grad(y, x, g)
    native = getattr(F, fn.__name__)
    (expected,) = torch.autograd.grad(native(x, *args), x, g)
    torch.testing.assert_close(ours, expected)


@pytest.mark.parametrize("fn", [X.elu, X.celu], ids=["elu", "celu"])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_save_output_keeps_the_input_where_the_output_is_too_coarse(dtype, fn):
    x = torch.randn(8, dtype=dtype, requires_grad=True)
    _, saved = _saved_by(fn, x, 1.0, save_output=True)
    assert saved[0].data_ptr() == x.data_ptr()
    _, saved = _saved_by(fn, x.detach().float().requires_grad_(), -0.5, save_output=True)
    assert saved[0].dtype == torch.float32 and not saved[0].equal(fn(saved[0].detach(), -0.5))


MODULES = {  # ours and the native module of the same configuration
    "ELU": (lambda: xnn.ELU(), lambda: torch.nn.ELU()),
    "ELU(0.5)": (lambda: xnn.ELU(0.5), lambda: torch.nn.ELU(0.5)),
    "SELU": (lambda: xnn.SELU(), lambda: torch.nn.SELU()),
    "CELU": (lambda: xnn.CELU(), lambda: torch.nn.CELU()),
    "CELU(0.5)": (lambda: xnn.CELU(0.5), lambda: torch.nn.CELU(0.5)),
}


@pytest.mark.parametrize("name", list(MODULES))
@pytest.mark.parametrize("after", ["add_", "dropout_inplace", "relu_"])
def test_output_may_be_modified_in_place_afterwards(name: str, after: str):
    """h = act(linear(x)); h += residual (or an in-place dropout after it) works as with
    torch.nn's modules, with the same gradient."""
    x = torch.randn(6, 5, dtype=torch.float64)
    residual = torch.randn(6, 7, dtype=torch.float64)
    linear = torch.nn.Linear(5, 7).double()
    grads = []
    for make in MODULES[name]:
        linear.zero_grad()
        h = make()(linear(x))
        if after == "add_":
            h += residual
        elif after == "dropout_inplace":
            torch.manual_seed(1)
            h = F.dropout(h, 0.5, training=True, inplace=True)
        else:
            h.relu_()
        h.sum().backward()
        grads.append(linear.weight.grad.clone())
    torch.testing.assert_close(grads[0], grads[1])


@pytest.mark.parametrize(
    "fn,native",
    [(X.elu, F.elu), (X.selu, F.selu), (lambda t: X.celu(t, 2.0), lambda t: F.celu(t, 2.0))],
    ids=["elu", "selu", "celu2"],
)
def test_float32_gradient_keeps_precision_far_in_the_negative_tail(fn, native):
    """From the input, the gradient is alpha * exp(x) (CELU: exp(x / alpha)): the output's
    y + alpha would cancel (0.44 relative error at x = -17, exactly 0 below -18)."""
    x = torch.tensor([-10.0, -17.0, -18.0, -25.0, -40.0, -80.0], requires_grad=True)
    (ours,) = torch.autograd.grad(fn(x).sum(), x)
    x64 = x.detach().double().requires_grad_(True)
    (exact,) = torch.autograd.grad(native(x64).sum(), x64)
    assert (ours > 0).all()
    torch.testing.assert_close(ours.double(), exact, rtol=1e-6, atol=0)


SECOND_DERIVATIVE = {  # ours, native, parameter
    "elu": (X.elu, F.elu, 1.0),
    "elu_2": (X.elu, F.elu, 2.0),
    "selu": (X.selu, F.selu, None),
    "celu_0.5": (X.celu, F.celu, 0.5),
}


@pytest.mark.parametrize("inplace", [False, True], ids=["input", "result"])
@pytest.mark.parametrize("name", SECOND_DERIVATIVE)
def test_second_derivative_as_native_and_zero_at_zero(name: str, inplace: bool):
    """d2f/dx2 through the backward op (from the input, or from the result in place): 0 at
    x = +-0, as ATen's elu_double_backward (the mask x < 0), NaN at NaN; elsewhere native's."""
    ours, native, param = SECOND_DERIVATIVE[name]
    args = () if param is None else (param,)
    data = torch.tensor([0.0, -0.0, -1.5, -30.0, 2.0, float("nan")], dtype=torch.float64)
    results = []
    for fn in (ours, native):
        x = data.clone().requires_grad_()
        y = fn(x * 1.0, *args, inplace=inplace)
        (g,) = torch.autograd.grad(y.sum(), x, create_graph=True)
        results.append(torch.autograd.grad(g.sum(), x)[0])
    got, expected = results
    assert torch.equal(got[:2], torch.zeros(2, dtype=torch.float64))
    # NaN in, NaN out; native's depends on where the NaN sits (README, "Special values")
    assert got[-1].isnan()
    torch.testing.assert_close(got[:-1], expected[:-1], rtol=1e-15, atol=0)
