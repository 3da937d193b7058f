"""Scripts (torch.jit.script) and traces (torch.jit.trace) a model that uses torch_ext.nn
modules and torch_ext.functional calls, and saves both, with the output of each on the
fixed input that examples/cpp/run_torchscript.cpp uses.

    python examples/torchscript/save_models.py OUT_DIR
    ./run_torchscript OUT_DIR/scripted.pt      # C++: same numbers as OUT_DIR/scripted.txt
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import torch

import torch_ext.functional as XF
import torch_ext.nn as xnn

BATCH, FEATURES = 4, 16


class Model(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin1 = torch.nn.Linear(FEATURES, 32)
        self.act1 = xnn.PReLU(32)
        self.lin2 = torch.nn.Linear(32, 32)
        self.act2 = xnn.ELU(alpha=0.5)
        self.lin3 = torch.nn.Linear(32, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = XF.leaky_relu(x, 0.2)
        h = self.act1(self.lin1(h))
        h = self.act2(self.lin2(h))
        return XF.selu(self.lin3(h))


def fixed_input() -> torch.Tensor:
    """The input run_torchscript.cpp builds: linspace(-3, 3) shaped (BATCH, FEATURES)."""
    return torch.linspace(-3, 3, BATCH * FEATURES).reshape(BATCH, FEATURES)


def save_models(out_dir: Path) -> dict[str, Path]:
    """Saves scripted.pt and traced.pt (and their outputs as .txt); returns the .pt paths."""
    torch.manual_seed(0)
    model = Model().eval()
    x = fixed_input()
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # TorchScript is deprecated, still works
        for kind, module in (
            ("scripted", torch.jit.script(model)),
            ("traced", torch.jit.trace(model, (x,))),
        ):
            path = out_dir / f"{kind}.pt"
            module.save(str(path))
            with torch.no_grad():
                values = module(x).double().flatten().tolist()
            (out_dir / f"{kind}.txt").write_text("".join(f"{v:.9g}\n" for v in values))
            paths[kind] = path
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", type=Path)
    for kind, path in save_models(parser.parse_args().out_dir).items():
        print(f"{kind}: {path}")


if __name__ == "__main__":
    main()
