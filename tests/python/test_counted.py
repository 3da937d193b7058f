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


# Per-unit thresholds every dtype holds exactly (count_active_'s alive_threshold is float32).
THRESHOLDS = [-0.5, -2.0, 0.0, -0.25, -1.0, -3.0, -0.125]
COUNTERS = {  # z, counts, unit_dim, threshold -> counts written
    "count_active_": lambda z, c, d, t: ops.count_active_(z, c, d, t),
    "leaky_relu": lambda z, c, d, t: ops.leaky_relu_counted(z, 0.1, c, d, t),
    "prelu": lambda z, c, d, t: ops.prelu_counted(
        z, torch.full((z.shape[d],), 0.2, dtype=z.dtype), c, d, t
    ),
    "elu": lambda z, c, d, t: ops.elu_counted(z, 0.7, 1.0, c, d, t),
    "selu": lambda z, c, d, t: ops.elu_counted(z, *SELU, c, d, t),
    "celu": lambda z, c, d, t: ops.elu_counted(z, 0.7, 1.0, c, d, t, input_scale=1 / 0.7),
}


def on_and_just_above(thresholds: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """[4, units]: 0, each unit's threshold, and the next value of the dtype above each."""
    at = torch.stack([torch.zeros_like(thresholds), thresholds]).to(dtype)
    return torch.cat([at, torch.nextafter(at, torch.full_like(at, float("inf")))])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("layout", ["rows", "planes"])
@pytest.mark.parametrize("name", COUNTERS)
def test_z_exactly_on_a_threshold_is_not_above_it(name: str, layout: str, dtype: torch.dtype):
    """active counts z > 0 and alive z > threshold, strictly: z exactly at 0 or at a unit's
    own threshold counts as neither; the next value of the dtype above it counts."""
    threshold = torch.tensor(THRESHOLDS)
    rows = on_and_just_above(threshold, dtype)  # [4, units]
    if layout == "rows":  # units innermost, over more rows than a vector of lanes
        z, unit_dim = rows.repeat(9, 1), 1
    else:  # per-unit planes of 17 (a vector and a tail): [2, units, 17]
        z, unit_dim = rows.t().repeat(2, 1, 5)[:, :, :17].contiguous(), 1
    counts = torch.zeros(2, len(THRESHOLDS), dtype=torch.int64)
    COUNTERS[name](z, counts, unit_dim, threshold)
    per_unit = z.movedim(unit_dim, -1).reshape(-1, len(THRESHOLDS)).double()
    expected = torch.stack([(per_unit > 0).sum(0), (per_unit > threshold.double()).sum(0)])
    assert torch.equal(counts, expected)
    # and explicitly: a unit whose threshold is 0 counts only the values above 0
    zero_unit = THRESHOLDS.index(0.0)
    assert counts[0, zero_unit] == counts[1, zero_unit] == (per_unit[:, zero_unit] > 0).sum()
