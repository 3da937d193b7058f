"""The benchmarks' training models, for any activation: ``act(channels)`` builds one.
Imports torch alone (not torch_ext), so a process that loads a build of the library by
path (benchmarks/bench_builds.py) can build them too."""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor, nn


class ConvBlock(nn.Module):
    """conv-BN-act, conv-BN, + skip, act (ResNet's basic block)."""

    def __init__(self, act: Callable[[int], nn.Module], c_in: int, c_out: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.act1 = act(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.act2 = act(c_out)
        self.skip = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.skip = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out)
            )

    def forward(self, x: Tensor) -> Tensor:
        h = self.act1(self.bn1(self.conv1(x)))
        return self.act2(self.bn2(self.conv2(h)) + self.skip(x))


def cnn(act: Callable[[int], nn.Module]) -> nn.Module:
    stem = [nn.Conv2d(3, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), act(32)]
    blocks = [ConvBlock(act, 32, 32) for _ in range(4)]
    head = [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10)]
    return nn.Sequential(*stem, *blocks, *head)


def resnet18(act: Callable[[int], nn.Module]) -> nn.Module:
    stem = [nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), act(64)]
    layers: list[nn.Module] = [nn.MaxPool2d(3, 2, 1)]
    c_in = 64
    for c_out, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
        layers += [ConvBlock(act, c_in, c_out, stride), ConvBlock(act, c_out, c_out)]
        c_in = c_out
    head = [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(512, 1000)]
    return nn.Sequential(*stem, *layers, *head)


class Residual(nn.Module):
    def __init__(self, act: Callable[[int], nn.Module], width: int):
        super().__init__()
        self.linear = nn.Linear(width, width)
        self.act = act(width)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.act(self.linear(x))


def mlp(act: Callable[[int], nn.Module]) -> nn.Module:
    return nn.Sequential(*[Residual(act, 128) for _ in range(4)], nn.Linear(128, 10))


#: name: (model for an activation, input shape)
MODELS: dict[str, tuple[Callable[[Callable[[int], nn.Module]], nn.Module], tuple[int, ...]]] = {
    "cnn": (cnn, (32, 3, 32, 32)),
    "resnet18": (resnet18, (32, 3, 64, 64)),
    "mlp": (mlp, (4096, 128)),
}
