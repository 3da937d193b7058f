"""The dying-ReLU study on tiny settings: every file of the report, every cell (both
networks, the ReLU family and GELU and SiLU) in the JSON, numbers within their ranges; the
dead and tau-dormant units of GELU and SiLU nets against a hook's own count; the report's opening summary and its
born-dead table against the run's results, its plots' legends clear of the data; revive
bringing dead units back in the study's loop; the CNN's view of the digits as images; the
born-dead estimator against its analytic value; --data with valid and invalid files, CSV
header rows and --label-column; the count options refused below 1; the report's counts in
the singular for one, and one seed's values without a spread."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import pool_job
from matplotlib.transforms import Bbox

from torch_ext.revive.plan import logger as revive_logger
from torch_ext.study import born_dead, report, training
from torch_ext.study.__main__ import PARTS, main, parse_args, progress_bar, settings_for
from torch_ext.study.data import DataError, as_images, dataset, image_side, load_file
from torch_ext.study.parallel import Workers, usable_cores
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

# Under pytest-xdist, one worker runs this file: its module fixture (a study run) then runs
# once, not once per worker.
pytestmark = pytest.mark.xdist_group("study")

TINY = ["--quick", "--epochs", "2", "--no-progress"]  # the study fixture: every usable core
# The tests of --data, on one process: a pool's start (importing torch) costs seconds.
ONE_PROCESS = [*TINY, "--workers", "1"]


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
    assert {"ReLU", "GELU", "SiLU"} <= set(ACTIVATIONS)
    for arch in ARCHITECTURES:  # the smooth activations train wherever the ReLU family does
        for scenario in ("baseline", "high_lr", "negative_bias"):
            assert {(arch, scenario, a) for a in ("GELU", "SiLU", "SELU")} <= set(cells)
    assert results["config"]["tau"] == Settings().tau == 0.1
    assert results["architectures_left_out"] == {}
    units = {"mlp": Settings().width * Settings().depth, "cnn": sum(Settings().cnn_channels)}
    for (arch, _, _), cell in cells.items():
        assert 0 <= cell["test_accuracy_mean"] <= 1
        assert 0 <= cell["dead_fraction_mean"] <= 1 and 0 <= cell["dormant_fraction_mean"] <= 1
        assert 0 <= cell["tau_dormant_fraction_mean"] <= 1
        assert len(cell["tau_dormant_fraction_per_epoch"]) == 2
        assert cell["tau_dormant_fraction_mean"] == cell["tau_dormant_fraction_per_epoch"][-1]
        assert all(0 <= f <= 1 for f in cell["layer_tau_dormant_fraction"])
        assert len(cell["layer_tau_dormant_fraction"]) == len(cell["layer_dead_fraction"])
        assert 0 <= cell["active_rate_mean"] <= 1
        assert len(cell["dead_fraction_per_epoch"]) == 2
        assert all(0 <= f <= 1 for f in cell["layer_dead_fraction"])
        assert len(cell["layer_dead_fraction"]) == {"mlp": Settings().depth, "cnn": 2}[arch]
        assert len(cell["runs"]) == cell["seeds"] == 1
        assert cell["units"] == units[arch]
    for cell in cells.values():  # Leaky ReLU and PReLU units are never dead
        if cell["activation"] in ("LeakyReLU", "PReLU"):
            assert cell["dead_fraction_mean"] == 0
        # a dead ReLU unit outputs 0 on every sample: its score is 0, so it is tau-dormant
        if cell["activation"] == "ReLU":
            for run in cell["runs"]:
                for dead, dormant in zip(run["dead_fraction"], run["tau_dormant_fraction"]):
                    assert dormant >= dead
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


def counted_by_a_hook(monkeypatch, activation: str) -> list[list[tuple]]:
    """Every training forward's (input, output) of each `activation` module of the model
    train_one builds next, recorded by a forward hook of the test's own: one list per layer,
    in call order (the monitor counts training forwards only; summarise's eval forward is
    left out)."""
    layers: list[list[tuple]] = []
    kind = type(ACTIVATIONS[activation](1))
    build = training.build_model

    def record(calls):
        def hook(module, inputs, output):
            if module.training:
                calls.append((inputs[0].detach().clone(), output.detach().clone()))

        return hook

    def build_and_hook(*args, **kwargs):
        model = build(*args, **kwargs)
        for module in model.modules():
            if isinstance(module, kind):
                layers.append([])
                module.register_forward_hook(record(layers[-1]))
        return model

    monkeypatch.setattr(training, "build_model", build_and_hook)
    return layers


def per_unit(values: torch.Tensor) -> torch.Tensor:
    """[units, samples]: a Linear's features (dim 1 of [N, units]) or a convolution's
    channels (dim 1 of [N, C, H, W], every position a sample), as the monitor counts them."""
    return values.movedim(1, 0).reshape(values.shape[1], -1)


def dead_and_tau_dormant(calls: list[tuple], activation: str, tau: float) -> tuple[int, int]:
    """One layer's dead units (no sample with |f'(z)| > 1e-3, f' by float64 autograd of
    torch's own function) and ReDo's tau-dormant units (mean |h_u| at most tau times the
    layer's mean over units) over `calls` (one epoch)."""
    function = {"GELU": torch.nn.functional.gelu, "SiLU": torch.nn.functional.silu}[activation]
    z = per_unit(torch.cat([c[0] for c in calls])).double().requires_grad_()
    (slope,) = torch.autograd.grad(function(z).sum(), z)
    dead = int((~(slope.abs() > 1e-3).any(1)).sum())
    mean_abs = per_unit(torch.cat([c[1] for c in calls])).double().abs().mean(1)
    tau_dormant = int((mean_abs / mean_abs.mean() <= tau).sum())
    return dead, tau_dormant


@pytest.mark.parametrize(
    "architecture,activation,bias,lr,tau",
    [
        ("mlp", "GELU", -4.0, 1e-3, 0.5),  # the second layer's z sit near -4: mostly dead
        ("mlp", "SiLU", -9.0, 1e-3, 0.5),
        ("cnn", "GELU", -4.0, 1e-3, 0.7),
        ("mlp", "GELU", None, 0.03, 0.7),  # a high rate: some units go quiet, none dies
    ],
    ids=[
        "mlp-gelu-negative-bias",
        "mlp-silu-negative-bias",
        "cnn-gelu-negative-bias",
        "mlp-gelu-high-lr",
    ],
)
def test_smooth_dead_and_tau_dormant_units_match_a_hook(
    monkeypatch, architecture, activation, bias, lr, tau
):
    """The Run's dead and tau-dormant fractions of a GELU or SiLU net (per epoch, and per
    layer in the last) are the test's own count from the activations' inputs and outputs
    in each epoch. GELU and SiLU units are dead only far below 0 (GELU -3.81, SiLU -8.99),
    so ReLU's rule (z <= 0) would count far more: the hook's dormant units show it."""
    settings = Settings(
        width=16, depth=2, epochs=2, cnn_epochs=2, cnn_channels=(4, 6), tau=tau, batch=64
    )
    data = dataset(None)
    layers = counted_by_a_hook(monkeypatch, activation)
    run = train_one(
        data, Scenario("s", "", lr, bias, (activation,)), activation, settings, 0, architecture
    )
    assert len(layers) == len(run.layer_dead_fraction) == 2
    steps = math.ceil(len(data.x_train) / settings.batch)
    units = [per_unit(calls[0][0]).shape[0] for calls in layers]
    assert run.units == sum(units)
    dormant_by_relu_rule = 0
    for epoch in range(2):
        counts = [
            dead_and_tau_dormant(calls[epoch * steps : (epoch + 1) * steps], activation, tau)
            for calls in layers
        ]
        assert run.dead_fraction[epoch] == sum(d for d, _ in counts) / run.units
        assert run.tau_dormant_fraction[epoch] == sum(t for _, t in counts) / run.units
        if epoch == 1:
            assert run.layer_dead_fraction == [d / n for (d, _), n in zip(counts, units)]
            assert run.layer_tau_dormant_fraction == [t / n for (_, t), n in zip(counts, units)]
            for calls in layers:
                z = per_unit(torch.cat([c[0] for c in calls[steps:]]))
                dormant_by_relu_rule += int((z <= 0).all(1).sum())
    if architecture == "mlp" and bias is not None:  # never above 0 is not dead for GELU, SiLU
        assert dormant_by_relu_rule > run.dead_units[-1]


def test_tau_option_reaches_the_monitor_and_the_report():
    """--tau sets the monitor's threshold (the default ReDo's 0.1); argparse refuses what is
    no number >= 0; the report says the threshold it used."""
    assert parse_args([]).tau == Settings().tau == 0.1
    args = parse_args(["train", "--tau", "0.25"])
    settings, _, _ = settings_for(args, dataset(None))
    assert settings.tau == 0.25
    assert "tau = 0.25 times" in report.header_section(
        hand_made_results(1) | {"config": dataclasses.asdict(settings)}
    )


@pytest.mark.parametrize("value", ["-0.1", "nan", "inf", "x", ""])
def test_tau_must_be_a_number_of_at_least_zero(capsys, value):
    with pytest.raises(SystemExit) as exit_:
        parse_args(["--tau", value])
    assert exit_.value.code == 2
    assert "error: argument --tau: must be a number >= 0, got " in capsys.readouterr().err


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
    """On the logger revive itself logs on (the study listed none while revive logged on
    another one)."""
    logger = revive_logger
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
    # ... and ReLU's, under the same draw, are: the estimate can tell them apart
    assert born_dead.born_dead_fraction(x, 2, 30, 200, "ReLU", generator) > 0.5


def test_results_do_not_depend_on_the_number_of_workers():
    """Each network and born-dead cell seeds its own generators: on two processes, in
    whatever order they finish, the results equal one process's, run for run (the CNN's
    too, whose convolutions would differ on another thread count)."""
    settings = Settings(width=8, depth=2, epochs=2, cnn_epochs=1, revive_every=1)
    data = dataset(None)
    by_name = {s.name: s for s in scenarios(settings)}
    runs = [
        (data, by_name["remedy_revive"], "ReLU", settings, 0, "mlp"),
        (data, by_name["negative_bias"], "PReLU", settings, 1, "mlp"),
        (data, by_name["high_lr"], "ELU", settings, 2, "cnn"),
        (data, by_name["negative_bias"], "GELU", settings, 3, "mlp"),
    ]
    cells = born_dead.cells(data.x_train[:16], "data", [2, 3], [2, 5], 64, ["ReLU", "ELU"])
    with Workers(2) as two:  # one pool for both, as the command line does
        assert two.map(train_one, runs) == Workers(1).map(train_one, runs)
        assert born_dead.estimate(cells, workers=two) == born_dead.estimate(cells, workers=1)


def test_a_worker_that_dies_gives_a_clear_error():
    """A worker killed mid-job (as by an unguarded script's re-import, or the OOM killer)
    breaks the pool: the error says what to check, and the pool is closed."""
    with Workers(2) as two:
        with pytest.raises(RuntimeError, match=r"a worker process died.*--workers 1"):
            two.map(os._exit, [(3,), (3,)])
        assert two._pool is None


def test_a_failing_job_stops_the_others(tmp_path):
    """A job's error reaches the caller at once: the running jobs are killed and the queued
    ones cancelled, rather than the whole study running on first (as Ctrl-C does too)."""
    marks = [str(tmp_path / f"done-{i}") for i in range(8)]
    jobs = [(None, 0.0)] + [(m, 5.0) for m in marks]
    with Workers(2) as two:
        with pytest.raises(ValueError, match="boom"):
            two.map(pool_job, jobs, cost=lambda job: job[0] is None)  # the failing one first
        assert two._pool is None
    assert len(list(tmp_path.iterdir())) < len(marks)


def test_more_workers_than_cores_is_allowed_with_a_warning():
    with pytest.warns(UserWarning, match="more processes than the .* usable cores?:"):
        assert parse_args(["--workers", str(usable_cores() + 1)]).workers == usable_cores() + 1


# --- the command line's counts: argparse refuses what is no positive integer -------------


@pytest.mark.parametrize(
    "part", [[], ["train"], ["born-dead"], ["selu-check"]], ids=["all", *PARTS]
)
@pytest.mark.parametrize("option", ["--seeds", "--epochs", "--workers"])
@pytest.mark.parametrize(
    "value,shown",
    [("0", "0"), ("-1", "-1"), ("-2", "-2"), ("two", "'two'"), ("1.5", "'1.5'"), ("", "''")],
    ids=["zero", "minus-one", "minus-two", "word", "fraction", "empty"],
)
def test_counts_must_be_positive_integers(capsys, part, option, value, shown):
    """Every count option of every part: argparse's own error, exit status 2, naming the
    option and what it expected, before any data is read or network trained (these ended
    in an IndexError at the end of a run, or 0 passed for "not given")."""
    with pytest.raises(SystemExit) as exit_:
        parse_args([*part, "--quick", option, value])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: torch-ext-study")
    assert f"error: argument {option}: must be a positive integer, got {shown}\n" in err


def test_counts_of_one_and_more_are_taken():
    args = parse_args(["train", "--seeds", "1", "--epochs", "3", "--workers", "1"])
    assert (args.seeds, args.epochs, args.workers) == (1, 3, 1)
    settings, _, _ = settings_for(args, dataset(None))
    assert (settings.seeds, settings.cnn_seeds) == (1, 1)
    assert (settings.epochs, settings.cnn_epochs) == (3, 3)


def test_a_one_seed_run_reports_no_spread_and_one_seed(study):
    """--quick trains one seed: report.md says so in the singular, and its training and
    revive tables give values without "± 0.000"."""
    out, _ = study
    text = (out / "report.md").read_text()
    assert "1 seed per cell" in text and "1 seeds" not in text
    tables = text.split("## Dead units and test accuracy")[1].split("## Born dead")[0]
    assert "| MLP | baseline | ReLU |" in tables and "±" not in tables
    # --epochs 2, revive every 3: no revive in the run, and the report says so
    assert "(MLP: not once in its 2 epochs; CNN: not once in its 2 epochs;" in text


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
        assert main([*ONE_PROCESS, "--data", str(path), "--out", str(out), "train"]) == 0
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
    assert main([*ONE_PROCESS, "--seeds", "1", "--data", str(csv), "--out", str(out), "train"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["architectures_left_out"] == {}
    cnn = [c for c in results["cells"] if c["architecture"] == "cnn"]
    assert len(cnn) == len([c for c in results["cells"] if c["architecture"] == "mlp"]) > 0
    assert "read as one-channel 4x4 images (row-major)" in (out / "report.md").read_text()


@pytest.mark.parametrize(
    "content,suffix,message",
    [
        ("1,2,3\n4,5,x\n", ".csv", "expected rows of numbers"),
        ("1,2,0.5\n3,4,1\n" * 10, ".csv", "labels must be integers"),
        ("1,2,nan\n3,4,1\n" * 10, ".csv", "labels must be integers"),
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
    assert main([*ONE_PROCESS, "--data", str(path), "--out", str(tmp_path / "o")]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    "labels,features",
    [
        (np.array(["cat", "dog"] * 10), np.zeros((20, 3))),  # text labels
        (np.array([0, 1] * 10), np.zeros((20, 3), dtype=np.complex64)),
        (np.array([0, 1] * 10, dtype=object), np.zeros((20, 3))),  # needs pickle: refused
    ],
)
def test_npz_of_other_arrays_gives_a_clear_error(tmp_path, labels, features):
    path = tmp_path / "odd.npz"
    np.savez(path, features=features, labels=labels)
    with pytest.raises(DataError, match=f"--data {path}: .*(real numbers|numeric arrays)"):
        load_file(path)


def test_npz_that_is_not_one_gives_a_clear_error(tmp_path):
    path = tmp_path / "text.npz"
    path.write_text("not a zip archive")
    with pytest.raises(DataError, match="not a readable .npz"):
        load_file(path)


def test_labels_are_renumbered_to_class_indices(tmp_path):
    """Any integer class numbers (1995/2000, -1/1) become 0..K-1 in sorted order, so the
    network has K outputs, as sklearn's LabelEncoder would number them."""
    raw = np.array([2000, 1995, -1, 2000] * 5)
    path = tmp_path / "years.npz"
    np.savez(path, features=np.arange(60, dtype=np.float32).reshape(20, 3), labels=raw)
    _, y = load_file(path)
    expected = np.searchsorted(np.unique(raw), raw)
    np.testing.assert_array_equal(y, expected)
    assert y.dtype == np.int64 and set(y.tolist()) == {0, 1, 2}


def test_missing_data_file(tmp_path, capsys):
    assert main([*ONE_PROCESS, "--data", str(tmp_path / "nope.csv")]) == 2
    assert "no such file" in capsys.readouterr().err


# --- CSV files as people have them: a header row, a named label column ------------------

# 12 samples of 3 numbers each, exact in float32; labels 0, 1, 2.
CSV_SAMPLES = [[0.25 * i, -1.5 * i, float(i % 4)] for i in range(12)]
CSV_LABELS = [i % 3 for i in range(12)]


def csv_text(header: list[str] | None, label_at: int, bom: bool = False) -> str:
    """CSV_SAMPLES with CSV_LABELS inserted as column ``label_at``, after ``header``."""
    lines = [] if header is None else [",".join(header)]
    for sample, label in zip(CSV_SAMPLES, CSV_LABELS):
        cells = [f"{v:g}" for v in sample]
        cells.insert(label_at, str(label))
        lines.append(",".join(cells))
    return ("\ufeff" if bom else "") + "\n".join(lines) + "\n\n"  # a blank line at the end


@pytest.mark.parametrize(
    "header,label_at,label_column,bom",
    [
        (None, 3, None, False),  # no header: the label is the last column
        (["a", "b", "c", "label"], 3, None, False),
        (["0", "1", "2", "label"], 3, None, False),  # numbered features, as pandas writes
        (['"x 1"', '"x 2"', '"x 3"', '"y"'], 3, None, True),  # quoted names, spreadsheet BOM
        (["a", "digit", "b", "c"], 1, "digit", False),  # the label column in the middle
        (["digit", "a", "b", "c"], 0, "digit", False),
        (["a", "b", "c", " digit "], 3, "digit", False),  # names are stripped
    ],
    ids=["no-header", "header", "numbered-header", "quoted-bom", "middle", "first", "spaces"],
)
def test_csv_header_and_label_column(tmp_path, header, label_at, label_column, bom):
    path = tmp_path / "samples.csv"
    path.write_text(csv_text(header, label_at, bom), encoding="utf-8")
    features, labels = load_file(path, label_column)
    np.testing.assert_array_equal(features, np.array(CSV_SAMPLES, dtype=np.float32))
    np.testing.assert_array_equal(labels, np.array(CSV_LABELS))
    assert features.dtype == np.float32 and labels.dtype == np.int64


@pytest.mark.parametrize(
    "content,label_column,messages",
    [
        (
            csv_text(["a", "b", "c", "label"], 3),
            "target",
            ["--label-column target: no such column", "row 1", "'a', 'b', 'c', 'label'"],
        ),
        (
            csv_text(None, 3),
            "label",
            ["--label-column label needs a header row", "first row (row 1) is numbers"],
        ),
        (
            csv_text(["a", "y", "b", "y"], 3),
            "y",
            ["--label-column y", "names 2 columns so (columns 2, 4)"],
        ),
        (
            "a,b,label\n1,2,0\n3,x,1\n",
            None,
            ["row 3, column 2 ('b') is 'x', not a number", "expected rows of numbers"],
        ),
        ("1,2,0\n,4,1\n", None, ["row 2, column 1 is empty", "expected rows of numbers"]),
        (
            "a,b,label\n1,2,0\n3,4,1\n5,6\n",
            None,
            ["row 4 has 2 columns, the header 3", "expected rows of numbers"],
        ),
        ("1,2,0\n3,4,1,7\n", None, ["row 2 has 4 columns, row 1 3"]),
        ("1,2,0\n3\n", None, ["row 2 has 1 column, row 1 3"]),
        ("a,b,label\n", None, ["a header row and no data"]),
        ("1\n2\n", None, ["row 1 has 1 column; expected at least 2"]),
        ("\n\n", None, ["the file is empty"]),
    ],
    ids=[
        "unknown-name",
        "no-header",
        "name-twice",
        "text-cell",
        "empty-cell",
        "short-row",
        "long-row",
        "one-cell-row",
        "header-only",
        "one-column",
        "empty",
    ],
)
def test_csv_errors_name_the_file_the_row_and_what_was_expected(
    tmp_path, capsys, content, label_column, messages
):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(DataError) as error:
        load_file(path, label_column)
    assert str(error.value).startswith(f"--data {path}: ")
    for message in messages:
        assert message in str(error.value)
    flags = [] if label_column is None else ["--label-column", label_column]
    assert main([*ONE_PROCESS, "--data", str(path), *flags, "--out", str(tmp_path / "o")]) == 2
    assert messages[0] in capsys.readouterr().err


def test_label_column_needs_a_csv(tmp_path, capsys):
    npz = tmp_path / "d.npz"
    np.savez(npz, features=np.zeros((12, 2)), labels=np.arange(12) % 2)
    with pytest.raises(DataError, match="--label-column y names a column of a CSV"):
        load_file(npz, "y")
    assert main([*ONE_PROCESS, "--label-column", "y", "--out", str(tmp_path / "o")]) == 2
    assert "--label-column y names a column of the --data CSV" in capsys.readouterr().err
    assert parse_args(["--label-column", "digit"]).label_column == "digit"
    assert parse_args([]).label_column is None


# --- the report: its summary, its born-dead table, its plots' legends --------------------


def summary_of(report_md: str) -> list[str]:
    """The lines of report.md's opening summary, which must come right after its title."""
    assert report_md.startswith("# Dying ReLU study\n\n## Summary\n\n")
    block = report_md.split("## Summary\n\n", 1)[1].split("\n\n", 1)[0]
    return block.splitlines()


def numbers_by_name(line: str, unit: str) -> dict[str, float]:
    """``{"ReLU": 19.0, ...}`` from "ReLU 19.0% vs LeakyReLU 0.0%, ..." (unit "%" or "")."""
    names = "|".join(sorted(ACTIVATIONS, key=len, reverse=True))
    return {n: float(v) for n, v in re.findall(rf"\b({names}) (\d+\.\d+){unit}", line)}


def cell_mean(results: dict, activation: str, scenarios: set[str], key: str) -> float:
    values = [
        c[key]
        for c in results["cells"]
        if c["activation"] == activation and c["scenario"] in scenarios
    ]
    return sum(values) / len(values)


def check_smooth_line(line: str, results: dict) -> None:
    """The summary's GELU and SiLU line against the cells: per killing scenario and network,
    ReLU's, GELU's and SiLU's dead / tau-dormant / accuracy, and how often each smooth
    activation ended with fewer, as many or more dead units than ReLU."""
    cells = {(c["architecture"], c["scenario"], c["activation"]): c for c in results["cells"]}
    assert line.startswith("- GELU and SiLU against ReLU under `high_lr` and `negative_bias`: ")
    numbers = line.split(" (dead / tau-dormant at the end / test accuracy: ", 1)[1]
    triple = r"(\d+\.\d)% / (\d+\.\d)% / (\d\.\d{3})"
    shown = {}
    for scenario, networks in re.findall(r"`(\w+)`: (.*?)(?=; `|\)\.$)", numbers):
        for name, values in re.findall(r"(MLP|CNN) (.*?)(?=; |$)", networks):
            for activation, *value in re.findall(rf"(ReLU|GELU|SiLU) {triple}", values):
                shown[(name.lower(), scenario, activation)] = [float(v) for v in value]
    expected = {
        (arch, scenario, activation)
        for arch in ARCHITECTURES
        for scenario in ("high_lr", "negative_bias")
        for activation in ("ReLU", "GELU", "SiLU")
    }
    assert set(shown) == expected, line
    for key, (dead, tau_dormant, accuracy) in shown.items():
        cell = cells[key]
        assert dead == pytest.approx(100 * cell["dead_fraction_mean"], abs=0.051)
        assert tau_dormant == pytest.approx(100 * cell["tau_dormant_fraction_mean"], abs=0.051)
        assert accuracy == pytest.approx(cell["test_accuracy_mean"], abs=5.1e-4)
    for smooth in ("GELU", "SiLU"):
        verdict = {"fewer": 0, "as many": 0, "more": 0}
        for arch, scenario, activation in expected:
            if activation == smooth:
                mine = cells[(arch, scenario, smooth)]["dead_fraction_mean"]
                relu = cells[(arch, scenario, "ReLU")]["dead_fraction_mean"]
                verdict["fewer" if mine < relu else "as many" if mine == relu else "more"] += 1
        words = [f"fewer dead units than ReLU in {verdict['fewer']} of 4"]
        words += [f"{word} in {n}" for word, n in verdict.items() if word != "fewer" and n]
        assert f"{smooth}: {', '.join(words)}" in line


def test_report_opens_with_a_five_line_summary_of_the_run(study):
    out, results = study
    lines = summary_of((out / "report.md").read_text())
    assert len(lines) == 5 and all(line.startswith("- ") for line in lines)
    dead, accuracy, smooth, born, revived = lines

    worst = max(results["cells"], key=lambda c: c["dead_fraction_mean"])
    assert worst["dead_fraction_mean"] > 0  # negative_bias kills ReLU units
    most_lost = dead.split("; the most: ")[1]
    assert most_lost.startswith(f"{worst['activation']}, ")
    assert f"{100 * worst['dead_fraction_mean']:.1f}% of the " in most_lost
    assert f"`{worst['scenario']}`" in most_lost

    # the scenarios every activation trains in: the comparison's cells
    shared = {s.name for s in scenarios(Settings()) if set(s.activations) == set(ACTIVATIONS)}
    assert shared == {"baseline", "high_lr", "negative_bias"}
    for line, key, scale, unit in (
        (dead, "dead_fraction_mean", 100, "%"),
        (accuracy, "test_accuracy_mean", 1, ""),
    ):
        shown = numbers_by_name(line, unit)
        assert set(shown) == set(ACTIVATIONS), line
        for activation, value in shown.items():
            expected = scale * cell_mean(results, activation, shared, key)
            assert value == pytest.approx(expected, abs=0.51 * 10 ** -(3 if scale == 1 else 1))
    names = "|".join(sorted(ACTIVATIONS, key=len, reverse=True))
    tau_dormant = dict(re.findall(rf"\b({names}) \d+\.\d% \((\d+\.\d)%\)", dead))
    assert set(tau_dormant) == set(ACTIVATIONS), dead
    for activation, value in tau_dormant.items():
        expected = 100 * cell_mean(results, activation, shared, "tau_dormant_fraction_mean")
        assert float(value) == pytest.approx(expected, abs=0.051)

    check_smooth_line(smooth, results)

    config = results["config"]["born_dead"]
    width, depth = min(config["widths"]), max(config["depths"])
    assert f"ReLU nets of width {width} and depth {depth}: " in born
    estimates = {
        e["inputs"]: e
        for e in results["born_dead"]
        if (e["activation"], e["width"], e["depth"]) == ("ReLU", width, depth)
    }
    shown = re.findall(r"(\d+\.\d)% of ([\d,]+) (at one input point|on the data)", born)
    assert len(shown) == 2
    for value, trials, inputs in shown:
        e = estimates["one point" if inputs == "at one input point" else "data"]
        assert float(value) == pytest.approx(100 * e["probability"], abs=0.051)
        assert int(trials.replace(",", "")) == config["trials"]
    variants = 4 * len(config["depths"]) * 2  # 4 variants, the narrowest width, 2 input sets
    assert f"the variants: 0 of {variants * (config['trials'] // 4):,} networks" in born

    cells = {(c["architecture"], c["scenario"], c["activation"]): c for c in results["cells"]}
    percent, accuracy_ = r"(\d+\.\d)%", r"(\d\.\d{3})"
    pattern = (
        rf"(MLP|CNN) dead at the end {percent} -> {percent}, "
        rf"test accuracy {accuracy_} -> {accuracy_}"
    )
    shown = re.findall(pattern, revived)
    assert [name for name, *_ in shown] == ["MLP", "CNN"]
    for name, dead_without, dead_with, accuracy_without, accuracy_with in shown:
        without = cells[(name.lower(), "high_lr", "ReLU")]
        with_ = cells[(name.lower(), "remedy_revive", "ReLU")]
        assert float(dead_without) == pytest.approx(100 * without["dead_fraction_mean"], abs=0.051)
        assert float(dead_with) == pytest.approx(100 * with_["dead_fraction_mean"], abs=0.051)
        assert float(accuracy_without) == pytest.approx(without["test_accuracy_mean"], abs=5.1e-4)
        assert float(accuracy_with) == pytest.approx(with_["test_accuracy_mean"], abs=5.1e-4)


def test_summary_says_only_what_ran():
    """A run of the born-dead part alone: one summary line, on born-dead ReLU nets."""
    estimates = [
        {"activation": "ReLU", "width": w, "depth": d, "inputs": "one point", "trials": 10}
        | {"probability": p}
        for w, d, p in ((2, 5, 0.4), (2, 9, 0.8), (3, 9, 0.3))
    ]
    lines = report.summary_lines({"cells": [], "born_dead": estimates})
    assert lines == [
        "Born dead at initialisation: ReLU nets of width 2 and depth 9: "
        "80.0% of 10 at one input point."
    ]


# --- the report's words: one seed has no spread, one of a thing is singular ---------------


def hand_made_cell(seeds: int, units: int = 8, epochs: int = 2) -> dict:
    """A cell as training.Cell.summary writes one, with values exact in binary."""
    return {
        "architecture": "mlp",
        "scenario": "high_lr",
        "activation": "ReLU",
        "seeds": seeds,
        "units": units,
        "test_accuracy_mean": 0.875,
        "test_accuracy_std": 0.0 if seeds == 1 else 0.03125,
        "dead_fraction_mean": 0.25,
        "dead_fraction_std": 0.0 if seeds == 1 else 0.125,
        "dormant_fraction_mean": 0.5,
        "tau_dormant_fraction_mean": 0.75,
        "tau_dormant_fraction_std": 0.0 if seeds == 1 else 0.0625,
        "active_rate_mean": 0.375,
        "dead_fraction_per_epoch": [0.25] * epochs,
        "tau_dormant_fraction_per_epoch": [0.75] * epochs,
        "layer_dead_fraction": [0.25],
        "layer_tau_dormant_fraction": [0.75],
        "revived_per_epoch": [0.0] * epochs,
        "revive_warnings": {},
    }


def hand_made_results(seeds: int, count: int = 2, revive_every: int = 3, **data) -> dict:
    """Results of one MLP with every count of the settings (layers, units, epochs, seeds)
    ``count``, save the seeds; its high_lr and remedy_revive ReLU cells."""
    settings = Settings(
        width=count,
        depth=count,
        epochs=count,
        seeds=seeds,
        revive_every=revive_every,
        architectures=("mlp",),
    )
    revived = {**hand_made_cell(seeds, count, count), "scenario": "remedy_revive"}
    return {
        "config": dataclasses.asdict(settings),
        "data": {"name": "hand", "train": 3, "test": 1, "features": 1, "classes": 2} | data,
        "scenarios": [],
        "cells": [hand_made_cell(seeds, count, count), revived],
        "born_dead": [],
        "selu_check": {},
    }


@pytest.mark.parametrize(
    "seeds,accuracy,dead,tau_dormant,networks",
    [
        (
            1,
            "0.875",
            "25.0%",
            "75.0%",
            "one seed per cell: each value is one run's, with no spread",
        ),
        (
            3,
            "0.875 ± 0.031",
            "25.0% ± 12.5%",
            "75.0% ± 6.2%",
            "mean ± standard deviation over seeds",
        ),
    ],
    ids=["one-seed", "three-seeds"],
)
def test_one_seed_shows_its_value_without_a_spread(
    tmp_path, seeds, accuracy, dead, tau_dormant, networks
):
    """One seed has no spread: the tables (Markdown and printed) and report.md give the
    value alone, not "± 0.000"; several seeds, the mean ± the standard deviation."""
    results = hand_made_results(seeds)
    summary = ("MLP", "high_lr", "ReLU", accuracy, dead, tau_dormant, "50.0%", "37.5%")
    assert report.summary_rows(results)[0] == summary
    assert report.revive_rows(results)[0] == ("MLP", "no", accuracy, dead, "25.0%", "")
    markdown = report.summary_table(results).splitlines()[2]
    assert markdown == (
        f"| MLP | high_lr | ReLU | {accuracy} | {dead} | {tau_dormant} | 50.0% | 37.5% |"
    )
    printed = report.text_table(results).splitlines()[2]  # below the header and its rule
    assert printed.split() == " ".join(summary).split()
    assert f"Networks (Adam, batch 64; {networks}):" in report.header_section(results)
    report.write_markdown(results, tmp_path)
    text = (tmp_path / "report.md").read_text()
    assert ("±" in text) == (seeds > 1)


@pytest.mark.parametrize(
    "counts,expected",
    [
        pytest.param(
            {"seeds": 1, "count": 1, "revive_every": 1, "train": 1, "test": 1, "features": 1},
            {
                "networks": "- MLP: 1 hidden layer of 1 unit; 1 epoch, 1 seed per cell.",
                "data": "hand: 1 training sample and 1 test sample,\n1 feature, 2 classes.",
                "column": "dead units (last epoch)",
                "revived": "0.0 (of 1 unit)",
                "printed": "without and with torch_ext.revive every epoch:",
                "section": "every epoch (MLP: not once in its 1 epoch; never after",
            },
            id="one",
        ),
        pytest.param(
            {"seeds": 4, "count": 7, "revive_every": 3, "train": 1347, "test": 2, "features": 8},
            {
                "networks": "- MLP: 7 hidden layers of 7 units; 7 epochs, 4 seeds per cell.",
                "data": "hand: 1,347 training samples and 2 test samples,\n8 features, 2 classes.",
                "column": "dead units (last 3 epochs)",
                "revived": "0.0 (of 7 units)",
                "printed": "without and with torch_ext.revive every 3 epochs:",
                "section": "every 3 epochs (MLP: after epochs 3, 6; never after",
            },
            id="several",
        ),
    ],
)
def test_report_counts_take_the_singular_for_one(counts, expected):
    """ "1 seed", "1 test sample", "every epoch"; not "1 seeds", "1 samples", "every 1
    epochs": in report.md's sentences, its revive table and the printed one."""
    results = hand_made_results(**counts)
    assert report.networks_text(results) == expected["networks"]
    assert report.data_text(results) == expected["data"]
    assert report.revive_columns(results)[4] == expected["column"]
    assert report.revive_rows(results)[1][5] == expected["revived"]
    assert report.revive_text(results).splitlines()[0].endswith(expected["printed"])
    assert expected["section"] in report.revive_section(results)


@pytest.mark.parametrize("every,text", [(1, "after every epoch"), (3, "after every 3 epochs")])
def test_remedy_revive_says_how_often_in_words(every, text):
    remedy = {s.name: s for s in scenarios(Settings(revive_every=every))}["remedy_revive"]
    assert remedy.description.endswith(f"optimizer) {text}")


@pytest.mark.parametrize(
    "trials,variants",
    [(1, "the variants: 0 of 1 network."), (3, "the variants: 0 of 3 networks.")],
)
def test_born_dead_counts_networks_in_the_singular_for_one(trials, variants):
    estimates = [
        {"activation": a, "width": 2, "depth": 3, "inputs": "one point", "trials": trials}
        | {"probability": p, "standard_error": 0.0}
        for a, p in (("ReLU", 0.5), ("ELU", 0.0))
    ]
    results = {"cells": [], "born_dead": estimates}
    assert report.summary_lines(results)[0].endswith(f"of {trials} at one input point; {variants}")
    never = variants.removeprefix("the variants: ").removesuffix(".")
    assert report.variants_born_dead_row(results)[3] == f"never: {never}"


def born_dead_rows(report_md: str) -> list[list[str]]:
    """The cells of the born-dead table's rows, below its header and separator."""
    section = report_md.split("## Born dead at initialisation\n", 1)[1].split("\n## ")[0]
    table = [line for line in section.splitlines() if line.startswith("|")]
    assert table[1].startswith("|---")
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in table[2:]]


def test_born_dead_table_has_a_row_per_relu_setting_and_one_for_the_variants(study):
    out, results = study
    rows = born_dead_rows((out / "report.md").read_text())
    config = results["config"]["born_dead"]
    relu = [row for row in rows if row[0] == "ReLU"]
    variants = [row for row in rows if row[0] != "ReLU"]
    settings = [(w, d) for w in config["widths"] for d in config["depths"]]
    assert [(int(row[1]), int(row[2])) for row in relu] == settings  # sorted, each once
    estimates = {
        (e["width"], e["depth"], e["inputs"]): e
        for e in results["born_dead"]
        if e["activation"] == "ReLU"
    }
    for _, width, depth, one_point, analytic, data, trials in relu:
        for shown, inputs in ((one_point, "one point"), (data, "data")):
            e = estimates[(int(width), int(depth), inputs)]
            assert shown == f"{e['probability']:.3f} ± {e['standard_error']:.3f}"
        exact = born_dead.analytic_single_point(int(width), int(depth))
        assert float(analytic) == pytest.approx(exact, abs=5.1e-4)
        assert trials == f"{config['trials']:,}"

    assert len(variants) == 1
    names, width, depths, one_point, analytic, data, trials = variants[0]
    assert names == "LeakyReLU, PReLU, ELU, SELU"
    assert width == str(min(config["widths"]))
    assert depths == ", ".join(map(str, config["depths"]))
    drawn = 4 * len(config["depths"]) * (config["trials"] // 4)
    assert one_point == data == f"never: 0 of {drawn:,} networks" and analytic == ""
    assert trials == f"{config['trials'] // 4:,}"


def overlap_area(a: Bbox, b: Bbox) -> float:
    width = min(a.x1, b.x1) - max(a.x0, b.x0)
    height = min(a.y1, b.y1) - max(a.y0, b.y0)
    return max(width, 0) * max(height, 0)


def test_plot_legends_cover_no_axes(study, tmp_path: Path, monkeypatch):
    """Every legend of every plot lies outside every panel (its data area)."""
    _, results = study
    close = report.plt.close
    figures = []
    monkeypatch.setattr(report.plt, "close", figures.append)  # keep them to measure
    try:
        report.plot_training(results, tmp_path)
        report.plot_born_dead(results, tmp_path)
        report.plot_selu(results, tmp_path)
        assert len(figures) == len(report.PLOTS)
        legends = 0
        for figure in figures:  # drawn by save: the extents are the ones written
            for legend in [*figure.legends, *(ax.get_legend() for ax in figure.axes)]:
                if legend is None:
                    continue
                legends += 1
                box = legend.get_window_extent()
                for ax in figure.axes:
                    assert overlap_area(box, ax.get_window_extent()) < 1, figure.texts
        assert legends == len(report.PLOTS) + 1  # revive.png: one per panel
    finally:
        for figure in figures:
            close(figure)


@pytest.mark.parametrize("module,name", [("matplotlib", "matplotlib"), ("sklearn", "scikit-learn")])
def test_without_the_study_extra_one_line_says_what_to_install(module, name):
    """A plain wheel has no matplotlib or scikit-learn: the study says in one line what to
    install instead of a traceback (the module is hidden from the child's imports)."""
    code = (
        "import sys, importlib.util\n"
        f"real = importlib.util.find_spec\n"
        f"importlib.util.find_spec = lambda n, *a: None if n == {module!r} else real(n, *a)\n"
        "from torch_ext.study.__main__ import main\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"torch-ext-study needs {name}, which the plain package leaves out: "
        "pip install 'torch_ext[study]'"
    ]


def test_no_progress_prints_a_line_per_quarter_of_each_stage(capsys):
    """--no-progress is not silence: a log shows each stage start, its quarters and end."""
    lines = progress_bar(False)
    assert list(lines(iter(range(8)), total=8, desc="training", unit="net")) == list(range(8))
    printed = capsys.readouterr().out.splitlines()
    assert [line.split(" (")[0] for line in printed] == [
        f"torch-ext-study: training: {done}/8 nets" for done in (0, 2, 4, 6, 8)
    ]
