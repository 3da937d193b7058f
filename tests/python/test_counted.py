"""The counted forwards (leaky_relu_counted, prelu_counted, elu_counted: ELU, SELU and CELU):
the activation and count_active_ in one pass, equal to running the two separately."""

from __future__ import annotations

import pytest
import torch

pytestmark = pytest.mark.usefixtures("device")  # every test, on every device


ops = torch.ops.torch_ext
SELU = (1.6732632423543772848170429916717, 1.0507009873554804934193349852946)

LAYOUTS = {
    "rows": (lambda: torch.randn(33, 21), 1),
    "rows-3d": (lambda: torch.randn(3, 11, 21), -1),
    "planes": (lambda: torch.randn(3, 21, 9, 70), 1),
    "long-planes": (lambda: torch.randn(2, 3, 40, 41), 1),  # planes mapped in several spans
    "channels-last": (
        lambda: torch.randn(3, 21, 5, 7).contiguous(memory_format=torch.channels_last),
        1,
    ),
    "strided": (lambda: torch.randn(21, 40)[:, ::2].t(), 1),
    "empty": (lambda: torch.randn(0, 21), 1),
}


def counted_and_plain(name: str, x: torch.Tensor, unit_dim: int):
    units = x.shape[unit_dim]
    weight = (
        torch.linspace(-0.5, 0.5, units, dtype=x.dtype)
        if x.dim() > 1 and unit_dim % x.dim() == 1
        else torch.tensor([0.2], dtype=x.dtype)
    )
    threshold = torch.linspace(-2, 0, units)
    calls = {
        "leaky_relu": (
            lambda t, c: ops.leaky_relu_counted(t, 0.1, c, unit_dim, threshold),
            lambda t: ops.leaky_relu(t, 0.1),
        ),
        "prelu": (
            lambda t, c: ops.prelu_counted(t, weight, c, unit_dim, threshold),
            lambda t: ops.prelu(t, weight),
        ),
        "elu": (
            lambda t, c: ops.elu_counted(t, 0.7, 1.0, c, unit_dim, threshold),
            lambda t: ops.elu(t, 0.7),
        ),
        "selu": (
            lambda t, c: ops.elu_counted(t, *SELU, c, unit_dim, threshold),
            lambda t: ops.selu(t),
        ),
        "celu": (  # alpha * expm1(z / alpha): input_scale 1 / alpha
            lambda t, c: ops.elu_counted(t, 0.7, 1.0, c, unit_dim, threshold, False, 1 / 0.7),
            lambda t: ops.celu(t, 0.7),
        ),
        "celu-negative": (
            lambda t, c: ops.elu_counted(
                t, -1.5, 1.0, c, unit_dim, threshold, input_scale=-1 / 1.5
            ),
            lambda t: ops.celu(t, -1.5),
        ),
        "celu-save_output": (
            lambda t, c: ops.elu_counted(t, 2.0, 1.0, c, unit_dim, threshold, True, 0.5),
            lambda t: ops.celu(t, 2.0, save_output=True),
        ),
    }
    counted, plain = calls[name]
    results = []
    for fn in (counted, None):
        leaf = x.detach().clone().requires_grad_(True)
        counts = torch.zeros(2, units, dtype=torch.int64)
        if fn is None:
            y = plain(leaf)
            ops.count_active_(leaf.detach(), counts, unit_dim, threshold)
        else:
            y = fn(leaf, counts)
        (grad,) = (
            torch.autograd.grad(y, leaf, torch.ones_like(y))
            if y.numel()
            else (torch.zeros_like(leaf),)
        )
        results.append((y.detach(), counts, grad))
    return results


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize(
    "name", ["leaky_relu", "prelu", "elu", "selu", "celu", "celu-negative", "celu-save_output"]
)
def test_counted_equals_forward_then_count(name: str, layout: str, dtype: torch.dtype):
    make, unit_dim = LAYOUTS[layout]
    x = make().to(dtype)
    (y, counts, grad), (y_ref, counts_ref, grad_ref) = counted_and_plain(name, x, unit_dim)
    torch.testing.assert_close(y, y_ref)
    assert y.stride() == y_ref.stride()
    assert torch.equal(counts, counts_ref)
    torch.testing.assert_close(grad, grad_ref)


def test_prelu_counted_with_units_other_than_channels():
    """Per-channel slopes with units along another dim: still correct (not fused)."""
    x = torch.randn(4, 3, 5)
    weight = torch.tensor([0.1, 0.2, 0.3])
    threshold = torch.zeros(5)
    counts = torch.zeros(2, 5, dtype=torch.int64)
    y = ops.prelu_counted(x, weight, counts, 2, threshold)
    torch.testing.assert_close(y, torch.nn.functional.prelu(x, weight))
    assert counts[0].tolist() == (x > 0).sum((0, 1)).tolist()


@pytest.mark.parametrize("case", ["leaky_relu", "prelu", "elu", "celu"])
def test_opcheck(case):
    x = torch.randn(6, 4, requires_grad=True)
    counts = torch.zeros(2, 4, dtype=torch.int64)
    threshold = torch.zeros(4)
    args = {
        "leaky_relu": (ops.leaky_relu_counted.default, (x, 0.1, counts, 1, threshold)),
        "prelu": (
            ops.prelu_counted.default,
            (x, torch.full((4,), 0.25, requires_grad=True), counts, 1, threshold),
        ),
        "elu": (ops.elu_counted.default, (x, 1.0, 1.0, counts, 1, threshold)),
        "celu": (ops.elu_counted.default, (x, 0.5, 1.0, counts, 1, threshold, False, 2.0)),
    }[case]
    torch.library.opcheck(*args)
