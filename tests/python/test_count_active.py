"""torch.ops.torch_ext.count_active_ against a float64 reference, for every layout."""

from __future__ import annotations

import pytest
import torch

pytestmark = pytest.mark.usefixtures("device")  # every test, on every device


ops = torch.ops.torch_ext


def reference(z: torch.Tensor, unit_dim: int, threshold: torch.Tensor) -> torch.Tensor:
    z64 = z.double().movedim(unit_dim, -1).reshape(-1, z.shape[unit_dim])
    active = (z64 > 0).sum(0)
    alive = (z64 > threshold.double()).sum(0)
    return torch.stack([active, alive])


LAYOUTS = {
    "rows-2d": (lambda: torch.randn(37, 19), -1),
    "rows-3d": (lambda: torch.randn(4, 9, 19), 2),
    "unit-dim-0": (lambda: torch.randn(19, 37), 0),
    "nchw": (lambda: torch.randn(3, 19, 5, 7), 1),
    "channels-last": (
        lambda: torch.randn(3, 19, 5, 7).contiguous(memory_format=torch.channels_last),
        1,
    ),
    "transposed": (lambda: torch.randn(19, 37).t(), 1),
    "strided": (lambda: torch.randn(8, 40)[:, ::2], 1),
    "large": (lambda: torch.randn(2**18 + 5, 3), -1),
    "large-planes": (lambda: torch.randn(2, 3, 300, 300), 1),
    "1d": (lambda: torch.randn(19), 0),
}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_counts_match_reference(layout: str, dtype: torch.dtype):
    make, unit_dim = LAYOUTS[layout]
    z = make().to(dtype)
    z[(0,) * z.dim()] = 0  # an exact zero: not active
    units = z.shape[unit_dim]
    threshold = torch.randn(units).clamp(max=0)
    threshold[0] = -float("inf")
    counts = torch.zeros(2, units, dtype=torch.int64)
    ops.count_active_(z, counts, unit_dim, threshold)
    ops.count_active_(z, counts, unit_dim, threshold)  # accumulates
    torch.testing.assert_close(counts, 2 * reference(z, unit_dim % z.dim(), threshold))


@pytest.mark.parametrize(
    "shape,unit_dim", [((2**24 + 3, 2), 1), ((1, 2, 2**24 + 3), 1)], ids=["rows", "planes"]
)
def test_counts_stay_exact_past_float_lane_precision(shape, unit_dim):
    """The loops count in float lanes (exact to 2^24) and flush them to int64 in time. One
    thread, so one chunk sees all 2^24 + 3 elements of a unit: in rows, each unit is one lane
    (a lane that missed its flush would stop at 2^24); planes spread a unit over the lanes."""
    z = torch.ones(shape)
    z.select(unit_dim, 1).fill_(-1.0)
    counts = torch.zeros(2, 2, dtype=torch.int64)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        ops.count_active_(z, counts, unit_dim, torch.full((2,), -2.0))
    finally:
        torch.set_num_threads(threads)
    n = z.numel() // 2
    assert counts.tolist() == [[n, 0], [n, n]]


def test_zero_and_nan_are_not_active():
    z = torch.tensor([[0.0, -0.0, float("nan"), 1e-45, -1e-45, float("inf"), -float("inf")]]).t()
    counts = torch.zeros(2, 1, dtype=torch.int64)
    ops.count_active_(z, counts, 1, torch.full((1,), -1.0))
    assert counts.tolist() == [[2], [5]]  # active: denormal, inf; alive: all but nan and -inf


@pytest.mark.parametrize(
    "shape,unit_dim",
    [((3, 2, 37), 1), ((37, 3), -1), ((3, 37), 0)],
    ids=["planes", "rows", "unit-dim-0"],
)
def test_float64_compares_in_float64_at_every_position(shape, unit_dim):
    """Values too small for float32 (1e-300 > 0; a threshold crossed below float32's
    resolution) count the same in the vector body and in the tail."""
    z = torch.full(shape, 1e-300, dtype=torch.float64)
    threshold = torch.full((z.shape[unit_dim],), -1e-30, dtype=torch.float32)
    z.view(-1)[1::2] = -1e-31  # above -1e-30 (alive), below 0 (not active)
    counts = torch.zeros(2, z.shape[unit_dim], dtype=torch.int64)
    ops.count_active_(z, counts, unit_dim, threshold)
    torch.testing.assert_close(counts, reference(z, unit_dim, threshold), rtol=0, atol=0)
    assert counts[1].sum() == z.numel()


def test_empty_input_counts_nothing():
    counts = torch.zeros(2, 4, dtype=torch.int64)
    ops.count_active_(torch.randn(0, 4), counts, 1, torch.zeros(4))
    assert counts.sum() == 0


def test_meta_and_opcheck():
    z = torch.randn(6, 5)
    counts = torch.zeros(2, 5, dtype=torch.int64)
    torch.library.opcheck(ops.count_active_.default, (z, counts, -1, torch.zeros(5)))
    ops.count_active_(z.to("meta"), counts.to("meta"), -1, torch.zeros(5, device="meta"))


def test_input_that_requires_grad_records_no_graph():
    z = torch.randn(4, 3, requires_grad=True) * 2
    counts = torch.zeros(2, 3, dtype=torch.int64)
    ops.count_active_(z, counts, -1, torch.zeros(3))
    assert counts.grad_fn is None and not counts.requires_grad


@pytest.mark.parametrize(
    "kwargs,error,pattern",
    [
        (
            {"z": torch.zeros(4, 3, dtype=torch.int64)},
            NotImplementedError,
            "argument 'z' to have a floating-point dtype",
        ),
        ({"counts": torch.zeros(2, 3)}, TypeError, "argument 'counts' to be int64"),
        (
            {"counts": torch.zeros(2, 4, dtype=torch.int64)},
            RuntimeError,
            r"'counts' to be a contiguous \[2, 3\]",
        ),
        ({"unit_dim": 2}, RuntimeError, "argument 'unit_dim' 2 is out of range for a 2-D 'z'"),
        (
            {"threshold": torch.zeros(3, dtype=torch.float64)},
            TypeError,
            "'alive_threshold' to be float32",
        ),
        (
            {"threshold": torch.zeros(5)},
            RuntimeError,
            r"'alive_threshold' to be a contiguous \[3\]",
        ),
        ({"z": torch.tensor(1.0)}, RuntimeError, "at least 1 dim"),
    ],
)
def test_bad_arguments(kwargs, error, pattern):
    args = {
        "z": torch.randn(4, 3),
        "counts": torch.zeros(2, 3, dtype=torch.int64),
        "unit_dim": -1,
        "threshold": torch.zeros(3),
    }
    args.update(kwargs)
    with pytest.raises(error, match="torch_ext::count_active_: .*" + pattern):
        ops.count_active_(args["z"], args["counts"], args["unit_dim"], args["threshold"])


ACTIVATION_DERIVATIVES = {
    "relu": (0.0, lambda z, p: torch.nn.functional.relu(z)),
    "leaky_relu": (0.01, lambda z, p: torch.nn.functional.leaky_relu(z, p)),
    "leaky_relu-tiny": (1e-5, lambda z, p: torch.nn.functional.leaky_relu(z, p)),
    "elu": (1.0, lambda z, p: torch.nn.functional.elu(z, p)),
    "elu-small-alpha": (0.5e-3, lambda z, p: torch.nn.functional.elu(z, p)),
    "selu": (0.0, lambda z, p: torch.nn.functional.selu(z)),
    "celu": (2.0, lambda z, p: torch.nn.functional.celu(z, p)),
    "celu-small-alpha": (0.5e-3, lambda z, p: torch.nn.functional.celu(z, p)),
    "celu-negative-alpha": (-1.5, lambda z, p: torch.nn.functional.celu(z, p)),
}


@pytest.mark.parametrize("grad_eps", [1e-3, 1e-2])
@pytest.mark.parametrize("case", list(ACTIVATION_DERIVATIVES))
def test_alive_threshold_is_where_the_derivative_passes_grad_eps(case: str, grad_eps: float):
    """Checked against the native activation's autograd derivative, in float64."""
    param, fn = ACTIVATION_DERIVATIVES[case]
    threshold = ops.alive_threshold(case.split("-")[0], param, grad_eps)
    z = torch.linspace(-40, 5, 100_001, dtype=torch.float64, requires_grad=True)
    (derivative,) = torch.autograd.grad(fn(z, param).sum(), z)
    alive = derivative.abs() > grad_eps
    assert torch.equal(alive, z.detach() > threshold) or (
        # the crossing itself may fall between grid points
        (alive != (z.detach() > threshold)).sum() <= 1
    )


@pytest.mark.parametrize("grad_eps", [0.0, -1e-3, 1.0, 1.5])
def test_alive_threshold_needs_grad_eps_below_the_unit_slope(grad_eps: float):
    """Above 0 every supported activation passes gradient with slope 1: grad_eps >= 1 has no
    threshold z that says so, and is refused rather than answered wrongly."""
    with pytest.raises(RuntimeError, match=r"expected argument 'grad_eps' in \(0, 1\)"):
        ops.alive_threshold("relu", 0.0, grad_eps)
    with pytest.raises(RuntimeError, match=r"expected argument 'grad_eps' in \(0, 1\)"):
        ops.slopes_alive_threshold(torch.tensor([0.25]), 1, grad_eps)


def test_slopes_alive_threshold():
    slopes = torch.tensor([0.25, 0.0, -0.3, 1e-5])
    out = ops.slopes_alive_threshold(slopes, 4, 1e-3)
    assert out.tolist() == [-float("inf"), 0.0, -float("inf"), 0.0]
    assert ops.slopes_alive_threshold(torch.tensor([0.0]), 3, 1e-3).tolist() == [0.0] * 3
    with pytest.raises(RuntimeError, match="'slopes' to have 1 or 3 elements, but got 2"):
        ops.slopes_alive_threshold(torch.ones(2), 3, 1e-3)
    with pytest.raises(RuntimeError, match="expected argument 'activation' to be one of"):
        ops.alive_threshold("tanh", 0.0, 1e-3)
