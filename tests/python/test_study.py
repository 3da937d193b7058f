"""The dying-ReLU study on tiny settings: every file of the report, every cell (both
networks) in the JSON, numbers within their ranges; revive bringing dead units back in the
study's loop; the CNN's view of the digits as images; the born-dead estimator against its
analytic value; --data with valid and invalid files."""

from __future__ import annotations

import dataclasses
import json
import logging
import math

import numpy as np
import pytest
import torch

from torch_ext.study import born_dead, report
from torch_ext.study.__main__ import main
from torch_ext.study.data import DataError, as_images, dataset, image_side, load_file
from torch_ext.study.training import (
    ACTIVATIONS,
    ARCHITECTURES,
    Scenario,
    Settings,
    build_cnn,
    collected_warnings,
    model_inputs,
    revive_now,
    scenarios,
    train_one,
)

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
    for heading in (
        "Dead units and test accuracy",
        "Reviving dead units",
        "Born dead",
        "self-normalisation",
    ):
        assert heading in text


def test_json_has_every_cell_within_range(study):
    _, results = study
    expected = {
        (arch, s.name, a)
        for arch in ARCHITECTURES
        for s in scenarios(Settings())
        for a in s.activations
    }
    cells = {(c["architecture"], c["scenario"], c["activation"]): c for c in results["cells"]}
    assert set(cells) == expected
    assert {a for _, _, a in expected} == set(ACTIVATIONS)
    assert results["architectures_left_out"] == {}
    units = {"mlp": Settings().width * Settings().depth, "cnn": sum(Settings().cnn_channels)}
    for (arch, _, _), cell in cells.items():
        assert 0 <= cell["test_accuracy_mean"] <= 1
        assert 0 <= cell["dead_fraction_mean"] <= 1 and 0 <= cell["dormant_fraction_mean"] <= 1
        assert 0 <= cell["active_rate_mean"] <= 1
        assert len(cell["dead_fraction_per_epoch"]) == 2
        assert all(0 <= f <= 1 for f in cell["layer_dead_fraction"])
        assert len(cell["layer_dead_fraction"]) == {"mlp": Settings().depth, "cnn": 2}[arch]
        assert len(cell["runs"]) == cell["seeds"] == 1
        assert cell["units"] == units[arch]
    for cell in cells.values():  # Leaky ReLU and PReLU units are never dead
        if cell["activation"] in ("LeakyReLU", "PReLU"):
            assert cell["dead_fraction_mean"] == 0
    assert (
        cells[("mlp", "negative_bias", "ReLU")]["dead_fraction_mean"] > 0.5
    )  # the bias kills ReLU
    for arch in ARCHITECTURES:  # both networks learn the digits in their sane baseline
        assert cells[(arch, "baseline", "ReLU")]["test_accuracy_mean"] > 0.5
    for estimate in results["born_dead"]:
        assert 0 <= estimate["probability"] <= 1
    for moments in results["selu_check"].values():
        assert all(m["variance"] >= 0 for m in moments)


def test_remedy_revive_cells_count_revived_units_per_epoch(study):
    out, results = study
    cells = {(c["architecture"], c["scenario"], c["activation"]): c for c in results["cells"]}
    revive = [s for s in results["scenarios"] if s["name"] == "remedy_revive"]
    assert len(revive) == 1 and revive[0]["activations"] == ["ReLU"]
    assert revive[0]["revive_every"] == Settings().revive_every
    for arch in ARCHITECTURES:
        cell = cells[(arch, "remedy_revive", "ReLU")]
        assert len(cell["revived_per_epoch"]) == 2
        for run in cell["runs"]:
            assert len(run["revived"]) == len(run["dead_units"]) == 2
            assert all(0 <= n <= run["units"] for n in run["revived"])
        # high_lr is the same run without revive: its ReLU cell is the comparison
        assert (arch, "high_lr", "ReLU") in cells
    text = (out / "report.md").read_text()
    assert "| MLP | yes |" in text and "| CNN | yes |" in text
    assert "| epoch | MLP dead, no revive | MLP dead, revive |" in text


def test_revive_in_the_study_loop_brings_units_back():
    """A strongly negative bias kills most MLP units in the first epoch; reviving them
    after it must revive exactly the units the monitor counted dead (the MLP's layers are
    all Linear -> ReLU -> Linear), and the second epoch must count fewer dead units than
    the same run (same seed) without revive."""
    settings = Settings(width=32, depth=3, epochs=2)
    data = dataset(None)
    killed = Scenario("killed", "", 1e-3, -3.0, ("ReLU",))
    revived = dataclasses.replace(killed, revive_every=1)
    without = train_one(data, killed, "ReLU", settings, seed=0)
    with_ = train_one(data, revived, "ReLU", settings, seed=0)
    assert with_.dead_units[0] == without.dead_units[0] > with_.units // 2  # same first epoch
    assert with_.revived == [with_.dead_units[0], 0]  # never after the last epoch
    assert without.revived == [0, 0]
    assert with_.dead_units[1] < with_.dead_units[0]
    assert with_.dead_units[1] < without.dead_units[1]
    assert with_.revive_warnings == []


def test_revive_runs_every_few_epochs_but_not_after_the_last():
    every_3 = Scenario("r", "", 0.03, None, ("ReLU",), revive_every=3)
    assert [e for e in range(7) if revive_now(every_3, e, 7)] == [2, 5]
    assert [e for e in range(6) if revive_now(every_3, e, 6)] == [2]  # 5: nothing trains after
    never = Scenario("n", "", 0.03, None, ("ReLU",))
    assert not any(revive_now(never, e, 6) for e in range(6))


def test_cnn_reads_the_digits_as_8x8_images():
    """The CNN's input is each sample's 64 features as the 8x8 image scikit-learn stores
    separately in ``images`` (row-major)."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = torch.from_numpy(digits.data).float()
    images = as_images(x)
    assert images.shape == (len(x), 1, 8, 8)
    assert torch.equal(images[:, 0], torch.from_numpy(digits.images).float())
    assert torch.equal(model_inputs("cnn", x), images)
    assert model_inputs("mlp", x) is x
    assert image_side(64) == 8 and image_side(16) == 4
    assert image_side(63) is None and image_side(9) is None  # 3x3: too small to pool twice
    with pytest.raises(ValueError, match="not a square image"):
        as_images(torch.zeros(2, 5))


def test_cnn_negative_bias_goes_to_the_batchnorm_biases():
    model = build_cnn("ReLU", 8, 10, (4, 6), bias_init=-3.0)
    norms = [m for m in model if isinstance(m, torch.nn.BatchNorm2d)]
    convs = [m for m in model if isinstance(m, torch.nn.Conv2d)]
    assert [n.num_features for n in norms] == [4, 6]
    assert all(torch.all(n.bias == -3.0) for n in norms)
    assert not any(torch.all(c.bias == -3.0) for c in convs)
    assert model(torch.randn(3, 1, 8, 8)).shape == (3, 10)


def test_collected_warnings_keeps_revive_warnings_and_lets_go():
    logger = logging.getLogger("torch_ext.monitor")
    handlers = list(logger.handlers)
    with collected_warnings() as messages:
        logger.warning("revive: skipped layer '%s': %s", "3", "why")
        logger.info("not a warning")
    assert messages == ["revive: skipped layer '3': why"]
    assert logger.handlers == handlers and logger.propagate


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
        results = json.loads((out / "results.json").read_text())
        cells = results["cells"]
        assert cells and cells[0]["test_accuracy_mean"] > 0.6  # a learnable rule
        # 5 features are no image: the MLP alone, and the report says why
        assert {c["architecture"] for c in cells} == {"mlp"}
        assert "5 features" in results["architectures_left_out"]["cnn"]
        assert "CNN: not trained: 5 features" in (out / "report.md").read_text()


def test_user_data_of_square_images_trains_the_cnn(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 16))
    y = (x[:, :4].sum(1) > 0).astype(int)
    csv = tmp_path / "images.csv"
    np.savetxt(csv, np.column_stack([x, y]), delimiter=",")
    out = tmp_path / "out"
    assert main([*TINY, "--seeds", "1", "--data", str(csv), "--out", str(out), "train"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["architectures_left_out"] == {}
    cnn = [c for c in results["cells"] if c["architecture"] == "cnn"]
    assert len(cnn) == len([c for c in results["cells"] if c["architecture"] == "mlp"]) > 0
    assert "read as one-channel 4x4 images (row-major)" in (out / "report.md").read_text()


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
