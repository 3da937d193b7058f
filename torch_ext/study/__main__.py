"""Command line of the dying-ReLU study (an MLP and a BatchNorm CNN per activation).

python -m torch_ext.study                 # everything, about 2 minutes on 2 cores
python -m torch_ext.study --quick         # a smaller run, under a minute
python -m torch_ext.study --full          # more seeds and epochs
python -m torch_ext.study born-dead       # only the born-dead estimate
python -m torch_ext.study --data my.csv   # the training study on your data
python -m torch_ext.study --data my.csv --label-column digit   # its labels: column 'digit'
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import sys
import time
import warnings
from pathlib import Path

import torch

# The study's extra (pip install "torch_ext[study]"): a plain wheel lacks it, and the
# console script would otherwise die in a traceback (matplotlib, on its first import) or
# halfway (scikit-learn, when it loads the digits).
STUDY_EXTRA = {"matplotlib": "matplotlib", "sklearn": "scikit-learn", "tqdm": "tqdm"}
_MISSING = [
    name for module, name in STUDY_EXTRA.items() if importlib.util.find_spec(module) is None
]
if _MISSING:
    sys.exit(
        f"torch-ext-study needs {', '.join(_MISSING)}, which the plain package leaves out: "
        "pip install 'torch_ext[study]'"
    )

from . import born_dead, report, selu_check  # noqa: E402 (after the check above)
from .activations import RELU_FAMILY  # noqa: E402
from .data import MIN_IMAGE_SIDE, DataError, Dataset, dataset  # noqa: E402
from .parallel import Workers, one_thread, usable_cores  # noqa: E402
from .training import Settings, run_study, scenarios  # noqa: E402
from .wording import count  # noqa: E402

PARTS = ("train", "born-dead", "selu-check")
# The born-dead estimate's variants: the ReLU family's. GELU and SiLU output an exact 0 only
# where their float64 value rounds to 0 (GELU's below about -8.4), which says nothing of
# the gradient rule the monitor counts them by.
BORN_DEAD_VARIANTS = [a for a in RELU_FAMILY if a != "ReLU"]


def progress_bar(enabled: bool):
    """tqdm's bars, or with --no-progress a line per quarter of each stage (a log, as CI's,
    says what the run is doing rather than nothing for a minute)."""
    if not enabled:
        return progress_lines
    from tqdm.auto import tqdm

    return lambda items, **kwargs: tqdm(items, leave=False, **kwargs)


def progress_lines(items, total: int | None = None, desc: str = "", unit: str = "item"):
    """`items`, printing ``torch-ext-study: <desc>: <done>/<total> <unit>s (<s> s)`` as the
    stage starts, at each quarter and at its end."""
    total = len(items) if total is None else total
    start, marks = time.time(), {total * q // 4 for q in range(1, 5)}

    def say(done: int) -> None:
        print(
            f"torch-ext-study: {desc}: {done}/{total} {unit}s ({time.time() - start:.0f} s)",
            flush=True,
        )

    say(0)
    for done, item in enumerate(items, 1):
        yield item
        if done in marks:
            say(done)


def positive_int(text: str) -> int:
    """argparse's type of every count option (--seeds, --epochs, --workers), so each is
    refused the same way: by argparse, naming the option, exit status 2. Below 1 there is
    nothing to train: the run would fail at its end (no runs to summarise), or 0 would pass
    for "not given"."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def tau_value(text: str) -> float:
    """argparse's type of --tau: a number >= 0 (0 counts only units that output exactly
    0)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number >= 0, got {text!r}") from None
    if not value >= 0 or value == float("inf"):  # NaN fails the first test
        raise argparse.ArgumentTypeError(f"must be a number >= 0, got {text}")
    return value


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    cores = usable_cores()
    parser = argparse.ArgumentParser(
        prog="torch-ext-study",
        description="Make ReLU units die on real data and watch the "
        "variants survive; writes a report folder with tables and plots.",
    )
    parser.add_argument(
        "part",
        nargs="?",
        choices=("all", *PARTS),
        default="all",
        help="which part to run (default: all)",
    )
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="1 seed, fewer epochs and trials")
    size.add_argument("--full", action="store_true", help="more seeds, epochs and trials")
    parser.add_argument(
        "--data",
        type=Path,
        help="CSV (label in the last column, or the one --label-column names; a first "
        "row with text in it is a header, skipped) or .npz (arrays features, labels) to "
        "train on instead of the digits",
    )
    parser.add_argument(
        "--label-column",
        metavar="NAME",
        help="the --data CSV's label column, by its name in the header row "
        "(default: the last column)",
    )
    parser.add_argument("--out", type=Path, help="report folder (default: reports/study-<time>)")
    parser.add_argument("--seeds", type=positive_int, help="seeds per cell")
    parser.add_argument("--epochs", type=positive_int, help="training epochs")
    parser.add_argument(
        "--workers",
        type=positive_int,
        default=cores,
        help="networks trained at once, one process and core each (default: the usable "
        "cores, %(default)s here)",
    )
    parser.add_argument(
        "--tau",
        type=tau_value,
        default=Settings.tau,
        help="ReDo's dormancy threshold (Sokar et al. 2023): a unit whose mean |output| over "
        "an epoch is at most TAU times its layer's mean is reported tau-dormant "
        "(default: %(default)s)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    if args.workers > cores:  # as torch's DataLoader says of num_workers
        warnings.warn(
            f"--workers {args.workers} starts more processes than the "
            f"{count(cores, 'usable core')}: each trains one network on one thread and holds "
            "its own torch (~300 MB), so the extra ones only share the cores",
            stacklevel=2,
        )
    return args


def settings_for(args: argparse.Namespace, data: Dataset) -> tuple[Settings, dict, dict[str, str]]:
    """The training settings, the born-dead estimate's sizes, and the architectures left out
    (``{name: why}``)."""
    settings = Settings(tau=args.tau)
    born = {
        "widths": [2, 3, 4, 6],
        "depths": [2, 5, 10, 20, 50],
        "trials": 4000,
        "data_inputs": 256,
    }
    if args.quick:
        settings = dataclasses.replace(settings, seeds=1, epochs=8, cnn_seeds=1, cnn_epochs=6)
        born = {"widths": [2, 4], "depths": [2, 10, 30], "trials": 400, "data_inputs": 64}
    if args.full:
        settings = dataclasses.replace(settings, seeds=20, epochs=60, cnn_seeds=5, cnn_epochs=30)
        born = {**born, "trials": 20000}
    if args.seeds is not None:
        settings = dataclasses.replace(settings, seeds=args.seeds, cnn_seeds=args.seeds)
    if args.epochs is not None:
        settings = dataclasses.replace(settings, epochs=args.epochs, cnn_epochs=args.epochs)
    left_out = {}
    if data.image_side is None:  # a table, not images: the MLP alone
        left_out["cnn"] = (
            f"{data.features} features are not a square one-channel image of at "
            f"least {MIN_IMAGE_SIDE}x{MIN_IMAGE_SIDE} pixels"
        )
        settings = dataclasses.replace(
            settings, architectures=tuple(a for a in settings.architectures if a not in left_out)
        )
    return settings, born, left_out


def run_born_dead(data: Dataset, born: dict, progress, workers: Workers | int = 1) -> list[dict]:
    one_point = data.x_train[:1]
    inputs = {"one point": one_point, "data": data.x_train[: born["data_inputs"]]}
    jobs = []
    for name, x in inputs.items():
        jobs += born_dead.cells(x, name, born["widths"], born["depths"], born["trials"], ["ReLU"])
        jobs += born_dead.cells(
            x,
            name,
            born["widths"][:1],
            born["depths"],
            born["trials"] // 4,
            BORN_DEAD_VARIANTS,
        )
    estimates = born_dead.estimate(jobs, workers, progress)
    rows = []
    for e in estimates:
        row = {**dataclasses.asdict(e), "standard_error": e.standard_error}
        if e.activation == "ReLU" and e.inputs == "one point":
            row["analytic"] = born_dead.analytic_single_point(e.width, e.depth)
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        data = dataset(args.data, args.label_column)
    except DataError as error:
        print(f"torch-ext-study: {error}", file=sys.stderr)
        return 2
    settings, born, left_out = settings_for(args, data)
    progress = progress_bar(not args.no_progress)
    out = args.out or Path("reports") / time.strftime("study-%Y%m%d-%H%M%S")
    parts = PARTS if args.part == "all" else (args.part,)
    torch.manual_seed(0)
    # The networks are tiny: a second intra-op thread gains little, and when another process
    # holds a core, OpenMP's waiting threads made epochs 30-70x slower (measured, 2 cores).
    # Several networks train at once instead, a process each (--workers).
    try:
        with one_thread(), Workers(args.workers) as workers:
            results = run_parts(data, settings, born, left_out, parts, progress, workers)
    except KeyboardInterrupt:  # the workers are stopped already
        print("torch-ext-study: interrupted; no report written", file=sys.stderr)
        return 130
    report.write(results, out)

    if results["cells"]:
        print(report.text_table(results))
        print()
        print(report.revive_text(results))
    print(f"\nreport: {out.resolve()}  ({results['seconds']:.0f} s)")
    return 0


def run_parts(
    data: Dataset,
    settings: Settings,
    born: dict,
    left_out: dict[str, str],
    parts: tuple[str, ...],
    progress,
    workers: Workers | int = 1,
) -> dict:
    """Runs the parts; their results, as results.json holds them."""
    start = time.time()

    results: dict = {
        "config": {
            **dataclasses.asdict(settings),
            "optimizer": "Adam",
            "selu_width": 128,
            "born_dead": born,
            "parts": list(parts),
            "workers": workers.count if isinstance(workers, Workers) else workers,
        },
        "architectures_left_out": left_out,
        "data": {
            "name": data.name,
            "train": len(data.x_train),
            "test": len(data.x_test),
            "features": data.features,
            "classes": data.classes,
        },
        "scenarios": [dataclasses.asdict(s) for s in scenarios(settings)],
        "cells": [],
        "born_dead": [],
        "selu_check": {},
    }
    if "train" in parts:
        results["cells"] = [c.summary() for c in run_study(data, settings, progress, workers)]
    if "born-dead" in parts:
        results["born_dead"] = run_born_dead(data, born, progress, workers)
    if "selu-check" in parts:
        results["selu_check"] = {
            name: selu_check.layer_moments(data.x_train, name) for name in selu_check.ACTIVATIONS
        }
    results["seconds"] = time.time() - start
    return results


if __name__ == "__main__":
    sys.exit(main())
