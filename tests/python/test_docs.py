"""The documentation builds with every Sphinx warning an error (as scripts/docs.sh builds
it), and its API pages hold what they should. Skipped where Sphinx or myst-parser is not
installed (scripts/test.sh and scripts/docs.sh install them, from docs/requirements.txt;
scripts/setup.sh does not)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

# Under pytest-xdist, one worker runs this file: its module fixture (the docs build) then
# runs once, not once per worker.
pytestmark = pytest.mark.xdist_group("docs")

pytest.importorskip("sphinx")
pytest.importorskip("myst_parser")

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def html(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The HTML build. In a fresh process: autodoc mocks lightning and transformers in
    ``sys.modules``, which would break the integration tests in this one."""
    out = tmp_path_factory.mktemp("docs")
    command = [sys.executable, "-m", "sphinx", "-E", "-W", "--keep-going", "-q"]
    result = subprocess.run(
        [*command, "-b", "html", str(ROOT / "docs"), str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, f"sphinx-build failed:\n{result.stdout}\n{result.stderr}"
    return out


def test_index_links_the_guide_and_the_api(html: Path) -> None:
    index = (html / "index.html").read_text()
    pages = ("quickstart.html", "guide.html", "api/functional.html", "api/monitor.html")
    for page in (*pages, "api/revive.html"):
        assert page in index, page


@pytest.mark.parametrize(
    "page, names",
    [
        ("api/torch_ext.html", ["torch_ext.library_path", "torch_ext.build_info"]),
        ("api/functional.html", ["torch_ext.functional.leaky_relu", "torch_ext.functional.elu"]),
        (
            "api/nn.html",
            ["torch_ext.nn.LeakyReLU", "torch_ext.nn.PReLU", "torch_ext.nn.replace_activations"],
        ),
        ("api/monitor.html", ["torch_ext.monitor.DeadNeuronMonitor", "LayerReport"]),
        ("api/revive.html", ["torch_ext.revive", "torch_ext.ReviveReport"]),
        (
            "api/integrations.html",
            [
                "torch_ext.integrations.lightning.DeadNeuronCallback",
                "torch_ext.integrations.transformers.DeadNeuronCallback",
            ],
        ),
        ("guide.html", ["Dead-neuron monitor"]),
    ],
)
def test_page_documents(html: Path, page: str, names: list[str]) -> None:
    text = (html / page).read_text()
    for name in names:
        assert name in text, f"{page} does not mention {name}"


def test_callback_signatures_are_their_own(html: Path) -> None:
    """The callbacks' base classes are mocked: their pages show the callbacks' ``__init__``
    parameters, not the mock's ``*args, **kwargs``."""
    text = (html / "api/integrations.html").read_text()
    assert "warn_dead_fraction" in text and "monitor_options" in text
    assert '<span class="pre">args</span>' not in text  # the mock's (*args, **kwargs)


@pytest.mark.parametrize(
    "page, target",
    [
        ("quickstart.html", "generated/torch.nn.functional.elu.html#torch.nn.functional.elu"),
        ("api/functional.html", "generated/torch.nn.functional.selu.html"),
        ("api/monitor.html", "generated/torch.nn.Module.html"),  # a signature's type
        ("api/functional.html", "tensors.html#torch.Tensor"),
    ],
)
def test_torch_names_link_into_pytorchs_docs(html: Path, page: str, target: str) -> None:
    """Intersphinx, from the local inventory (docs/_ext/torch_inventory.py): no download."""
    assert f'href="https://docs.pytorch.org/docs/stable/{target}' in (html / page).read_text()
