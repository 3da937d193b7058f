"""Build information, the library path, and what import does with a mismatched torch."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
import torch

import torch_ext


def run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=300
    )


def test_build_info():
    info = torch_ext.build_info()
    assert info["torch_version"] == torch.__version__
    assert "DEFAULT" in info["cpu_isas"]
    assert info["cpu_isa"] in info["cpu_isas"]
    assert isinstance(info["with_cuda"], bool)
    if info["with_cuda"]:
        assert info["cuda_version"] and info["cuda_arch_list"]


def test_cpu_isa_follows_aten():
    """The loops chosen at run time are ATen's choice for this CPU, capped at what we built."""
    capability = torch.backends.cpu.get_cpu_capability()
    info = torch_ext.build_info()
    expected = capability if capability in info["cpu_isas"] else "DEFAULT"
    assert info["cpu_isa"] == expected


def test_library_path_loads_without_the_package():
    path = torch_ext.library_path()
    assert os.path.isfile(path)
    result = run_python(
        f"""
        import sys, torch
        torch.ops.load_library({path!r})
        assert "torch_ext" not in sys.modules
        x = torch.tensor([-2.0, 0.0, 3.0], requires_grad=True)
        y = torch.ops.torch_ext.leaky_relu(x, 0.5)
        y.sum().backward()
        print(y.tolist(), x.grad.tolist())
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[-1.0, 0.0, 3.0] [0.5, 0.5, 1.0]"


def test_mismatched_torch_gives_a_clear_error():
    result = run_python(
        """
        import torch
        torch.__version__ = "1.0.0"
        import torch_ext
        """
    )
    assert result.returncode != 0
    assert "ImportError: torch_ext was built against torch" in result.stderr
    assert "but torch 1.0.0 is installed" in result.stderr
    assert f"Install torch {torch_ext.build_info()['torch_version']}" in result.stderr
    assert "undefined symbol" not in result.stderr


@pytest.mark.parametrize("isa", ["default", "avx2"])
def test_loop_tests_pass_on_every_cpu_isa(isa: str):
    """The CPU loops are compiled per ISA (DEFAULT, AVX2, AVX512) and the best one runs;
    the suites that exercise them are rerun with the lower ones forced, as ATen allows. That
    torch_ext followed ATEN_CPU_CAPABILITY is checked there first (conftest.py asserts the
    build_info()["cpu_isa"] this test expects)."""
    if torch_ext.build_info()["cpu_isa"] == "DEFAULT" and isa != "default":
        pytest.skip("this machine runs only the DEFAULT loops")
    here = os.path.dirname(__file__)
    suites = [
        "test_count_active.py",
        "test_counted.py",
        "test_sign_mask.py",
        "test_parity.py",
        "test_prelu.py",
    ]
    # opcheck tests the registration (schemas, fake kernels), the same for every ISA.
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-x",
            "-p",
            "no:cacheprovider",
            "-k",
            "not opcheck",
            *(os.path.join(here, s) for s in suites),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "ATEN_CPU_CAPABILITY": isa, "TORCH_EXT_EXPECT_ISA": isa.upper()},
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert " passed" in result.stdout


def _check_runtime(library: str) -> subprocess.CompletedProcess:
    """cmake/TorchExtCheckRuntime.cmake (run after every link of the library) on `library`."""
    script = os.path.join(
        os.path.dirname(__file__), "..", "..", "cmake", "TorchExtCheckRuntime.cmake"
    )
    return subprocess.run(
        ["cmake", f"-DLIBRARY={library}", "-DNM=nm", "-DCXX=c++", "-P", script],
        capture_output=True,
        text=True,
    )


def test_built_library_uses_the_shared_libstdcxx():
    assert _check_runtime(torch_ext.library_path()).returncode == 0


def test_a_library_with_its_own_libstdcxx_stream_code_is_refused(tmp_path):
    """What a toolset GCC that links part of libstdc++ statically produces (it crashed on
    the first error message with a number in it): the build stops and says why. A copy of
    libstdc++ itself stands in for such a library."""
    libstdcxx = next(
        line.split()[-1] for line in open(f"/proc/{os.getpid()}/maps") if "libstdc++.so" in line
    )
    copy = tmp_path / "libtorch_ext.so"
    copy.write_bytes(open(libstdcxx, "rb").read())
    result = _check_runtime(str(copy))
    assert result.returncode != 0
    assert "its own copy of libstdc++'s stream code" in result.stderr
    assert "CXX=/usr/bin/g++" in result.stderr
    assert not copy.exists()
