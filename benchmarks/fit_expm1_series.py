"""Fits the float coefficients of kMinimaxQuartic (csrc/activations/primitives.h).

    python benchmarks/fit_expm1_series.py [--degree 3]

expm1(s) = s + s^2/2 + s^3/6 + s^4 q(s) for the reduced argument s of
`expm1_of_nonpositive`: -ln 2 < s <= 0, and up to 4e-6 above 0 (where x / ln 2 rounds onto
a whole number: half an ulp of 127, times ln 2, is 2.6e-6). Minimizes the largest error of
the s^4 q(s) term relative to expm1(s), by linear programming on 1500 Chebyshev points,
then rounds the coefficients to float one at a time, lowest power first, refitting the
higher ones after each. Prints them highest power first, as the header lists them, and
that relative error with the float coefficients on a finer grid (3: 7.3e-10, 0.012 ulp at
most; the kernel's 0.7553 ulp is its roundings'). `benchmarks/elu_accuracy.py` measures the
whole forward on every float. Needs scipy and mpmath.
"""

from __future__ import annotations

import argparse
import re

import mpmath
import numpy as np
from scipy.optimize import linprog

LOW, HIGH = -0.6935, 4e-6
mpmath.mp.dps = 40


def quartic(s: float) -> mpmath.mpf:
    """q(s) = (expm1(s) - s - s^2/2 - s^3/6) / s^4, by its series (no cancellation)."""
    s = mpmath.mpf(s)
    return mpmath.fsum(s**k / mpmath.factorial(k + 4) for k in range(30))


def weight(s: float) -> mpmath.mpf:
    """An error e in q is an error of e * s^4 / |expm1(s)| relative to expm1(s)."""
    s = mpmath.mpf(s)
    return s**4 / abs(mpmath.expm1(s)) if s != 0 else mpmath.mpf(0)


def fit(degree: int, fixed: list[float], points: int = 1500) -> list[float]:
    """Minimax coefficients (lowest power first) with the first len(fixed) ones given."""
    s = np.cos(np.linspace(0, np.pi, points)) * (HIGH - LOW) / 2 + (HIGH + LOW) / 2
    target = np.array([float(quartic(v)) for v in s])
    w = np.maximum(np.array([float(weight(v)) for v in s]), 1e-6)
    powers = np.vander(s, degree + 1, increasing=True)
    rest = target - powers[:, : len(fixed)] @ np.array(fixed, dtype=float)
    free = powers[:, len(fixed) :] * w[:, None]
    scale = 1e9  # the errors are ~1e-10: scaled up so that the solver's tolerances hold
    ones = np.ones((points, 1))
    constraints = np.vstack([np.hstack([free * scale, -ones]), np.hstack([-free * scale, -ones])])
    bounds = np.concatenate([w * rest, -w * rest]) * scale
    cost = np.zeros(free.shape[1] + 1)
    cost[-1] = 1  # minimize the bound t on every |w (p - q)| * scale
    result = linprog(cost, A_ub=constraints, b_ub=bounds, bounds=[(None, None)] * len(cost))
    return fixed + list(result.x[:-1])


def largest_error(coefficients: list[float], points: int = 20001) -> float:
    """max |(p(s) - q(s)) s^4 / expm1(s)|, p evaluated exactly."""
    worst = mpmath.mpf(0)
    for s in np.linspace(LOW, HIGH, points):
        p = mpmath.mpf(0)
        for c in reversed(coefficients):
            p = p * s + mpmath.mpf(c)
        worst = max(worst, abs((p - quartic(s)) * weight(s)))
    return float(worst)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--degree", type=int, default=3)
    args = parser.parse_args()
    fixed: list[float] = []
    for k in range(args.degree + 1):
        fixed.append(float(np.float32(fit(args.degree, fixed)[k])))
    hexes = (re.sub("0+p", "p", float.hex(c)) for c in reversed(fixed))
    print("kMinimaxQuartic:", ", ".join(f"{h}f" for h in hexes))
    print(f"largest error relative to expm1: {largest_error(fixed):.3g}")


if __name__ == "__main__":
    main()
