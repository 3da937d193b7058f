"""Times eager CPU training steps with torch_ext's activations under two (or more) builds of
the library, interleaved in one run: did a change make a training step slower?

    python benchmarks/bench_builds.py --libraries /tmp/before/libtorch_ext.so \\
        build/cmake/libtorch_ext.so [--models mlp cnn] [--acts leaky_relu elu prelu]

A process cannot hold two builds of the same ops, so each library runs in a worker process
of its own (it loads the library with torch.ops.load_library, not the torch_ext package,
and calls torch.ops.torch_ext.* directly: the autograd is the library's). The workers wait
for orders; each round asks every worker in turn for a block of steps of each model, and
the table gives each one's fastest step over the rounds (the machine is shared and noisy:
others only add time). A step is forward, loss, backward and an SGD update; native is the
same model with the native activation, timed by each worker in turn (the order of the
workers turns each round).

Models (benchmarks/models.py, as benchmarks/bench_compile.py's): ``mlp``, a residual MLP (Linear-act + skip,
width 128, 4 blocks, batch 4096); ``cnn``, a conv-BN-act residual CNN (32 channels, 32x32
images, 4 basic blocks, batch 32). Their activations are 2 and 4 MiB: cache-resident.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

MODELS = ["mlp", "cnn"]
ACTS = ["leaky_relu", "elu", "prelu"]


# --- The worker: one library, the models, timed blocks of steps ---------------------------


def build(model: str, act: str, native: bool):
    import torch
    from models import MODELS
    from torch import nn

    ops = torch.ops.torch_ext

    class Act(nn.Module):
        def __init__(self, channels: int):
            super().__init__()
            self.weight = nn.Parameter(torch.full((channels,), 0.25)) if act == "prelu" else None

        def forward(self, x):
            if act == "leaky_relu":
                return nn.functional.leaky_relu(x, 0.01) if native else ops.leaky_relu(x, 0.01)
            if act == "elu":
                return nn.functional.elu(x) if native else ops.elu(x, 1.0)
            return nn.functional.prelu(x, self.weight) if native else ops.prelu(x, self.weight)

    torch.manual_seed(0)
    make, shape = MODELS[model]
    net, x = make(Act), torch.randn(*shape)
    target = torch.randint(0, 10, (x.shape[0],))
    optimizer = torch.optim.SGD(net.parameters(), lr=1e-3)

    def step():
        optimizer.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(net(x), target).backward()
        optimizer.step()

    return step


def worker(library: str, threads: int) -> None:
    import torch

    torch.ops.load_library(library)
    torch.set_num_threads(threads)
    steps = {}
    for line in sys.stdin:
        model, act, native, seconds = json.loads(line)
        key = (model, act, native)
        if key not in steps:
            steps[key] = build(model, act, native)
            for _ in range(3):
                steps[key]()
        best, start = float("inf"), time.perf_counter()
        while time.perf_counter() - start < seconds:
            t0 = time.perf_counter()
            steps[key]()
            best = min(best, time.perf_counter() - t0)
        print(json.dumps(best), flush=True)


# --- The driver --------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--libraries", nargs="+", required=True, help="builds to compare")
    parser.add_argument("--models", nargs="+", default=MODELS, choices=MODELS)
    parser.add_argument("--acts", nargs="+", default=ACTS, choices=ACTS)
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--seconds", type=float, default=0.3, help="per block of steps")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.threads[0])
        return
    libraries = [os.path.abspath(path) for path in args.libraries]
    names = [f"lib{i}" for i in range(len(libraries))]
    for name, path in zip(names, libraries):
        print(f"{name}: {path}")
    header = f"{'model':<5} {'act':<10} {'thr':>3} {'native ms':>9} " + " ".join(
        f"{name + ' ms':>9}" for name in names
    )
    ratios = " ".join(f"{'speedup ' + n:>12}" for n in names[1:])
    print(f"\n{header} {ratios}\n" + "-" * (len(header) + len(ratios) + 1))
    for threads in args.threads:
        workers = [
            subprocess.Popen(
                [
                    sys.executable,
                    __file__,
                    "--worker",
                    path,
                    "--threads",
                    str(threads),
                    "--libraries",
                    path,
                ],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            for path in libraries
        ]

        def ask(w, order) -> float:
            w.stdin.write(json.dumps(order) + "\n")
            w.stdin.flush()
            return json.loads(w.stdout.readline())

        for model in args.models:
            for act in args.acts:
                best = {k: float("inf") for k in ["native", *names]}
                for r in range(args.rounds):
                    # The order turns each round: whichever worker ran right after the
                    # native block measured 3-6% slower than the first, whatever its build.
                    first = r % len(workers)
                    best["native"] = min(
                        best["native"], ask(workers[first], [model, act, True, args.seconds])
                    )
                    for k in range(len(workers)):
                        i = (first + k) % len(workers)
                        order = [model, act, False, args.seconds]
                        best[names[i]] = min(best[names[i]], ask(workers[i], order))
                times = " ".join(f"{best[n] * 1e3:>9.2f}" for n in ["native", *names])
                changes = " ".join(f"{best[names[0]] / best[n]:>12.3f}" for n in names[1:])
                print(f"{model:<5} {act:<10} {threads:>3} {times} {changes}", flush=True)
        for w in workers:
            w.stdin.close()
            w.wait()
    print(
        "\nspeedup libN = lib0's step time / libN's (> 1: libN is faster); each time is the "
        "fastest step over the rounds."
    )


if __name__ == "__main__":
    main()
