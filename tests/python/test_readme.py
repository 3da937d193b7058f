"""The README's code blocks run as written, the way a reader runs them: Python blocks in a
fresh interpreter from a folder outside the source tree, the C++ route as a CMake project
built with exactly the README's commands against an installed prefix, the TorchScript
save/load pair, and the study's documented flags against its ``--help``. A block that
needs a GPU or a long run carries ``<!-- readme-test: skip: <reason> -->`` on the line
before its fence and is skipped with that reason. A README edit that breaks a block fails
here."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import require_cmake_build

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
SKIP = re.compile(r"<!--\s*readme-test:\s*skip:\s*(.*?)\s*-->")


@dataclass(frozen=True)
class Block:
    language: str
    code: str
    line: int  # of the opening fence, 1-based
    skip: str | None  # the reason, for a block marked skip

    def __str__(self) -> str:
        return f"README.md:{self.line} ({self.language})"


def readme_blocks(path: Path = README) -> list[Block]:
    lines = path.read_text().splitlines()
    blocks, i = [], 0
    while i < len(lines):
        fence = re.match(r"^```(\w+)\s*$", lines[i])
        if not fence:
            i += 1
            continue
        end = lines.index("```", i + 1)
        marker = SKIP.search(lines[i - 1]) if i > 0 else None
        code = "\n".join(lines[i + 1 : end]) + "\n"
        blocks.append(Block(fence.group(1), code, i + 1, marker.group(1) if marker else None))
        i = end + 1
    return blocks


BLOCKS = readme_blocks()


def section(title: str) -> list[Block]:
    """The blocks under the README heading `title` (up to the next ## heading)."""
    text = README.read_text().splitlines()
    start = text.index(f"## {title}") + 1
    stop = next((n for n in range(start, len(text)) if text[n].startswith("## ")), len(text))
    return [b for b in BLOCKS if start < b.line <= stop]


def environment(home: Path) -> dict[str, str]:
    """The reader's environment: this interpreter first on PATH, torch_ext importable as the
    test command installed it, HOME a fresh folder."""
    env = dict(os.environ, HOME=str(home))
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    return env


def run(command: list[str], cwd: Path, env: dict[str, str], timeout: int = 1200) -> str:
    result = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, (
        f"{command[:2]} in {cwd} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    )
    return result.stdout


def test_every_block_is_run_here_or_marked_skip():
    """Each block is one this file runs (by its section) or carries a skip reason: a new
    block cannot go untested unnoticed."""
    run_here = {
        b.line
        for title in ("Python", "Dead-neuron monitor", "C++ (LibTorch, CMake)", "TorchScript")
        for b in section(title)
        if b.language in ("python", "bash", "cmake") or "int main" in b.code
    }
    unaccounted = [str(b) for b in BLOCKS if b.skip is None and b.line not in run_here]
    assert not unaccounted, f"blocks neither tested nor marked skip: {unaccounted}"


PYTHON_BLOCKS = [
    b for t in ("Python", "Dead-neuron monitor") for b in section(t) if b.language == "python"
]


@pytest.mark.parametrize("block", PYTHON_BLOCKS, ids=str)
def test_python_block_runs_in_a_fresh_interpreter(block: Block, tmp_path: Path):
    assert block.skip is None
    run([sys.executable, "-c", block.code], tmp_path, environment(tmp_path))


QUICKSTART = ROOT / "docs" / "quickstart.md"


@pytest.mark.parametrize(
    "block", readme_blocks(QUICKSTART), ids=lambda b: f"quickstart.md:{b.line}"
)
def test_quickstart_block_runs_in_a_fresh_interpreter(block: Block, tmp_path: Path):
    """The docs' quickstart page: every block is Python and runs as written."""
    assert block.language == "python" and block.skip is None
    run([sys.executable, "-c", block.code], tmp_path, environment(tmp_path))


def test_torchscript_save_then_load_in_a_process_without_torch_ext(tmp_path: Path):
    save, load = [b for b in section("TorchScript") if b.language == "python"]
    env = environment(tmp_path)
    printed = run([sys.executable, "-c", save.code], tmp_path, env).strip().splitlines()[-1]
    assert Path(printed).is_file(), f"{save} should print the library's path, printed {printed}"
    script = tmp_path / "load.py"
    script.write_text(load.code)
    env.pop("PYTHONPATH")  # the loading process never imports torch_ext
    run([sys.executable, str(script), printed], tmp_path, env)


def test_cpp_route_builds_and_runs_with_the_readmes_commands(tmp_path: Path):
    """Install (the README's commands, with HOME a fresh folder), then a user project of the
    README's CMakeLists.txt and main.cpp, configured and built by its configure block
    against the installed package's CMake package (test_wheel.py: the same from a wheel)."""
    blocks = section("C++ (LibTorch, CMake)")
    install, *configures = [b for b in blocks if b.language == "bash"]
    (cmake_lists,) = [b for b in blocks if b.language == "cmake"]
    (main,) = [b for b in blocks if b.language == "cpp" and "int main" in b.code]
    require_cmake_build()  # the installed package's library comes from it
    env = environment(tmp_path)
    # scripts/setup.sh is what the test command ran already; the rest runs as written.
    steps = "\n".join(
        line for line in install.code.splitlines() if not line.startswith("bash scripts/setup.sh")
    )
    # Both routes: every argument from `python -m torch_ext.cmake`, or the CMake package's
    # folder alone (torch found beside it, its CUDA toolkit found by the package).
    assert [
        ("-m torch_ext.cmake" in b.code, "cmake_prefix_path" in b.code) for b in configures
    ] == [
        (True, False),
        (False, True),
    ]
    project = tmp_path / "app"
    project.mkdir()
    (project / "CMakeLists.txt").write_text(cmake_lists.code)
    (project / "main.cpp").write_text(main.code)
    if shutil.which("ccache"):  # the second route compiles the same main.cpp again
        env["CMAKE_CXX_COMPILER_LAUNCHER"] = "ccache"
    lines = ["set -e", "exec 2>&1", f"cd {ROOT}", steps, f"cd {project}"]  # CMake warns on stderr
    script = "\n".join(lines + [b.code for b in configures])
    printed = run(["bash", "-c", script], ROOT, env)
    assert "Manually-specified variables were not used" not in printed
    for build in ("build", "build2"):
        run([str(project / build / "app")], project, env)


def section_text(title: str) -> str:
    return README.read_text().split(f"## {title}\n")[1].split("\n## ")[0]


@pytest.mark.parametrize(
    "title,command,documented",
    [
        (
            "The study (main job)",
            ["-m", "torch_ext.study"],
            {
                "--quick",
                "--full",
                "--data",
                "--out",
                "--seeds",
                "--epochs",
                "--no-progress",
                "--workers",
            },
        ),
        ("Benchmarks", ["benchmarks/bench_ops.py"], {"--quick"}),
    ],
    ids=["study", "bench_ops"],
)
def test_documented_flags_are_in_the_help(
    title: str, command: list[str], documented: set[str], tmp_path: Path
):
    """Every `--flag` a section shows (in prose or in a block) is one the program takes."""
    flags = set(re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", section_text(title)))
    assert documented <= flags
    help_text = run([sys.executable, *command, "--help"], ROOT, environment(tmp_path))
    missing = sorted(flag for flag in flags if not re.search(rf"{flag}\b", help_text))
    assert not missing, f"the README's {title} section shows {missing}, not in --help"
