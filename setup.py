"""Builds torch_ext: CMake compiles the ops library (libtorch_ext.so, shared with LibTorch
users and the GoogleTest suite, see CMakeLists.txt) and installs it into the package with
the public headers and the CMake package (torch_ext/include, torch_ext/share/cmake/TorchExt:
``torch_ext.cmake_prefix_path``); torch.utils.cpp_extension compiles the small pybind11
module torch_ext._C that records how the build was made. The wheel requires the torch
release it was built against.

Environment:
  TORCH_EXT_CUDA=auto|0|1     compile the CUDA sources (auto: when torch has CUDA, nvcc is
                              found, and a GPU is visible or TORCH_CUDA_ARCH_LIST is set;
                              1: insist).
  TORCH_CUDA_ARCH_LIST        CUDA architectures, e.g. "9.0" (default: the visible GPU's,
                              else those torch was built for).
  TORCH_EXT_BUILD_TESTS=1     also build the GoogleTest suite (run: ctest --test-dir build/cmake).
  TORCH_EXT_BUILD_DIR         CMake build folder (default: build/cmake).
  MAX_JOBS                    parallel compile jobs.
  CMAKE_ARGS                  more CMake arguments, e.g. -DTORCH_EXT_ONLY_CPU_ISAS=DEFAULT
                              (compile only DEFAULT's CPU loops: a quicker build).
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import torch
from setuptools import Extension, setup
from torch.utils import cpp_extension

ROOT = Path(__file__).parent.resolve()
LIBRARY_FILE = "libtorch_ext.so"
# Environment variables CMake's configure step reads (TorchExtCuda.cmake, the compilers).
CONFIGURE_ENVIRONMENT = ("TORCH_CUDA_ARCH_LIST", "CC", "CXX", "CUDACXX", "CUDAHOSTCXX", "CUDA_HOME")

sys.path.insert(0, str(ROOT))
from tools.cuda_choice import cuda_setting  # noqa: E402
from tools.torch_cmake import torch_cmake_args  # noqa: E402


def _cmake_args(build_tests: bool) -> list[str]:
    args = [
        *torch_cmake_args(building_torch_ext=True),
        f"-DCMAKE_BUILD_TYPE={os.environ.get('CMAKE_BUILD_TYPE', 'Release')}",
        f"-DTORCH_EXT_BUILD_TESTS={'ON' if build_tests else 'OFF'}",
        # Installed into the package folder: torch_ext/libtorch_ext.so, torch_ext/include,
        # torch_ext/share/cmake/TorchExt (as torch/share/cmake/Torch).
        "-DCMAKE_INSTALL_LIBDIR=.",
        "-DCMAKE_INSTALL_INCLUDEDIR=include",
        "-DTORCH_EXT_INSTALL_CMAKEDIR=share/cmake/TorchExt",
        f"-DTORCH_EXT_CUDA={cuda_setting()}",
        "-DTORCH_EXT_ONLY_CPU_ISAS=",  # every ISA, unless CMAKE_ARGS (after) says otherwise
        f"-DPython_EXECUTABLE={sys.executable}",
    ]
    if shutil.which("ninja"):
        args.append("-GNinja")
    return args + shlex.split(os.environ.get("CMAKE_ARGS", ""))


class CMakeLibrary(Extension):
    """The ops library, built by CMake rather than by setuptools."""

    def __init__(self, name: str) -> None:
        super().__init__(name, sources=[])


class BuildExtensions(cpp_extension.BuildExtension):
    def get_ext_filename(self, fullname: str) -> str:
        # The library keeps its plain name (no Python ABI tag): LibTorch users and
        # torch.ops.load_library find it by that name.
        if fullname.split(".")[-1] == "libtorch_ext":
            return os.path.join(*fullname.split(".")[:-1], LIBRARY_FILE)
        return super().get_ext_filename(fullname)

    def build_extension(self, ext: Extension) -> None:
        if isinstance(ext, CMakeLibrary):
            self._build_with_cmake(ext)
        else:
            ext.define_macros += self._build_info_macros()
            self._compile_through_ccache()
            super().build_extension(ext)

    def _compile_through_ccache(self) -> None:
        """An editable install compiles _C in a fresh temporary folder each time (12-17 s of
        pybind11 headers): through ccache, as CMake compiles the library, a rebuild is a
        cache hit. torch wraps `compiler_so` in ccache itself, but newer setuptools compile
        C++ with `compiler_so_cxx`, which it leaves alone. TORCH_NO_COMPILER_WRAPPER turns
        this off, as it does torch's."""
        command = getattr(self.compiler, "compiler_so_cxx", None)
        if os.environ.get("TORCH_NO_COMPILER_WRAPPER") or not command or not shutil.which("ccache"):
            return
        if "ccache" not in os.path.basename(command[0]):
            self.compiler.set_executable("compiler_so_cxx", ["ccache", *command])

    def _build_dir(self) -> Path:
        return Path(os.environ.get("TORCH_EXT_BUILD_DIR", ROOT / "build" / "cmake")).resolve()

    def _build_with_cmake(self, ext: Extension) -> None:
        build_dir = self._build_dir()
        build_dir.mkdir(parents=True, exist_ok=True)
        build_tests = os.environ.get("TORCH_EXT_BUILD_TESTS", "0") == "1"
        self._configure(
            build_dir, ["-S", str(ROOT), "-B", str(build_dir), *_cmake_args(build_tests)]
        )
        jobs = os.environ.get("MAX_JOBS", str(os.cpu_count() or 1))
        subprocess.check_call(["cmake", "--build", str(build_dir), "--parallel", jobs])
        # The library, headers and CMake package, into the package being built; for an
        # editable install also into the source tree's (setuptools copies back the library
        # alone).
        package_dirs = [Path(self.get_ext_fullpath(ext.name)).parent]
        if getattr(self, "editable_mode", False) or self.inplace:
            package_dirs.append(ROOT / "torch_ext")
        for package_dir in package_dirs:
            package_dir.mkdir(parents=True, exist_ok=True)
            subprocess.check_call(
                ["cmake", "--install", str(build_dir), "--prefix", str(package_dir)],
                stdout=subprocess.DEVNULL,
            )

    @staticmethod
    def _configure(build_dir: Path, args: list[str]) -> None:
        """Runs CMake's configure step, unless this step configured the folder last, with
        these same arguments: finding torch alone takes ~10 s, and the build step
        reconfigures by itself when a CMakeLists.txt changed. A configuration changed by
        hand since (CMakeCache.txt rewritten or removed) is configured again, so the
        arguments here always hold."""
        stamp = build_dir / "torch_ext_configure_args.txt"
        cache = build_dir / "CMakeCache.txt"
        # What the configure step reads besides its arguments (the CUDA architectures, the
        # compilers) belongs to the comparison too.
        environment = [f"{name}={os.environ.get(name, '')}" for name in CONFIGURE_ENVIRONMENT]
        wanted = "\n".join([*args, *environment])

        def state() -> str:
            return f"{wanted}\ncache={cache.stat().st_mtime_ns}" if cache.exists() else ""

        configured = (build_dir / "build.ninja").exists() or (build_dir / "Makefile").exists()
        if configured and stamp.exists() and stamp.read_text() == state() != "":
            return
        stamp.unlink(missing_ok=True)
        subprocess.check_call(["cmake", *args])
        stamp.write_text(state())

    def _build_info_macros(self) -> list[tuple[str, str]]:
        info = dict(
            line.split("=", 1)
            for line in (self._build_dir() / "torch_ext_build_info.txt").read_text().splitlines()
            if "=" in line
        )

        def quoted(text: str) -> str:
            return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'

        return [
            ("TORCH_EXT_TORCH_VERSION", quoted(torch.__version__)),
            ("TORCH_EXT_WITH_CUDA", "1" if info.get("with_cuda") == "ON" else "0"),
            ("TORCH_EXT_CUDA_VERSION", quoted(info.get("cuda_version", ""))),
            ("TORCH_EXT_CUDA_ARCH_LIST", quoted(info.get("cuda_arch_list", ""))),
            ("TORCH_EXT_CPU_ISAS", quoted(info.get("cpu_isas", ""))),
            ("TORCH_EXT_LIBRARY_NAME", quoted(LIBRARY_FILE)),
        ]


TORCH_RELEASE = torch.__version__.split("+")[0]  # 2.14.1+cu130 -> 2.14.1

setup(
    # The library links this torch's C++ ABI: the wheel requires the same release.
    install_requires=[f"torch=={TORCH_RELEASE}", "numpy"],
    ext_modules=[
        CMakeLibrary("torch_ext.libtorch_ext"),
        # Pure pybind11 (headers from torch's include folder); links no torch library.
        Extension(
            "torch_ext._C",
            sources=["csrc/python/build_info.cpp"],
            include_dirs=cpp_extension.include_paths(),
            extra_compile_args=["-std=c++17", "-O2", "-Wall", "-Wextra"],
            language="c++",
        ),
    ],
    cmdclass={"build_ext": BuildExtensions.with_options(use_ninja=False)},
)
