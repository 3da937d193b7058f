"""Bad input raises an error that names the op, the argument and what was expected."""

from __future__ import annotations

import pytest
import torch
from ulps import assert_values, input_grad_ulps

import torch_ext.functional as X
import torch_ext.nn as xnn
from torch_ext import DeadNeuronMonitor

ops = torch.ops.torch_ext

UNARY = {
    "leaky_relu": lambda t: ops.leaky_relu(t, 0.1),
    "leaky_relu_": lambda t: ops.leaky_relu_(t, 0.1),
    "elu": lambda t: ops.elu(t, 1.0),
    "elu_": lambda t: ops.elu_(t, 1.0),
    "selu": lambda t: ops.selu(t),
    "selu_": lambda t: ops.selu_(t),
    "celu": lambda t: ops.celu(t, 1.0),
    "celu_": lambda t: ops.celu_(t, 1.0),
    "prelu": lambda t: ops.prelu(t, torch.ones(1, dtype=t.dtype)),
}


@pytest.mark.parametrize(
    "device", ["cpu", "meta", *(["cuda"] if torch.cuda.is_available() else [])]
)
@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.uint8, torch.bool])
@pytest.mark.parametrize("name", list(UNARY))
def test_non_floating_input(name: str, dtype: torch.dtype, device: str):
    """NotImplementedError, the class torch.nn.functional raises, with our message."""
    t = torch.zeros(3, dtype=dtype, device=device)
    pattern = (
        rf"torch_ext::{name}: expected argument 'self' to have a floating-point dtype .* but got"
    )
    with pytest.raises(NotImplementedError, match=pattern):
        UNARY[name](t)


@pytest.mark.parametrize(
    "weight,pattern",
    [
        (torch.ones(4), r"argument 'weight' to have 1 element or one per channel \(3 = "),
        (torch.ones(3, 1), r"argument 'weight' to be 0-D or 1-D, but got 2-D"),
        (
            torch.ones(3, dtype=torch.float64),
            r"argument 'weight' to have the dtype of 'self' \(Float\)",
        ),
    ],
)
def test_prelu_bad_weight(weight: torch.Tensor, pattern: str):
    x = torch.randn(2, 3, 4)
    with pytest.raises(RuntimeError):  # native's type, so `except RuntimeError` catches ours
        torch.nn.functional.prelu(x, weight)
    with pytest.raises(RuntimeError, match="torch_ext::prelu: expected " + pattern):
        X.prelu(x, weight)
    with pytest.raises(RuntimeError, match="torch_ext::prelu: expected " + pattern):
        X.prelu(x.to("meta"), weight.to("meta"))


def test_prelu_zero_dim_input_needs_one_weight():
    with pytest.raises(
        RuntimeError, match=r"torch_ext::prelu: .*1 element or one per channel \(1 = "
    ):
        X.prelu(torch.tensor(1.0), torch.ones(2))
    torch.testing.assert_close(X.prelu(torch.tensor(-2.0), torch.tensor([0.5])), torch.tensor(-1.0))


@pytest.mark.parametrize(
    "call,param",
    [
        (lambda g, s: ops.leaky_relu_backward(g, s, -0.2, True), "negative_slope"),
        (lambda g, s: ops.elu_backward(g, s, -1.0, 1.0, True), "alpha"),
        (lambda g, s: ops.elu_backward(g, s, -1.0, 1.0, True, -1.0), "alpha"),  # CELU(-1)
    ],
)
def test_from_result_backward_with_negative_parameter(call, param):
    g = torch.randn(4)
    with pytest.raises(
        RuntimeError, match=rf"_backward: is_result=True needs {param} >= 0, but got -"
    ):
        call(g, g)


def test_in_place_leaky_relu_negative_slope_raises_at_backward():
    x = torch.randn(5, requires_grad=True)
    y = X.leaky_relu(x * 1.0, -0.2, inplace=True)  # forward is fine, as in PyTorch
    with pytest.raises(RuntimeError, match="In-place backward with a negative negative_slope"):
        y.sum().backward()


CELU_ZERO_ALPHA = {  # alpha = 0 (natively "ZeroDivisionError: alpha cannot be 0 for CELU")
    "celu": lambda t: ops.celu(t, 0.0),
    "celu_": lambda t: ops.celu_(t, 0.0),
    "celu-save_output": lambda t: ops.celu(t, 0.0, save_output=True),
    "functional": lambda t: X.celu(t, 0.0),
    "functional-inplace": lambda t: X.celu(t, 0.0, inplace=True),
    "module": lambda t: xnn.CELU(0.0)(t),
    "module-inplace": lambda t: xnn.CELU(0.0, inplace=True)(t),
}


@pytest.mark.parametrize(
    "device", ["cpu", "meta", *(["cuda"] if torch.cuda.is_available() else [])]
)
@pytest.mark.parametrize("call", list(CELU_ZERO_ALPHA))
def test_celu_alpha_zero_names_the_op_and_the_argument(call: str, device: str):
    """RuntimeError as natively, with the op's name and the argument, before any write."""
    with pytest.raises(RuntimeError, match="alpha cannot be 0 for CELU"):
        torch.nn.functional.celu(torch.randn(3, device=device), 0.0)  # the native reference
    t = torch.randn(3, device=device)
    before = t.clone()
    with pytest.raises(RuntimeError, match=r"torch_ext::celu_?\b.*alpha cannot be 0"):
        CELU_ZERO_ALPHA[call](t)
    if device != "meta":
        assert torch.equal(t, before)


def test_celu_alpha_zero_module_under_the_monitor_raises_the_ops_error():
    """The counted forward (a torch_ext.nn.CELU watched by a monitor) refuses alpha = 0 with
    the same error as the plain one, not Python's ZeroDivisionError."""
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), xnn.CELU(0.0))
    with DeadNeuronMonitor(model):
        assert model[1].counter is not None  # counted inside the kernel
        with pytest.raises(RuntimeError, match=r"torch_ext::celu\b.*alpha cannot be 0"):
            model(torch.randn(2, 3))


def test_in_place_celu_negative_alpha_raises_at_backward():
    x = torch.randn(5, requires_grad=True)
    y = X.celu(x * 1.0, -1.0, inplace=True)  # forward is fine, as in PyTorch
    with pytest.raises(RuntimeError, match=r"torch_ext::elu_backward: .*alpha >= 0"):
        y.sum().backward()


def test_backward_grad_shape_mismatch():
    with pytest.raises(RuntimeError):
        torch.ops.aten.elu_backward(torch.randn(5), 1.0, 1.0, 1.0, False, torch.randn(4))
    with pytest.raises(
        RuntimeError,
        match=r"torch_ext::elu_backward: expected arguments 'grad_output' and "
        r"'self_or_result' of shapes \[5\] and \[4\] to broadcast to one shape",
    ):
        ops.elu_backward(torch.randn(5), torch.randn(4), 1.0, 1.0, False)
    with pytest.raises(RuntimeError, match=r"torch_ext::prelu_backward: expected argument "):
        ops.prelu_backward(torch.randn(2, 3), torch.randn(3), torch.ones(1))


# grad_output shapes and dtypes ATen's backward ops take for a [4, 5] float32 self: they
# broadcast and promote, as binary ops do (PReLU's: broadcast only, as ATen's kernel).
BACKWARD_GRADS = {
    "broadcast_row": lambda: torch.randn(5),
    "broadcast_column": lambda: torch.randn(4, 1),
    "wider": lambda: torch.randn(2, 4, 5),
    "float64": lambda: torch.randn(4, 5, dtype=torch.float64),
    "float16": lambda: torch.randn(4, 5, dtype=torch.float16),
    "int64": lambda: torch.randint(-3, 3, (4, 5)),
    "bool": lambda: torch.rand(4, 5) > 0.5,
    "0-dim_float64": lambda: torch.tensor(1.5, dtype=torch.float64),  # counts less: float32
    "channels_last_self": lambda: torch.randn(5),  # with a channels_last self (below)
}
BACKWARD_OPS = {  # ours, ATen's
    "leaky_relu": (
        lambda g, x: ops.leaky_relu_backward(g, x, 0.1, False),
        lambda g, x: torch.ops.aten.leaky_relu_backward(g, x, 0.1, False),
    ),
    "leaky_relu_from_result": (
        lambda g, y: ops.leaky_relu_backward(g, y, 0.1, True),
        lambda g, y: torch.ops.aten.leaky_relu_backward(g, y, 0.1, True),
    ),
    "elu": (
        lambda g, x: ops.elu_backward(g, x, 1.3, 1.0, False),
        lambda g, x: torch.ops.aten.elu_backward(g, 1.3, 1.0, 1.0, False, x),
    ),
    "elu_from_result": (
        lambda g, y: ops.elu_backward(g, y, 1.67, 1.05, True),
        lambda g, y: torch.ops.aten.elu_backward(g, 1.67, 1.05, 1.0, True, y),
    ),
}


@pytest.mark.parametrize("grad", BACKWARD_GRADS, ids=str)
@pytest.mark.parametrize("op", BACKWARD_OPS, ids=str)
def test_backward_ops_take_the_grad_output_aten_takes(op: str, grad: str):
    g, x = BACKWARD_GRADS[grad](), torch.randn(4, 5)
    if grad == "channels_last_self":
        x = torch.randn(2, 3, 4, 5).contiguous(memory_format=torch.channels_last)
    ours, aten = BACKWARD_OPS[op]
    expected = aten(g, x)
    got = ours(g, x)
    assert got.shape == expected.shape and got.dtype == expected.dtype
    assert got.stride() == expected.stride()  # the layout ATen's TensorIterator picks
    assert ours(g.to("meta"), x.to("meta")).stride() == got.stride()
    # Leaky ReLU bitwise, the ELU family within its exp's ulps (ulps.py)
    name = "leaky_relu" if op.startswith("leaky_relu") else "elu"
    assert_values(got, expected, input_grad_ulps(name, got.dtype), what=op)


def test_prelu_backward_takes_a_grad_output_that_broadcasts_to_the_input():
    g, x, w = torch.randn(5), torch.randn(4, 5), torch.rand(5)
    grad_input, grad_weight = ops.prelu_backward(g, x, w)
    expected_input, per_element = torch.ops.aten._prelu_kernel_backward(g, x, w)
    torch.testing.assert_close(grad_input, expected_input, rtol=0, atol=0)
    torch.testing.assert_close(grad_weight, per_element.sum(0))


def test_unsupported_layout_names_the_op():
    with pytest.raises(NotImplementedError, match="torch_ext::elu"):
        ops.elu(torch.randn(3).to_sparse(), 1.0)


OVERFLOWING_PARAMETERS = [  # (ours, native): a parameter float cannot hold, as natively
    (lambda t: X.leaky_relu(t, 1e300), lambda t: torch.nn.functional.leaky_relu(t, 1e300)),
    (
        lambda t: X.leaky_relu(t, -1e300, inplace=True),
        lambda t: torch.nn.functional.leaky_relu_(t, -1e300),
    ),
    (lambda t: X.elu(t, 1e300), lambda t: torch.nn.functional.elu(t, 1e300)),
    (lambda t: X.celu(t, 1e300), lambda t: torch.nn.functional.celu(t, 1e300)),
    (lambda t: X.celu(t, 1e-40), lambda t: torch.nn.functional.celu(t, 1e-40)),  # 1 / alpha
    (lambda t: X.celu(t, 1e-40, inplace=True), lambda t: torch.nn.functional.celu_(t, 1e-40)),
]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16], ids=str)
@pytest.mark.parametrize("index", range(len(OVERFLOWING_PARAMETERS)))
def test_parameter_overflowing_the_compute_type_raises_as_natively(index: int, dtype):
    """float32/bfloat16/float16 compute in float: alpha (or CELU's 1 / alpha) beyond float's
    range raises, before any write, rather than computing with inf."""
    ours, native = OVERFLOWING_PARAMETERS[index]
    with pytest.raises(RuntimeError, match="cannot be converted to type float without overflow"):
        native(torch.tensor([-1.0, 2.0], dtype=dtype))
    t = torch.tensor([-1.0, 2.0], dtype=dtype)
    with pytest.raises(
        RuntimeError, match=r"torch_ext::(c?elu|leaky_relu)_?: value cannot be converted"
    ):
        ours(t)
    assert torch.equal(t, torch.tensor([-1.0, 2.0], dtype=dtype))


def test_parameter_overflowing_float_is_fine_in_float64():
    x = torch.tensor([-1e-300, 2.0], dtype=torch.float64)
    assert torch.equal(X.leaky_relu(x, 1e300), torch.nn.functional.leaky_relu(x, 1e300))
    torch.testing.assert_close(X.elu(x, 1e300), torch.nn.functional.elu(x, 1e300))
    torch.testing.assert_close(X.celu(x, 1e-40), torch.nn.functional.celu(x, 1e-40))
