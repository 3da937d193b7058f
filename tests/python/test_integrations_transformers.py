"""torch_ext.integrations.transformers.DeadNeuronCallback in a Hugging Face Trainer on the CPU,
training a tiny randomly initialised OPT (nothing downloaded): every decoder layer's ReLU
is found with the FFN width as its units, units dead by construction are logged at exactly
their fraction, and checkpoints carry the monitor's state into a resumed run. Also: importing
torch_ext never imports a training framework."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from helpers import tiny_opt as opt_model

BATCH, TOKENS, FFN = 2, 8, 32
KILLED = {0: list(range(0, FFN, 4)), 1: [3, 7, 11]}  # decoder layer -> dead FFN units


def layer_name(index: int) -> str:
    return f"model.decoder.layers.{index}.activation_fn"


def test_importing_torch_ext_imports_no_framework():
    code = (
        "import sys, torch_ext, torch_ext.integrations\n"
        "frameworks = ('lightning', 'pytorch_lightning', 'transformers', 'accelerate')\n"
        "print([name for name in frameworks if name in sys.modules])\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


@pytest.fixture
def hf():
    transformers = pytest.importorskip("transformers")
    pytest.importorskip("accelerate")  # the Trainer's
    return transformers


def tiny_opt(transformers) -> torch.nn.Module:
    """A 2-layer OPT whose KILLED FFN units never fire (fc1 rows 0, bias -1e3: z = -1000 on
    every token); the other units are biased +1, far above what their small weights add."""
    model = opt_model(transformers, ffn_dim=FFN, layers=2)
    with torch.no_grad():
        for index, killed in KILLED.items():
            fc1 = model.model.decoder.layers[index].fc1
            fc1.bias.fill_(1.0)
            fc1.bias[killed] = -1e3
            fc1.weight[killed] = 0.0
    return model


class Tokens(torch.utils.data.Dataset):
    def __init__(self, samples: int = 32) -> None:
        generator = torch.Generator().manual_seed(1)
        self.ids = torch.randint(2, 50, (samples, TOKENS), generator=generator)

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {"input_ids": self.ids[index], "labels": self.ids[index]}


def train(transformers, output_dir, callback, max_steps: int, resume=None, **args):
    options = dict(
        output_dir=str(output_dir),
        max_steps=max_steps,
        per_device_train_batch_size=BATCH,
        learning_rate=1e-3,
        use_cpu=True,
        report_to=[],
        logging_steps=1000,
        save_strategy="steps",
        save_steps=2,
        disable_tqdm=True,
    )
    trainer = transformers.Trainer(
        tiny_opt(transformers),
        args=transformers.TrainingArguments(**{**options, **args}),
        train_dataset=Tokens(),
        callbacks=[callback],
    )
    trainer.train(resume_from_checkpoint=resume)
    return trainer


def test_logs_the_killed_fractions_of_every_decoder_layer(hf, tmp_path, caplog):
    from torch_ext.integrations.transformers import DeadNeuronCallback

    callback = DeadNeuronCallback(window=2, warn_dead_fraction=0.2)
    with caplog.at_level("WARNING", logger="torch_ext.monitor"):
        trainer = train(hf, tmp_path, callback, max_steps=4)
    history = callback.monitor.history
    assert len(history) == 2
    for report in history:
        assert list(report.layers) == [layer_name(0), layer_name(1)]
        for index, killed in KILLED.items():
            layer = report.layers[layer_name(index)]
            assert layer.units == FFN  # units along the FFN width, not tokens
            assert layer.samples == 2 * BATCH * TOKENS  # every token of the window's steps
            assert layer.dead_units == killed
    logged = [entry for entry in trainer.state.log_history if "dead_neurons/dead_fraction" in entry]
    assert [entry["step"] for entry in logged] == [2, 4]
    for entry in logged:
        for index, killed in KILLED.items():
            assert entry[f"dead_neurons/{layer_name(index)}/dead_fraction"] == len(killed) / FFN
        total = sum(len(killed) for killed in KILLED.values()) / (2 * FFN)
        assert entry["dead_neurons/dead_fraction"] == total
    # Only layer 0 (8 of 32) passes 20%, warned once.
    warned = [r.getMessage() for r in caplog.records if "units dead" in r.getMessage()]
    assert len(warned) == 1 and f"'{layer_name(0)}'" in warned[0]


def test_checkpoints_carry_the_monitor_into_a_resumed_run(hf, tmp_path):
    from torch_ext.integrations.transformers import STATE_FILE, DeadNeuronCallback

    # Window 3, checkpoints every 2 steps: checkpoint-2 holds an open window of 2 steps.
    first = DeadNeuronCallback(window=3)
    train(hf, tmp_path, first, max_steps=4)
    saved = torch.load(tmp_path / "checkpoint-2" / STATE_FILE, weights_only=True)["monitor"]
    assert saved["steps"] == 2 and saved["history"] == []
    assert saved["layers"][layer_name(0)]["samples"] == 2 * BATCH * TOKENS
    final = torch.load(tmp_path / "checkpoint-4" / STATE_FILE, weights_only=True)["monitor"]
    assert json.dumps(final["history"]) == json.dumps(
        [report.to_dict() for report in first.monitor.history]
    )

    # Resumed from step 2: window 0 closes at step 3 with the 2 saved steps and 1 new one.
    resumed = DeadNeuronCallback(window=3)
    train(hf, tmp_path, resumed, max_steps=4, resume=str(tmp_path / "checkpoint-2"))
    (window,) = resumed.monitor.history
    (reference,) = first.monitor.history
    assert (window.first_step, window.steps) == (0, 3)
    for index, killed in KILLED.items():
        layer = window.layers[layer_name(index)]
        assert layer.samples == 3 * BATCH * TOKENS
        assert layer.dead_units == killed
        assert layer.samples == reference.layers[layer_name(index)].samples


def test_resume_without_the_state_file_starts_afresh(hf, tmp_path, caplog):
    from torch_ext.integrations.transformers import STATE_FILE, DeadNeuronCallback

    train(hf, tmp_path, DeadNeuronCallback(window=3), max_steps=2)
    (tmp_path / "checkpoint-2" / STATE_FILE).unlink()
    callback = DeadNeuronCallback(window=1)
    with caplog.at_level("WARNING", logger="torch_ext.monitor"):
        train(hf, tmp_path, callback, max_steps=3, resume=True)
    assert any("found no" in r.getMessage() for r in caplog.records)
    assert [r.first_step for r in callback.monitor.history] == [0]  # step 3 only, counted anew


def test_readme_block_runs_in_a_fresh_interpreter(hf, tmp_path):
    from test_readme import environment, run, section

    (block,) = [
        b
        for b in section("Training frameworks (Lightning, Hugging Face)")
        if "transformers" in b.code
    ]
    out = run([sys.executable, "-c", block.code], tmp_path, environment(tmp_path))
    assert "model.decoder.layers.1.activation_fn" in out and "dead_neurons/dead_fraction" in out


def test_tensorboard_gets_the_metrics_whatever_the_callback_order(hf, tmp_path):
    """callbacks=[cb] with report_to=["tensorboard"]: the Trainer puts its reporting
    callbacks first, which would write each log before the callback adds its metrics; the
    callback moves itself to the front, so the event files hold the dead-neuron scalars."""
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from torch_ext.integrations.transformers import DeadNeuronCallback

    callback = DeadNeuronCallback(window=2)
    trainer = train(hf, tmp_path, callback, max_steps=2, report_to=["tensorboard"])
    assert trainer.callback_handler.callbacks[0] is callback
    tags = set()
    for events in tmp_path.rglob("events.out.tfevents.*"):  # wherever this version writes
        accumulator = EventAccumulator(str(events))
        accumulator.Reload()
        tags |= set(accumulator.Tags()["scalars"])
    assert any(tag.endswith("dead_neurons/dead_fraction") for tag in tags), sorted(tags)
