"""Inputs and references shared by the torch_ext tests.

Every op is compared with an independent reference: PyTorch's native op of the same name
(torch.nn.functional), float64 math, or an analytic value.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

import torch_ext.functional as X

ROOT = Path(__file__).resolve().parents[2]
# The CMake build folder the test command builds (setup.py's default, or where it was told).
BUILD_DIR = Path(os.environ.get("TORCH_EXT_BUILD_DIR", ROOT / "build" / "cmake"))

DTYPES = [torch.float32, torch.float64, torch.bfloat16, torch.float16]
SLOPES = [0.0, 0.01, -0.2, 1.5]
ALPHAS = [0.0, 0.1, 1.0, 2.0]
CELU_ALPHAS = [0.5, 1.0, 2.0, -1.0]  # not 0 (an error, natively too); negative is valid
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


@dataclass(frozen=True)
class Activation:
    """One elementwise op with its parameter, ours and the native reference."""

    name: str
    param: float | None
    ours: Callable[..., torch.Tensor]
    native: Callable[..., torch.Tensor]

    def __str__(self) -> str:
        return self.name if self.param is None else f"{self.name}({self.param})"

    def run(self, x: torch.Tensor, *, inplace: bool = False, native: bool = False) -> torch.Tensor:
        fn = self.native if native else self.ours
        args = () if self.param is None else (self.param,)
        return fn(x, *args, inplace=inplace)

    @property
    def inplace_backward_ok(self) -> bool:
        """In-place backward (from the result) is defined only for a parameter >= 0."""
        return self.param is None or self.param >= 0

    def grad_at_zero(self) -> float:
        """The analytic gradient at exactly x == 0 (SEMANTICS.md: the negative branch)."""
        if self.name == "selu":
            return SELU_SCALE * SELU_ALPHA
        assert self.param is not None
        if self.name == "celu":  # alpha * (1 / alpha) * e^0: continuous at 0 for any alpha
            return 1.0
        return self.param


ACTIVATIONS = (
    [Activation("leaky_relu", s, X.leaky_relu, F.leaky_relu) for s in SLOPES]
    + [Activation("elu", a, X.elu, F.elu) for a in ALPHAS]
    + [Activation("selu", None, X.selu, F.selu)]
    + [Activation("celu", a, X.celu, F.celu) for a in CELU_ALPHAS]
)


def _randn_with_zeros(*shape: int) -> torch.Tensor:
    """Standard normal float64 data whose first two elements are exactly 0."""
    x = torch.randn(*shape, dtype=torch.float64)
    x.view(-1)[:2] = 0.0
    return x


# Each layout maps a dtype to an input of that dtype and layout.
LAYOUTS: dict[str, Callable[[torch.dtype], torch.Tensor]] = {
    "0d": lambda d: torch.randn((), dtype=torch.float64).to(d),
    "empty": lambda d: torch.randn(0, 3, dtype=d),
    "1d": lambda d: _randn_with_zeros(17).to(d),
    "2d": lambda d: _randn_with_zeros(33, 65).to(d),
    "nchw": lambda d: _randn_with_zeros(2, 3, 5, 7).to(d),
    "channels_last": lambda d: (
        _randn_with_zeros(2, 3, 5, 7).to(d).contiguous(memory_format=torch.channels_last)
    ),
    "transposed": lambda d: _randn_with_zeros(65, 33).to(d).t(),
    "strided": lambda d: _randn_with_zeros(8, 40).to(d)[:, ::3],
}


def make_input(layout: str, dtype: torch.dtype, seed: int = 0) -> torch.Tensor:
    torch.manual_seed(seed)
    return LAYOUTS[layout](dtype)


def special_values(dtype: torch.dtype) -> torch.Tensor:
    """NaN, +-inf, +-0.0, +-denormal, and ordinary values of both signs."""
    tiny = torch.finfo(dtype).tiny / 4  # a denormal of this dtype
    return torch.tensor(
        [float("nan"), float("inf"), -float("inf"), 0.0, -0.0, tiny, -tiny, 1.5, -1.5, -30.0],
        dtype=dtype,
    )


def ids(values):
    return [str(v) for v in values]


def graph_node_kinds(graph: torch._C.Graph) -> set[str]:
    """Kinds of all nodes of a TorchScript graph, inside if/loop blocks too."""
    kinds: set[str] = set()
    pending = list(graph.nodes())
    while pending:
        node = pending.pop()
        kinds.add(node.kind())
        for block in node.blocks():
            pending.extend(block.nodes())
    return kinds


def run_checked(*command, timeout: float = 1800, **kwargs) -> subprocess.CompletedProcess:
    """Runs `command` (str() of each part), capturing its output; fails the test, with the
    output's end, if it exits non-zero."""
    result = subprocess.run(
        [str(c) for c in command], capture_output=True, text=True, timeout=timeout, **kwargs
    )
    assert result.returncode == 0, f"{command}\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    return result


def pool_job(marker: str | None, seconds: float) -> None:
    """A job for worker-pool tests (module level, so spawned processes can import it): with
    no `marker`, fails at once; else sleeps `seconds`, then creates the file `marker`."""
    import pathlib
    import time

    if marker is None:
        raise ValueError("boom")
    time.sleep(seconds)
    pathlib.Path(marker).touch()


def require_cmake_build() -> Path:
    """BUILD_DIR, configured; else the test fails saying what builds it."""
    if not (BUILD_DIR / "CMakeCache.txt").exists():
        import pytest

        pytest.fail(f"no CMake build in {BUILD_DIR}: the test command (scripts/setup.sh) builds it")
    return BUILD_DIR


def tiny_opt(transformers, ffn_dim: int, layers: int) -> torch.nn.Module:
    """A randomly initialised Hugging Face OPT small enough for a test (hidden 16, ReLU
    FFNs of `ffn_dim` units, no dropout), seeded; nothing downloaded."""
    torch.manual_seed(0)
    config = transformers.OPTConfig(
        vocab_size=50,
        hidden_size=16,
        ffn_dim=ffn_dim,
        num_hidden_layers=layers,
        num_attention_heads=2,
        max_position_embeddings=32,
        word_embed_proj_dim=16,
        activation_function="relu",
        dropout=0.0,
        attention_dropout=0.0,
    )
    return transformers.OPTForCausalLM(config)
