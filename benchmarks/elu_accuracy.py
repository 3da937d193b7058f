"""Maximum error of ELU's forward in float32, ours and native, in ulps of the exact result,
over every float32 in [-88, 0] (or every `--stride`-th), against float64 math.

    python benchmarks/elu_accuracy.py [--stride 1]

ELU's negative branch is alpha * expm1(x); alpha = 1, so this is the error of expm1 as the
op computes it (torch_ext: Taylor series near 0, exp(x) - 1 elsewhere; native: the vector
library's expm1 on the vector body).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

import torch_ext


def ulp_error(values: torch.Tensor, exact: torch.Tensor) -> torch.Tensor:
    """|values - exact| in units of the float32 spacing at |exact|."""
    magnitude = exact.abs().clamp(min=2.0**-126)
    spacing = torch.exp2(torch.floor(torch.log2(magnitude)) - 23)
    return (values.double() - exact).abs() / spacing


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stride", type=int, default=1)
    parser.add_argument("--chunk", type=int, default=1 << 24)
    args = parser.parse_args()
    # Negative floats from -0.0 up to -88.0, as bit patterns.
    first = np.array([-0.0], dtype=np.float32).view(np.int32)[0]
    last = np.array([-88.0], dtype=np.float32).view(np.int32)[0]
    worst = {"torch_ext": (0.0, 0.0), "native": (0.0, 0.0)}
    start = time.time()
    count = 0
    for begin in range(int(first), int(last) + 1, args.chunk * args.stride):
        end = min(begin + args.chunk * args.stride, int(last) + 1)
        bits = torch.arange(begin, end, args.stride, dtype=torch.int32)
        x = bits.view(torch.float32)
        exact = torch.expm1(x.double())
        count += x.numel()
        for name, y in (("torch_ext", torch.ops.torch_ext.elu(x, 1.0)),
                        ("native", torch.nn.functional.elu(x, 1.0))):
            err = ulp_error(y, exact)
            i = int(err.argmax())
            if err[i] > worst[name][0]:
                worst[name] = (float(err[i]), float(x[i]))
    print(f"{count} float32 inputs in [-88, 0] (stride {args.stride}), {time.time() - start:.0f} s; "
          f"CPU loops {torch_ext.build_info()['cpu_isa']}")
    for name, (err, at) in worst.items():
        print(f"{name:<10} max error {err:.3f} ulp (at x = {at!r})")


if __name__ == "__main__":
    main()
