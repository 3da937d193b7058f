"""The wheel, used the way someone who never saw the source tree would: `pip wheel` builds
it (from the same CMake build folder, so nothing recompiles), a fresh virtual environment
installs it (torch from this machine: --system-site-packages), and from a folder outside
the source tree the ops and the monitor run, and examples/cpp builds against the CMake
package inside the installed wheel (``torch_ext.cmake_prefix_path``) and runs. The
fixtures are in wheel_fixtures.py (test_cpp_package.py runs the same examples build)."""

from __future__ import annotations

import textwrap
import zipfile
from pathlib import Path

import pytest
import torch
from helpers import run_checked as run

TORCH_RELEASE = torch.__version__.split("+")[0]
# Under pytest-xdist, one worker runs this file and the other of the wheel's (they share its
# session fixtures, and building the wheel rewrites the CMake build folder's configuration).
pytestmark = pytest.mark.xdist_group("wheel")


def test_wheel_carries_library_headers_and_cmake_package(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for path in (
        "torch_ext/libtorch_ext.so",
        "torch_ext/include/torch_ext/ops.h",
        "torch_ext/include/torch_ext/nn.h",
        "torch_ext/share/cmake/TorchExt/TorchExtConfig.cmake",
        "torch_ext/share/cmake/TorchExt/TorchExtTargets.cmake",
        "torch_ext/cmake.py",
        "torch_ext/py.typed",  # PEP 561: type checkers read the package's hints
    ):
        assert path in names, path
    assert any(name.startswith("torch_ext/_C.") for name in names)


def test_wheel_requires_the_torch_it_was_built_against(wheel):
    with zipfile.ZipFile(wheel) as archive:
        (metadata,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        requirements = [
            line.split(":", 1)[1].strip()
            for line in archive.read(metadata).decode().splitlines()
            if line.startswith("Requires-Dist:")
        ]
    assert f"torch=={TORCH_RELEASE}" in requirements


def test_installed_wheel_runs_ops_and_monitor_outside_the_source_tree(venv, tmp_path):
    script = textwrap.dedent(
        """
        import torch, torch.nn.functional as F
        import torch_ext
        from torch_ext import DeadNeuronMonitor
        assert torch_ext.__file__.startswith(VENV), torch_ext.__file__
        x = torch.randn(64, 8, dtype=torch.float64, requires_grad=True)
        for ours, native in [
            (torch_ext.functional.leaky_relu(x, 0.1), F.leaky_relu(x, 0.1)),
            (torch_ext.functional.elu(x, 0.5), F.elu(x, 0.5)),
            (torch_ext.functional.selu(x), F.selu(x)),
            (torch_ext.functional.prelu(x, torch.full((8,), 0.25, dtype=x.dtype)),
             F.prelu(x, torch.full((8,), 0.25, dtype=x.dtype))),
        ]:
            torch.testing.assert_close(ours, native, rtol=0, atol=0)
        assert torch.autograd.gradcheck(lambda t: torch_ext.functional.elu(t, 0.5), (x,))
        model = torch.nn.Sequential(torch.nn.Linear(8, 6), torch.nn.ReLU(), torch.nn.Linear(6, 1))
        with torch.no_grad():  # units 0 and 1 can never fire
            model[0].weight[:2] = 0.0
            model[0].bias[:2] = -1.0
        with DeadNeuronMonitor(model, window=2) as monitor:
            for _ in range(2):
                model(x.detach().float()).sum().backward()
                monitor.step()
        layer = monitor.report().layers["1"]
        print(sorted(layer.dead_units), torch_ext.cmake_prefix_path)
        """
    ).replace("VENV", repr(str(venv.parent.parent)))
    result = run(venv, "-c", script, cwd=tmp_path)
    dead, prefix = result.stdout.rsplit(" ", 1)
    assert dead.startswith("[0, 1")
    assert Path(prefix.strip()).is_relative_to(venv.parent.parent)


def test_cpp_examples_build_against_the_installed_wheel(examples, wheel_cmake_prefix, tmp_path):
    """Only the wheel's CMake package (the `examples` fixture): `python -m torch_ext.cmake`
    gives the arguments; the programs link the wheel's library and run."""
    result = run(examples / "train_mlp", "50", cwd=tmp_path)
    assert "torch_ext::nn::PReLU(num_parameters=32)" in result.stdout
    linked = run("ldd", examples / "train_mlp").stdout
    assert str(wheel_cmake_prefix).rsplit("/share/cmake", 1)[0] in linked
