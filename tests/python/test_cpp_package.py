"""The installed CMake package, used the way a LibTorch user would: `cmake --install` the
library, headers and TorchExtConfig.cmake to a prefix (the layout setup.py installs into the
Python package), and examples/cpp, built against the installed wheel's package with nothing
but find_package(TorchExt) and TorchExt::torch_ext (the `examples` fixture of
wheel_fixtures.py, built once for this file and test_wheel.py), run. test_readme.py builds
a project against the checkout's package, whose torch is not beside it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers import BUILD_DIR, ROOT, require_cmake_build, run_checked

import torch_ext

# Under pytest-xdist, one worker runs this file and the other of the wheel's (they share its
# session fixtures, and building the wheel rewrites the CMake build folder's configuration).
pytestmark = pytest.mark.xdist_group("wheel")
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "examples" / "torchscript"))
from save_models import BATCH, FEATURES, save_models  # noqa: E402


def run(*command, **kwargs) -> subprocess.CompletedProcess:
    return run_checked(*command, timeout=1200, **kwargs)


@pytest.fixture(scope="module")
def prefix(tmp_path_factory) -> Path:
    build_dir = require_cmake_build()
    prefix = tmp_path_factory.mktemp("prefix")
    run("cmake", "--install", build_dir, "--prefix", prefix)
    return prefix


def test_install_layout(prefix):
    """setup.py configures the build for the Python package's layout (as torch's own)."""
    assert (prefix / "libtorch_ext.so").is_file()
    assert (prefix / "include" / "torch_ext" / "ops.h").is_file()
    assert (prefix / "include" / "torch_ext" / "nn.h").is_file()
    assert (prefix / "share" / "cmake" / "TorchExt" / "TorchExtConfig.cmake").is_file()


def test_the_package_carries_its_cmake_package():
    """torch_ext.cmake_prefix_path holds what `cmake --install` puts in a prefix."""
    config = Path(torch_ext.cmake_prefix_path) / "TorchExt" / "TorchExtConfig.cmake"
    assert config.is_file()
    assert (Path(torch_ext.library_path()).parent / "include" / "torch_ext" / "ops.h").is_file()


def build_id(library: Path | str) -> str:
    notes = run("readelf", "-n", library).stdout
    return notes.split("Build ID:", 1)[1].split()[0]


def test_python_loads_the_library_cmake_built():
    """setup.py installs the library CMake built (only its run path rewritten): one
    compilation serves both."""
    assert build_id(torch_ext.library_path()) == build_id(BUILD_DIR / "libtorch_ext.so")


def test_train_mlp_loss_falls(examples):
    result = run(examples / "train_mlp", "300")
    assert "torch_ext::nn::PReLU(num_parameters=32)" in result.stdout
    first, last = (float(v) for v in result.stdout.split("loss ")[-1].split(",")[0].split(" -> "))
    assert last < 0.5 * first


@pytest.mark.parametrize("kind", ["scripted", "traced"])
def test_run_torchscript_equals_python(examples, tmp_path, kind):
    paths = save_models(tmp_path)
    result = run(examples / "run_torchscript", paths[kind], BATCH, FEATURES)
    cpp = torch.tensor([float(v) for v in result.stdout.split()], dtype=torch.float64)
    python = torch.tensor(
        [float(v) for v in (tmp_path / f"{kind}.txt").read_text().split()], dtype=torch.float64
    )
    assert cpp.numel() == python.numel() == BATCH * 8
    torch.testing.assert_close(cpp, python, rtol=0, atol=0)


def test_torchscript_runner_really_needs_the_linked_library(examples):
    """run_torchscript calls no torch_ext symbol; the package's link flags keep the
    library (and with it the ops) in the program."""
    needed = run("readelf", "-d", examples / "run_torchscript").stdout
    assert "libtorch_ext.so" in needed


def _find_toolkit(tmp_path: Path, roots: str, cuda_torch: bool) -> subprocess.CompletedProcess:
    """TorchExtFindCudaToolkit.cmake in script mode, for a torch whose lib folder holds
    libtorch_cuda.so or not, searching `roots`, with no nvcc on PATH."""
    torch_dir = tmp_path / "torch" / "share" / "cmake" / "Torch"
    torch_dir.mkdir(parents=True)
    (tmp_path / "torch" / "lib").mkdir()
    if cuda_torch:
        (tmp_path / "torch" / "lib" / "libtorch_cuda.so").touch()
    module = Path(torch_ext.cmake_prefix_path) / "TorchExt" / "TorchExtFindCudaToolkit.cmake"
    script = tmp_path / "find.cmake"
    script.write_text(
        f'set(TORCH_EXT_CUDA_ROOTS "{roots}")\ninclude("{module}")\n'
        f'torch_ext_find_cuda_toolkit("{torch_dir}")\n'
        'message(STATUS "toolkit: ${CUDA_TOOLKIT_ROOT_DIR}")\n'
    )
    env = {**os.environ, "PATH": "/usr/bin:/bin"}
    return subprocess.run(["cmake", "-P", str(script)], capture_output=True, text=True, env=env)


def test_the_cmake_package_finds_a_cuda_toolkit_for_a_cuda_torch(tmp_path):
    """torch's own config looks only at nvcc on PATH; the package looks where toolkits are."""
    toolkit = tmp_path / "cuda"
    (toolkit / "bin").mkdir(parents=True)
    (toolkit / "include").mkdir()
    (toolkit / "bin" / "nvcc").touch()
    (toolkit / "include" / "cuda_runtime.h").touch()
    found = _find_toolkit(tmp_path, f"/nonexistent;{toolkit}", cuda_torch=True)
    assert found.returncode == 0 and f"toolkit: {toolkit}" in found.stdout, found.stderr


def test_the_cmake_package_says_what_to_do_without_a_toolkit(tmp_path):
    missing = _find_toolkit(tmp_path, "/nonexistent", cuda_torch=True)
    assert missing.returncode != 0
    message = " ".join(missing.stderr.split())
    assert "is a CUDA build" in message and "-DCUDA_TOOLKIT_ROOT_DIR" in message
    assert "CPU build of torch" in message


def test_the_cmake_package_needs_no_toolkit_for_a_cpu_torch(tmp_path):
    cpu = _find_toolkit(tmp_path, "/nonexistent", cuda_torch=False)
    assert cpu.returncode == 0 and "toolkit: \n" in cpu.stdout + "\n", cpu.stderr
