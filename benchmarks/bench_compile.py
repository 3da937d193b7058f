"""Times a training step (forward, loss, backward) of models using torch_ext's activations
against the same models with the native ones, eager and under torch.compile, in one run,
and prints a table of ratios.

    python benchmarks/bench_compile.py                     # CPU, 2 threads, every model
    python benchmarks/bench_compile.py --models mlp cnn --acts prelu --rounds 3
    python benchmarks/bench_compile.py --device cuda       # on a GPU (threads do not apply)

Models: ``cnn``, a conv-BN-act residual CNN (32 channels, 32x32 images, 4 blocks, batch
32); ``resnet18``, ResNet-18 with its ReLUs replaced (64x64 images, batch 32); ``mlp``, a
residual MLP (Linear-act + skip, width 128, 4 blocks, batch 4096). ``ours`` is the native
model converted by torch_ext.nn.replace_activations: the same weights.

Compiled, our ops are either extern calls to our kernels (``extern``: the decompositions
forced off) or decomposed into their ATen twins for Inductor to fuse (``decomposed``:
forced on; the generated code is native's); torch_ext's table
(torch_ext.transforms.decompositions.KEEP_OURS_ON) picks one per family and device type,
and ``ours`` is what it picks. Columns: times in ms (of a whole step), ratio = native time
/ ours (> 1: ours is faster), ``best`` = which of extern and decomposed was faster here:
where it differs from ``table``, the table should change.

Each time is the fastest block of steps (torch.utils.benchmark's blocked_autorange) over
interleaved rounds: the machine is shared and noisy, and other processes only add time. Compile caches are off: the
decompositions are switched between compiles, which the on-disk caches do not see.
"""

from __future__ import annotations

import argparse
import copy
from collections.abc import Callable
from dataclasses import dataclass
from unittest import mock

import torch
import torch.utils.benchmark as benchmark
from models import MODELS
from torch import Tensor, nn
from torch._inductor.graph import GraphLowering

import torch_ext
import torch_ext.nn as xnn
from torch_ext.transforms import decompositions

#: name: (native module for `channels` units, the decomposition family)
ACTS: dict[str, tuple[Callable[[int], nn.Module], str]] = {
    "leaky_relu": (lambda c: nn.LeakyReLU(0.01), "leaky_relu"),
    "elu": (lambda c: nn.ELU(), "elu"),
    "selu": (lambda c: nn.SELU(), "elu"),
    "celu": (lambda c: nn.CELU(2.0), "elu"),
    "prelu": (lambda c: nn.PReLU(c), "prelu"),
}
DEFAULT_ACTS = ["leaky_relu", "elu", "prelu"]  # SELU and CELU run ELU's kernels


@dataclass
class Variant:
    name: str
    step: Callable[[], None]
    extern_calls: int | None = None  # torch_ext ops left in the compiled code


def loss_of(model: nn.Module, compiled: bool) -> Callable[[Tensor], Tensor]:
    def loss(x: Tensor) -> Tensor:
        return model(x).square().mean()

    if not compiled:
        return loss
    # Its own code object, hence its own Dynamo cache: the variants are the same Python
    # code, and Dynamo would otherwise reuse one variant's graph for the next.
    loss.__code__ = loss.__code__.replace()
    return torch.compile(loss, dynamic=False)  # one shape per model: no automatic dynamic


def make_step(model: nn.Module, loss: Callable[[Tensor], Tensor], x: Tensor) -> Callable[[], None]:
    def step() -> None:
        for p in model.parameters():
            p.grad = None
        loss(x).backward()

    return step


def compiled_variant(name: str, model: nn.Module, x: Tensor, force: bool | None) -> Variant:
    """Compiles `model`'s step with the decompositions forced on, off, or by the table:
    they are consulted while the first call traces (forward and backward graphs)."""
    step = make_step(model, loss_of(model, compiled=True), x)
    code: list[str] = []
    decompositions.force = force
    try:
        # What torch._inductor.utils.run_and_get_code does, without its torch._dynamo.reset(),
        # which would drop the variants compiled before.
        with mock.patch.object(GraphLowering, "save_output_code", code.append):
            step()
    finally:
        decompositions.force = None
    return Variant(name, step, "\n".join(code).count("torch.ops.torch_ext"))


def variants(model_name: str, act_name: str, device: str) -> list[Variant]:
    build, shape = MODELS[model_name]
    torch.manual_seed(0)
    native = build(ACTS[act_name][0]).to(device)
    ours = copy.deepcopy(native)
    xnn.replace_activations(ours)
    x = torch.randn(shape, device=device)
    return [
        Variant("native eager", make_step(native, loss_of(native, False), x)),
        Variant("ours eager", make_step(ours, loss_of(ours, False), x)),
        compiled_variant("native compiled", native, x, None),
        compiled_variant("ours extern", ours, x, False),
        compiled_variant("ours decomposed", ours, x, True),
    ]


def timed(variants: list[Variant], threads: int, rounds: int, min_run_time: float) -> list[float]:
    """Per variant, the fastest block of steps over `rounds` interleaved rounds: on a shared
    machine, other processes only ever add time."""
    best = [float("inf")] * len(variants)
    for _ in range(rounds):
        for i, v in enumerate(variants):
            timer = benchmark.Timer(stmt="step()", globals={"step": v.step}, num_threads=threads)
            best[i] = min(best[i], *timer.blocked_autorange(min_run_time=min_run_time).times)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--acts", nargs="+", default=DEFAULT_ACTS, choices=list(ACTS))
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--min-run-time", type=float, default=0.5)
    args = parser.parse_args()
    # Inductor's CPU code runs as many OpenMP threads as torch has when it compiles.
    torch.set_num_threads(args.threads)
    torch._inductor.config.force_disable_caches = True
    if args.device == "cuda":
        args.threads = 1  # torch.utils.benchmark synchronizes the GPU around each timing
        print(f"torch {torch.__version__}, {torch.cuda.get_device_name()}\n")
    else:
        print(
            f"torch {torch.__version__}, torch_ext CPU loops {torch_ext.build_info()['cpu_isa']}, "
            f"{args.threads} threads\n"
        )
    header = (
        f"{'model':<9} {'act':<11} {'native eager':>12} {'ours eager':>10} {'ratio':>6} | "
        f"{'native comp':>11} {'extern':>8} {'ratio':>6} {'decomp':>8} {'ratio':>6} | "
        f"{'table':>6} {'ratio':>6} {'best':>6} {'extern calls':>12}"
    )
    print(header)
    print("-" * len(header))
    for model_name in args.models:
        for act_name in args.acts:
            vs = variants(model_name, act_name, args.device)
            native_e, ours_e, native_c, extern, decomposed = timed(
                vs, args.threads, args.rounds, args.min_run_time
            )
            family = ACTS[act_name][1]
            picks_decomposed = decompositions.decomposes(family, torch.device(args.device))
            table = decomposed if picks_decomposed else extern
            pick = "decomp" if picks_decomposed else "extern"
            best = "decomp" if decomposed < extern else "extern"
            print(
                f"{model_name:<9} {act_name:<11} {native_e * 1e3:>12.2f} {ours_e * 1e3:>10.2f} "
                f"{native_e / ours_e:>6.2f} | {native_c * 1e3:>11.2f} {extern * 1e3:>8.2f} "
                f"{native_c / extern:>6.2f} {decomposed * 1e3:>8.2f} {native_c / decomposed:>6.2f} | "
                f"{pick:>6} {native_c / table:>6.2f} {best:>6} "
                f"{f'{vs[3].extern_calls}/{vs[4].extern_calls}':>12}",
                flush=True,
            )


if __name__ == "__main__":
    main()
