"""The monitor's rule for every activation (torch_ext/monitor/rules.py), checked against
PyTorch's own derivative: autograd of the real module or function, in float64, on a dense
grid and right at each derived bound, for several grad_eps; and the float32 bounds against
float32 inputs on each side of them."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from torch_ext.monitor import rules
from torch_ext.monitor.counting import activation_rule, alive_threshold
from torch_ext.monitor.rules import FUNCTION_RULES, NoRule, rule_for_function

EPS = (1e-3, 1e-2, 0.1, 0.3)

# (id, module) for every torch.nn activation the monitor has a derived rule for.
MODULES = [
    ("GELU", torch.nn.GELU()),
    ("GELU-tanh", torch.nn.GELU(approximate="tanh")),
    ("SiLU", torch.nn.SiLU()),
    ("Mish", torch.nn.Mish()),
    ("Hardswish", torch.nn.Hardswish()),
    ("Hardsigmoid", torch.nn.Hardsigmoid()),
    ("Hardtanh", torch.nn.Hardtanh()),
    ("Hardtanh-2-5", torch.nn.Hardtanh(-2.0, 5.0)),
    ("ReLU6", torch.nn.ReLU6()),
    ("Tanh", torch.nn.Tanh()),
    ("Sigmoid", torch.nn.Sigmoid()),
    ("Softsign", torch.nn.Softsign()),
    ("LogSigmoid", torch.nn.LogSigmoid()),
    ("Softplus", torch.nn.Softplus()),
    ("Softplus-beta2", torch.nn.Softplus(beta=2.0, threshold=5.0)),
    ("Threshold", torch.nn.Threshold(0.5, -1.0)),
    ("Hardshrink", torch.nn.Hardshrink(0.4)),
    ("Softshrink", torch.nn.Softshrink(0.7)),
    ("Tanhshrink", torch.nn.Tanhshrink()),
    ("RReLU-eval", torch.nn.RReLU(0.2, 0.4).eval()),
]


def _hf_modules():
    activations = pytest.importorskip("transformers.activations")
    names = [
        "GELUActivation",
        "GELUTanh",
        "NewGELUActivation",
        "AccurateGELUActivation",
        "FastGELUActivation",
        "QuickGELUActivation",
        "SiLUActivation",
        "MishActivation",
        "ReLUSquaredActivation",
        "LaplaceActivation",
        "SqrtSoftplusActivation",
    ]
    found = [(name, getattr(activations, name)()) for name in names if hasattr(activations, name)]
    found.append(("ClippedGELU", activations.ClippedGELUActivation(-0.1, 2.0)))
    return found


def _derivative(f, z: torch.Tensor) -> torch.Tensor:
    """|f'(z)| elementwise by autograd, in float64."""
    z = z.detach().clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(f(z).sum(), z)
    return grad.abs()


def _check_rule_against_autograd(f, rule, grad_eps: float) -> None:
    interval = rule.interval(grad_eps)
    grid = torch.linspace(-40, 40, 160_001, dtype=torch.float64)
    bounds = [b for b in (interval.lo, interval.hi, interval.band_lo, interval.band_hi)]
    near = [b + d * max(1.0, abs(b)) for b in bounds if math.isfinite(b) for d in (-1e-6, 1e-6)]
    z = torch.cat([grid, torch.tensor(near, dtype=torch.float64)])
    # Points within 1e-9 (relative) of a bound are left out: there float64 rounding of the
    # formulas may put |f'| on either side of grad_eps.
    keep = torch.ones_like(z, dtype=torch.bool)
    for b in bounds:
        if math.isfinite(b):
            keep &= (z - b).abs() > 1e-9 * max(1.0, abs(b))
    z = z[keep]
    expected = _derivative(f, z) > grad_eps
    got = torch.tensor([interval.alive(v) for v in z.tolist()])
    wrong = (expected != got).nonzero().flatten()
    assert wrong.numel() == 0, (
        f"{rule.name}, grad_eps={grad_eps}: rule {interval} disagrees with autograd at "
        f"z={z[wrong[:5]].tolist()}"
    )


@pytest.mark.parametrize("grad_eps", EPS)
@pytest.mark.parametrize("module", [m for _, m in MODULES], ids=[n for n, _ in MODULES])
def test_module_rule_matches_autograd(module, grad_eps):
    rule = activation_rule(module)
    assert rule is not None
    try:
        rule.interval(grad_eps)
    except NoRule:
        pytest.skip("no rule at this grad_eps (tested in test_rrelu_refuses_random_slopes)")
    _check_rule_against_autograd(module.double(), rule, grad_eps)


@pytest.mark.parametrize("grad_eps", (1e-3, 0.05))
def test_hugging_face_rules_match_autograd(grad_eps):
    for name, module in _hf_modules():
        rule = activation_rule(module)
        assert rule is not None, name
        _check_rule_against_autograd(module, rule, grad_eps)


# Every function functional=True counts outside the ReLU family, with its arguments.
CALLS = [
    ("gelu", F.gelu, (), {}),
    ("gelu", F.gelu, (), {"approximate": "tanh"}),
    ("silu", F.silu, (), {}),
    ("mish", F.mish, (), {}),
    ("hardswish", F.hardswish, (), {}),
    ("hardsigmoid", F.hardsigmoid, (), {}),
    ("hardtanh", F.hardtanh, (-0.5, 2.0), {}),
    ("relu6", F.relu6, (), {}),
    ("tanh", torch.tanh, (), {}),
    ("sigmoid", torch.sigmoid, (), {}),
    ("softsign", F.softsign, (), {}),
    ("log_sigmoid", F.logsigmoid, (), {}),
    ("softplus", F.softplus, (), {"beta": 3.0}),
    ("threshold", F.threshold, (0.25, 2.0), {}),
    ("hardshrink", F.hardshrink, (0.3,), {}),
    ("softshrink", F.softshrink, (), {"lambd": 0.6}),
    ("tanhshrink", F.tanhshrink, (), {}),
    ("rrelu", F.rrelu, (0.1, 0.2), {}),
]


@pytest.mark.parametrize(
    "kind,func,args,kwargs", CALLS, ids=[f"{c[0]}-{i}" for i, c in enumerate(CALLS)]
)
def test_function_rule_matches_autograd(kind, func, args, kwargs):
    assert kind in FUNCTION_RULES
    z = torch.zeros(1)
    rule = rule_for_function(kind, (z, *args), kwargs)
    _check_rule_against_autograd(lambda x: func(x, *args, **kwargs), rule, 1e-3)


@pytest.mark.parametrize("grad_eps", EPS)
@pytest.mark.parametrize("module", [m for _, m in MODULES[:13]], ids=[n for n, _ in MODULES[:13]])
def test_float32_bounds_count_float32_inputs_exactly(module, grad_eps):
    """The float32 bounds put every float32 input on the side its float64 value is on:
    the floats next to each bound, on both sides."""
    rule = activation_rule(module)
    interval = rule.interval(grad_eps)
    lo, hi, band_lo, band_hi = rule.bounds(grad_eps, 1, "cpu")[:, 0].tolist()
    for bound in (interval.lo, interval.hi, interval.band_lo, interval.band_hi):
        if not math.isfinite(bound):
            continue
        center = torch.tensor(bound, dtype=torch.float32)
        values = [center]
        for direction in (math.inf, -math.inf):
            step = center
            for _ in range(3):
                step = torch.nextafter(step, torch.tensor(direction))
                values.append(step)
        for value in torch.stack(values).tolist():
            counted = lo < value < hi and not band_lo <= value <= band_hi
            assert counted == interval.alive(value), (rule.name, grad_eps, value)


def test_bounds_documented_for_gelu_and_silu():
    """The numbers rules.py's docstring states, for grad_eps=1e-3."""
    gelu = rules._gelu_rule().interval(1e-3)
    assert gelu.lo == pytest.approx(-3.81, abs=5e-3)
    assert (gelu.band_lo, gelu.band_hi) == (
        pytest.approx(-0.7541, abs=1e-4),
        pytest.approx(-0.7495, abs=1e-4),
    )
    assert rules._silu_rule().interval(1e-3).lo == pytest.approx(-8.99, abs=5e-3)
    assert rules._gelu_rule("tanh").interval(1e-3).lo == pytest.approx(-3.74, abs=5e-3)
    assert rules._silu_rule(1.702).interval(1e-3).lo == pytest.approx(-5.28, abs=5e-3)


def test_saturating_activations_are_named_so():
    for module in (torch.nn.Tanh(), torch.nn.Sigmoid(), torch.nn.Hardtanh(), torch.nn.Softsign()):
        assert activation_rule(module).condition == "saturated"
    for module in (torch.nn.GELU(), torch.nn.SiLU(), torch.nn.ReLU6()):
        assert activation_rule(module).condition == "dead"


def test_rrelu_refuses_random_slopes():
    """RReLU draws its slope per element: with grad_eps between lower and upper, no bound
    on z says whether a sample passes gradient, so there is no rule."""
    rule = activation_rule(torch.nn.RReLU(0.1, 0.3))
    with pytest.raises(NoRule, match="random"):
        rule.interval(0.2)
    assert rule.interval(0.05).lo == -math.inf  # every slope passes
    assert rule.interval(0.5).lo == 0.0  # no slope passes: dead below 0


def test_a_subclass_overriding_forward_gets_no_rule():
    class Shifted(torch.nn.GELU):
        def forward(self, x):
            return super().forward(x - 3)

    class Plain(torch.nn.GELU):
        pass

    assert activation_rule(Shifted()) is None
    assert activation_rule(Plain()) is not None


def test_alive_threshold_shapes():
    """Half-line (units,) for the ReLU family, (4, units) intervals for the others."""
    assert alive_threshold(torch.nn.ReLU(), 5, 1e-3, "cpu").shape == (5,)
    bounds = alive_threshold(torch.nn.GELU(), 5, 1e-3, "cpu")
    assert bounds.shape == (4, 5) and bounds.dtype == torch.float32
    assert torch.equal(bounds[:, 0], bounds[:, 4])


PIECEWISE = [
    m
    for name, m in MODULES
    if name.split("-")[0]
    in {"Hardswish", "Hardsigmoid", "Hardtanh", "ReLU6", "Threshold", "Hardshrink", "Softshrink"}
]


@pytest.mark.parametrize("module", PIECEWISE, ids=lambda m: type(m).__name__)
def test_kinks_follow_pytorchs_backward(module):
    """At a kink (Hardtanh's ends, Hardswish's -3, a shrink's +-lambda) PyTorch's backward
    picks a side: the rule must pick the same, at the kink and the doubles beside it."""
    rule = activation_rule(module)
    interval = rule.interval(1e-3)
    points = []
    for bound in (interval.lo, interval.hi, interval.band_lo, interval.band_hi):
        if math.isfinite(bound):
            around = [math.nextafter(bound, -math.inf), bound, math.nextafter(bound, math.inf)]
            slopes = _derivative(module.double(), torch.tensor(around, dtype=torch.float64))
            if slopes.max() - slopes.min() > 0.01:  # a kink (a band's ends may be smooth)
                points += around
    assert points
    z = torch.tensor(points, dtype=torch.float64)
    expected = (_derivative(module.double(), z) > 1e-3).tolist()
    assert [interval.alive(v) for v in points] == expected, (rule.name, points)
