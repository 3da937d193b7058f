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


# --- The interval rule and the sums of |out| -------------------------------------------------

INF = float("inf")
DTYPES = [torch.float32, torch.float64, torch.bfloat16, torch.float16]
COUNTED = {  # name -> (counted(z, counts, unit_dim, threshold, abs_sum), plain(z, unit_dim))
    "leaky_relu": (
        lambda z, c, d, t, s: ops.leaky_relu_counted(z, 0.1, c, d, t, s),
        lambda z, d: ops.leaky_relu(z, 0.1),
    ),
    "prelu": (
        lambda z, c, d, t, s: ops.prelu_counted(z, slopes_for(z, d), c, d, t, s),
        lambda z, d: ops.prelu(z, slopes_for(z, d)),
    ),
    "elu": (
        lambda z, c, d, t, s: ops.elu_counted(z, 0.7, 1.0, c, d, t, abs_sum=s),
        lambda z, d: ops.elu(z, 0.7),
    ),
    "selu": (
        lambda z, c, d, t, s: ops.elu_counted(z, *SELU, c, d, t, abs_sum=s),
        lambda z, d: ops.selu(z),
    ),
    "celu-save_output": (
        lambda z, c, d, t, s: ops.elu_counted(z, 2.0, 1.0, c, d, t, True, 0.5, s),
        lambda z, d: ops.celu(z, 2.0),
    ),
}


def slopes_for(z: torch.Tensor, unit_dim: int) -> torch.Tensor:
    """PReLU's weight: one slope per channel when the channels are the units, else one."""
    if z.dim() > 1 and unit_dim % z.dim() == 1:
        return torch.linspace(-0.5, 0.5, z.shape[1], dtype=z.dtype)
    return torch.tensor([0.2], dtype=z.dtype)


def thresholds_for(units: int, rule: str) -> torch.Tensor:
    if rule == "half-line":
        return torch.linspace(-2, 0, units)
    lo, hi = torch.linspace(-3, -0.5, units), torch.linspace(0.5, 3, units)
    band_lo, band_hi = torch.linspace(-0.4, 0.0, units), torch.linspace(0.0, 0.4, units)
    return torch.stack([lo, hi, band_lo, band_hi]).contiguous()


LAYOUTS_WITH_TAILS = {
    **LAYOUTS,
    "rows-17": (lambda: torch.randn(9, 17), 1),
    "planes-33": (lambda: torch.randn(2, 5, 33), 1),
    "rows-units-dim-0": (lambda: torch.randn(7, 40).t(), 0),  # units innermost, unit_dim 0
    "1d": (lambda: torch.randn(65), 0),
    "non-channel-units": (lambda: torch.randn(4, 3, 5), 2),  # PReLU per channel: not fused
}


@pytest.mark.parametrize("requires_grad", [False, True], ids=["nograd", "grad"])
@pytest.mark.parametrize("rule", ["half-line", "interval"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", list(LAYOUTS_WITH_TAILS))
@pytest.mark.parametrize("name", list(COUNTED))
def test_counted_abs_sum_is_abs_sum_of_the_output(name, layout, dtype, rule, requires_grad):
    """With abs_sum, a counted op adds sum |out| per unit, as abs_sum_ of its output does
    (the same bits on CPU: the same per-unit pass over out), and counts as count_active_
    does, under either rule; the output is the plain op's."""
    make, unit_dim = LAYOUTS_WITH_TAILS[layout]
    z = make().mul(2).to(dtype).requires_grad_(requires_grad)
    units = z.shape[unit_dim]
    counted, plain = COUNTED[name]
    threshold = thresholds_for(units, rule)
    counts = torch.zeros(2, units, dtype=torch.int64)
    sums = torch.full((units,), 0.5, dtype=torch.float64)
    y = counted(z, counts, unit_dim, threshold, sums)

    expected_counts = torch.zeros(2, units, dtype=torch.int64)
    ops.count_active_(z.detach(), expected_counts, unit_dim, threshold)
    expected_sums = torch.full((units,), 0.5, dtype=torch.float64)
    ops.abs_sum_(y.detach(), expected_sums, unit_dim)
    assert torch.equal(counts, expected_counts)
    if z.device.type == "cpu":
        assert torch.equal(sums, expected_sums)
    else:  # CUDA adds per-block sums atomically, in no fixed order
        torch.testing.assert_close(sums, expected_sums, rtol=1e-12, atol=0)
    torch.testing.assert_close(y, plain(z, unit_dim), rtol=0, atol=0)
    # and against plain torch in float64
    per_unit = y.detach().double().movedim(unit_dim, -1).reshape(-1, units)
    torch.testing.assert_close(sums, 0.5 + per_unit.abs().sum(0), rtol=1e-12, atol=0)


@pytest.mark.parametrize("name", list(COUNTED))
def test_counted_without_abs_sum_leaves_it_alone(name):
    z = torch.randn(6, 4)
    counts = torch.zeros(2, 4, dtype=torch.int64)
    sums = torch.zeros(4, dtype=torch.float64)
    COUNTED[name][0](z, counts, 1, torch.zeros(4), None)
    assert counts.sum() > 0 and sums.sum() == 0


# Per unit: (lo, hi, band_lo, band_hi), values every dtype holds exactly. Units 0-2 have a
# band strictly inside (lo, hi), unit 3 none (band_lo > band_hi), unit 4 a band of one point.
INTERVALS = [
    (-2.0, 1.5, -0.25, 0.5),
    (-1.0, 2.0, 0.0, 0.25),
    (-4.0, 0.5, -0.5, 0.0),
    (-0.5, 3.0, 1.0, -1.0),
    (-3.0, 1.0, -0.125, -0.125),
]


def on_and_beside_bounds(bounds: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """[12, units]: each unit's four bounds in `dtype`, and each bound's neighbour inside
    (lo, hi) and on the band's far side: lo+, hi-, band_lo-, band_hi+; and 0, -inf, +inf,
    NaN."""
    at = bounds.to(dtype)
    up, down = torch.full_like(at[0], INF), torch.full_like(at[0], -INF)
    beside = torch.stack(
        [
            torch.nextafter(at[0], up),
            torch.nextafter(at[1], down),
            torch.nextafter(at[2], down),
            torch.nextafter(at[3], up),
        ]
    )
    special = torch.tensor([0.0, -INF, INF, float("nan")], dtype=dtype)[:, None]
    return torch.cat([at, beside, special.expand(4, at.shape[1])])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", ["rows", "planes"])
@pytest.mark.parametrize("name", COUNTERS)
def test_interval_bounds_are_strict_and_the_band_closed(name: str, layout: str, dtype):
    """lo and hi are excluded (z exactly on either is dead), the band is closed (z exactly on
    band_lo or band_hi is dead), and the next value of the dtype inside (lo, hi) and outside
    the band is alive; NaN and the infinities are never alive (finite lo and hi)."""
    bounds = torch.tensor(INTERVALS).t().contiguous()  # [4, units]
    units = bounds.shape[1]
    rows = on_and_beside_bounds(bounds, dtype)  # [12, units]
    if layout == "rows":  # units innermost, over more rows than a vector of lanes
        z, unit_dim = rows.repeat(5, 1), 1
    else:  # per-unit planes of 37 (vectors and a tail): [2, units, 37]
        z, unit_dim = rows.t().repeat(2, 1, 4)[:, :, :37].contiguous(), 1
    counts = torch.zeros(2, units, dtype=torch.int64)
    COUNTERS[name](z, counts, unit_dim, bounds)
    per_unit = z.movedim(unit_dim, -1).reshape(-1, units).double()
    lo, hi, band_lo, band_hi = bounds.double()
    alive = (per_unit > lo) & (per_unit < hi) & ~((per_unit >= band_lo) & (per_unit <= band_hi))
    assert torch.equal(counts, torch.stack([(per_unit > 0).sum(0), alive.sum(0)]))
    # and explicitly, on one copy of the twelve values: units 0-2 keep only lo+, hi-, band_lo-
    # and band_hi+ (0 lies on or in their band); unit 3 (no band) also its "band_lo" 1 and 0,
    # but not its "band_hi" -1 < lo nor the value above it; unit 4 (band {-0.125}) also 0.
    one = torch.zeros(2, units, dtype=torch.int64)
    COUNTERS[name](rows, one, 1, bounds)
    assert one[1].tolist() == [4, 4, 4, 5, 5]


@pytest.mark.parametrize(
    "name,kwargs,error,pattern",
    [
        ("leaky_relu", {"s": torch.zeros(4)}, TypeError, "'abs_sum' to be float64"),
        ("prelu", {"s": torch.zeros(5, dtype=torch.float64)}, RuntimeError, r"'abs_sum'.*\[4\]"),
        (
            "elu",
            {"s": torch.zeros(4, dtype=torch.float64, device="meta")},
            RuntimeError,
            "argument 'abs_sum' to be on the device of 'input'",
        ),
        ("selu", {"t": torch.zeros(3, 4)}, RuntimeError, r"'alive_threshold'.*\[4\] or \[4, 4\]"),
        ("leaky_relu", {"t": torch.zeros(4, 4).t()}, RuntimeError, r"\(not contiguous\)"),
    ],
)
def test_counted_bad_statistics_arguments(name, kwargs, error, pattern):
    """Errors name the counted op and the argument; nothing is counted or written."""
    op = {"leaky_relu": "leaky_relu_counted", "prelu": "prelu_counted"}.get(name, "elu_counted")
    args = {"t": torch.zeros(4), "s": torch.zeros(4, dtype=torch.float64)}
    args.update(kwargs)
    counts = torch.zeros(2, 4, dtype=torch.int64)
    with pytest.raises(error, match=f"torch_ext::{op}: .*" + pattern):
        COUNTED[name][0](torch.randn(3, 4), counts, 1, args["t"], args["s"])
    assert counts.sum() == 0


@pytest.mark.parametrize("case", ["leaky_relu", "prelu", "elu", "celu"])
def test_opcheck_with_abs_sum_and_interval(case):
    x = torch.randn(6, 4, requires_grad=True)
    counts = torch.zeros(2, 4, dtype=torch.int64)
    bounds = thresholds_for(4, "interval")
    sums = torch.zeros(4, dtype=torch.float64)
    args = {
        "leaky_relu": (ops.leaky_relu_counted.default, (x, 0.1, counts, 1, bounds, sums)),
        "prelu": (
            ops.prelu_counted.default,
            (x, torch.full((4,), 0.25, requires_grad=True), counts, 1, bounds, sums),
        ),
        "elu": (ops.elu_counted.default, (x, 1.0, 1.0, counts, 1, bounds, False, 1.0, sums)),
        "celu": (ops.elu_counted.default, (x, 0.5, 1.0, counts, 1, bounds, False, 2.0, sums)),
    }[case]
    torch.library.opcheck(*args)


class TupleCounter:
    """A UnitCounter answering with a 4-tuple (abs sums) or, as earlier counters did, a
    3-tuple."""

    def __init__(self, units: int, size: int) -> None:
        self.counts = torch.zeros(2, units, dtype=torch.int64)
        self.sums = torch.zeros(units, dtype=torch.float64)
        self.threshold = thresholds_for(units, "interval")
        self.size = size

    def counting_args(self, module, input):
        args = (self.counts, 1, self.threshold, self.sums)
        return args[: self.size]


@pytest.mark.parametrize("size", [3, 4])
@pytest.mark.parametrize("module", ["LeakyReLU", "PReLU", "ELU", "CELU", "SELU"])
def test_modules_pass_a_counters_abs_sum_to_their_counted_op(module: str, size: int):
    import torch_ext.nn as xnn

    m = {"PReLU": lambda: xnn.PReLU(4)}.get(module, getattr(xnn, module))()
    z = torch.randn(8, 4)
    m.counter = TupleCounter(4, size)
    y = m(z)
    torch.testing.assert_close(y, m._activation(z), rtol=0, atol=0)
    counts = torch.zeros(2, 4, dtype=torch.int64)
    ops.count_active_(z, counts, 1, m.counter.threshold)
    assert torch.equal(m.counter.counts, counts)
    expected = torch.zeros(4, dtype=torch.float64)
    if size == 4:
        ops.abs_sum_(y.detach(), expected, 1)
    assert torch.equal(m.counter.sums, expected)
