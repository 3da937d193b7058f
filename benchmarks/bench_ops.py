"""Times each torch_ext op against PyTorch's native op in the same run and prints a table.

    python benchmarks/bench_ops.py                  # the full table (several minutes)
    python benchmarks/bench_ops.py --quick          # fewer sizes, shorter timings
    python benchmarks/bench_ops.py --ops elu --sizes 2^24 --dtypes fp32 --threads 1
    python benchmarks/bench_ops.py --device cuda    # on a GPU (threads do not apply)

Modes: forward (out of place, output allocated), forward_ (in place: kernel only, no
allocation), backward (autograd backward alone, graph kept), fwd+bwd (both), bwd-op (the
backward op alone, on what the forward saved: ours the op our autograd calls, native
ATen's), and
fwd+stats: the forward with dead-neuron statistics, where "native" is the native forward
followed by the `(x <= 0).sum(dims)` pass people write and "ours" the counted op
(activation and counts in one pass; flat sizes are counted as rows of 1024 units);
`ours/plain` compares it to our plain forward. Each
cell is the median of `torch.utils.benchmark` blocked_autorange runs, native and ours
interleaved; ratio = native time / ours (> 1: ours is faster).

Page faults: an out-of-place forward allocates its output. glibc serves a large block with
fresh pages from mmap (a page fault per 4 KiB on first write) and returns it on free, so
which side pays the faults would depend on allocation order, and ratios of the same code
swing from 0.3x to 4x between runs. This script therefore runs itself with
MALLOC_MMAP_THRESHOLD_ and MALLOC_TRIM_THRESHOLD_ raised to 16 GiB (glibc reads them at
process start: it re-executes itself once with them set, unless they are set already), so
both sides reuse warm heap memory and the timings are of the kernels. `copy` is a same-size
tensor copy into a preallocated tensor in the same run, the memory-bandwidth ceiling, in
ns per element; `vs copy` = our time / the copy's; `GB/s` = the effective bandwidth our op
reaches, counting the bytes it must read and write (see `traffic`), and `copy GB/s` the
copy's (bytes read + written); `bw/copy` = the ratio of the two.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
import torch.utils.benchmark as benchmark

import torch_ext
import torch_ext.functional as X
from torch_ext.activations import SELU_ALPHA, SELU_SCALE

SIZES: dict[str, tuple[int, ...]] = {
    "1K": (1024,),
    "256x1024": (256, 1024),
    "32x64x56x56": (32, 64, 56, 56),
    "32x64x56x56-cl": (32, 64, 56, 56),
    "2^22": (2**22,),
    "2^24": (2**24,),
    "2^26": (2**26,),
}
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}
MODES = ["forward", "forward_", "backward", "fwd+bwd", "bwd-op", "fwd+stats", "count"]
CUDA_SIZES = ["32x64x56x56", "32x64x56x56-cl", "2^24", "2^26"]


@dataclass
class Op:
    name: str
    ours: Callable[..., torch.Tensor]
    native: Callable[..., torch.Tensor]
    has_weight: bool = False
    in_place: bool = True
    counted: Callable[..., torch.Tensor] | None = None  # (x, weight?, counts, unit_dim, thr)
    modes: tuple[str, ...] = tuple(m for m in MODES if m != "count")  # the modes it has


ops = torch.ops.torch_ext
SELU = (SELU_ALPHA, SELU_SCALE)  # the library's own constants
CELU_ALPHA = 2.0
OPS = {
    "leaky_relu": Op(
        "leaky_relu",
        lambda x, **k: X.leaky_relu(x, 0.01, **k),
        lambda x, **k: F.leaky_relu(x, 0.01, **k),
        counted=lambda x, *a: ops.leaky_relu_counted(x, 0.01, *a),
    ),
    "prelu": Op(
        "prelu",
        X.prelu,
        F.prelu,
        has_weight=True,
        in_place=False,
        counted=lambda x, w, *a: ops.prelu_counted(x, w, *a),
    ),
    "elu": Op(
        "elu",
        lambda x, **k: X.elu(x, 1.0, **k),
        lambda x, **k: F.elu(x, 1.0, **k),
        counted=lambda x, *a: ops.elu_counted(x, 1.0, 1.0, *a),
    ),
    "selu": Op("selu", X.selu, F.selu, counted=lambda x, *a: ops.elu_counted(x, *SELU, *a)),
    "celu": Op(  # alpha 2: the input scale 1 / alpha is not 1, as in any CELU but the default
        "celu",
        lambda x, **k: X.celu(x, CELU_ALPHA, **k),
        lambda x, **k: F.celu(x, CELU_ALPHA, **k),
        counted=lambda x, *a: ops.elu_counted(x, CELU_ALPHA, 1.0, *a, input_scale=1 / CELU_ALPHA),
    ),
    # The monitor's counting pass alone (count_active_: how often each unit is active),
    # against the `(x > 0).sum(dims)` people write. Its only mode is "count".
    "count_active_": Op(
        "count_active_", ops.count_active_, torch.Tensor.sum, in_place=False, modes=("count",)
    ),
}


def unit_dim(x: torch.Tensor) -> int:
    return x.dim() - 1 if x.dim() <= 2 else 1


def make_input(size: str, dtype: torch.dtype, device: str) -> torch.Tensor:
    x = torch.randn(SIZES[size], dtype=dtype, device=device)
    if size.endswith("-cl"):
        x = x.contiguous(memory_format=torch.channels_last)
    return x


def statement(op: Op, mode: str, fn: Callable, x: torch.Tensor) -> tuple[Callable, dict]:
    """A zero-argument callable for `mode`, and the tensors it needs kept alive."""
    weight = torch.full((x.shape[1] if x.dim() > 1 else 1,), 0.25, dtype=x.dtype, device=x.device)
    args = (weight,) if op.has_weight else ()
    if mode == "forward":
        return (lambda: fn(x, *args)), {}
    if mode in ("fwd+stats", "count"):
        if x.dim() == 1:  # a flat size: count it as rows of 1024 units
            x = x.view(-1, 1024)
        dim = unit_dim(x)
        if mode == "count":
            return counting_pass(fn is op.native, x, dim)
        if fn is op.native:  # what people write: the forward, then a counting pass
            dims = [d for d in range(x.dim()) if d != dim]
            return (lambda: (fn(x, *args), (x <= 0).sum(dims))), {}
        counts = torch.zeros(2, x.shape[dim], dtype=torch.int64, device=x.device)
        threshold = torch.zeros(x.shape[dim], device=x.device)
        return (lambda: op.counted(x, *args, counts, dim, threshold)), {"counts": counts}
    if mode == "forward_":
        buffer = x.clone()
        # Repeated in-place application stays in range for these activations.
        return (lambda: fn(buffer, inplace=True)), {"buffer": buffer}
    if mode == "bwd-op":
        return backward_op(op, fn is op.native, x, weight), {}
    leaf = x.detach().clone().requires_grad_(True)
    params = [leaf, weight.requires_grad_(True)] if op.has_weight else [leaf]
    grad = torch.randn_like(x)
    if mode == "backward":
        y = fn(leaf, *args)
        return (lambda: torch.autograd.grad(y, params, grad, retain_graph=True)), {"y": y}
    return (lambda: torch.autograd.grad(fn(leaf, *args), params, grad)), {}


def counting_pass(native: bool, x: torch.Tensor, dim: int) -> tuple[Callable, dict]:
    """count_active_ into a preallocated table, or the native sum of `x > 0` per unit."""
    if native:
        dims = [d for d in range(x.dim()) if d != dim]
        return (lambda: (x > 0).sum(dims)), {}
    counts = torch.zeros(2, x.shape[dim], dtype=torch.int64, device=x.device)
    threshold = torch.zeros(x.shape[dim], device=x.device)
    return (lambda: ops.count_active_(x, counts, dim, threshold)), {"counts": counts}


def backward_op(op: Op, native: bool, x: torch.Tensor, weight: torch.Tensor) -> Callable:
    """The backward op alone, on what each side's autograd saved."""
    g = torch.randn_like(x)
    aten = torch.ops.aten
    if op.name == "leaky_relu":
        if native:
            return lambda: aten.leaky_relu_backward(g, x, 0.01, False)
        mask = ops.leaky_relu_masked(x, 0.01)[1]
        return lambda: ops.leaky_relu_backward_masked(g, mask, 0.01, x.stride())
    if op.name == "prelu":
        if not native:
            return lambda: ops.prelu_backward(g, x, weight)
        # F.prelu's autograd: a full-size weight-gradient term, then summed per channel.
        dims = [d for d in range(x.dim()) if d != 1] if x.dim() > 1 else [0]
        shape = [-1 if d == 1 else 1 for d in range(x.dim())] if x.dim() > 1 else []
        w = weight.view(shape) if x.dim() > 1 else weight.view(())
        return lambda: (lambda gi, gw: (gi, gw.sum(dims)))(*aten._prelu_kernel_backward(g, x, w))
    alpha, scale, input_scale = {
        "elu": (1.0, 1.0, 1.0),
        "selu": (*SELU, 1.0),
        "celu": (CELU_ALPHA, 1.0, 1.0 / CELU_ALPHA),
    }[op.name]
    if native:  # F.elu / F.selu / F.celu save the input
        return lambda: aten.elu_backward(g, alpha, scale, input_scale, False, x)
    # Ours saves the input too (the output only with the opt-in save_output=True).
    return lambda: ops.elu_backward(g, x, alpha, scale, False, input_scale=input_scale)


def traffic(op: Op, mode: str, element_size: int) -> float:
    """Bytes an op must move, in units of one tensor of x's size: the floor its time is
    judged against (a copy moves 2)."""
    mask = 1 / (8 * element_size)  # Leaky ReLU's saved sign mask
    forward = 2 + (mask if op.name == "leaky_relu" and mode == "fwd+bwd" else 0)
    backward = 2 + mask if op.name == "leaky_relu" else 3
    return {
        "count": 1,
        "forward": 2,
        "forward_": 2,
        "fwd+stats": 2,
        "backward": backward,
        "bwd-op": backward,
        "fwd+bwd": forward + backward,
    }[mode]


def median_time(fn: Callable, threads: int, min_run_time: float) -> float:
    timer = benchmark.Timer(stmt="fn()", globals={"fn": fn}, num_threads=threads)
    return timer.blocked_autorange(min_run_time=min_run_time).median


def compare(fn_native: Callable, fn_ours: Callable, threads: int, rounds: int, min_run_time: float):
    """Interleaved medians of native and ours (the machine is shared and noisy)."""
    # Warm up both first: glibc serves the first large outputs with fresh, faulting pages
    # and later ones from its heap, which would favour whichever side runs second.
    for _ in range(3):
        fn_native()
        fn_ours()
    native, ours = [], []
    for _ in range(rounds):
        native.append(median_time(fn_native, threads, min_run_time))
        ours.append(median_time(fn_ours, threads, min_run_time))
    return statistics.median(native), statistics.median(ours)


def copy_ns_per_element(x: torch.Tensor, threads: int, min_run_time: float) -> float:
    """A same-size copy into a preallocated tensor: the bandwidth ceiling, ns per element."""
    out = torch.empty_like(x)
    return median_time(lambda: out.copy_(x), threads, min_run_time) / x.numel() * 1e9


MALLOC_CONTROL = {"MALLOC_MMAP_THRESHOLD_": str(2**34), "MALLOC_TRIM_THRESHOLD_": str(2**34)}


def rerun_with_warm_heap() -> None:
    """Re-executes this script with glibc's mmap and trim thresholds raised (see above)."""
    if all(name in os.environ for name in MALLOC_CONTROL):
        return
    os.execve(sys.executable, [sys.executable, *sys.argv], {**MALLOC_CONTROL, **os.environ})


def main() -> None:
    rerun_with_warm_heap()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ops", nargs="+", default=list(OPS), choices=list(OPS))
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument(
        "--sizes",
        nargs="+",
        default=None,
        choices=list(SIZES),
        help="default: all on the CPU; " + ", ".join(CUDA_SIZES) + " on CUDA",
    )
    parser.add_argument("--dtypes", nargs="+", default=list(DTYPES), choices=list(DTYPES))
    parser.add_argument("--modes", nargs="+", default=MODES, choices=MODES)
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--min-run-time", type=float, default=0.2)
    parser.add_argument("--quick", action="store_true", help="sizes 1K and 2^24, 1 round")
    args = parser.parse_args()
    if args.sizes is None:
        args.sizes = CUDA_SIZES if args.device == "cuda" else list(SIZES)
    if args.quick:
        args.sizes, args.rounds, args.min_run_time = ["1K", "2^24"], 1, 0.1
    if args.device == "cuda":
        args.threads = [1]  # torch.utils.benchmark synchronizes the GPU around each timing
        print(
            f"torch {torch.__version__}, {torch.cuda.get_device_name()}, "
            f"torch_ext built for {torch_ext.build_info()['cuda_arch_list']}\n"
        )
    else:
        print(
            f"torch {torch.__version__}, torch_ext CPU loops {torch_ext.build_info()['cpu_isa']}, "
            f"ATen {torch.backends.cpu.get_cpu_capability()}, "
            f"MALLOC_MMAP_THRESHOLD_={os.environ.get('MALLOC_MMAP_THRESHOLD_')}\n"
        )
    header = (
        f"{'op':<13} {'mode':<9} {'size':<15} {'dtype':<5} {'thr':>3} "
        f"{'native us':>10} {'ours us':>10} {'ratio':>6} {'ours ns/el':>10} {'copy ns/el':>10} "
        f"{'vs copy':>7} {'GB/s':>7} {'copy GB/s':>9} {'bw/copy':>7} {'ours/plain':>10}"
    )
    print(header)
    print("-" * len(header))
    for size in args.sizes:
        for dtype_name in args.dtypes:
            x = make_input(size, DTYPES[dtype_name], args.device)
            for threads in args.threads:
                copy_ns = copy_ns_per_element(x, threads, args.min_run_time)
                for op_name in args.ops:
                    op = OPS[op_name]
                    if size.endswith("-cl") and not op.has_weight and op_name != "elu":
                        continue  # channels_last matters for the per-channel op
                    plain_ours = None
                    for mode in args.modes:
                        if mode not in op.modes or (mode == "forward_" and not op.in_place):
                            continue
                        native_fn, keep_n = statement(op, mode, op.native, x)
                        ours_fn, keep_o = statement(op, mode, op.ours, x)
                        t_native, t_ours = compare(
                            native_fn, ours_fn, threads, args.rounds, args.min_run_time
                        )
                        ns = t_ours / x.numel() * 1e9
                        moved = traffic(op, mode, x.element_size()) * x.element_size()
                        ours_gbs, copy_gbs = moved / ns, 2 * x.element_size() / copy_ns
                        if mode == "forward":
                            plain_ours = t_ours
                        versus_plain = (
                            f"{t_ours / plain_ours:>10.2f}"
                            if mode == "fwd+stats" and plain_ours
                            else f"{'':>10}"
                        )
                        print(
                            f"{op_name:<13} {mode:<9} {size:<15} {dtype_name:<5} {threads:>3} "
                            f"{t_native * 1e6:>10.1f} {t_ours * 1e6:>10.1f} "
                            f"{t_native / t_ours:>6.2f} {ns:>10.3f} {copy_ns:>10.3f} "
                            f"{ns / copy_ns:>7.2f} {ours_gbs:>7.1f} {copy_gbs:>9.1f} "
                            f"{ours_gbs / copy_gbs:>7.2f} {versus_plain}",
                            flush=True,
                        )
                        del keep_n, keep_o


if __name__ == "__main__":
    main()
