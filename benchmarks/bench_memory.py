"""Saved-activation memory of a training step: bytes autograd keeps for backward, in total
and those kept only because of the activation layers, native vs torch_ext activations.

    python benchmarks/bench_memory.py

Measured with torch.autograd.graph.saved_tensors_hooks: every tensor saved during the
forward is recorded with its storage and the module that saved it; a storage counts once.
"Activation-only" bytes are storages saved by activation modules and by no other layer.
ELU, CELU and SELU keep their input, as PyTorch does; with the opt-in ``save_output=True`` they
keep their output instead, which costs nothing extra when the next Linear saves that same
tensor as its input (but forbids modifying the output in place before backward).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import contextmanager

import torch

import torch_ext.nn as xnn
from torch_ext.activations import ACTIVATIONS as SUPPORTED

# name: (native module, ours, what ours keeps for backward)
ACTIVATIONS: dict[
    str, tuple[Callable[[int], torch.nn.Module], Callable[[int], torch.nn.Module], str]
] = {
    "LeakyReLU": (
        lambda c: torch.nn.LeakyReLU(0.01),
        lambda c: xnn.LeakyReLU(0.01),
        "1-bit sign mask",
    ),
    "PReLU": (lambda c: torch.nn.PReLU(c), lambda c: xnn.PReLU(c), "input, weight"),
    "ELU": (lambda c: torch.nn.ELU(), lambda c: xnn.ELU(), "input (as native)"),
    "ELU save_output": (
        lambda c: torch.nn.ELU(),
        lambda c: xnn.ELU(save_output=True),
        "output (opt-in)",
    ),
    "CELU": (lambda c: torch.nn.CELU(), lambda c: xnn.CELU(), "input (as native)"),
    "CELU save_output": (
        lambda c: torch.nn.CELU(),
        lambda c: xnn.CELU(save_output=True),
        "output (opt-in)",
    ),
    "SELU": (lambda c: torch.nn.SELU(), lambda c: xnn.SELU(), "input (as native)"),
    "SELU save_output": (
        lambda c: torch.nn.SELU(),
        lambda c: xnn.SELU(save_output=True),
        "output (opt-in)",
    ),
}
KNOWN = tuple(spec.native for spec in SUPPORTED.values())


def mlp(act) -> tuple[torch.nn.Module, torch.Tensor]:
    layers = []
    for _ in range(10):
        layers += [torch.nn.Linear(1024, 1024), act(1024)]
    return torch.nn.Sequential(*layers, torch.nn.Linear(1024, 10)), torch.randn(256, 1024)


def cnn(act) -> tuple[torch.nn.Module, torch.Tensor]:
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 32, 3, padding=1),
        act(32),
        torch.nn.Conv2d(32, 64, 3, padding=1),
        act(64),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(64, 10),
    )
    return model, torch.randn(64, 3, 32, 32)


@contextmanager
def saved_storages(model: torch.nn.Module):
    """Yields {storage pointer: (bytes, set of module kinds that saved it)}."""
    current = ["other"]
    saved: dict[int, tuple[int, set]] = {}

    def enter(kind):
        return lambda module, args: current.append(kind)

    def leave(module, args, output):
        current.pop()

    handles = []
    for module in model.modules():
        if isinstance(module, KNOWN):
            handles += [
                module.register_forward_pre_hook(enter("activation")),
                module.register_forward_hook(leave),
            ]

    def pack(tensor):
        storage = tensor.untyped_storage()
        entry = saved.setdefault(storage.data_ptr(), (storage.nbytes(), set()))
        entry[1].add(current[-1])
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        yield saved
    for handle in handles:
        handle.remove()


def measure(build, act) -> tuple[int, int]:
    torch.manual_seed(0)
    model, x = build(act)
    with saved_storages(model) as saved:
        model(x).sum()
    total = sum(nbytes for nbytes, _ in saved.values())
    own = sum(nbytes for nbytes, kinds in saved.values() if kinds == {"activation"})
    return total, own


def main() -> None:
    header = (
        f"{'model':<24} {'activation':<17} {'ours keeps':<17} {'native total MiB':>16} "
        f"{'ours total MiB':>15} {'native act-only':>15} {'ours act-only':>13} "
        f"{'act-only saved':>15}"
    )
    print(header + "\n" + "-" * len(header))
    mib = 2**20
    for model_name, build in (("MLP 10x1024, batch 256", mlp), ("CNN 2 conv, 64x3x32x32", cnn)):
        for name, (native, ours, keeps) in ACTIVATIONS.items():
            n_total, n_own = measure(build, native)
            o_total, o_own = measure(build, ours)
            cut = f"{100 * (1 - o_own / n_own):.0f}%" if n_own else "-"
            print(
                f"{model_name:<24} {name:<17} {keeps:<17} {n_total / mib:>16.1f} "
                f"{o_total / mib:>15.1f} {n_own / mib:>15.1f} {o_own / mib:>13.1f} {cut:>15}"
            )


if __name__ == "__main__":
    main()
