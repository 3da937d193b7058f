"""Where each activation passes gradient: the monitor's dead (or saturated) rule for every
activation a model brings, derived once per activation and parameters from its own
derivative.

A unit is gradient-alive on a sample when ``|f'(z)| > grad_eps``. For the ReLU family the
alive set is a half-line ``z > threshold`` (``torch.ops.torch_ext.alive_threshold``, from
the C++ activation definitions). For every other activation it is found here from ``f'``
written in float64 as PyTorch's backward computes it (its conventions at kinks included):
a scan of a fine grid (plus the points where ``|f'|`` peaks), each change bisected down to
adjacent doubles. The result is one interval ``lo < z < hi`` with at most one closed dead
band ``band_lo <= z <= band_hi`` inside it, which is what ``count_active_`` counts:

* GELU, SiLU, Mish, QuickGELU: ``f'`` is negative below a point (GELU -0.752, SiLU -1.278,
  Mish -1.19), reaches a minimum (GELU -0.170 at -1.41, SiLU -0.0998 at -2.40) and tends to
  0 as ``z -> -inf``. Dead region: ``z <= lo`` with ``lo`` where ``|f'|`` falls to
  ``grad_eps`` on the far side of that minimum (for ``grad_eps=1e-3``: GELU -3.81, its
  tanh form -3.74, SiLU -8.99, Mish -8.99, QuickGELU -5.28). Where ``f'`` crosses zero, ``|f'| <= grad_eps`` on a narrow band (GELU:
  ``[-0.7541, -0.7495]`` for ``grad_eps=1e-3``): it is the dead band, counted exactly like
  the rest (a unit whose every sample sits in it passes no gradient, so it is dead).
* Tanh, Sigmoid, Softsign, Hardtanh, Hardsigmoid: alive on a bounded interval; a unit
  outside it on every sample is *saturated* (the report's ``condition``).
* ReLU6 (Hardtanh(0, 6)), Hardswish, Softplus, Threshold, ReLU²: an interval or half-line.
* Hardshrink, Softshrink, Tanhshrink: dead on a band around 0.

Bounds are stored as float32 rounded outwards from the dead side, so the counts are exact
for float32, bfloat16 and float16 inputs; a float64 input within one float32 ulp of a bound
may fall on either side. An input of +-inf at an unbounded end of the interval (Softplus at
+inf, LogSigmoid at -inf) is outside the strict ``lo < z < hi`` and counts as dead: it is
no pre-activation a network trains on. An activation whose alive set would need two bands, or whose
derivative is random across a bound (RReLU with ``lower <= grad_eps < upper``), has no
rule: the monitor then says so and does not count it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

__all__ = [
    "FUNCTION_RULES",
    "RULED_NN_ACTIVATIONS",
    "ActivationRule",
    "Interval",
    "NoRule",
    "rule_for_function",
    "rule_for_module",
]

_SQRT2 = math.sqrt(2.0)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


class NoRule(ValueError):
    """An activation the monitor cannot count exactly (the message says why)."""


# --- float64 formulas ------------------------------------------------------------------
def _sigmoid(z: float) -> float:
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def _softplus(z: float) -> float:
    return z if z > 30 else math.log1p(math.exp(z))


def _gelu(z: float) -> float:
    return 0.5 * z * math.erfc(-z / _SQRT2)


def _gelu_grad(z: float) -> float:
    return 0.5 * math.erfc(-z / _SQRT2) + z * _INV_SQRT_2PI * math.exp(-0.5 * z * z)


def _tanh_gelu(c: float) -> tuple[Callable[[float], float], Callable[[float], float]]:
    """GELU's tanh approximation, 0.5 z (1 + tanh(c (z + 0.044715 z^3)))."""

    def value(z: float) -> float:
        return 0.5 * z * (1.0 + math.tanh(c * (z + 0.044715 * z**3)))

    def grad(z: float) -> float:
        t = math.tanh(c * (z + 0.044715 * z**3))
        return 0.5 * (1.0 + t) + 0.5 * z * (1.0 - t * t) * c * (1.0 + 3 * 0.044715 * z * z)

    return value, grad


def _scaled_silu(a: float) -> tuple[Callable[[float], float], Callable[[float], float]]:
    """z sigmoid(a z): SiLU (a = 1), QuickGELU (a = 1.702)."""

    def grad(z: float) -> float:
        s = _sigmoid(a * z)
        return s + a * z * s * (1.0 - s)

    return (lambda z: z * _sigmoid(a * z)), grad


def _mish_grad(z: float) -> float:
    t = math.tanh(_softplus(z))
    return t + z * _sigmoid(z) * (1.0 - t * t)


def _between(lo: float, hi: float, slope: float = 1.0) -> Callable[[float], float]:
    """slope on (lo, hi), 0 elsewhere: Hardtanh's backward (its ends are dead)."""
    return lambda z: slope if lo < z < hi else 0.0


def _hardswish_grad(z: float) -> float:
    """As aten's hardswish_backward: 0 up to and at -3, 1 from 3 on."""
    if z <= -3:
        return 0.0
    return z / 3 + 0.5 if z < 3 else 1.0


def _softplus_rule(beta: float, threshold: float) -> tuple[Callable, Callable]:
    def value(z: float) -> float:
        return z if beta * z > threshold else _softplus(beta * z) / beta

    def grad(z: float) -> float:
        return 1.0 if beta * z > threshold else _sigmoid(beta * z)

    return value, grad


def _shrink_grad(lambd: float) -> Callable[[float], float]:
    return lambda z: 0.0 if -lambd <= z <= lambd else 1.0


# --- rules -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Interval:
    """The gradient-alive set ``lo < z < hi``, less the dead band ``band_lo <= z <= band_hi``
    (none when ``band_lo > band_hi``), as float64 bounds on the dead side."""

    lo: float
    hi: float
    band_lo: float = math.inf
    band_hi: float = -math.inf

    def alive(self, z: float) -> bool:
        return self.lo < z < self.hi and not self.band_lo <= z <= self.band_hi

    def float32_rows(self) -> list[float]:
        """The bounds as ``count_active_`` takes them (float32), rounded away from the alive set:
        for a float32 z, ``z > lo32`` exactly when ``z > lo``, and so on."""
        band_lo, band_hi = _round_up(self.band_lo), _round_down(self.band_hi)
        if band_lo > band_hi:  # no float32 falls in the band
            band_lo, band_hi = math.inf, -math.inf
        return [_round_down(self.lo), _round_up(self.hi), band_lo, band_hi]


def _float32_step(x: float, toward: float) -> float:
    """The float32 next to float32 `x` toward `toward`, or x itself if x is the nearest
    float32 to a value on that side."""
    x32 = torch.tensor(x, dtype=torch.float32)
    return torch.nextafter(x32, torch.tensor(toward, dtype=torch.float32)).item()


def _round_down(x: float) -> float:
    """The largest float32 <= x."""
    y = torch.tensor(x, dtype=torch.float32).item()
    return y if y <= x else _float32_step(y, -math.inf)


def _round_up(x: float) -> float:
    """The smallest float32 >= x."""
    y = torch.tensor(x, dtype=torch.float32).item()
    return y if y >= x else _float32_step(y, math.inf)


def _grid(extrema: tuple[float, ...]) -> list[float]:
    """Scan points: every 1/256 on [-64, 64], geometric out to 1e12, and the points where
    |f'| peaks (so that a narrow alive interval around a peak is not stepped over)."""
    fine = [i / 256 for i in range(-64 * 256, 64 * 256 + 1)]
    far = [64 * 1.05**k for k in range(1, 520) if 64 * 1.05**k < 1e12]
    return sorted({*fine, *far, *(-x for x in far), *extrema, -1e12, 1e12})


def _boundary(alive: Callable[[float], bool], a: float, b: float) -> tuple[float, float]:
    """Adjacent doubles (x, y), a <= x < y <= b, where alive(x) != alive(y), given that
    alive(a) != alive(b)."""
    left = alive(a)
    while math.nextafter(a, b) != b:
        mid = a + (b - a) / 2
        if mid in (a, b):
            mid = math.nextafter(a, b)
        if alive(mid) == left:
            a = mid
        else:
            b = mid
    return a, b


# (rule key, grad_eps) -> its interval, and its bounds as float32 rows (Interval's
# float32_rows): filled at attach (eager), read in every counted call.
_INTERVALS: dict[tuple, Interval] = {}
_ROWS: dict[tuple, list[float]] = {}


@torch.compiler.disable
def _derive(key: tuple, grad_eps: float) -> Interval:
    """Derived once per rule and grad_eps, never traced: Dynamo would unroll the scan (tens
    of thousands of points) into a graph, for minutes, on a compiled model's first call;
    the rounding to float32 (a tensor's .item()) would break its graph."""
    found = _INTERVALS.get((key, grad_eps))
    if found is None:
        found = _RULE_MAKERS[key[0]](*key[1:]).derive(grad_eps)
        _ROWS[(key, grad_eps)] = found.float32_rows()
        _INTERVALS[(key, grad_eps)] = found
    return found


@dataclass(frozen=True)
class ActivationRule:
    """One activation with its parameters: its name, ``f`` and ``f'`` in float64 (``f'`` as
    PyTorch's backward computes it), what a unit that passes no gradient is called, and the
    points where ``|f'|`` peaks."""

    name: str
    key: tuple  # hashable: the maker's name and the parameters
    value: Callable[[float], float]
    grad: Callable[[float], float]
    condition: str = "dead"  # or "saturated": flat on both sides
    extrema: tuple[float, ...] = ()
    # RReLU: |f'| below 0 is drawn from this range per element (training), so no bound on z
    # decides it when grad_eps falls inside.
    random_slopes: tuple[float, float] | None = None

    def interval(self, grad_eps: float) -> Interval:
        """The gradient-alive set for `grad_eps` (computed once per rule and grad_eps).

        Raises:
            NoRule: the set is not one interval with at most one dead band, or depends on
                random slopes.
        """
        if self.random_slopes is not None:
            low, high = self.random_slopes
            if low <= grad_eps < high:
                raise NoRule(
                    f"{self.name} draws its negative slope from [{low:g}, {high:g}] per "
                    f"element, on both sides of grad_eps={grad_eps:g}: whether a sample "
                    "passes gradient is random"
                )
        found = _INTERVALS.get((self.key, grad_eps))
        return found if found is not None else _derive(self.key, grad_eps)

    def derive(self, grad_eps: float) -> Interval:
        def alive(z: float) -> bool:
            return abs(self.grad(z)) > grad_eps

        points = self._points()
        states = [alive(z) for z in points]
        runs: list[list[float]] = []  # [first dead below, first dead above] per alive run
        for i, state in enumerate(states):
            if not state:
                continue
            if i == 0 or not states[i - 1]:
                low = -math.inf if i == 0 else _boundary(alive, points[i - 1], points[i])[0]
                runs.append([low, math.inf])
            if i + 1 < len(states) and not states[i + 1]:
                runs[-1][1] = _boundary(alive, points[i], points[i + 1])[1]
        if not runs:
            return Interval(math.inf, math.inf)
        if len(runs) > 2:
            raise NoRule(
                f"{self.name} passes gradient on {len(runs)} separate intervals for "
                f"grad_eps={grad_eps}; counting handles one interval with one dead band"
            )
        if len(runs) == 1:
            return Interval(runs[0][0], runs[0][1])
        (lo, gap_lo), (gap_hi, hi) = runs
        # The band's dead points: the doubles strictly between the two runs' ends.
        return Interval(lo, hi, gap_lo, gap_hi)  # the band: the dead points between the runs

    def _points(self) -> list[float]:
        """The scan's points: the grid, plus each zero of f' (where GELU's and SiLU's
        derivative crosses 0) and the doubles beside it: a dead band narrower than the grid's
        step (grad_eps of 1e-4 and below) is found there."""
        grid = _grid(self.extrema)
        signs = [self.grad(z) for z in grid]
        zeros = []
        for a, b, fa, fb in zip(grid, grid[1:], signs, signs[1:]):
            if fa * fb < 0:
                root = _boundary(lambda z: self.grad(z) > 0, a, b)
                zeros += [
                    math.nextafter(root[0], -math.inf),
                    *root,
                    math.nextafter(root[1], math.inf),
                ]
        return sorted({*grid, *zeros})

    def bounds(self, grad_eps: float, units: int, device: torch.device | str) -> Tensor:
        """``count_active_``'s ``alive_threshold``: float32 ``[4, units]``."""
        rows = _ROWS.get((self.key, grad_eps))
        if rows is None:
            self.interval(grad_eps)  # derived and rounded outside any compiled graph
            rows = _ROWS[(self.key, grad_eps)]
        column = torch.tensor(rows, dtype=torch.float32, device=device)
        return column[:, None].expand(4, units).contiguous()

    def dead_output_bound(self, grad_eps: float, nonpositive: bool = False) -> float:
        """The sup of ``|f(z)|`` over the dead set (with `nonpositive`, its part ``z <= 0``):
        how far a dead unit's output can be from 0; ``inf`` where it is unbounded (RReLU's
        ``slope * z``). Taken over the scan's points, the set's ends and the zeros of
        ``f'``, where a piecewise smooth ``|f|`` peaks."""
        interval = self.interval(grad_eps)
        ends = [interval.lo, interval.hi, interval.band_lo, interval.band_hi]
        points = [z for z in [*self._points(), *ends] if math.isfinite(z)]
        dead = [z for z in points if not interval.alive(z) and not (nonpositive and z > 0)]
        peak = max((abs(self.value(z)) for z in dead), default=0.0)
        far = [z for z in dead if abs(z) >= 1e12]
        if far and max(abs(self.value(z)) for z in far) > 1e6:
            return math.inf  # still growing at the scan's end: unbounded
        return peak


def _gelu_rule(approximate: str = "none") -> ActivationRule:
    if approximate == "tanh":
        value, grad = _tanh_gelu(_SQRT_2_OVER_PI)
        return ActivationRule(
            "GELU(approximate='tanh')", ("gelu", "tanh"), value, grad, extrema=(-1.4, 1.4)
        )
    if approximate != "none":
        raise NoRule(f"GELU with approximate='{approximate}' is not a GELU PyTorch computes")
    return ActivationRule("GELU", ("gelu", "none"), _gelu, _gelu_grad, extrema=(-_SQRT2, _SQRT2))


def _fast_gelu_rule() -> ActivationRule:
    value, grad = _tanh_gelu(0.7978845608)
    return ActivationRule("FastGELU", ("fast_gelu",), value, grad, extrema=(-1.4, 1.4))


def _silu_rule(a: float = 1.0) -> ActivationRule:
    value, grad = _scaled_silu(a)
    name = "SiLU" if a == 1.0 else f"z*sigmoid({a:g}z)"
    return ActivationRule(name, ("silu", a), value, grad, extrema=(-2.3994 / a, 2.3994 / a))


def _mish_rule() -> ActivationRule:
    return ActivationRule(
        "Mish", ("mish",), lambda z: z * math.tanh(_softplus(z)), _mish_grad, extrema=(-2.4, 2.3)
    )


def _hardtanh_rule(min_val: float = -1.0, max_val: float = 1.0) -> ActivationRule:
    name = "ReLU6" if (min_val, max_val) == (0.0, 6.0) else f"Hardtanh({min_val:g}, {max_val:g})"
    condition = "dead" if min_val == 0.0 else "saturated"
    return ActivationRule(
        name,
        ("hardtanh", float(min_val), float(max_val)),
        lambda z: min(max(z, min_val), max_val),
        _between(min_val, max_val),
        condition,
        extrema=(min_val, max_val, (min_val + max_val) / 2),
    )


def _hardsigmoid_rule() -> ActivationRule:
    return ActivationRule(
        "Hardsigmoid",
        ("hardsigmoid",),
        lambda z: min(max(z + 3, 0.0), 6.0) / 6,
        _between(-3.0, 3.0, 1 / 6),
        "saturated",
        extrema=(0.0,),
    )


def _hardswish_rule() -> ActivationRule:
    return ActivationRule(
        "Hardswish",
        ("hardswish",),
        lambda z: z * min(max(z + 3, 0.0), 6.0) / 6,
        _hardswish_grad,
        extrema=(-3.0, 3.0),
    )


def _tanh_rule() -> ActivationRule:
    return ActivationRule(
        "Tanh", ("tanh",), math.tanh, lambda z: 1.0 - math.tanh(z) ** 2, "saturated", (0.0,)
    )


def _sigmoid_rule() -> ActivationRule:
    def grad(z: float) -> float:
        s = _sigmoid(z)
        return s * (1.0 - s)

    return ActivationRule("Sigmoid", ("sigmoid",), _sigmoid, grad, "saturated", (0.0,))


def _softsign_rule() -> ActivationRule:
    return ActivationRule(
        "Softsign",
        ("softsign",),
        lambda z: z / (1 + abs(z)),
        lambda z: 1.0 / (1.0 + abs(z)) ** 2,
        "saturated",
        (0.0,),
    )


def _logsigmoid_rule() -> ActivationRule:
    return ActivationRule(
        "LogSigmoid", ("logsigmoid",), lambda z: -_softplus(-z), lambda z: _sigmoid(-z)
    )


def _softplus_rule_of(beta: float = 1.0, threshold: float = 20.0) -> ActivationRule:
    value, grad = _softplus_rule(beta, threshold)
    return ActivationRule(f"Softplus(beta={beta:g})", ("softplus", beta, threshold), value, grad)


def _threshold_rule(threshold: float, value: float) -> ActivationRule:
    return ActivationRule(
        f"Threshold({threshold:g})",
        ("threshold", threshold, value),
        lambda z: z if z > threshold else value,
        lambda z: 1.0 if z > threshold else 0.0,
        extrema=(threshold,),
    )


def _shrink_rule(kind: str, lambd: float) -> ActivationRule:
    def value(z: float) -> float:
        if -lambd <= z <= lambd:
            return 0.0
        return z if kind == "hardshrink" else z - math.copysign(lambd, z)

    name = "Hardshrink" if kind == "hardshrink" else "Softshrink"
    return ActivationRule(
        f"{name}({lambd:g})", (kind, lambd), value, _shrink_grad(lambd), extrema=(0.0,)
    )


def _tanhshrink_rule() -> ActivationRule:
    return ActivationRule(
        "Tanhshrink", ("tanhshrink",), lambda z: z - math.tanh(z), lambda z: math.tanh(z) ** 2
    )


def _relu_squared_rule() -> ActivationRule:
    return ActivationRule(
        "ReLUSquared",
        ("relu_squared",),
        lambda z: max(z, 0.0) ** 2,
        lambda z: 2 * z if z > 0 else 0.0,
    )


def _laplace_rule(mu: float, sigma: float) -> ActivationRule:
    return ActivationRule(
        "Laplace",
        ("laplace", mu, sigma),
        lambda z: 0.5 * math.erfc(-(z - mu) / (sigma * _SQRT2)),
        lambda z: _INV_SQRT_2PI / sigma * math.exp(-0.5 * ((z - mu) / sigma) ** 2),
        "saturated",
        (mu,),
    )


def _clipped_gelu_rule(min_val: float, max_val: float) -> ActivationRule:
    return ActivationRule(
        f"ClippedGELU({min_val:g}, {max_val:g})",
        ("clipped_gelu", min_val, max_val),
        lambda z: min(max(_gelu(z), min_val), max_val),
        # torch.clip with two scalar bounds passes gradient strictly inside them.
        lambda z: _gelu_grad(z) if min_val < _gelu(z) < max_val else 0.0,
        extrema=(-_SQRT2, _SQRT2),
    )


def _rrelu_rule(lower: float, upper: float) -> ActivationRule:
    """RReLU's slope below 0 is drawn from [lower, upper] per element in training, and is
    their mean in eval: a rule exists when every |slope| is on one side of grad_eps (see
    ActivationRule.interval); f' then takes the smallest."""
    low, high = (0.0, max(-lower, upper)) if lower < 0 < upper else sorted((abs(lower), abs(upper)))
    return ActivationRule(
        f"RReLU({lower:g}, {upper:g})",
        ("rrelu", float(lower), float(upper)),
        lambda z: z if z > 0 else low * z,
        lambda z: 1.0 if z > 0 else low,
        random_slopes=(low, high),
    )


def _sqrt_softplus_rule() -> ActivationRule:
    def grad(z: float) -> float:
        sp = _softplus(z)
        return _sigmoid(z) / (2 * math.sqrt(sp)) if sp > 0 else 0.0

    return ActivationRule(
        "SqrtSoftplus", ("sqrt_softplus",), lambda z: math.sqrt(_softplus(z)), grad
    )


def _identity_rule() -> ActivationRule:
    return ActivationRule("Linear", ("identity",), lambda z: z, lambda z: 1.0)


_RULE_MAKERS: dict[str, Callable[..., ActivationRule]] = {
    "gelu": _gelu_rule,
    "fast_gelu": _fast_gelu_rule,
    "silu": _silu_rule,
    "mish": _mish_rule,
    "hardtanh": _hardtanh_rule,
    "hardsigmoid": _hardsigmoid_rule,
    "hardswish": _hardswish_rule,
    "tanh": _tanh_rule,
    "sigmoid": _sigmoid_rule,
    "softsign": _softsign_rule,
    "logsigmoid": _logsigmoid_rule,
    "softplus": _softplus_rule_of,
    "threshold": _threshold_rule,
    "hardshrink": lambda lambd: _shrink_rule("hardshrink", lambd),
    "softshrink": lambda lambd: _shrink_rule("softshrink", lambd),
    "tanhshrink": _tanhshrink_rule,
    "relu_squared": _relu_squared_rule,
    "laplace": _laplace_rule,
    "clipped_gelu": _clipped_gelu_rule,
    "rrelu": _rrelu_rule,
    "sqrt_softplus": _sqrt_softplus_rule,
    "identity": _identity_rule,
}


# --- which rule a module or a function call has ---------------------------------------------
def _nn_rules() -> tuple[tuple[type[torch.nn.Module], Callable[[Any], ActivationRule]], ...]:
    nn = torch.nn
    return (  # subclasses before their bases (ReLU6 is a Hardtanh)
        (nn.GELU, lambda m: _gelu_rule(m.approximate)),
        (nn.SiLU, lambda m: _silu_rule()),
        (nn.Mish, lambda m: _mish_rule()),
        (nn.Hardswish, lambda m: _hardswish_rule()),
        (nn.Hardsigmoid, lambda m: _hardsigmoid_rule()),
        (nn.Hardtanh, lambda m: _hardtanh_rule(float(m.min_val), float(m.max_val))),
        (nn.Tanh, lambda m: _tanh_rule()),
        (nn.Sigmoid, lambda m: _sigmoid_rule()),
        (nn.Softsign, lambda m: _softsign_rule()),
        (nn.LogSigmoid, lambda m: _logsigmoid_rule()),
        (nn.Softplus, lambda m: _softplus_rule_of(float(m.beta), float(m.threshold))),
        (nn.Threshold, lambda m: _threshold_rule(float(m.threshold), float(m.value))),
        (nn.Hardshrink, lambda m: _shrink_rule("hardshrink", float(m.lambd))),
        (nn.Softshrink, lambda m: _shrink_rule("softshrink", float(m.lambd))),
        (nn.Tanhshrink, lambda m: _tanhshrink_rule()),
        (nn.RReLU, lambda m: _rrelu_rule(float(m.lower), float(m.upper))),
    )


#: The torch.nn activation classes outside the ReLU family that have a rule.
# Built once: rule_for_module runs at each counted call of a layer (its threshold's key).
_NN_RULES = _nn_rules()
RULED_NN_ACTIVATIONS: tuple[type[torch.nn.Module], ...] = tuple(cls for cls, _ in _NN_RULES)


# Hugging Face's activation classes (transformers.activations), by class name: each computes
# the formula named (read from its forward).
_HF_RULES: dict[str, Callable[[Any], ActivationRule]] = {
    "GELUActivation": lambda m: _gelu_rule(),  # F.gelu or its erf formula
    "GELUTanh": lambda m: _gelu_rule("tanh"),
    "PytorchGELUTanh": lambda m: _gelu_rule("tanh"),
    "NewGELUActivation": lambda m: _gelu_rule("tanh"),
    "AccurateGELUActivation": lambda m: _gelu_rule("tanh"),
    "FastGELUActivation": lambda m: _fast_gelu_rule(),
    "QuickGELUActivation": lambda m: _silu_rule(1.702),
    "SiLUActivation": lambda m: _silu_rule(),
    "MishActivation": lambda m: _mish_rule(),
    "ReLUSquaredActivation": lambda m: _relu_squared_rule(),
    "LaplaceActivation": lambda m: _laplace_rule(0.707107, 0.282095),
    "ClippedGELUActivation": lambda m: _clipped_gelu_rule(float(m.min), float(m.max)),
    "SqrtSoftplusActivation": lambda m: _sqrt_softplus_rule(),
    "LinearActivation": lambda m: _identity_rule(),
}


def rule_for_module(module: torch.nn.Module) -> ActivationRule | None:
    """The rule of an activation module outside the ReLU family: one of :mod:`torch.nn`'s
    (GELU, SiLU, Mish, Hardswish, Hardsigmoid, Hardtanh, ReLU6, Tanh, Sigmoid, Softsign,
    LogSigmoid, Softplus, Threshold, Hardshrink, Softshrink, Tanhshrink, RReLU) or Hugging
    Face's (``transformers.activations``). None for any other module, and for a subclass
    that overrides ``forward`` (it may compute something else: no rule is borrowed)."""
    kind = type(module)
    if kind.__module__ == "transformers.activations":
        make = _HF_RULES.get(kind.__name__)
        return None if make is None else make(module)
    for cls, make in _NN_RULES:
        if isinstance(module, cls):
            return make(module) if kind.forward is cls.forward else None
    return None


def _arg(args: tuple, kwargs: dict, index: int, name: str, default: Any) -> Any:
    return kwargs.get(name, args[index] if len(args) > index else default)


# Functions ``functional=True`` counts outside the ReLU family: torch-function name (in-place
# forms without their "_") -> (the rule of a call, the class name reports use).
FUNCTION_RULES: dict[str, tuple[Callable[[tuple, dict], ActivationRule], str]] = {
    "gelu": (lambda a, k: _gelu_rule(_arg(a, k, 1, "approximate", "none")), "GELU"),
    "silu": (lambda a, k: _silu_rule(), "SiLU"),
    "mish": (lambda a, k: _mish_rule(), "Mish"),
    "hardswish": (lambda a, k: _hardswish_rule(), "Hardswish"),
    "hardsigmoid": (lambda a, k: _hardsigmoid_rule(), "Hardsigmoid"),
    "hardtanh": (
        lambda a, k: _hardtanh_rule(
            float(_arg(a, k, 1, "min_val", -1.0)), float(_arg(a, k, 2, "max_val", 1.0))
        ),
        "Hardtanh",
    ),
    "relu6": (lambda a, k: _hardtanh_rule(0.0, 6.0), "ReLU6"),
    "tanh": (lambda a, k: _tanh_rule(), "Tanh"),
    "sigmoid": (lambda a, k: _sigmoid_rule(), "Sigmoid"),
    "softsign": (lambda a, k: _softsign_rule(), "Softsign"),
    "log_sigmoid": (lambda a, k: _logsigmoid_rule(), "LogSigmoid"),
    "softplus": (
        lambda a, k: _softplus_rule_of(
            float(_arg(a, k, 1, "beta", 1.0)), float(_arg(a, k, 2, "threshold", 20.0))
        ),
        "Softplus",
    ),
    "threshold": (
        lambda a, k: _threshold_rule(
            float(_arg(a, k, 1, "threshold", 0.0)), float(_arg(a, k, 2, "value", 0.0))
        ),
        "Threshold",
    ),
    "hardshrink": (
        lambda a, k: _shrink_rule("hardshrink", float(_arg(a, k, 1, "lambd", 0.5))),
        "Hardshrink",
    ),
    "softshrink": (
        lambda a, k: _shrink_rule("softshrink", float(_arg(a, k, 1, "lambd", 0.5))),
        "Softshrink",
    ),
    "tanhshrink": (lambda a, k: _tanhshrink_rule(), "Tanhshrink"),
    "rrelu": (
        lambda a, k: _rrelu_rule(
            float(_arg(a, k, 1, "lower", 1 / 8)), float(_arg(a, k, 2, "upper", 1 / 3))
        ),
        "RReLU",
    ),
}


def rule_for_function(kind: str, args: tuple, kwargs: dict) -> ActivationRule:
    """The rule of a call of function `kind` (a key of :data:`FUNCTION_RULES`)."""
    return FUNCTION_RULES[kind][0](args, kwargs)
