"""Cost of the dead-neuron monitor on CPU training steps, monitored vs unmonitored, in one
run, for an MLP, a small CNN and torchvision's ResNet-18, with native activations (counted by forward pre-hooks)
and torch_ext.nn activations (counted inside their own forward kernel), and for the models
people train now with their own GELUs (torchvision's ViT in a small config and
ConvNeXt-Tiny, batch 32), against the ad-hoc hook people write: `(z <= 0).float().mean(dims)`
read back per layer per step.

    python benchmarks/bench_monitor.py [--steps 20] [--rounds 5] [--threads 2]
        [--models mlp cnn resnet18 vit convnext] [--activations nn.ReLU torch_ext.ELU ...]

"tau" is the monitor with tau=0.1 (ReDo's score: a second pass, over each layer's output).

A step is forward, backward, SGD update and monitor.step(). Each cell is the median over
rounds of the mean step time; configurations alternate within a round. ratio = step time
/ the unmonitored step time of the same model and activation (1.00 = free). "functional"
is the monitor with functional=True: its torch-function mode sees every operation of the
forward (these models call no activation function themselves, so it is the mode's cost).
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import time
from collections.abc import Callable

import torch

import torch_ext
import torch_ext.nn as xnn

ACTIVATIONS: dict[str, Callable[[int], torch.nn.Module]] = {
    "nn.ReLU": lambda c: torch.nn.ReLU(),
    "nn.ELU": lambda c: torch.nn.ELU(),
    "nn.PReLU": lambda c: torch.nn.PReLU(c),
    "torch_ext.LeakyReLU": lambda c: xnn.LeakyReLU(0.01),
    "torch_ext.ELU": lambda c: xnn.ELU(),
    "torch_ext.PReLU": lambda c: xnn.PReLU(c),
}


def mlp(
    act: Callable[[int], torch.nn.Module], width: int = 1024, depth: int = 4
) -> torch.nn.Module:
    layers, fan_in = [], 784
    for _ in range(depth):
        layers += [torch.nn.Linear(fan_in, width), act(width)]
        fan_in = width
    return torch.nn.Sequential(*layers, torch.nn.Linear(fan_in, 10))


def cnn(act: Callable[[int], torch.nn.Module]) -> torch.nn.Module:
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 32, 3, padding=1),
        act(32),
        torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(32, 64, 3, padding=1),
        act(64),
        torch.nn.MaxPool2d(2),
        torch.nn.Flatten(),
        torch.nn.Linear(64 * 8 * 8, 128),
        act(128),
        torch.nn.Linear(128, 10),
    )


def resnet18(act: Callable[[int], torch.nn.Module]) -> torch.nn.Module:
    """torchvision's ResNet-18 (10 classes) with its ReLUs replaced by `act`, sized by the
    BatchNorm beside each (`bn1` of the block or stem): each BasicBlock calls its one
    activation twice, so the monitor sees 17 call sites."""
    import torchvision  # the benchmark skips this model without it

    model = torchvision.models.resnet18(num_classes=10)
    for parent in model.modules():
        if isinstance(getattr(parent, "relu", None), torch.nn.ReLU):
            parent.relu = act(parent.bn1.num_features)
    return model


def vit(act: Callable[[int], torch.nn.Module] | None) -> torch.nn.Module:
    """torchvision's VisionTransformer, a small config (ViT-Ti widths: 6 layers of 192, 3
    heads, MLP 768; 64x64 images in 8x8 patches: 64 tokens), its own GELUs."""
    from torchvision.models import VisionTransformer

    return VisionTransformer(
        image_size=64,
        patch_size=8,
        num_layers=6,
        num_heads=3,
        hidden_dim=192,
        mlp_dim=768,
        num_classes=10,
    )


def convnext(act: Callable[[int], torch.nn.Module] | None) -> torch.nn.Module:
    """torchvision's ConvNeXt-Tiny (10 classes), its own GELUs."""
    from torchvision.models import convnext_tiny

    return convnext_tiny(num_classes=10)


MODELS = {
    "mlp": ("MLP 784-4x1024-10, batch 256", mlp, lambda: torch.randn(256, 784)),
    "cnn": ("CNN 32x32x3, batch 64", cnn, lambda: torch.randn(64, 3, 32, 32)),
    "resnet18": ("ResNet-18 64x64x3, batch 32", resnet18, lambda: torch.randn(32, 3, 64, 64)),
    "vit": ("ViT small 64x64x3, batch 32", vit, lambda: torch.randn(32, 3, 64, 64)),
    "convnext": ("ConvNeXt-Tiny 64x64x3, batch 32", convnext, lambda: torch.randn(32, 3, 64, 64)),
}
OWN_ACTIVATIONS = {"vit", "convnext"}  # the model's own GELUs: --activations does not apply


class AdHocHooks:
    """What people write without a monitor: a forward hook per activation that measures
    each unit's fraction of z <= 0 and reads it back (one host sync per layer per step)."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.handles = []
        self.dead_fraction: dict[str, list[float]] = {}
        for name, module in model.named_modules():
            if isinstance(module, (*torch_ext.monitor.KNOWN_ACTIVATIONS, torch.nn.GELU)):
                self.handles.append(module.register_forward_pre_hook(self._hook(name)))

    def _hook(self, name: str):
        def hook(module, args):
            z = args[0]
            dims = [d for d in range(z.dim()) if d != (1 if z.dim() > 2 else z.dim() - 1)]
            self.dead_fraction[name] = (z <= 0).float().mean(dims).tolist()

        return hook

    def step(self) -> None:
        pass

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()


def train_step(model, x, y, optimizer, watcher) -> None:
    optimizer.zero_grad(set_to_none=True)
    torch.nn.functional.cross_entropy(model(x), y).backward()
    optimizer.step()
    if watcher is not None:
        watcher.step()


def step_time(model, x, y, optimizer, watcher, steps: int) -> float:
    """Mean time of a training step, after one untimed step: a monitor learns the layers
    around each activation in its first forward, a one-off cost."""
    train_step(model, x, y, optimizer, watcher)
    start = time.perf_counter()
    for _ in range(steps):
        train_step(model, x, y, optimizer, watcher)
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    parser.add_argument(
        "--activations", nargs="+", choices=list(ACTIVATIONS), default=list(ACTIVATIONS)
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(
        f"torch {torch.__version__}, {args.threads} threads, CPU loops "
        f"{torch_ext.build_info()['cpu_isa']}\n"
    )
    header = (
        f"{'model':<32} {'activation':<20} {'plain ms':>9} {'monitor':>8} {'tau':>8} "
        f"{'functional':>10} {'ad-hoc':>8}"
    )
    print(header + "\n" + "-" * len(header))
    for key in args.models:
        model_name, build, make_x = MODELS[key]
        if (
            key in ("resnet18", *OWN_ACTIVATIONS)
            and importlib.util.find_spec("torchvision") is None
        ):
            print(f"{model_name:<32} skipped: torchvision is not installed")
            continue
        acts = ["own GELU"] if key in OWN_ACTIVATIONS else args.activations
        for act_name in acts:
            torch.manual_seed(0)
            model, x = build(ACTIVATIONS.get(act_name)), make_x()
            ratio, plain = measure(model, x, args)
            print(
                f"{model_name:<32} {act_name:<20} {plain * 1e3:>9.2f} {ratio['monitor']:>7.3f}x "
                f"{ratio['tau']:>7.3f}x {ratio['functional']:>9.3f}x {ratio['ad-hoc']:>7.3f}x",
                flush=True,
            )


def measure(model: torch.nn.Module, x: torch.Tensor, args) -> tuple[dict[str, float], float]:
    """Each configuration's median step time over the rounds, over the plain step's."""
    y = torch.randint(0, 10, (x.shape[0],))
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
    configs = {
        "plain": lambda: None,
        "monitor": lambda: torch_ext.DeadNeuronMonitor(model, window=50).attach(),
        "tau": lambda: torch_ext.DeadNeuronMonitor(model, window=50, tau=0.1).attach(),
        "functional": lambda: torch_ext.DeadNeuronMonitor(
            model, window=50, functional=True
        ).attach(),
        "ad-hoc": lambda: AdHocHooks(model),
    }
    times: dict[str, list[float]] = {name: [] for name in configs}
    step_time(model, x, y, optimizer, None, 3)  # warm up
    for _ in range(args.rounds):
        for name, make_watcher in configs.items():
            watcher = make_watcher()
            times[name].append(step_time(model, x, y, optimizer, watcher, args.steps))
            if watcher is not None:
                watcher.remove()
    plain = statistics.median(times["plain"])
    return {name: statistics.median(times[name]) / plain for name in configs}, plain


if __name__ == "__main__":
    main()
