"""torch_ext.integrations.lightning.DeadNeuronCallback in real Lightning Trainers on the CPU:
units dead by construction are logged at exactly their fraction every window, a checkpoint
resume restores the monitor's state, and under a DDP strategy (2 processes, gloo) the ranks
agree on counts summed over both."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pl = pytest.importorskip("lightning.pytorch")

from torch_ext.integrations.lightning import DeadNeuronCallback  # noqa: E402

KILLED = [0, 3, 5]  # of the 8 hidden units
WIDTH = 8
BATCH = 4
LAYER = "net.1"


class Tiny(pl.LightningModule):
    """Linear -> ReLU -> Linear whose KILLED hidden units never fire: bias -1e3, weights 0,
    so ``z = -1000`` on every sample and no gradient ever reaches them; the others, biased
    +3, fire on most samples."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = torch.nn.Sequential(
            torch.nn.Linear(4, WIDTH), torch.nn.ReLU(), torch.nn.Linear(WIDTH, 1)
        )
        with torch.no_grad():
            self.net[0].bias.fill_(3.0)  # the others active on (nearly) every sample
            self.net[0].bias[KILLED] = -1e3
            self.net[0].weight[KILLED] = 0.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch: list[torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        return torch.nn.functional.mse_loss(self(x), y)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.05)


def loader(samples: int = 64) -> torch.utils.data.DataLoader:
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(samples, 4, generator=generator)
    data = torch.utils.data.TensorDataset(x, x.sum(1, keepdim=True))
    return torch.utils.data.DataLoader(data, batch_size=BATCH)


class Recorder(pl.loggers.Logger):
    """A logger that keeps what it is given."""

    def __init__(self) -> None:
        super().__init__()
        self.logged: list[tuple[int, dict[str, float]]] = []

    @property
    def name(self) -> str:
        return "recorder"

    @property
    def version(self) -> int:
        return 0

    def log_hyperparams(self, params, *args, **kwargs) -> None:
        pass

    def log_metrics(self, metrics, step=None) -> None:
        self.logged.append((step, dict(metrics)))


def trainer(max_steps: int, callback: DeadNeuronCallback, **kwargs) -> pl.Trainer:
    options = dict(
        max_steps=max_steps,
        accelerator="cpu",
        devices=1,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        logger=False,
        callbacks=[callback],
    )
    return pl.Trainer(**{**options, **kwargs})


def monitor_metrics(logged: list[tuple[int, dict[str, float]]]) -> list[tuple[int, dict]]:
    return [
        (step, metrics)
        for step, metrics in logged
        if any(name.startswith("dead_neurons/") for name in metrics)
    ]


def test_logs_the_killed_fraction_every_window():
    logger = Recorder()
    callback = DeadNeuronCallback(window=2, warn_dead_fraction=0.25)
    module = Tiny()
    with pytest.warns(UserWarning, match=f"'{LAYER}'.*3 of 8 units dead"):
        trainer(6, callback, logger=logger).fit(module, loader())
    logged = monitor_metrics(logger.logged)
    assert [step for step, _ in logged] == [2, 4, 6]
    for _, metrics in logged:
        assert metrics[f"dead_neurons/{LAYER}/dead_fraction"] == len(KILLED) / WIDTH
        assert metrics["dead_neurons/dead_fraction"] == len(KILLED) / WIDTH
        # dormant >= dead: the killed units are never active either
        assert metrics[f"dead_neurons/{LAYER}/dormant_fraction"] >= len(KILLED) / WIDTH
    history = callback.monitor.history
    assert len(history) == 3
    assert all(report.layers[LAYER].dead_units == KILLED for report in history)
    assert all(report.layers[LAYER].samples == 2 * BATCH for report in history)
    # Detached at teardown: a training forward now counts nothing (the open window stays
    # empty, so the report is still the last closed window).
    module.train()(torch.randn(3, 4))
    assert callback.monitor.report(collective=False) == history[-1]


def test_no_warning_below_the_level(recwarn):
    callback = DeadNeuronCallback(window=2, warn_dead_fraction=0.5)
    trainer(2, callback).fit(Tiny(), loader())
    assert not [w for w in recwarn if "units dead" in str(w.message)]


def state_of(monitor) -> dict:
    """A monitor's state as comparable plain data."""
    state = monitor.state_dict()
    layers = {
        name: {**entry, "counts": None if entry["counts"] is None else entry["counts"].tolist()}
        for name, entry in state["layers"].items()
    }
    return {**state, "layers": layers}


def test_checkpoint_resume_restores_the_monitor(tmp_path):
    # 3 steps with window 2: one closed window and one step counted in the open one.
    first = DeadNeuronCallback(window=2)
    run = trainer(3, first)
    run.fit(Tiny(), loader())
    run.save_checkpoint(tmp_path / "three.ckpt")
    saved = state_of(first.monitor)
    assert saved["steps"] == 3 and saved["layers"][LAYER]["samples"] == BATCH

    # Resumed at its end: nothing trained, the state is the saved one.
    same = DeadNeuronCallback(window=2)
    trainer(3, same).fit(Tiny(), loader(), ckpt_path=tmp_path / "three.ckpt")
    assert state_of(same.monitor) == saved

    # Resumed and trained on: the open window holds the checkpoint's step and the new one.
    later = DeadNeuronCallback(window=2)
    trainer(4, later).fit(Tiny(), loader(), ckpt_path=tmp_path / "three.ckpt")
    second = later.monitor.history[1]
    assert (second.first_step, second.steps) == (2, 2)
    assert second.layers[LAYER].samples == 2 * BATCH
    assert later.monitor.history[0] == first.monitor.history[0]


def test_a_fresh_callback_on_a_checkpoint_without_its_state_starts_empty(tmp_path):
    run = trainer(2, pl.Callback())
    run.fit(Tiny(), loader())
    run.save_checkpoint(tmp_path / "plain.ckpt")
    callback = DeadNeuronCallback(window=2)
    trainer(4, callback).fit(Tiny(), loader(), ckpt_path=tmp_path / "plain.ckpt")
    assert len(callback.monitor.history) == 1  # steps 3 and 4 only


def test_revive_policy_is_called_after_each_window():
    calls = []

    def policy(model, monitor, optimizer):
        calls.append((type(model).__name__, monitor.history[-1].layers[LAYER].dead, optimizer))
        return len(calls)

    callback = DeadNeuronCallback(window=2, revive=policy)
    trainer(4, callback).fit(Tiny(), loader())
    assert [(name, dead) for name, dead, _ in calls] == [("Tiny", 3), ("Tiny", 3)]
    assert all(isinstance(opt, torch.optim.Optimizer) for *_, opt in calls)
    assert callback.last_revive == 2


def test_revive_true_revives_the_killed_units():
    callback = DeadNeuronCallback(window=2, revive=True, warn_dead_fraction=None)
    module = Tiny()
    trainer(4, callback).fit(module, loader())
    first, second = callback.monitor.history
    assert first.layers[LAYER].dead_units == KILLED
    assert second.layers[LAYER].dead == 0  # revived after the first window
    assert bool(module.net[0].weight[KILLED].ne(0).all())  # their rows drawn afresh
    assert callback.last_revive is None  # nothing dead after the second window


def test_submodule_is_watched():
    callback = DeadNeuronCallback(window=1, submodule="net")
    trainer(1, callback).fit(Tiny(), loader())
    assert list(callback.monitor.history[0].layers) == ["1"]


# --- DDP ------------------------------------------------------------------------------------
DDP_SCRIPT = """
import json, sys
from pathlib import Path
sys.path.insert(0, {tests!r})
import lightning.pytorch as pl, torch
from test_integrations_lightning import BATCH, Tiny, loader
from torch_ext.integrations.lightning import DeadNeuronCallback

out = Path({out!r})

class Dump(pl.Callback):
    # every rank: its own open-window counts, then the checkpoint state (collective)
    def on_train_end(self, trainer, pl_module):
        (dead,) = [c for c in trainer.callbacks if isinstance(c, DeadNeuronCallback)]
        monitor = dead.monitor
        local = monitor.report(collective=False).layers["net.1"]
        state = dead.state_dict()["monitor"]["layers"]["net.1"]
        record = dict(
            local=[local.samples, local.active_counts, local.alive_counts],
            saved=[state["samples"], state["counts"].tolist()],
            history=[r.to_dict() for r in monitor.history],
        )
        (out / f"rank{{trainer.global_rank}}.json").write_text(json.dumps(record))

if __name__ == "__main__":
    dead = DeadNeuronCallback(window=2)
    trainer = pl.Trainer(
        max_steps=3, accelerator="cpu", devices=2, strategy="ddp",
        logger=pl.loggers.CSVLogger(str(out), name="csv", version=0),
        enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False,
        callbacks=[dead, Dump()],
    )
    trainer.fit(Tiny(), loader())
"""


def test_ddp_ranks_sum_their_counts(tmp_path):
    script = tmp_path / "ddp.py"
    tests = str(Path(__file__).parent)
    script.write_text(DDP_SCRIPT.format(tests=tests, out=str(tmp_path)))
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-3000:]
    rank0, rank1 = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2))
    # The closed window: both ranks' batches, summed identically on both.
    assert rank0["history"] == rank1["history"]
    (window,) = rank0["history"]
    assert window["layers"]["net.1"]["samples"] == 2 * 2 * BATCH
    assert window["layers"]["net.1"]["dead_units"] == [0, 3, 5]
    # The open window (step 3) in the checkpoint state: the sum of the ranks' own counts.
    summed_samples = rank0["local"][0] + rank1["local"][0]
    summed = [[a + b for a, b in zip(rank0["local"][i], rank1["local"][i])] for i in (1, 2)]
    assert summed_samples == 2 * BATCH
    assert rank0["saved"] == rank1["saved"] == [summed_samples, summed]
    # Logged once, by rank zero, at the window's end.
    with open(tmp_path / "csv" / "version_0" / "metrics.csv") as f:
        rows = [row for row in csv.DictReader(f) if row.get("dead_neurons/net.1/dead_fraction")]
    assert [(row["step"], float(row["dead_neurons/net.1/dead_fraction"])) for row in rows] == [
        ("2", 3 / 8)
    ]


def test_readme_block_runs_in_a_fresh_interpreter(tmp_path):
    from test_readme import environment, run, section

    (block,) = [
        b for b in section("Training frameworks (Lightning, Hugging Face)") if "lightning" in b.code
    ]
    out = run([sys.executable, "-c", block.code], tmp_path, environment(tmp_path))
    assert "net.1" in out  # the summary names the watched ReLU
