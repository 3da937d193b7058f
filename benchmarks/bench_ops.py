"""Times each torch_ext op against PyTorch's native op in the same run and prints a table.

    python benchmarks/bench_ops.py                  # the full table (several minutes)
    python benchmarks/bench_ops.py --quick          # fewer sizes, shorter timings
    python benchmarks/bench_ops.py --ops elu --sizes 2^24 --dtypes fp32 --threads 1
    python benchmarks/bench_ops.py --device cuda    # on a GPU (threads do not apply)
    python benchmarks/bench_ops.py --sweep          # sizes 2^16..2^26: streaming stores

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

--sweep: the sizes from cache-resident (2^16 elements) to 2^26, for each op and mode with
an output (forward, forward_, backward, fwd+bwd, bwd-op), dtype and thread count: native,
ours with normal stores, ours with streaming (non-temporal) stores forced
(torch.ops.torch_ext._set_streaming_min_bytes), and a copy, `torch.empty_like(x).copy_(x)`,
interleaved in one run, minimum of the rounds. `ours` is what the library does by default:
normal stores below its threshold (the last-level cache size, printed first), streaming at
and above. The model: the bytes per element that must cross the memory bus past the cache,
with a normal store costing its line's read too (read-for-ownership) and a streaming store
not (`B/el n>s`: normal > streaming); `GB/s` applies the model of the path ours takes to
ours' time, `copy GB/s` a copy's (12 B/el in float32: read, read-for-ownership, write).
Below the cache the bytes stay in cache and the model is an upper bound, not a bandwidth.
After the table, per op, mode, dtype and thread count: the crossover, the smallest size
from which streaming is faster than normal stores at that size and every larger one.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
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
SWEEP_SIZES = [16, 18, 20, 21, 22, 23, 24, 25, 26]  # log2 of the element counts
SWEEP_MODES = ["forward", "forward_", "backward", "fwd+bwd", "bwd-op"]


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
    return sum(tensor_traffic(op, mode, element_size))


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


def tensor_traffic(op: Op, mode: str, element_size: int) -> tuple[float, float]:
    """(read, written) of `mode`, in units of one tensor of x's size, split so that the
    writes can be charged their read-for-ownership."""
    mask = 1 / (8 * element_size)  # Leaky ReLU's saved sign mask (written, then read)
    masked = op.name == "leaky_relu"
    backward = (1 + mask, 1) if masked else (2, 1)  # reads grad and the mask (or x)
    return {
        "count": (1, 0),  # the counts are a few bytes per unit
        "forward": (1, 1),
        "forward_": (1, 1),  # in place: the write hits the line just read
        "fwd+stats": (1, 1),
        "backward": backward,
        "bwd-op": backward,
        "fwd+bwd": (1 + backward[0], 1 + (mask if masked else 0) + backward[1]),
    }[mode]


def bytes_per_element(op: Op, mode: str, element_size: int, streamed: bool) -> float:
    """The model: bytes per element past the last-level cache. A normal store's line is
    read first (read-for-ownership) unless the op is in place; a streaming store's is not."""
    read, written = tensor_traffic(op, mode, element_size)
    rfo = 0 if streamed or mode == "forward_" else written
    if op.name == "leaky_relu" and mode == "fwd+bwd" and streamed:
        rfo = 1 / (8 * element_size)  # the mask is written with normal stores
    return (read + written + rfo) * element_size


def min_times(fns: dict[str, Callable], threads: int, rounds: int, round_time: float, setup=None):
    """The minimum time of one call of each of `fns`, interleaved: every round runs each
    in turn, repeated for about `round_time` seconds (and at least 3 calls). `setup`, if
    given, is called with a name before that name's calls (not timed)."""
    torch.set_num_threads(threads)
    for name, fn in fns.items():  # warm: the heap holds the outputs' memory from here on
        if setup:
            setup(name)
        fn()
        fn()
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(rounds):
        for name, fn in fns.items():
            if setup:
                setup(name)
            start = time.perf_counter()
            calls = 0
            while calls < 3 or time.perf_counter() - start < round_time:
                t0 = time.perf_counter()
                fn()
                best[name] = min(best[name], time.perf_counter() - t0)
                calls += 1
    return best


def sweep(args) -> None:
    """The size sweep (see the module's docstring)."""
    llc, source, threshold = torch.ops.torch_ext._streaming_info()
    set_threshold = torch.ops.torch_ext._set_streaming_min_bytes
    thresholds = {"normal": 2**62, "stream": 0}  # ours' stores, forced either way
    print(
        f"torch {torch.__version__}, torch_ext CPU loops {torch_ext.build_info()['cpu_isa']}, "
        f"MALLOC_MMAP_THRESHOLD_={os.environ.get('MALLOC_MMAP_THRESHOLD_')}\n"
        f"last-level cache {llc / 2**20:g} MiB ({source}); ours streams outputs of "
        f">= {threshold / 2**20:g} MiB; {args.rounds} rounds, minimum\n"
    )
    header = (
        f"{'op':<11} {'mode':<8} {'size':<5} {'dtype':<5} {'thr':>3} {'native us':>10} "
        f"{'normal us':>10} {'stream us':>10} {'ours us':>10} {'ratio':>6} {'vs copy':>7} "
        f"{'strm gain':>9} {'B/el n>s':>9} {'GB/s':>6} {'copy GB/s':>9}"
    )
    print(header)
    print("-" * len(header))
    gains: dict[tuple, dict[int, float]] = {}
    for exponent in args.sweep_sizes:
        for dtype_name in args.dtypes:
            x = torch.randn(2**exponent, dtype=DTYPES[dtype_name])
            size = f"2^{exponent}"
            for threads in args.threads:
                copy = {"copy": lambda x=x: torch.empty_like(x).copy_(x)}
                t_copy = min_times(copy, threads, args.rounds, args.round_time)["copy"]
                copy_bytes = bytes_per_element(
                    OPS["leaky_relu"], "forward", x.element_size(), False
                )
                for op_name in args.ops:
                    op = OPS[op_name]
                    for mode in args.modes:
                        if mode not in SWEEP_MODES or mode not in op.modes:
                            continue
                        if mode == "forward_" and not op.in_place:
                            continue
                        native_fn, keep_n = statement(op, mode, op.native, x)
                        ours_fn, keep_o = statement(op, mode, op.ours, x)
                        fns = {"native": native_fn, "normal": ours_fn, "stream": ours_fn}
                        t = min_times(
                            fns,
                            threads,
                            args.rounds,
                            args.round_time,
                            setup=lambda name: set_threshold(thresholds.get(name, threshold)),
                        )
                        set_threshold(threshold)
                        streamed = x.nbytes >= threshold
                        ours = t["stream"] if streamed else t["normal"]
                        gain = t["normal"] / t["stream"]
                        gains.setdefault((op_name, mode, dtype_name, threads), {})[exponent] = gain
                        model = [bytes_per_element(op, mode, x.element_size(), s) for s in (0, 1)]
                        gbs = model[streamed] * x.numel() / ours / 1e9
                        copy_gbs = copy_bytes * x.numel() / t_copy / 1e9
                        print(
                            f"{op_name:<11} {mode:<8} {size:<5} {dtype_name:<5} {threads:>3} "
                            f"{t['native'] * 1e6:>10.1f} {t['normal'] * 1e6:>10.1f} "
                            f"{t['stream'] * 1e6:>10.1f} {ours * 1e6:>10.1f} "
                            f"{t['native'] / ours:>6.2f} {t_copy / ours:>7.2f} {gain:>9.2f} "
                            f"{f'{model[0]:g}>{model[1]:g}':>9} {gbs:>6.1f} {copy_gbs:>9.1f}",
                            flush=True,
                        )
                        del keep_n, keep_o
    print(
        "\nratio = native / ours; vs copy = copy time / ours (>= 1: at least as fast as a "
        "copy);\nstrm gain = normal / streaming time. Crossover: the smallest size from which "
        "streaming\nis faster (gain > 1.03) at every larger size swept:"
    )
    for (op_name, mode, dtype_name, threads), by_size in gains.items():
        crossover = None
        for exponent in sorted(by_size, reverse=True):
            if by_size[exponent] <= 1.03:
                break
            crossover = exponent
        where = f"2^{crossover} elements" if crossover is not None else "none swept"
        print(f"  {op_name:<11} {mode:<8} {dtype_name:<5} {threads} thr: {where}")


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
    parser.add_argument(
        "--sweep",
        action="store_true",
        help="CPU: sizes 2^16 to 2^26, normal vs streaming stores, native and a copy "
        "(--modes from " + ", ".join(SWEEP_MODES) + ")",
    )
    parser.add_argument(
        "--sweep-sizes",
        nargs="+",
        type=int,
        default=SWEEP_SIZES,
        help="log2 of the sizes --sweep runs (default: %(default)s)",
    )
    parser.add_argument(
        "--round-time", type=float, default=0.05, help="--sweep: seconds per op per round"
    )
    args = parser.parse_args()
    if args.sweep:
        if args.modes == MODES:
            args.modes = SWEEP_MODES
        if args.rounds == 3:
            args.rounds = 7
        sweep(args)
        return
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
