"""The dying-ReLU study on tiny settings: every file of the report, every cell in the
JSON, numbers within their ranges; the born-dead estimator against its analytic value;
--data with valid and invalid files."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from torch_ext.study import born_dead, report
from torch_ext.study.__main__ import main
from torch_ext.study.data import DataError, load_file
from torch_ext.study.training import ACTIVATIONS, Settings, scenarios

TINY = ["--quick", "--epochs", "2", "--no-progress"]


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    out = tmp_path_factory.mktemp("study")
    assert main([*TINY, "--out", str(out)]) == 0
    return out, json.loads((out / "results.json").read_text())


def test_report_folder_has_every_file(study):
    out, _ = study
    for name in ("report.md", "results.json", *report.PLOTS):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    text = (out / "report.md").read_text()
    for heading in ("Dead units and test accuracy", "Born dead", "self-normalisation"):
        assert heading in text


def test_json_has_every_cell_within_range(study):
    _, results = study
    settings = Settings()
    expected = {(s.name, a) for s in scenarios(settings.base_lr, settings.high_lr,
                                                 settings.negative_bias) for a in s.activations}
    cells = {(c["scenario"], c["activation"]): c for c in results["cells"]}
    assert set(cells) == expected
    assert {a for _, a in expected} == set(ACTIVATIONS)
    for cell in cells.values():
        assert 0 <= cell["test_accuracy_mean"] <= 1
        assert 0 <= cell["dead_fraction_mean"] <= 1 and 0 <= cell["dormant_fraction_mean"] <= 1
        assert len(cell["dead_fraction_per_epoch"]) == 2
        assert all(0 <= f <= 1 for f in cell["layer_dead_fraction"])
        assert len(cell["runs"]) == cell["seeds"] == 1
    for cell in cells.values():  # Leaky ReLU and PReLU units are never dead
        if cell["activation"] in ("LeakyReLU", "PReLU"):
            assert cell["dead_fraction_mean"] == 0
    assert cells[("negative_bias", "ReLU")]["dead_fraction_mean"] > 0.5  # the bias kills ReLU
    for estimate in results["born_dead"]:
        assert 0 <= estimate["probability"] <= 1
    for moments in results["selu_check"].values():
        assert all(m["variance"] >= 0 for m in moments)


def test_born_dead_matches_the_analytic_value():
    """One input point, zero biases: 1 - (1 - 2^-N)^L, within 4 Monte Carlo standard errors."""
    x = torch.randn(1, 8)
    generator = torch.Generator().manual_seed(0)
    for width, depth in ((2, 3), (3, 6)):
        trials = 4000
        p = born_dead.born_dead_fraction(x, width, depth, trials, "ReLU", generator)
        analytic = born_dead.analytic_single_point(width, depth)
        assert abs(p - analytic) < 4 * math.sqrt(analytic * (1 - analytic) / trials)


def test_variants_are_never_born_dead():
    x = torch.randn(16, 8)
    generator = torch.Generator().manual_seed(0)
    for activation in ("LeakyReLU", "PReLU", "ELU", "SELU"):
        assert born_dead.born_dead_fraction(x, 2, 30, 200, activation, generator) == 0


def test_selu_keeps_the_fixed_point(study):
    _, results = study
    selu = results["selu_check"]["SELU"]
    assert all(abs(m["mean"]) < 0.2 and 0.5 < m["variance"] < 1.5 for m in selu)


def test_user_data_csv_and_npz(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 5))
    y = (x[:, 0] > 0).astype(int)
    csv = tmp_path / "d.csv"
    np.savetxt(csv, np.column_stack([x, y]), delimiter=",", header="a,b,c,d,e,label", comments="")
    npz = tmp_path / "d.npz"
    np.savez(npz, features=x, labels=y)
    for path in (csv, npz):
        fx, fy = load_file(path)
        assert fx.shape == (120, 5) and set(fy.tolist()) == {0, 1}
        out = tmp_path / f"out-{path.suffix[1:]}"
        assert main([*TINY, "--data", str(path), "--out", str(out), "train"]) == 0
        cells = json.loads((out / "results.json").read_text())["cells"]
        assert cells and cells[0]["test_accuracy_mean"] > 0.6  # a learnable rule


@pytest.mark.parametrize(
    "content,suffix,message",
    [
        ("1,2,3\n4,5,x\n", ".csv", "expected rows of numbers"),
        ("1,2,0.5\n3,4,1\n" * 10, ".csv", "labels must be non-negative integers"),
        ("1,2,0\n" * 20, ".csv", "a single class"),
        (None, ".npz", "expected arrays 'features' and 'labels'"),
        ("hello", ".txt", "expected a .csv or .npz file"),
    ],
)
def test_bad_data_files_give_clear_errors(tmp_path, capsys, content, suffix, message):
    path = tmp_path / f"bad{suffix}"
    if suffix == ".npz":
        np.savez(path, something=np.zeros(3))
    else:
        path.write_text(content)
    with pytest.raises(DataError, match=message):
        load_file(path)
    assert main([*TINY, "--data", str(path), "--out", str(tmp_path / "o")]) == 2
    assert message in capsys.readouterr().err


def test_missing_data_file(tmp_path, capsys):
    assert main([*TINY, "--data", str(tmp_path / "nope.csv")]) == 2
    assert "no such file" in capsys.readouterr().err
