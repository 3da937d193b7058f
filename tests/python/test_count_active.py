"""torch.ops.torch_ext.count_active_ (both alive rules) and abs_sum_ against float64
references, for every layout."""

from __future__ import annotations

import math
import os

import pytest
import torch

pytestmark = pytest.mark.usefixtures("device")  # every test, on every device


ops = torch.ops.torch_ext
INF = float("inf")
NAN = float("nan")
DTYPES = [torch.float32, torch.float64, torch.bfloat16, torch.float16]


def per_unit(z: torch.Tensor, unit_dim: int) -> torch.Tensor:
    """z in float64 as [elements per unit, units] (exact: every dtype's values are float64's)."""
    return z.double().movedim(unit_dim, -1).reshape(-1, z.shape[unit_dim])


def alive_reference(z64: torch.Tensor, threshold: torch.Tensor) -> torch.Tensor:
    """count_active_'s alive rule on z64 [n, units], in float64 (the float32 bounds and every
    dtype's values are float64 values, so float64 comparisons are the op's, exactly)."""
    bounds = threshold.double()
    if bounds.dim() == 1:  # a half-line
        return z64 > bounds
    lo, hi, band_lo, band_hi = bounds  # an open interval less a closed band
    return (z64 > lo) & (z64 < hi) & ~((z64 >= band_lo) & (z64 <= band_hi))


def reference(z: torch.Tensor, unit_dim: int, threshold: torch.Tensor) -> torch.Tensor:
    z64 = per_unit(z, unit_dim)
    return torch.stack([(z64 > 0).sum(0), alive_reference(z64, threshold).sum(0)])


def abs_reference(h: torch.Tensor, unit_dim: int) -> torch.Tensor:
    return per_unit(h, unit_dim).abs().sum(0)


def interval_bounds(units: int, band: bool) -> torch.Tensor:
    """[4, units] float32: random bounds per unit around 0 (lo < 0 < hi), a dead band inside
    or none (+inf, -inf); unit 0 spans the whole line (lo -inf, hi +inf)."""
    lo = -0.2 - 2 * torch.rand(units)
    hi = 0.2 + 2 * torch.rand(units)
    if band:
        band_lo, band_hi = -0.3 * torch.rand(units), 0.3 * torch.rand(units)
    else:
        band_lo, band_hi = torch.full((units,), INF), torch.full((units,), -INF)
    bounds = torch.stack([lo, hi, band_lo, band_hi])
    bounds[:2, 0] = torch.tensor([-INF, INF])
    return bounds.contiguous()


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
    "planes-3d": (lambda: torch.randn(5, 6, 45), 1),
    "permuted-3d": (lambda: torch.randn(7, 5, 6).permute(2, 0, 1), 1),  # no unit view: copied
    # Units or planes that leave a partial vector (of every ISA, every dtype) at the end.
    **{f"rows-{n}": (lambda n=n: torch.randn(41, n), 1) for n in (1, 7, 17, 33, 65)},
    **{f"planes-{n}": (lambda n=n: torch.randn(3, 4, n), 1) for n in (7, 17, 33, 65)},
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


@pytest.mark.parametrize("band", [True, False], ids=["band", "no-band"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_interval_counts_match_reference(layout: str, dtype: torch.dtype, band: bool):
    """alive_threshold [4, units]: alive iff lo < z < hi and not band_lo <= z <= band_hi, each
    unit with bounds of its own, some elements exactly on them."""
    make, unit_dim = LAYOUTS[layout]
    z = make().to(dtype)
    units = z.shape[unit_dim]
    bounds = interval_bounds(units, band)
    if z.numel() >= 4 * units:  # 4 elements of each unit exactly on its bounds (in z's dtype)
        values = z.movedim(unit_dim, -1).contiguous()
        values.view(-1, units)[:4] = bounds.to(dtype)
        z.movedim(unit_dim, -1).copy_(values)  # written back through z's own layout
    counts = torch.zeros(2, units, dtype=torch.int64)
    ops.count_active_(z, counts, unit_dim, bounds)
    torch.testing.assert_close(counts, reference(z, unit_dim % z.dim(), bounds), rtol=0, atol=0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", ["rows-2d", "nchw", "rows-17", "planes-33"])
def test_interval_without_upper_bound_or_band_counts_as_the_half_line(layout, dtype):
    """(t, +inf, +inf, -inf) is the half-line z > t for finite z: the same counts."""
    make, unit_dim = LAYOUTS[layout]
    z = make().to(dtype)
    units = z.shape[unit_dim]
    threshold = torch.randn(units).clamp(max=0)
    bounds = torch.stack(
        [
            threshold,
            torch.full_like(threshold, INF),
            torch.full_like(threshold, INF),
            torch.full_like(threshold, -INF),
        ]
    )
    half_line, interval = (torch.zeros(2, units, dtype=torch.int64) for _ in range(2))
    ops.count_active_(z, half_line, unit_dim, threshold)
    ops.count_active_(z, interval, unit_dim, bounds)
    assert torch.equal(half_line, interval)


def test_interval_counts_nan_and_infinities():
    """NaN is neither active nor alive; +-inf are alive only where the interval's open ends
    are beyond them (never: an infinite bound excludes itself)."""
    z = torch.tensor([[NAN, INF, -INF, 0.0, -0.0, 1e-45, 5.0, -5.0]]).t()  # one unit
    whole_line = torch.tensor([[-INF], [INF], [INF], [-INF]])  # no band
    counts = torch.zeros(2, 1, dtype=torch.int64)
    ops.count_active_(z, counts, 1, whole_line)
    assert counts.tolist() == [[3], [5]]  # active: inf, 1e-45, 5; alive: all finite
    counts.zero_()
    ops.count_active_(z, counts, 1, torch.tensor([[-INF], [INF], [-0.0], [0.0]]))  # band {0}
    assert counts[1].item() == 3  # 1e-45, 5, -5
    counts.zero_()
    ops.count_active_(z, counts, 1, torch.tensor([[-10.0], [10.0], [NAN], [NAN]]))  # NaN band
    assert counts[1].item() == 5  # a NaN bound makes no band: every finite z


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("rule", ["half-line", "interval"])
@pytest.mark.parametrize(
    "shape,unit_dim", [((2**13, 16), 1), ((3, 40, 1000), 1)], ids=["rows", "planes"]
)
def test_counts_and_sums_do_not_depend_on_the_thread_count(shape, unit_dim, rule, dtype):
    """Chunks are fixed by the size alone: 1 and 2 threads give the same counts and the same
    bits of abs_sum_ (several chunks here)."""
    z = torch.randn(shape).mul(10).to(dtype)
    units = z.shape[unit_dim]
    threshold = torch.full((units,), -0.5) if rule == "half-line" else interval_bounds(units, True)
    results = []
    threads = torch.get_num_threads()
    for n in (1, 2):
        torch.set_num_threads(n)
        try:
            counts = torch.zeros(2, units, dtype=torch.int64)
            sums = torch.zeros(units, dtype=torch.float64)
            ops.count_active_(z, counts, unit_dim, threshold)
            ops.abs_sum_(z, sums, unit_dim)
            results.append((counts, sums))
        finally:
            torch.set_num_threads(threads)
    assert torch.equal(results[0][0], results[1][0])
    if z.device.type == "cpu":  # CUDA adds the sums atomically, in no fixed order
        assert torch.equal(results[0][1], results[1][1])


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


# --- Interval argument errors ------------------------------------------------------------------


@pytest.mark.parametrize(
    "threshold,error,pattern",
    [
        (lambda: torch.zeros(3, 3), RuntimeError, r"contiguous \[3\] or \[4, 3\] tensor"),
        (lambda: torch.zeros(4, 4), RuntimeError, r"but got shape \[4, 4\]"),
        (lambda: torch.zeros(4, 3, 1), RuntimeError, r"but got shape \[4, 3, 1\]"),
        (lambda: torch.zeros(3, 4).t(), RuntimeError, r"\[4, 3\] \(not contiguous\)"),
        (lambda: torch.zeros(4, 3, dtype=torch.float64), TypeError, "to be float32"),
        (lambda: torch.zeros(4, 3, device="meta"), RuntimeError, "on the device of 'z'"),
    ],
    ids=["3-rows", "wrong-units", "3d", "not-contiguous", "float64", "device"],
)
def test_interval_bad_arguments(threshold, error, pattern):
    counts = torch.zeros(2, 3, dtype=torch.int64)
    with pytest.raises(error, match="torch_ext::count_active_: .*'alive_threshold'.*" + pattern):
        ops.count_active_(torch.randn(5, 3), counts, 1, threshold())


# --- abs_sum_ ----------------------------------------------------------------------------------


def abs_sum_bound(h: torch.Tensor, unit_dim: int) -> torch.Tensor:
    """The stated error bound of a unit's sum of n terms: (n - 1) * 2^-53 * the sum."""
    n = h.numel() // h.shape[unit_dim]
    return (n - 1) * 2.0**-53 * abs_reference(h, unit_dim)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_abs_sum_matches_reference(layout: str, dtype: torch.dtype):
    """sums[u] += sum |h| over unit u, accumulating over calls, within the stated bound (and
    the float64 reference's own rounding, of the same size) of the reference."""
    make, unit_dim = LAYOUTS[layout]
    h = make().mul(3).to(dtype)
    units = h.shape[unit_dim]
    start = torch.arange(units, dtype=torch.float64)
    sums = start.clone()
    ops.abs_sum_(h, sums, unit_dim)
    ops.abs_sum_(h, sums, unit_dim)  # accumulates
    expected = start + 2 * abs_reference(h, unit_dim % h.dim())
    bound = 4 * abs_sum_bound(h, unit_dim % h.dim()) + 2.0**-52 * expected
    assert ((sums - expected).abs() <= bound).all(), (sums - expected).abs().max()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "shape,unit_dim",
    [((4000, 33), 1), ((2, 33, 2000), 1), ((33, 3000), 0), ((65, 1, 1), 0), ((1, 17), -1)],
    ids=["rows", "planes", "unit-dim-0", "units-only", "one-row"],
)
def test_abs_sum_is_within_its_bound_of_the_exact_sum(shape, unit_dim, dtype):
    """Against math.fsum (the exact sum, correctly rounded): |ours - exact| <= (n - 1) *
    2^-53 * exact for n terms per unit, as ops.h states. Magnitudes spread over 2^-20 to
    2^20 (float16: 2^-8 to 2^8) make float accumulation (2^-24 per addition) fail this."""
    spread = 8 if dtype == torch.float16 else 20
    scale = torch.exp2(torch.randint(-spread, spread + 1, shape).float())
    h = (torch.randn(shape) * scale).to(dtype)
    units = h.shape[unit_dim]
    sums = torch.zeros(units, dtype=torch.float64)
    ops.abs_sum_(h, sums, unit_dim)
    columns = per_unit(h, unit_dim).abs().cpu().t().tolist()
    exact = torch.tensor([math.fsum(column) for column in columns], dtype=torch.float64)
    n = h.numel() // units
    error = (sums.cpu() - exact).abs()
    assert (error <= (n - 1) * 2.0**-53 * exact).all(), (error / exact).max()


def test_abs_sum_of_nan_and_infinities():
    h = torch.tensor([[1.0, NAN, -INF, 2.0], [-3.0, 1.0, 1.0, -INF], [0.5, 2.0, 3.0, INF]])
    sums = torch.zeros(4, dtype=torch.float64)
    ops.abs_sum_(h, sums, 1)
    assert sums[0].item() == 4.5
    assert sums[1].isnan()
    assert sums[2].item() == INF and sums[3].item() == INF  # |-inf| + |inf|: no inf - inf


def test_abs_sum_of_an_empty_input_adds_nothing():
    sums = torch.ones(4, dtype=torch.float64)
    ops.abs_sum_(torch.randn(0, 4), sums, 1)
    assert sums.tolist() == [1.0] * 4


@pytest.mark.parametrize(
    "kwargs,error,pattern",
    [
        (
            {"h": torch.zeros(4, 3, dtype=torch.int64)},
            NotImplementedError,
            "argument 'h' to have a floating-point dtype",
        ),
        ({"sums": torch.zeros(3)}, TypeError, "argument 'sums' to be float64, but got Float"),
        (
            {"sums": torch.zeros(4, dtype=torch.float64)},
            RuntimeError,
            r"argument 'sums' to be a contiguous \[3\] tensor \(one sum per unit along "
            r"unit_dim 1\), but got shape \[4\]",
        ),
        (
            {"sums": torch.zeros(3, 2, dtype=torch.float64)[:, 0]},
            RuntimeError,
            r"'sums' to be a contiguous \[3\] tensor .* \(not contiguous\)",
        ),
        (
            {"sums": torch.zeros(3, dtype=torch.float64, device="meta")},
            RuntimeError,
            "argument 'sums' to be on the device of 'h'",
        ),
        ({"unit_dim": -3}, RuntimeError, "argument 'unit_dim' -3 is out of range for a 2-D 'h'"),
        ({"h": torch.tensor(1.0)}, RuntimeError, "argument 'h' to have at least 1 dim"),
    ],
)
def test_abs_sum_bad_arguments(kwargs, error, pattern):
    args = {"h": torch.randn(4, 3), "sums": torch.zeros(3, dtype=torch.float64), "unit_dim": -1}
    args.update(kwargs)
    with pytest.raises(error, match="torch_ext::abs_sum_: .*" + pattern):
        ops.abs_sum_(args["h"], args["sums"], args["unit_dim"])


def test_abs_sum_meta_and_opcheck():
    h = torch.randn(6, 5, 3)
    sums = torch.zeros(5, dtype=torch.float64)
    torch.library.opcheck(ops.abs_sum_.default, (h, sums, 1))
    torch.library.opcheck(ops.abs_sum_.default, (h.requires_grad_(), sums, -2))
    ops.abs_sum_(h.to("meta"), sums.to("meta"), 1)
    with pytest.raises(TypeError, match="torch_ext::abs_sum_: expected argument 'sums'"):
        ops.abs_sum_(h.to("meta"), sums.float().to("meta"), 1)


def test_interval_opcheck():
    z = torch.randn(6, 5)
    counts = torch.zeros(2, 5, dtype=torch.int64)
    torch.library.opcheck(ops.count_active_.default, (z, counts, -1, interval_bounds(5, True)))


def test_abs_sum_records_no_graph_and_bumps_the_version():
    h = torch.randn(4, 3, requires_grad=True) * 2
    sums = torch.zeros(3, dtype=torch.float64)
    version = sums._version
    ops.abs_sum_(h, sums, -1)
    assert sums.grad_fn is None and not sums.requires_grad
    assert sums._version > version


@pytest.mark.skipif(
    bool(os.environ.get("TORCH_EXT_EXPECT_ISA")),
    reason="the ISA reruns (test_build.py) test the loops; tracing is the same on every ISA, "
    "and inductor's own C++ code does not compile under ATEN_CPU_CAPABILITY=default",
)
@pytest.mark.parametrize("dynamic", [False, True])
def test_statistics_ops_under_torch_compile(dynamic: bool):
    """count_active_ (both rules) and abs_sum_ mutate their statistics in place: traced with
    fullgraph (auto-functionalized), they add what eager adds."""

    # Separate counts tensors: torch 2.14's inductor with dynamic=True mis-writes mutations
    # of views of one input (counts[0], counts[1]), for any custom op (a Python one too).
    def statistics(z, counts_z, counts_h, bounds, threshold, sums):
        h = z * 2 - 1
        ops.count_active_(z, counts_z, 1, bounds)
        ops.count_active_(h, counts_h, 1, threshold)
        ops.abs_sum_(h, sums, 1)
        return h

    torch._dynamo.reset()
    z = torch.randn(16, 5)
    bounds, threshold = interval_bounds(5, True), torch.full((5,), -0.5)
    results = []
    for fn in (statistics, torch.compile(statistics, fullgraph=True, dynamic=dynamic)):
        counts = [torch.zeros(2, 5, dtype=torch.int64) for _ in range(2)]
        sums = torch.zeros(5, dtype=torch.float64)
        fn(z, *counts, bounds, threshold, sums)
        results.append((*counts, sums))
    torch.testing.assert_close(results[1], results[0], rtol=0, atol=0)
    assert results[0][0].sum() > 0 and results[0][1].sum() > 0
