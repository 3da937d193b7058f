"""Train a small MLP on scikit-learn's bundled handwritten digits with each torch_ext
activation, and print the test accuracy of each.

    python examples/train_mlp.py [--epochs 30] [--seed 0]

The digits (1,797 8x8 images) ship inside scikit-learn: nothing is downloaded.
"""

from __future__ import annotations

import argparse
import time

import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import torch_ext
import torch_ext.nn as xnn

ACTIVATIONS = {
    "LeakyReLU(0.01)": lambda width: xnn.LeakyReLU(0.01),
    "PReLU": lambda width: xnn.PReLU(width),
    "ELU(1.0)": lambda width: xnn.ELU(1.0),
    "SELU": lambda width: xnn.SELU(),
}


def load_data(seed: int):
    digits = load_digits()
    x = torch.tensor(digits.data, dtype=torch.float32) / 16.0
    y = torch.tensor(digits.target)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=0.25, random_state=seed, stratify=y
    )
    mean, std = x_train.mean(0), x_train.std(0) + 1e-6
    return (x_train - mean) / std, y_train, (x_test - mean) / std, y_test


def make_model(activation, width: int = 64, depth: int = 3) -> torch.nn.Sequential:
    layers, fan_in = [], 64
    for _ in range(depth):
        layers += [torch.nn.Linear(fan_in, width), activation(width)]
        fan_in = width
    layers.append(torch.nn.Linear(fan_in, 10))
    return torch.nn.Sequential(*layers)


def train(model, data, epochs: int, seed: int) -> tuple[float, float]:
    x_train, y_train, x_test, y_test = data
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss = torch.tensor(0.0)
    for _ in range(epochs):
        model.train()
        for batch in torch.randperm(len(x_train), generator=generator).split(64):
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(x_train[batch]), y_train[batch])
            loss.backward()
            optimizer.step()
    model.eval()
    with torch.no_grad():
        accuracy = (model(x_test).argmax(1) == y_test).float().mean().item()
    return loss.item(), accuracy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    info = torch_ext.build_info()
    print(f"torch_ext on torch {info['torch_version']}, CPU loops: {info['cpu_isa']}")
    data = load_data(args.seed)
    print(f"digits: {len(data[0])} train / {len(data[2])} test images\n")
    print(f"{'activation':<16} {'final loss':>10} {'test acc':>9} {'time':>7}")
    for name, activation in ACTIVATIONS.items():
        torch.manual_seed(args.seed)
        start = time.perf_counter()
        loss, accuracy = train(make_model(activation), data, args.epochs, args.seed)
        print(f"{name:<16} {loss:>10.4f} {accuracy:>9.3f} {time.perf_counter() - start:>6.1f}s")


if __name__ == "__main__":
    main()
