"""Born dead: the probability that a deep, narrow network is a constant function at
initialisation because some hidden layer outputs all zeros for every input (Lu, Shin, Su
and Karniadakis 2019, "Dying ReLU and Initialization"), estimated by Monte Carlo.

Weights are He-normal (std sqrt(2 / fan_in)) and biases zero. For a single input point x
(x != 0), every unit of a layer is positive with probability 1/2, independently (each row
of W is symmetric and the layer's input is a non-zero vector), so a ReLU layer is all zero
with probability 2^-N and

    P(born dead at x) = 1 - (1 - 2^-N)^L      (width N, L hidden layers),

which also bounds the probability of being dead on any input set containing x from above.
Units that keep a non-zero output for negative inputs (Leaky ReLU, PReLU, ELU, SELU) are
never all zero: such networks are never born dead.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..activations import ACTIVATIONS
from .parallel import Workers, workers_of

# Every supported activation as the study builds it, in float64; one slope shared by all
# units for PReLU (its dim 1 here is the inputs, not the units).
VARIANTS = {name: spec.make(1).double() for name, spec in ACTIVATIONS.items()}


def analytic_single_point(width: int, depth: int) -> float:
    """P(born dead) of a zero-bias ReLU network at one input point."""
    return 1.0 - (1.0 - 2.0**-width) ** depth


@dataclass
class Estimate:
    activation: str
    width: int
    depth: int
    inputs: str
    trials: int
    probability: float

    @property
    def standard_error(self) -> float:
        p = self.probability
        return math.sqrt(max(p * (1 - p), 1e-12) / self.trials)


@torch.no_grad()
def born_dead_fraction(
    x: torch.Tensor,
    width: int,
    depth: int,
    trials: int,
    activation: str,
    generator: torch.Generator,
    chunk: int = 512,
) -> float:
    """Fraction of `trials` random networks with some hidden layer zero on every row of x.

    In float64: in float32 a Leaky ReLU unit that stays negative for 30 layers shrinks by
    0.01 per layer and underflows to an exact 0, which is not a dead unit."""
    act = VARIANTS[activation]
    x = x.to(torch.float64)
    dead = 0
    for start in range(0, trials, chunk):
        count = min(chunk, trials - start)
        h = x.expand(count, *x.shape)  # [nets, inputs, features]
        layer_dead = torch.zeros(count, dtype=torch.bool)
        for _ in range(depth):
            fan_in = h.shape[-1]
            w = torch.randn(count, fan_in, width, generator=generator, dtype=torch.float64)
            w *= math.sqrt(2.0 / fan_in)
            h = act(torch.bmm(h, w))
            layer_dead |= (h == 0).flatten(1).all(1)
        dead += int(layer_dead.sum())
    return dead / trials


def estimate_cell(
    x: torch.Tensor, inputs: str, activation: str, width: int, depth: int, trials: int, seed: int
) -> Estimate:
    """One cell's estimate, with a generator of its own (the same for any job order)."""
    generator = torch.Generator().manual_seed(seed)
    p = born_dead_fraction(x, width, depth, trials, activation, generator)
    return Estimate(activation, width, depth, inputs, trials, p)


def cells(x: torch.Tensor, inputs: str, widths, depths, trials: int, activations) -> list[tuple]:
    """The arguments of estimate_cell for every activation, width and depth.

    Each cell's seed is its index in the width-depth grid, the same for every activation
    and input set: cells of a width and depth then draw the same networks (common random
    numbers; with fewer trials, the first of them), so their differences come from the
    activation and the inputs, not the draw."""
    grid = [(w, d) for w in widths for d in depths]
    return [
        (x, inputs, a, w, d, trials, seed) for a in activations for seed, (w, d) in enumerate(grid)
    ]


def estimate(jobs: list[tuple], workers: Workers | int = 1, progress=None) -> list[Estimate]:
    """estimate_cell of every job (see `cells`), on `workers` (processes)."""
    with workers_of(workers) as pool:
        return pool.map(
            estimate_cell,
            jobs,
            progress,
            cost=lambda job: len(job[0]) * job[3] * job[4] * job[5],  # rows*width*depth*trials
            desc="born dead",
            unit="cell",
        )
