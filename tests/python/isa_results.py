"""Results of every CPU loop on fixed inputs, for comparing the ISAs' loops with each other
(test_build.py's test_isa_results): `python isa_results.py OUT.pt` under
ATEN_CPU_CAPABILITY=default|avx2|avx512 (and TORCH_EXT_AVX512_BF16=0: AVX512 without the
AVX512-BF16 rounding) saves {name: tensor} computed by that ISA's loops.
Under TORCH_EXT_STREAMING_MIN_BYTES=0 every out-of-place output is written with streaming
stores (csrc/ops/cpu/streaming.h), which must not change a bit: the "/offset" results put
the inputs at an unaligned address and span several parallel chunks, so the loops' heads
before the first aligned vector run too."""

from __future__ import annotations

import random
import sys

import torch

import torch_ext

ops = torch.ops.torch_ext
SELU = (1.6732632423543772848170429916717, 1.0507009873554804934193349852946)
DTYPES = [torch.float32, torch.float64, torch.bfloat16, torch.float16]

ELU_FAMILY = {  # forward and backward ops whose results go through exp/expm1
    "elu": lambda x, g: ops.elu(x, 1.0),
    "elu_3": lambda x, g: ops.elu(x, 3.0),
    "selu": lambda x, g: ops.selu(x),
    "celu_3": lambda x, g: ops.celu(x, 3.0),
    "celu_0.5": lambda x, g: ops.celu(x, 0.5),
    "elu_backward": lambda x, g: ops.elu_backward(g, x, 1.3, 1.0, False),
    "selu_backward": lambda x, g: ops.elu_backward(g, x, *SELU, False),
    "celu_backward": lambda x, g: ops.elu_backward(g, x, 3.0, 1.0, False, 1 / 3.0),
    "elu_counted": lambda x, g: ops.elu_counted(
        x.reshape(-1, 32), 1.3, 1.0, torch.zeros(2, 32, dtype=torch.int64), 1, torch.zeros(32)
    ),
}
EXACT = {  # one rounding each: the same bits on every ISA
    "leaky_relu": lambda x, g: ops.leaky_relu(x, 0.1),
    "leaky_relu_backward": lambda x, g: ops.leaky_relu_backward(g, x, 0.1, False),
    "leaky_relu_masked": lambda x, g: torch.cat(
        [ops.leaky_relu_masked(x, 0.1)[0], ops.leaky_relu_masked(x, 0.1)[1].to(x.dtype)]
    ),
    "leaky_relu_backward_masked": lambda x, g: ops.leaky_relu_backward_masked(
        g, ops.leaky_relu_masked(x, 0.1)[1], 0.1, x.stride()
    ),
    "prelu": lambda x, g: ops.prelu(x.reshape(-1, 32), slopes(x.dtype)),
    "prelu_backward_input": lambda x, g: ops.prelu_backward(
        g.reshape(-1, 32), x.reshape(-1, 32), slopes(x.dtype)
    )[0],
}


def slopes(dtype: torch.dtype) -> torch.Tensor:
    """32 PReLU slopes in [-1, 1] (Python's arithmetic: torch.linspace is ISA-specific too)."""
    return torch.tensor([-1 + 2 * i / 31 for i in range(32)], dtype=torch.float64).to(dtype)


def counts(x: torch.Tensor) -> torch.Tensor:
    c = torch.zeros(2, 32, dtype=torch.int64)
    ops.count_active_(x.reshape(-1, 32), c, 1, torch.tensor([-3 + 3 * i / 31 for i in range(32)]))
    return c


def interval() -> torch.Tensor:
    """[4, 40] bounds (lo, hi, band_lo, band_hi) per unit; units 30-39 have no band."""
    rows = [
        [-3 + i / 13 for i in range(40)],
        [0.5 + i / 10 for i in range(40)],
        [-0.5 + i / 64 if i < 30 else float("inf") for i in range(40)],
        [-0.5 + i / 32 if i < 30 else -float("inf") for i in range(40)],
    ]
    return torch.tensor(rows)


def statistics(x: torch.Tensor) -> dict[str, torch.Tensor]:
    """The interval rule's counts and the sums of |.| (abs_sum_, and a counted forward's) in
    rows (40 units: vectors and a partial one) and planes (95 elements: the same), on the
    finite values, and abs_sum_ of the special values too (NaN, inf sums). The sums have
    the same bits on every ISA (counting.h: each lane adds in element order, in double)."""
    finite = x[40:]  # 15,960 values: inputs() puts the special values first
    rows, planes = finite.reshape(-1, 40), finite.reshape(12, 14, 95)
    c = torch.zeros(2, 40, dtype=torch.int64)
    ops.count_active_(rows, c, 1, interval())
    out = {"count_active_interval": c}
    for name, (h, unit_dim) in {
        "rows": (rows, 1),
        "planes": (planes, 1),
        "dim0": (rows, 0),
    }.items():
        sums = torch.zeros(h.shape[unit_dim], dtype=torch.float64)
        ops.abs_sum_(h, sums, unit_dim)
        out[f"abs_sum_{name}"] = sums
    special = torch.zeros(32, dtype=torch.float64)
    ops.abs_sum_(x.reshape(-1, 32), special, 1)
    out["abs_sum_special"] = special
    for name, (z, units) in {"rows": (rows, 40), "planes": (planes, 14)}.items():
        sums = torch.zeros(units, dtype=torch.float64)
        counted = torch.zeros(2, units, dtype=torch.int64)
        ops.leaky_relu_counted(z, 0.1, counted, 1, interval()[:, :units].contiguous(), sums)
        out[f"leaky_relu_counted_abs_{name}"] = torch.cat([counted.double().reshape(-1), sums])
    return out


def inputs(dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """4,000 values at each of four scales (1e-2 to 30), zeros, and the special values.
    Drawn by Python's random, not torch.randn, whose vectorized sampler is itself ISA-specific."""
    draw = random.Random(0)
    scales = [0.01, 1.0, 5.0, 30.0]
    x = torch.tensor([draw.gauss(0.0, s) for s in scales for _ in range(4000)], dtype=torch.float64)
    x[:40] = torch.tensor([0.0, -0.0, float("inf"), -float("inf"), float("nan")] * 8)
    g = torch.tensor([draw.gauss(0.0, 1.0) for _ in range(x.numel())], dtype=torch.float64)
    return x.to(dtype), g.to(dtype)


def offset(t: torch.Tensor) -> torch.Tensor:
    """t three times over (48,000 elements: more than one parallel chunk of 32,768), as a
    view 3 elements into a larger buffer (no longer vector-aligned)."""
    buffer = torch.cat([t[:3], t, t, t])
    return buffer[3:]


def every_bfloat16() -> dict[str, torch.Tensor]:
    """Every bfloat16 (subnormals and NaNs included) through the loops that round a float
    result to bfloat16: AVX512 and AVX512_BF16 (ops/cpu/reduced_float.h) round them alike."""
    every = torch.arange(-(2**15), 2**15, dtype=torch.int32).to(torch.int16).view(torch.bfloat16)
    x = every.reshape(-1, 32)
    return {
        "leaky_relu/every_bfloat16": ops.leaky_relu(every, 0.01),
        "leaky_relu_masked/every_bfloat16": ops.leaky_relu_masked(every, 0.01)[0],
        "prelu/every_bfloat16": ops.prelu(x, slopes(torch.bfloat16)).reshape(-1),
        "leaky_relu_counted/every_bfloat16": ops.leaky_relu_counted(
            x, 0.01, torch.zeros(2, 32, dtype=torch.int64), 1, torch.zeros(32)
        ).reshape(-1),
    }


def results() -> dict[str, torch.Tensor]:
    out = every_bfloat16()
    for dtype in DTYPES:
        x, g = inputs(dtype)
        for name, fn in {**ELU_FAMILY, **EXACT}.items():
            out[f"{name}/{dtype}"] = fn(x, g).reshape(-1)
            out[f"{name}/offset/{dtype}"] = fn(offset(x), offset(g)).reshape(-1)
        out[f"count_active_/{dtype}"] = counts(x)
        for name, value in statistics(x).items():
            out[f"{name}/{dtype}"] = value
    return out


if __name__ == "__main__":
    torch.save({"isa": torch_ext.build_info()["cpu_isa"], "results": results()}, sys.argv[1])
