"""Build information, the library path, and what import does with a mismatched torch."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap

import pytest
import torch
from helpers import run_checked
from ulps import GRAD_ULPS, assert_values

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


def cpu_has_avx512_bf16() -> bool:
    try:
        with open("/proc/cpuinfo") as f:
            return "avx512_bf16" in f.read().split()
    except OSError:
        return False


def test_cpu_isa_follows_aten():
    """The loops chosen at run time are ATen's choice for this CPU, capped at what we built;
    where that is AVX512, the AVX512_BF16 copy on a CPU with AVX512-BF16 (the same loops,
    rounding to bfloat16 in one instruction) unless TORCH_EXT_AVX512_BF16=0."""
    capability = torch.backends.cpu.get_cpu_capability()
    info = torch_ext.build_info()
    expected = capability if capability in info["cpu_isas"] else "DEFAULT"
    if (
        expected == "AVX512"
        and "AVX512_BF16" in info["cpu_isas"]
        and cpu_has_avx512_bf16()
        and os.environ.get("TORCH_EXT_AVX512_BF16") != "0"
    ):
        expected = "AVX512_BF16"
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


@pytest.mark.parametrize(
    ("built", "built_cuda", "installed", "installed_cuda", "loads"),
    [
        ("2.14.1+cu130", None, "2.14.1+cu130", "13.0", True),
        ("2.14.1+cu130", None, "2.14.1+cpu", None, True),  # a CPU-only build: either variant
        ("2.14.1+cpu", None, "2.14.1+cu126", "12.6", True),
        ("2.14.1", None, "2.14.1+cpu", None, True),
        ("2.14.1+cu130", None, "2.13.0+cu130", "13.0", False),  # another release: never
        ("2.14.1+cu130", "13.0", "2.14.1+cu130", "13.0", True),
        ("2.14.1+cu130", "13.0", "2.14.1+cu132", "13.2", True),
        ("2.14.1+cu130", "13.0", "2.14.1+cpu", None, False),  # CUDA kernels need CUDA torch
        ("2.14.1+cu130", "13.0", "2.14.1+cu126", "12.6", False),
    ],
)
def test_which_torch_a_build_loads_into(built, built_cuda, installed, installed_cuda, loads):
    """What the wheel's metadata (torch==<release>) admits, the import check admits, except a
    CUDA build of ours under a torch without that CUDA major."""
    problem = torch_ext._torch_mismatch(built, built_cuda, installed, installed_cuda)
    assert (problem is None) == loads, problem
    if not loads:
        assert built in problem and installed in problem


def test_a_cpu_only_build_needs_no_cuda_library_of_torch():
    """No libtorch_cuda (nor libtorch, which needs it in a CUDA torch) among the library's
    NEEDED entries, so a CPU build of torch of the same release loads it."""
    if torch_ext.build_info()["with_cuda"]:
        pytest.skip("a build with CUDA kernels needs torch's CUDA libraries")
    readelf = shutil.which("readelf")
    if readelf is None:
        pytest.skip("no readelf")
    dynamic = subprocess.run(
        [readelf, "-d", torch_ext.library_path()], capture_output=True, text=True, check=True
    ).stdout
    needed = re.findall(r"\(NEEDED\)\s+Shared library: \[(.*?)\]", dynamic)
    assert "libtorch_cpu.so" in needed and "libc10.so" in needed
    assert not [n for n in needed if "cuda" in n or n == "libtorch.so"], needed


ISAS = ["DEFAULT", "AVX2", "AVX512", "AVX512_BF16"]  # lowest first


def isa_env(isa: str) -> dict[str, str]:
    """The environment that makes a process run `isa`'s loops (one this machine runs)."""
    if isa == "AVX512_BF16":
        return {"ATEN_CPU_CAPABILITY": "avx512", "TORCH_EXT_AVX512_BF16": "1"}
    return {"ATEN_CPU_CAPABILITY": isa.lower(), "TORCH_EXT_AVX512_BF16": "0"}


def machine_isas() -> list[str]:
    """The ISAs whose loops this machine can run: those built, up to ATen's choice here."""
    info = torch_ext.build_info()
    return [isa for isa in ISAS[: ISAS.index(info["cpu_isa"]) + 1] if isa in info["cpu_isas"]]


# The loop suites rerun under each lower ISA, and under the machine's own with every
# out-of-place output streamed (TORCH_EXT_STREAMING_MIN_BYTES=0: non-temporal stores,
# csrc/ops/cpu/streaming.h, on tensors of any size), which must give the same results.
LOOP_SUITES = [
    "test_count_active.py",
    "test_counted.py",
    "test_sign_mask.py",
    "test_parity.py",
    "test_prelu.py",
    "test_positions.py",
    "test_forward_ad.py",
]
STREAMED_SUITES = ["test_sign_mask.py", "test_prelu.py", "test_positions.py"]


def run_loop_suites(suites: list[str], env: dict[str, str]) -> None:
    here = os.path.dirname(__file__)
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
        env={**os.environ, **env},
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert " passed" in result.stdout


@pytest.mark.parametrize("isa", ["default", "avx2"])
def test_loop_tests_pass_on_every_cpu_isa(isa: str):
    """The CPU loops are compiled per ISA (DEFAULT, AVX2, AVX512) and the best one runs;
    the suites that exercise them are rerun with each lower one the machine has forced, as
    ATen allows, so an AVX-512 machine runs all three. (AVX512_BF16 is AVX512 rounding to
    bfloat16 in one instruction: test_isa_results compares the two copies bit for bit, on
    every loop and every bfloat16.) That torch_ext followed
    ATEN_CPU_CAPABILITY is checked there first (conftest.py asserts the
    build_info()["cpu_isa"] this test expects)."""
    if isa.upper() not in machine_isas():
        pytest.skip(f"this machine does not run the {isa.upper()} loops")
    if isa.upper() == torch_ext.build_info()["cpu_isa"]:
        pytest.skip(f"the {isa.upper()} loops are the ones every other test runs here")
    run_loop_suites(LOOP_SUITES, {**isa_env(isa.upper()), "TORCH_EXT_EXPECT_ISA": isa.upper()})


def test_loop_tests_pass_with_streaming_stores():
    """The suites with out-of-place outputs at every offset, layout and dtype (positions,
    sign mask, PReLU), with every output streamed."""
    if not torch.ops.torch_ext._streaming_info()[2]:
        pytest.skip("every output streams here already")
    run_loop_suites(STREAMED_SUITES, {"TORCH_EXT_STREAMING_MIN_BYTES": "0"})


@pytest.mark.parametrize(
    "value, expected",
    [("0", 0), ("64M", 64 << 20), ("1 K", None), ("17179869184G", None), ("1e9", None)],
)
def test_streaming_threshold_from_the_environment(value: str, expected: int | None):
    """TORCH_EXT_STREAMING_MIN_BYTES is a byte count with an optional K, M or G; anything
    else (a space, an exponent, a value past int64 once scaled) is refused with a warning
    and the threshold stays the last-level cache's size."""
    code = "import torch, torch_ext; print(*torch.ops.torch_ext._streaming_info()[::2])"
    env = {**os.environ, "TORCH_EXT_STREAMING_MIN_BYTES": value}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env
    )
    assert result.returncode == 0, result.stderr[-2000:]
    cache, threshold = (int(v) for v in result.stdout.split()[-2:])
    warned = f"ignoring TORCH_EXT_STREAMING_MIN_BYTES={value}" in result.stderr
    assert (threshold, warned) == ((cache, True) if expected is None else (expected, False))


def test_isa_results(tmp_path):
    """Every ISA the machine runs gives the same results on the same inputs: the exact ops
    (Leaky ReLU, PReLU, the counts, the sign mask) the same bits everywhere; the ELU family
    the same bits on AVX2 and AVX-512 with or without AVX512-BF16 (the same exp algorithms,
    with FMA, lane by lane), and
    on DEFAULT (the C library's exp and expm1) within the ulps it may be from native
    (ulps.py: 2 in float32/float64, 1 in bfloat16/float16). And each ISA gives the same bits
    with every output streamed (TORCH_EXT_STREAMING_MIN_BYTES=0) as with normal stores."""
    from isa_results import ELU_FAMILY

    isas = machine_isas()
    runs, streamed = {}, {}
    for isa in isas:
        for threshold, into in ((None, runs), ("0", streamed)):
            out = tmp_path / f"{isa}-{threshold}.pt"
            env = {**os.environ, **isa_env(isa)}
            env.pop("TORCH_EXT_STREAMING_MIN_BYTES", None)
            if threshold is not None:
                env["TORCH_EXT_STREAMING_MIN_BYTES"] = threshold
            run_checked(
                sys.executable,
                os.path.join(os.path.dirname(__file__), "isa_results.py"),
                out,
                env=env,
            )
            saved = torch.load(out)
            assert saved["isa"] == isa
            into[isa] = saved["results"]
    for isa in isas:
        for key, expected in runs[isa].items():
            assert_values(streamed[isa][key], expected, 0, what=f"{key}: {isa} streamed")
    best = runs[isas[-1]]
    for isa in isas[:-1]:
        for key, expected in best.items():
            got, op = runs[isa][key], key.split("/")[0]
            exact = op not in ELU_FAMILY or "DEFAULT" not in (isa, isas[-1])
            ulps = 0 if exact else (1 if got.element_size() == 2 else GRAD_ULPS)
            assert_values(got, expected, ulps, what=f"{key}: {isa} vs {isas[-1]}")


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
