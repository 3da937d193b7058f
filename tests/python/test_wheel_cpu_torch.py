"""The wheel route on a CPU build of torch, as a user without CUDA takes it: a fresh virtual
environment (no system site packages) holds a CPU torch wheel and nothing of this machine's
CUDA torch; `pip wheel --no-build-isolation --no-deps .` builds torch_ext there from a copy
of the checkout; the wheel installs beside that torch, `pip check` finds its requirements
met, and from outside the source tree the ops run against native and examples/cpp builds
from ``torch_ext.cmake_prefix_path`` alone.

The CPU torch is the wheel TORCH_EXT_CPU_TORCH_WHEEL names, else a ``torch-*+cpu`` wheel
for this Python in /opt/wheels (where this project's machines keep one); without either
the tests skip, saying so. Its release need not be this environment's: the build is made
against it, so this also proves the sources compile and pass against another release."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest
from helpers import ROOT
from helpers import run_checked as run

PYTHON_TAG = f"cp{sys.version_info.major}{sys.version_info.minor}"


def _cpu_torch_wheel() -> Path | None:
    named = os.environ.get("TORCH_EXT_CPU_TORCH_WHEEL")
    if named:
        return Path(named)
    found = sorted(Path("/opt/wheels").glob(f"torch-*+cpu-{PYTHON_TAG}-*.whl"))
    return found[-1] if found else None


CPU_TORCH_WHEEL = _cpu_torch_wheel()
pytestmark = [
    pytest.mark.skipif(
        CPU_TORCH_WHEEL is None,
        reason="no CPU build of torch for this Python (set TORCH_EXT_CPU_TORCH_WHEEL to one)",
    ),
    pytest.mark.starts_first,  # a build of ~3 CPU-minutes: not at the end of the run
]


# The environment's processes run in: none of this process's Python path (a checkout on
# PYTHONPATH would show its own torch_ext to the venv's interpreter and pip) or settings.
CLEAN_ENV = {
    key: value
    for key, value in os.environ.items()
    if key not in ("PYTHONPATH", "PYTHONHOME") and not key.startswith(("TORCH_EXT_", "TORCH_CUDA"))
}


def _release(wheel: Path) -> str:
    """'2.13.0' of torch-2.13.0+cpu-cp311-....whl."""
    return wheel.name.split("-")[1].split("+")[0]


def _source_copy(destination: Path) -> Path:
    """The checkout's files as a fresh clone has them (tracked and new, not ignored): no
    build folder, no library of an earlier build in the package folder."""
    listed = subprocess.run(
        ["git", "-C", ROOT, "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True, check=True,
    ).stdout.decode().split("\0")  # fmt: skip
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name)
    return destination


@pytest.fixture(scope="module")
def cpu_venv(tmp_path_factory):
    """A virtual environment holding the CPU torch and torch_ext's wheel built against it;
    yields (its python, the wheel). Removed afterwards (the environment is ~1 GB)."""
    root = tmp_path_factory.mktemp("cpu_torch_venv")
    python = root / "bin" / "python"
    run(sys.executable, "-m", "venv", root, env=CLEAN_ENV)
    run(python, "-m", "pip", "install", "-q", CPU_TORCH_WHEEL, "numpy", "setuptools>=77",
        env=CLEAN_ENV)  # fmt: skip
    source = _source_copy(tmp_path_factory.mktemp("checkout"))
    out = tmp_path_factory.mktemp("cpu_wheel")
    env = {
        **CLEAN_ENV,
        "PATH": f"{root / 'bin'}{os.pathsep}{os.environ['PATH']}",
        "TORCH_EXT_BUILD_DIR": str(tmp_path_factory.mktemp("cpu_build")),
        # DEFAULT's CPU loops only: the other ISAs' copies are the same sources, compiled
        # and tested by the main build (about 250 of this build's 440 CPU-seconds).
        "CMAKE_ARGS": "-DTORCH_EXT_ONLY_CPU_ISAS=DEFAULT",
    }
    run(python, "-m", "pip", "wheel", "-q", "--no-build-isolation", "--no-deps", "-w", out, ".",
        cwd=source, env=env)  # fmt: skip
    (wheel,) = out.glob("torch_ext-*.whl")
    run(python, "-m", "pip", "install", "-q", "--no-deps", "--no-index", wheel, env=CLEAN_ENV)
    yield python, wheel
    shutil.rmtree(root, ignore_errors=True)


def test_wheel_requires_the_cpu_torch_release_and_pip_finds_it_met(cpu_venv):
    python, wheel = cpu_venv
    with zipfile.ZipFile(wheel) as archive:
        (metadata,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        requires = [
            line.split(":", 1)[1].strip()
            for line in archive.read(metadata).decode().splitlines()
            if line.startswith("Requires-Dist:") and "extra ==" not in line
        ]
    assert f"torch=={_release(CPU_TORCH_WHEEL)}" in requires, requires
    # The installed torch is `<release>+cpu`: the pin (no local version) admits it, and
    # `import torch_ext` accepts it (the next test), so pip and the import check agree.
    checked = run(python, "-m", "pip", "check", env=CLEAN_ENV)
    assert "No broken requirements" in checked.stdout


def test_installed_wheel_links_no_cuda_library_and_runs_against_native(cpu_venv, tmp_path):
    python, _ = cpu_venv
    script = textwrap.dedent(
        """
        import subprocess, torch, torch.nn.functional as F
        import torch_ext
        from torch_ext import functional as X
        assert torch.version.cuda is None and torch.__version__.endswith("+cpu"), torch.__version__
        info = torch_ext.build_info()
        assert info["torch_version"] == torch.__version__ and not info["with_cuda"], info
        assert info["cpu_isas"] == ["DEFAULT"] == [info["cpu_isa"]], info
        needed = subprocess.run(["readelf", "-d", torch_ext.library_path()],
                                capture_output=True, text=True, check=True).stdout
        assert "libtorch_cpu.so" in needed and "cuda" not in needed, needed
        torch.manual_seed(0)
        # |x| >= 0.1: gradcheck's finite differences never straddle the kink at 0
        x = torch.randn(257, 9, dtype=torch.float64)
        x = (x.sign() * (x.abs() + 0.1)).requires_grad_()
        w = torch.rand(9, dtype=torch.float64, requires_grad=True)
        # (ours, native, bitwise): the ELU family within float rounding, as its exp differs
        cases = [
            (lambda t, w: X.leaky_relu(t, 0.1), lambda t, w: F.leaky_relu(t, 0.1), True),
            (X.prelu, F.prelu, True),
            (lambda t, w: X.elu(t, 0.5), lambda t, w: F.elu(t, 0.5), False),
            (lambda t, w: X.celu(t, 2.0), lambda t, w: F.celu(t, 2.0), False),
            (lambda t, w: X.selu(t), lambda t, w: F.selu(t), False),
        ]
        for ours, native, bitwise in cases:
            for dtype in (torch.float64, torch.float32, torch.bfloat16):
                t, v = x.detach().to(dtype), w.detach().to(dtype)
                exact = {"rtol": 0, "atol": 0} if bitwise else {}
                torch.testing.assert_close(ours(t, v), native(t, v), **exact)
            assert torch.autograd.gradcheck(ours, (x, w))
            assert torch.autograd.gradgradcheck(ours, (x, w))
        print("ok", torch.__version__)
        """
    )
    result = run(python, "-c", script, cwd=tmp_path, env=CLEAN_ENV)
    assert result.stdout.startswith("ok ")


def test_cpp_examples_build_from_cmake_prefix_path_alone(cpu_venv, tmp_path):
    """README's CMake route on a CPU torch: `python -m torch_ext.cmake` has nothing to add
    but the prefixes, and the wheel's prefix alone finds torch_ext and the torch beside it."""
    python, _ = cpu_venv
    prefix = run(python, "-c", "import torch_ext; print(torch_ext.cmake_prefix_path)",
                 cwd=tmp_path, env=CLEAN_ENV).stdout.strip()  # fmt: skip
    printed = run(python, "-m", "torch_ext.cmake", cwd=tmp_path, env=CLEAN_ENV).stdout.split()
    assert [a for a in printed if not a.startswith("-DCMAKE_PREFIX_PATH=")] == [], printed
    build = tmp_path / "examples"
    generator = ["-GNinja"] if shutil.which("ninja") else []
    run("cmake", "-S", ROOT / "examples" / "cpp", "-B", build, *generator,
        f"-DCMAKE_PREFIX_PATH={prefix}", "-DCMAKE_BUILD_TYPE=Release", cwd=tmp_path)  # fmt: skip
    run("cmake", "--build", build, "--target", "train_mlp", "--parallel", str(os.cpu_count() or 1))
    trained = run(build / "train_mlp", "50", cwd=tmp_path)
    assert "torch_ext::nn::PReLU(num_parameters=32)" in trained.stdout
    linked = run("ldd", build / "train_mlp").stdout
    assert prefix.rsplit("/share/cmake", 1)[0] in linked and "cuda" not in linked
