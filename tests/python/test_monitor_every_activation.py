"""The monitor on the models people train now (tiny configs, random weights, nothing
downloaded): torchvision's ViT, ConvNeXt, EfficientNet-B0 (SiLU and Sigmoid) and
MobileNetV2 (ReLU6); Hugging Face's BERT (GELUActivation), GPT-2 (NewGELUActivation) and
Llama (SiLU). Units made dead or saturated by construction are reported exactly, and every
layer's counts and tau sums equal the test's own, computed by a hook from autograd's
derivative in float64; revive brings the killed units back in the next window."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import pytest
import torch

import torch_ext
from torch_ext import DeadNeuronMonitor

GRAD_EPS = 1e-3
TAU = 0.1


class OwnCounts:
    """The test's own per-unit statistics of every call of one activation module: samples
    with z > 0, samples with |f'(z)| > grad_eps (autograd of the module's own forward, in
    float64, called without hooks) and sum |f(z)|."""

    def __init__(self, module: torch.nn.Module, unit_dim: int) -> None:
        self.module, self.unit_dim = module, unit_dim
        self.active = self.alive = self.abs_sum = None
        self.handle = module.register_forward_pre_hook(self)

    def __call__(self, module, args):
        if not module.training:
            return
        z = args[0].detach().to(torch.float64).requires_grad_(True)
        forward = type(module).forward
        h = forward(module, z.clone())  # in-place modules (SiLU(inplace=True)) too
        (grad,) = torch.autograd.grad(h.sum(), z)
        dims = [d for d in range(z.dim()) if d != self.unit_dim % z.dim()]
        stats = [
            (z > 0).sum(dims),
            (grad.abs() > GRAD_EPS).sum(dims),
            h.detach().abs().sum(dims),
        ]
        if self.active is None:
            self.active, self.alive, self.abs_sum = stats
        else:
            self.active, self.alive, self.abs_sum = (
                a + b for a, b in zip((self.active, self.alive, self.abs_sum), stats)
            )

    def reset(self) -> None:
        self.active = self.alive = self.abs_sum = None


@dataclass
class Case:
    make: Callable[[], torch.nn.Module]
    kill: Callable[[torch.nn.Module], tuple[str, list[int]]]  # -> (layer, killed units)
    batch: Callable[[], tuple]
    loss: Callable[[torch.nn.Module, tuple], torch.Tensor]
    unit_dim: Callable[[str], int]  # of each monitored layer


def _kill_linear(linear: torch.nn.Linear, units: list[int], bias: float) -> None:
    with torch.no_grad():
        linear.weight[units] = 0.0
        linear.bias[units] = bias


def _images(size: int = 32) -> tuple:
    return (torch.randn(4, 3, size, size), torch.randint(0, 10, (4,)))


def _classify(model, batch):
    x, y = batch
    return torch.nn.functional.cross_entropy(model(x), y)


def _vit():
    from torchvision.models import VisionTransformer

    return VisionTransformer(
        image_size=32,
        patch_size=8,
        num_layers=2,
        num_heads=2,
        hidden_dim=32,
        mlp_dim=64,
        num_classes=10,
    )


def _kill_vit(model):
    _kill_linear(model.encoder.layers[0].mlp[0], [1, 5, 40], -1e3)  # GELU dead below -3.81
    return "encoder.layers.encoder_layer_0.mlp.1", [1, 5, 40]


def _convnext():
    from torchvision.models.convnext import CNBlockConfig, ConvNeXt

    return ConvNeXt([CNBlockConfig(16, 32, 1), CNBlockConfig(32, None, 1)], num_classes=10)


def _kill_convnext(model):
    _kill_linear(model.features[1][0].block[3], [0, 63], -1e3)
    return "features.1.0.block.4", [0, 63]


def _efficientnet():
    from torchvision.models import efficientnet_b0

    return efficientnet_b0(num_classes=10)


def _kill_efficientnet(model):
    norm = model.features[0][1]  # conv -> BatchNorm -> SiLU: the norm's output is z
    with torch.no_grad():
        norm.weight[[3, 7]] = 0.0
        norm.bias[[3, 7]] = -1e3  # SiLU dead below -8.99
    return "features.0.2", [3, 7]


def _mobilenet():
    from torchvision.models import mobilenet_v2

    return mobilenet_v2(num_classes=10)


def _kill_mobilenet(model):
    norm = model.features[0][1]
    with torch.no_grad():
        norm.weight[[2, 9]] = 0.0
        norm.bias[[2]] = -1e3  # ReLU6: dead below 0 ...
        norm.bias[[9]] = 1e3  # ... and saturated above 6
    return "features.0.2", [2, 9]


def _hf(transformers, kind: str):
    torch.manual_seed(0)
    common = {"vocab_size": 50, "num_hidden_layers": 1, "num_attention_heads": 2}
    config = {
        "bert": lambda: transformers.BertConfig(
            hidden_size=16,
            intermediate_size=32,
            max_position_embeddings=16,
            hidden_dropout_prob=0.0,
            attention_probs_dropout_prob=0.0,
            **common,
        ),
        "gpt2": lambda: transformers.GPT2Config(
            n_embd=16,
            n_positions=16,
            n_layer=1,
            n_head=2,
            vocab_size=50,
            resid_pdrop=0.0,
            embd_pdrop=0.0,
            attn_pdrop=0.0,
        ),
        "llama": lambda: transformers.LlamaConfig(
            hidden_size=16, intermediate_size=32, num_key_value_heads=2, **common
        ),
    }[kind]()
    return transformers.AutoModel.from_config(config)


def _kill_hf(kind):
    def kill(model):
        with torch.no_grad():
            if kind == "bert":
                _kill_linear(model.encoder.layer[0].intermediate.dense, [2, 30], -1e3)
                return "encoder.layer.0.intermediate.intermediate_act_fn", [2, 30]
            if kind == "gpt2":
                fc = model.h[0].mlp.c_fc  # Conv1D: weight [in, out]
                fc.weight[:, [4, 60]] = 0.0
                fc.bias[[4, 60]] = -1e3
                return "h.0.mlp.act", [4, 60]
            gate = model.layers[0].mlp.gate_proj  # no bias: zero rows and a huge negative input
            gate.weight[[6, 20]] = 0.0
            return "layers.0.mlp.act_fn", []

    return kill


def _tokens() -> tuple:
    return (torch.randint(0, 50, (4, 8)),)


def _hidden_loss(model, batch):
    return model(input_ids=batch[0]).last_hidden_state.square().mean()


def _last(name: str) -> int:
    return -1


def _channels(name: str) -> int:
    return 1


def _cases(transformers) -> dict[str, Case]:
    cases = {
        "vit": Case(_vit, _kill_vit, _images, _classify, _last),
        "convnext": Case(_convnext, _kill_convnext, _images, _classify, _last),
        "efficientnet_b0": Case(_efficientnet, _kill_efficientnet, _images, _classify, _channels),
        "mobilenet_v2": Case(_mobilenet, _kill_mobilenet, _images, _classify, _channels),
    }
    if transformers is not None:
        for kind in ("bert", "gpt2", "llama"):
            cases[kind] = Case(
                lambda kind=kind: _hf(transformers, kind),
                _kill_hf(kind),
                _tokens,
                _hidden_loss,
                _last,
            )
    return cases


try:
    import transformers as _transformers
except ImportError:  # pragma: no cover - the test image has it
    _transformers = None
pytest.importorskip("torchvision")
CASES = _cases(_transformers)


def _run_window(model, case, monitor, own, steps=2):
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
    for _ in range(steps):
        loss = case.loss(model, case.batch())
        assert torch.isfinite(loss)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        monitor.step()


@pytest.mark.parametrize("name", list(CASES))
def test_every_layer_counts_what_autograd_says_and_killed_units_are_dead(name):
    case = CASES[name]
    torch.manual_seed(0)
    model = case.make()
    layer_name, killed = case.kill(model)
    monitor = DeadNeuronMonitor(model, window=2, grad_eps=GRAD_EPS, tau=TAU)
    assert monitor.skipped_modules == {}
    modules = dict(model.named_modules())
    with monitor:
        own = {n: OwnCounts(modules[n], case.unit_dim(n)) for n in monitor.layer_names}
        assert layer_name in own, sorted(own)
        _run_window(model, case, monitor, own)
        report = monitor.history[-1]
    for hook in own.values():
        hook.handle.remove()
    assert set(report.layers) == set(own)  # one call site per module in these models
    for n, layer in report.layers.items():
        mine = own[n]
        assert layer.active_counts == mine.active.tolist(), n
        assert layer.alive_counts == mine.alive.tolist(), n
        torch.testing.assert_close(
            torch.tensor(layer.mean_abs, dtype=torch.float64) * layer.samples,
            mine.abs_sum,
            rtol=1e-5,
            atol=1e-6,
        )
        expected_dormant = [u for u, s in enumerate(layer.scores) if s <= TAU]
        assert layer.tau_dormant_units == expected_dormant
    killed_layer = report.layers[layer_name]
    assert set(killed) <= set(killed_layer.dead_units)
    if name == "mobilenet_v2":
        assert killed_layer.activation == "ReLU6"


def test_llama_silu_units_with_no_input_are_reported_as_their_derivative_says():
    """Llama's gate has no bias: rows of zeros give z = 0 on every token, where SiLU's
    derivative is 0.5: alive, not dead, though they output exactly 0 (tau-dormant)."""
    if _transformers is None:
        pytest.skip("no transformers")
    case = CASES["llama"]
    model = case.make()
    case.kill(model)
    with DeadNeuronMonitor(model, window=1, tau=TAU) as monitor:
        _run_window(model, case, monitor, {}, steps=1)
        layer = monitor.history[-1].layers["layers.0.mlp.act_fn"]
    assert 6 not in layer.dead_units and 20 not in layer.dead_units
    assert {6, 20} <= set(layer.tau_dormant_units)
    assert layer.scores[6] == 0.0 and layer.scores[20] == 0.0


REVIVABLE = ["vit", "convnext", "efficientnet_b0", "mobilenet_v2", "bert", "gpt2"]


@pytest.mark.parametrize("name", [n for n in REVIVABLE if n in CASES])
def test_revive_brings_killed_units_back_in_the_next_window(name, caplog):
    case = CASES[name]
    torch.manual_seed(0)
    model = case.make()
    layer_name, killed = case.kill(model)
    with DeadNeuronMonitor(model, window=2, tau=TAU) as monitor:
        _run_window(model, case, monitor, {})
        assert set(killed) <= set(monitor.history[-1].layers[layer_name].dead_units)
        refused = torch_ext.revive(model, monitor)  # a dead GELU unit still outputs a little
        assert layer_name not in refused and "exact=False" in refused.skipped[layer_name]
        if refused:  # other layers were revived exactly: this window is spent, run another
            _run_window(model, case, monitor, {})
        revived = torch_ext.revive(model, monitor, exact=False)
        assert set(killed) <= set(revived[layer_name])
        assert revived.change_bounds[layer_name] > 0
        assert any("output by at most" in why for why in revived.inexact[layer_name])
        _run_window(model, case, monitor, {})
        again = monitor.history[-1].layers[layer_name]
    assert not set(killed) & set(again.dead_units)


def test_revive_brings_back_llama_units_whose_gate_outputs_zero():
    """Llama's MLP gates its SiLU units by another branch (act(gate(x)) * up(x)): their mean
    |h| bounds nothing past the product unless it is 0, as for units whose gate rows are
    zero in the window just measured; revived, they come back."""
    if _transformers is None:
        pytest.skip("no transformers")
    case = CASES["llama"]
    model = case.make()
    case.kill(model)
    name = "layers.0.mlp.act_fn"
    with DeadNeuronMonitor(model, window=1, tau=TAU) as monitor:
        _run_window(model, case, monitor, {}, steps=1)
        assert monitor.links(name)[1] == [model.layers[0].mlp.down_proj]
        revived = torch_ext.revive(model, monitor, select="tau_dormant", exact=False)
        assert revived[name] == [6, 20] and revived.change_bounds[name] == 0.0
        _run_window(model, case, monitor, {})  # two steps: the gate rows have moved
        again = monitor.history[-1].layers[name]
    assert not {6, 20} & set(again.tau_dormant_units)


def test_revive_bound_holds_on_a_saturated_tanh_layer():
    """Tanh units saturated at +1 by a huge bias: reviving them drops their output (about
    1) times their outgoing weights; the reader's output changes by no more than the bound
    revive reports."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 12), torch.nn.Tanh(), torch.nn.Linear(12, 3))
    _kill_linear(model[0], [2, 7], 1e3)
    x = torch.randn(64, 6)
    with DeadNeuronMonitor(model, window=1) as monitor:
        model(x).sum().backward()
        monitor.step()
        layer = monitor.history[-1].layers["1"]
        assert layer.condition == "saturated" and layer.dead_units == [2, 7]
        before = model(x).detach()
        revived = torch_ext.revive(model, monitor, exact=False)
        after = model(x).detach()
    assert revived["1"] == [2, 7]
    change = (after - before).abs().max().item()
    assert 0.1 < change <= revived.change_bounds["1"] * (1 + 1e-6)


def test_tau_dormant_units_can_be_revived_by_select():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 12), torch.nn.ReLU(), torch.nn.Linear(12, 3))
    with torch.no_grad():
        model[0].weight[[4]] *= 1e-4  # a unit that barely fires: tau-dormant, not dead
        model[0].bias[[4]] = 0.0
    x = torch.randn(64, 6)
    with DeadNeuronMonitor(model, window=1, tau=TAU) as monitor:
        model(x).sum().backward()
        monitor.step()
        layer = monitor.history[-1].layers["1"]
        assert 4 in layer.tau_dormant_units and 4 not in layer.dead_units
        with pytest.raises(ValueError, match="select="):
            torch_ext.revive(model, monitor, select="dormant")
        revived = torch_ext.revive(model, monitor, select="tau_dormant", exact=False)
    assert 4 in revived["1"]
    bound = revived.change_bounds["1"]
    assert bound > 0 and math.isfinite(bound)


def test_select_tau_dormant_needs_tau():
    model = torch.nn.Sequential(torch.nn.Linear(6, 12), torch.nn.GELU(), torch.nn.Linear(12, 3))
    with DeadNeuronMonitor(model, window=1) as monitor:
        model(torch.randn(4, 6)).sum().backward()
        monitor.step()
        with pytest.raises(ValueError, match="tau="):
            torch_ext.revive(model, monitor, select="tau_dormant")


class Functional(torch.nn.Module):
    """Activations called as functions, in place or not, as timm-style blocks do."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2, self.fc3 = (
            torch.nn.Linear(6, 10),
            torch.nn.Linear(10, 10),
            torch.nn.Linear(10, 4),
        )

    def forward(self, x):
        h = torch.nn.functional.gelu(self.fc1(x), approximate="tanh")
        h = torch.nn.functional.silu(self.fc2(h), inplace=True)
        return torch.tanh(self.fc3(h))


def test_functional_calls_of_every_activation_count_as_autograd_says():
    torch.manual_seed(0)
    model = Functional()
    _kill_linear(model.fc1, [3], -1e3)
    _kill_linear(model.fc3, [1], 1e3)  # tanh saturated
    x = torch.randn(16, 6)
    expected = {}

    def record(name, f, z):
        z = z.detach().double().requires_grad_(True)
        h = f(z.clone())
        (grad,) = torch.autograd.grad(h.sum(), z)
        expected[name] = ((grad.abs() > GRAD_EPS).sum(0).tolist(), h.abs().sum(0))

    with torch.no_grad():
        z1 = model.fc1(x)
        h1 = torch.nn.functional.gelu(z1, approximate="tanh")
        z2 = model.fc2(h1)
        h2 = torch.nn.functional.silu(z2)
        z3 = model.fc3(h2)
    record(":gelu#0", lambda z: torch.nn.functional.gelu(z, approximate="tanh"), z1)
    record(":silu#0", torch.nn.functional.silu, z2)
    record(":tanh#0", torch.tanh, z3)
    with DeadNeuronMonitor(model, functional=True, tau=TAU) as monitor:
        model(x).sum().backward()
        layers = monitor.report().layers
    assert set(layers) == set(expected)
    for name, (alive, abs_sum) in expected.items():
        assert layers[name].alive_counts == alive, name
        torch.testing.assert_close(
            torch.tensor(layers[name].mean_abs, dtype=torch.float64) * 16,
            abs_sum,
            rtol=1e-5,
            atol=1e-6,
        )
    assert layers[":gelu#0"].dead_units == [3]
    assert layers[":tanh#0"].dead_units == [1] and layers[":tanh#0"].condition == "saturated"


# --- what a review found ------------------------------------------------------------------
def test_compiling_a_watched_model_never_traces_the_rules_derivation(monkeypatch):
    """The intervals are derived at attach, eagerly: a model compiled before any eager
    forward finds them (Dynamo would otherwise unroll the scan, for minutes), and counts
    as in eager."""
    from torch_ext.monitor import rules

    torch._dynamo.reset()
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(4, 8), torch.nn.GELU(), torch.nn.Linear(8, 8), torch.nn.SiLU()
    )
    x = torch.randn(16, 4)
    counts = {}
    for mode in ("eager", "compiled"):
        with DeadNeuronMonitor(model, grad_eps=0.0123) as monitor:  # a grad_eps no test used

            def refuse(self, grad_eps):
                raise AssertionError("derived after attach")

            monkeypatch.setattr(rules.ActivationRule, "derive", refuse)
            run = torch.compile(model, backend="eager") if mode == "compiled" else model
            run(x).sum().backward()
            layers = monitor.report().layers
            counts[mode] = {name: layer.alive_counts for name, layer in layers.items()}
            monkeypatch.undo()
    assert counts["compiled"] == counts["eager"] and set(counts["eager"]) == {"1", "3"}


def test_an_infinite_output_gives_no_tau_verdict_and_revive_says_so(caplog):
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    x = torch.randn(6, 4)
    x[0, 0] = float("inf")
    with DeadNeuronMonitor(model, window=1, tau=TAU) as monitor:
        model(x).sum().backward()
        monitor.step()
        layer = monitor.history[-1].layers["1"]
        assert layer.tau_dormant is None and layer.scores is None and layer.mean_abs is None
        revived = torch_ext.revive(model, monitor, select="tau_dormant", exact=False)
    assert dict(revived) == {} and "no tau-dormant verdict" in revived.skipped["1"]


@pytest.mark.parametrize("grad_eps", (1e-4, 1e-6))
@pytest.mark.parametrize(
    "module",
    [torch.nn.GELU(), torch.nn.GELU(approximate="tanh"), torch.nn.SiLU(), torch.nn.Mish()],
    ids=lambda m: repr(m),
)
def test_the_band_where_the_derivative_crosses_zero_is_found_at_any_grad_eps(module, grad_eps):
    """The band is narrower than the scan's grid for small grad_eps: float32 inputs packed
    around the crossing are counted as autograd says."""
    from torch_ext.monitor.counting import activation_rule, alive_threshold

    interval = activation_rule(module).interval(grad_eps)
    assert interval.band_lo < interval.band_hi
    center, width = (interval.band_lo + interval.band_hi) / 2, interval.band_hi - interval.band_lo
    z = torch.linspace(center - 5 * width, center + 5 * width, 20_001).float()
    z64 = z.double().requires_grad_(True)
    (grad,) = torch.autograd.grad(module(z64).sum(), z64)
    expected = int((grad.abs() > grad_eps).sum())
    counts = torch.zeros(2, 1, dtype=torch.int64)
    torch.ops.torch_ext.count_active_(
        z[:, None], counts, 1, alive_threshold(module, 1, grad_eps, "cpu")
    )
    assert int(counts[1, 0]) == expected < z.numel()


def test_dead_units_that_output_exactly_zero_are_revived_exactly():
    """ReLU6 units below 0 on every sample (never active) output 0: revive is exact, as for
    ReLU, while ReLU6 units saturated above 6 still need exact=False."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 12), torch.nn.ReLU6(), torch.nn.Linear(12, 3))
    _kill_linear(model[0], [1, 4], -1e3)
    x = torch.randn(32, 6)
    with DeadNeuronMonitor(model, window=1) as monitor:
        model(x).sum().backward()
        monitor.step()
        before = model(x).detach()
        revived = torch_ext.revive(model, monitor)
        torch.testing.assert_close(model(x).detach(), before)
    assert revived["1"] == [1, 4] and "1" not in revived.inexact
    _kill_linear(model[0], [2], 1e3)  # saturated at 6
    with DeadNeuronMonitor(model, window=1) as monitor:
        model(x).sum().backward()
        monitor.step()
        refused = torch_ext.revive(model, monitor)
    assert "exact=False" in refused.skipped["1"] and "up to 6" in refused.skipped["1"]


def test_no_mean_bound_through_a_max_pool():
    """A max pool passes on more than its input's mean: tau-dormant units read through one
    get no bound, so revive refuses them even inexactly."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(2, 4, 1),
        torch.nn.GELU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Flatten(),
        torch.nn.Linear(4 * 4 * 4, 3),
    )
    with torch.no_grad():
        model[0].weight[1] *= 1e-4
        model[0].bias[1] = 0.0
    with DeadNeuronMonitor(model, window=1, tau=TAU) as monitor:
        model(torch.randn(8, 2, 8, 8)).sum().backward()
        monitor.step()
        assert 1 in monitor.history[-1].layers["1"].tau_dormant_units
        refused = torch_ext.revive(model, monitor, select="tau_dormant", exact=False)
    assert "a max or Lp pool" in refused.skipped["1"]


def test_a_checkpoint_without_tau_resumed_with_tau_gives_no_score_until_the_window_closes():
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    x = torch.randn(16, 4)
    with DeadNeuronMonitor(model, window=2) as plain:
        model(x).sum().backward()
        plain.step()  # the window's first step, without |h| sums
        state = plain.state_dict()
    with DeadNeuronMonitor(model, window=2, tau=TAU) as monitor:
        monitor.load_state_dict(state)
        model(x).sum().backward()
        monitor.step()
        assert monitor.history[-1].layers["1"].tau_dormant is None  # half its samples unsummed
        for _ in range(2):
            model(x).sum().backward()
            monitor.step()
        assert monitor.history[-1].layers["1"].tau_dormant is not None


@pytest.mark.parametrize("tau", [-0.1, float("nan"), float("inf"), True, "0.1", torch.tensor(0.1)])
def test_bad_tau_is_refused(tau):
    with pytest.raises(ValueError, match="tau must be a finite number >= 0"):
        DeadNeuronMonitor(torch.nn.ReLU(), tau=tau)


def test_clipped_gelu_passes_no_gradient_on_its_clip_values():
    activations = pytest.importorskip("transformers.activations")
    from torch_ext.monitor.counting import activation_rule

    module = activations.ClippedGELUActivation(0.0, 1.0)
    z = torch.tensor([0.0], dtype=torch.float64, requires_grad=True)
    module(z).sum().backward()
    assert z.grad.item() == 0.0
    assert not activation_rule(module).interval(1e-3).alive(0.0)


def test_a_subclass_of_a_hugging_face_activation_is_listed_not_counted():
    activations = pytest.importorskip("transformers.activations")

    class Scaled(activations.GELUActivation):
        def forward(self, x):
            return 2 * super().forward(x)

    model = torch.nn.Sequential(torch.nn.Linear(4, 4), Scaled())
    assert DeadNeuronMonitor(model).skipped_modules == {"1": "Scaled"}


def test_torch_func_transforms_over_a_watched_model_run_and_are_not_counted(caplog):
    """grad and vmap(grad) (per-sample gradients) of a watched model ran into the link
    tracer (wrappers without storage) and the counting op (no batching rule): they run, are
    not counted, and say so once; eager forwards after them count and trace as before."""
    from torch.func import functional_call, grad, vmap

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.GELU(), torch.nn.Linear(8, 2))
    params = dict(model.named_parameters())
    x = torch.randn(6, 4)

    def loss(p, xs):
        return functional_call(model, p, (xs,)).square().sum()

    with DeadNeuronMonitor(model, window=1, tau=TAU) as monitor:
        with caplog.at_level("WARNING", logger="torch_ext.monitor"):
            full = grad(loss)(params, x)
            per_sample = vmap(grad(loss), in_dims=(None, 0))(params, x[:, None])
        assert monitor.report().layers == {}
        assert caplog.text.count("inside torch.func transforms") == 1
        torch.testing.assert_close(per_sample["2.weight"].sum(0), full["2.weight"])
        model(x).sum().backward()
        monitor.step()
        assert monitor.history[-1].layers["1"].samples == 6
        assert monitor.link_problem("1") is None
