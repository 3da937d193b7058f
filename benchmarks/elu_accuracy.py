"""Maximum error of ELU's forward, ours and native, in ulps of the exact result, per dtype.

    python benchmarks/elu_accuracy.py [--dtypes float32 float64 bfloat16 float16] [--stride 1]

ELU's negative branch is alpha * expm1(x); alpha = 1, so this is the error of expm1 as the
op computes it (torch_ext, float32 on AVX2/AVX-512: x = q ln 2 + s, then
2^q (1 + expm1(s)) - 1 with expm1(s) a series whose large terms keep their rounding
errors; on DEFAULT exp(x) - 1 below -ln 2 and the series in double above; float64 by the
vector library's expm1, bfloat16/float16 in float32 rounded once; native: the vector
library's expm1 on the vector body).

- float32, bfloat16, float16: every value of the dtype in [-88, 0] (float32: every
  `--stride`-th; 1 walks all 1.1e9, minutes), against float64 math.
- float64: `--samples` values spread evenly over the bit patterns of [-88, 0] plus a
  dense sweep of [-1, 0], against long double (64-bit mantissa) math.

An ulp is the spacing of the dtype at the exact value's magnitude.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

import torch_ext

INT_OF = {
    torch.float32: torch.int32,
    torch.float64: torch.int64,
    torch.bfloat16: torch.int16,
    torch.float16: torch.int16,
}


MANTISSA_BITS = {torch.float32: 23, torch.float64: 52, torch.bfloat16: 7, torch.float16: 10}


def ulp_error(
    values: torch.Tensor, exact: np.ndarray | torch.Tensor, dtype: torch.dtype
) -> np.ndarray:
    """|values - exact| in units of `dtype`'s spacing at |exact| (exact in float64 or long
    double)."""
    exact = np.asarray(exact.numpy() if isinstance(exact, torch.Tensor) else exact)
    magnitude = np.maximum(np.abs(exact), np.asarray(torch.finfo(dtype).tiny, dtype=exact.dtype))
    spacing = np.exp2(np.floor(np.log2(magnitude)) - MANTISSA_BITS[dtype])
    return np.abs(values.double().numpy().astype(exact.dtype) - exact) / spacing


def negative_values(dtype: torch.dtype, stride: int, chunk: int):
    """Chunks of every `stride`-th value of `dtype` from -0.0 down to -88 (bit patterns)."""
    int_dtype = INT_OF[dtype]
    first = int(torch.tensor(-0.0, dtype=dtype).view(int_dtype))
    last = int(torch.tensor(-88.0, dtype=dtype).view(int_dtype))
    if dtype in (torch.bfloat16, torch.float16):  # sign bit set: the int16 patterns are negative
        first, last = first & 0xFFFF, last & 0xFFFF
        bits = torch.arange(first, last + 1, stride, dtype=torch.int32).to(torch.int16)
        yield bits.view(dtype)
        return
    for begin in range(first, last + 1, chunk * stride):
        end = min(begin + chunk * stride, last + 1)
        yield torch.arange(begin, end, stride, dtype=int_dtype).view(dtype)


def float64_values(samples: int):
    bits = torch.linspace(
        float(torch.tensor(-0.0, dtype=torch.float64).view(torch.int64)),
        float(torch.tensor(-88.0, dtype=torch.float64).view(torch.int64)),
        samples,
        dtype=torch.float64,
    ).to(torch.int64)
    yield torch.cat([bits.view(torch.float64), -torch.rand(samples, dtype=torch.float64)])


def worst_errors(dtype: torch.dtype, args) -> tuple[dict[str, tuple[float, float]], int]:
    worst = {"torch_ext": (0.0, 0.0), "native": (0.0, 0.0)}
    count = 0
    chunks = (
        float64_values(args.samples)
        if dtype == torch.float64
        else negative_values(dtype, args.stride if dtype == torch.float32 else 1, args.chunk)
    )
    for x in chunks:
        if dtype == torch.float64:
            exact = np.expm1(x.numpy().astype(np.longdouble))
        else:
            exact = torch.expm1(x.double())
        count += x.numel()
        for name, y in (
            ("torch_ext", torch.ops.torch_ext.elu(x, 1.0)),
            ("native", torch.nn.functional.elu(x, 1.0)),
        ):
            err = ulp_error(y, exact, dtype)
            i = int(err.argmax())
            if err[i] > worst[name][0]:
                worst[name] = (float(err[i]), float(x[i]))
    return worst, count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--dtypes", nargs="+", default=["float32", "float64", "bfloat16", "float16"]
    )
    parser.add_argument("--stride", type=int, default=1, help="float32: every stride-th value")
    parser.add_argument("--samples", type=int, default=1 << 22, help="float64 values (twice)")
    parser.add_argument("--chunk", type=int, default=1 << 24)
    args = parser.parse_args()
    print(f"CPU loops {torch_ext.build_info()['cpu_isa']}, torch {torch.__version__}")
    for name in args.dtypes:
        dtype = getattr(torch, name)
        start = time.time()
        worst, count = worst_errors(dtype, args)
        print(f"{name:<9} {count} inputs in [-88, 0], {time.time() - start:.0f} s")
        for who, (err, at) in worst.items():
            print(f"  {who:<10} max error {err:.3f} ulp (at x = {at!r})")


if __name__ == "__main__":
    main()
