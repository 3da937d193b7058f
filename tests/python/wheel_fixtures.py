"""Session fixtures of the installed wheel, shared by test_wheel.py and test_cpp_package.py:
the wheel (`pip wheel`, from the same CMake build folder, so nothing recompiles), a fresh
virtual environment with it installed (torch from this machine: --system-site-packages),
and examples/cpp built against the CMake package inside that install. The C++ examples
build once per session: each file includes <torch/torch.h>, about 30 s of parsing."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest
from helpers import ROOT, require_cmake_build
from helpers import run_checked as run


@pytest.fixture(scope="session")
def wheel(tmp_path_factory) -> Path:
    build_dir = require_cmake_build()
    out = tmp_path_factory.mktemp("wheel")
    # The configuration the build folder has, so it is reused as is (nothing recompiles).
    cache = (build_dir / "CMakeCache.txt").read_text()
    env = {
        **os.environ,
        "TORCH_EXT_BUILD_TESTS": "1" if "TORCH_EXT_BUILD_TESTS:BOOL=ON" in cache else "0",
    }
    run(sys.executable, "-m", "pip", "wheel", "-q", "--no-build-isolation", "--no-deps",
        "-w", out, ROOT, env=env)  # fmt: skip
    (found,) = out.glob("torch_ext-*.whl")
    return found


@pytest.fixture(scope="session")
def venv(wheel, tmp_path_factory) -> Path:
    """A virtual environment with the wheel installed; its python."""
    root = tmp_path_factory.mktemp("venv")
    python = root / "bin" / "python"
    install = ["install", "-q", "--no-deps", "--no-index", str(wheel)]
    if _pip_has_python_option():  # no pip of its own (seconds to install): ours installs
        run(sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", root)
        run(sys.executable, "-m", "pip", "--python", python, *install)
    else:
        run(sys.executable, "-m", "venv", "--system-site-packages", root)
        run(python, "-m", "pip", *install)
    return python


@pytest.fixture(scope="session")
def wheel_cmake_prefix(venv, tmp_path_factory) -> Path:
    """torch_ext.cmake_prefix_path of the installed wheel."""
    cwd = tmp_path_factory.mktemp("outside")
    printed = run(venv, "-c", "import torch_ext; print(torch_ext.cmake_prefix_path)", cwd=cwd)
    return Path(printed.stdout.strip())


@pytest.fixture(scope="session")
def examples(venv, wheel_cmake_prefix, tmp_path_factory) -> Path:
    """examples/cpp's build folder, configured with what `python -m torch_ext.cmake` of the
    installed wheel prints, except that CMAKE_PREFIX_PATH is the wheel's prefix alone: its
    package finds the torch installed beside it (the other arguments name the CUDA toolkit a
    CUDA build of torch needs)."""
    cwd = tmp_path_factory.mktemp("outside")
    args = run(venv, "-m", "torch_ext.cmake", cwd=cwd).stdout.split()
    assert f"-DCMAKE_PREFIX_PATH={wheel_cmake_prefix};" in " ".join(args)
    args = [a for a in args if not a.startswith("-DCMAKE_PREFIX_PATH=")]
    args.append(f"-DCMAKE_PREFIX_PATH={wheel_cmake_prefix}")
    generator = ["-GNinja"] if shutil.which("ninja") else []
    build = tmp_path_factory.mktemp("examples")
    run("cmake", "-S", ROOT / "examples" / "cpp", "-B", build, *generator, *args,
        "-DCMAKE_BUILD_TYPE=Release", cwd=cwd)  # fmt: skip
    run("cmake", "--build", build, "--parallel", str(os.cpu_count() or 1))
    return build


def _pip_has_python_option() -> bool:
    """`pip --python`, which installs into another interpreter: pip 22.3 and later. Read from
    the metadata: importing pip turns off setuptools' distutils shim in this process, and a
    later torch.compile (which imports setuptools) then fails."""
    from importlib.metadata import version

    major, minor = (int(part) for part in version("pip").split(".")[:2])
    return (major, minor) >= (22, 3)
