"""tools/pip_needed.py, which decides whether scripts/setup.sh calls pip: a requirement counts
as satisfied only when it and everything it requires are installed at allowed versions.
Checked against distributions written here (a .dist-info folder on sys.path), whose
metadata importlib.metadata reads as pip's."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from helpers import ROOT

sys.path.insert(0, str(ROOT))
from tools.pip_needed import unsatisfied  # noqa: E402


def install_fake(site: Path, name: str, version: str, requires: list[str] = ()) -> None:
    info = site / f"{name}-{version}.dist-info"
    info.mkdir(parents=True)
    lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    lines += [f"Requires-Dist: {r}" for r in requires]
    (info / "METADATA").write_text("\n".join(lines) + "\n")


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def test_installed_at_an_allowed_version_is_satisfied(site):
    install_fake(site, "fake_leaf", "1.2.0")
    assert unsatisfied(["fake_leaf", "fake_leaf==1.2.0", "fake_leaf>=1,<2"]) == []


def test_missing_or_other_version_is_needed(site):
    install_fake(site, "fake_leaf", "1.2.0")
    wanted = ["fake_leaf==1.3.0", "fake_absent_package", "fake_leaf<1"]
    assert unsatisfied(wanted) == wanted


def test_a_missing_dependency_makes_it_needed(site):
    install_fake(site, "fake_top", "1.0", requires=["fake_absent_dependency>=2"])
    assert unsatisfied(["fake_top"]) == ["fake_top"]


def test_dependencies_are_checked_recursively_with_their_versions(site):
    install_fake(site, "fake_top", "1.0", requires=["fake_middle"])
    install_fake(site, "fake_middle", "1.0", requires=["fake_leaf>=2"])
    install_fake(site, "fake_leaf", "1.5")
    assert unsatisfied(["fake_top"]) == ["fake_top"]


def test_markers_and_extras_decide_which_dependencies_count(site):
    install_fake(
        site,
        "fake_top",
        "1.0",
        requires=[
            'fake_absent_a; extra == "docs"',
            'fake_absent_b; python_version < "3"',
            "fake_leaf",
        ],
    )
    install_fake(site, "fake_leaf", "1.0")
    assert unsatisfied(["fake_top"]) == []
    assert unsatisfied(["fake_top[docs]"]) == ["fake_top[docs]"]


def test_what_it_cannot_parse_is_left_to_pip(site):
    assert unsatisfied(["not a requirement ==="]) == ["not a requirement ==="]


def test_a_url_requirement_is_left_to_pip(site):
    """A URL names a file, not a version: whatever is installed may not be that file."""
    install_fake(site, "fake_leaf", "1.0")
    spec = "fake_leaf @ file:///nowhere/fake_leaf-2.0-py3-none-any.whl"
    assert unsatisfied([spec]) == [spec]


def test_broken_metadata_is_left_to_pip(site):
    (site / "fake_broken-1.0.dist-info").mkdir()  # no METADATA
    assert unsatisfied(["fake_broken", "fake_broken==1.0"]) == ["fake_broken", "fake_broken==1.0"]
