"""The monitor's three silent failures of issue 26, on models none of us wrote (tiny
configs, random weights, nothing downloaded): revive acting on a partial window (OPT),
a module used at two widths under torch.compile, and other libraries' activation classes
(Hugging Face's GELU/SiLU classes in BERT, GPT-2, Llama) counted by ReLU's rule."""

from __future__ import annotations

import logging

import pytest
import torch
from helpers import tiny_opt as opt_model

import torch_ext
from torch_ext import DeadNeuronMonitor

FFN = 32
KILLED = [0, 4, 9, 17]  # FFN units of OPT's first decoder layer that never fire


@pytest.fixture(scope="module")
def transformers():
    return pytest.importorskip("transformers")


def tiny_opt(transformers) -> torch.nn.Module:
    model = opt_model(transformers, ffn_dim=FFN, layers=1)
    fc1 = model.model.decoder.layers[0].fc1
    with torch.no_grad():
        fc1.bias.fill_(0.0)  # random weights: each unit fires on some tokens, not on all
        fc1.bias[KILLED] = -1e3
        fc1.weight[KILLED] = 0.0
    return model


def step(model, ids) -> None:
    model(input_ids=ids, labels=ids).loss.backward()


def test_revive_acts_on_the_last_closed_window_not_on_a_partial_one(transformers, caplog):
    """A window of 2 steps of 16 sequences closes with exactly KILLED dead; one more forward
    of one short sequence (which leaves many live units silent) must not change what revive
    re-initialises; asked to use that partial window, revive refuses and says which."""
    model = tiny_opt(transformers)
    layer = "model.decoder.layers.0.activation_fn"
    ids = torch.randint(2, 50, (16, 8), generator=torch.Generator().manual_seed(1))
    with DeadNeuronMonitor(model, window=2) as monitor:
        for _ in range(2):
            step(model, ids)
            monitor.step()
        assert monitor.history[-1].layers[layer].dead_units == KILLED
        model(input_ids=ids[:1, :2])  # the open window: 1 sample of 2 tokens, 0 steps
        assert len(monitor.report().layers[layer].dead_units) > len(KILLED)
        with caplog.at_level(logging.WARNING):
            refused = torch_ext.revive(model, monitor, window=monitor.report())
        assert dict(refused) == {}
        assert "window 1 covers 0 completed steps" in caplog.text
        weight = model.model.decoder.layers[0].fc1.weight
        live = [u for u in range(FFN) if u not in KILLED]
        peers = weight[live].detach().norm(dim=1).mean()  # OPT's init: std 0.02, not Linear's
        revived = torch_ext.revive(model, monitor)
    assert revived == {layer: KILLED}
    # the fresh rows start at their live peers' scale, as ReDo's reset intends
    norms = weight[KILLED].detach().norm(dim=1)
    torch.testing.assert_close(norms, peers.expand(len(KILLED)), rtol=1e-5, atol=0)


class TwoWidths(torch.nn.Module):
    """One ReLU module applied to an 8-wide and then a 16-wide tensor."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b, self.c = (
            torch.nn.Linear(4, 8),
            torch.nn.Linear(8, 16),
            torch.nn.Linear(16, 2),
        )
        self.relu = torch.nn.ReLU()

    def forward(self, x):
        return self.c(self.relu(self.b(self.relu(self.a(x)))))


def counts_of(compile_backend: str | None, attach_first: bool) -> dict:
    torch.manual_seed(0)
    model, x = TwoWidths(), torch.randn(6, 4)
    if compile_backend is None:
        watched = run = model
    elif attach_first:
        watched, run = model, torch.compile(model, backend=compile_backend)
    else:
        run = watched = torch.compile(model, backend=compile_backend)
    with DeadNeuronMonitor(watched, window=2) as monitor:
        for _ in range(2):
            run(x).sum().backward()
            monitor.step()
    layers = monitor.history[-1].layers
    return {
        name.removeprefix("_orig_mod."): (layer.units, layer.samples, layer.active_counts)
        for name, layer in layers.items()
    }


@pytest.mark.parametrize("attach_first", [True, False], ids=["attach_then_compile", "compiled"])
@pytest.mark.parametrize("backend", ["eager", "aot_eager", "inductor"])
def test_a_module_used_at_two_widths_counts_as_in_eager_under_compile(backend, attach_first):
    """Under torch.compile a call has no call index (it would be a guard); the calls of each
    width count into the call site of that width, as eager numbers them, instead of failing
    the training step."""
    torch._dynamo.reset()
    eager = counts_of(None, True)
    assert {name: value[0] for name, value in eager.items()} == {"relu": 8, "relu#1": 16}
    assert counts_of(backend, attach_first) == eager


HF_ACTIVATIONS = [
    "GELUActivation",
    "NewGELUActivation",
    "FastGELUActivation",
    "QuickGELUActivation",
    "SiLUActivation",
    "ReLUSquaredActivation",
]


@pytest.mark.parametrize("kind", HF_ACTIVATIONS)
def test_another_librarys_activation_is_counted_by_its_own_rule(transformers, kind: str):
    """z = -1 on every sample: a GELU unit's derivative there is -0.083, so it is not dead,
    yet ReLU's rule would report it dead; ReLU² has derivative 0 there: dead. Each class
    is counted by its own derivative, as autograd gives it."""
    cls = getattr(transformers.activations, kind, None)
    if cls is None:
        pytest.skip(f"this transformers has no {kind}")
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), cls(), torch.nn.Linear(8, 2))
    with torch.no_grad():
        model[0].weight.zero_()
        model[0].bias.fill_(-1.0)
    z = torch.full((1,), -1.0, requires_grad=True)
    cls()(z).sum().backward()
    alive = abs(z.grad.item()) > 1e-3
    with DeadNeuronMonitor(model) as monitor:
        model(torch.randn(5, 4)).sum().backward()
        layer = monitor.report().layers["1"]
    assert layer.alive_counts == [5 if alive else 0] * 8
    assert layer.dead == (0 if alive else 8)


def test_an_activation_without_a_rule_is_refused(transformers):
    """Hugging Face's xIELU learns its parameters: no rule, so it is listed as skipped and
    selecting it is refused, rather than counted by ReLU's rule."""
    cls = getattr(transformers.activations, "XIELUActivation", None)
    if cls is None:
        pytest.skip("this transformers has no XIELUActivation")
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), cls(), torch.nn.Linear(8, 2))
    assert DeadNeuronMonitor(model).skipped_modules == {"1": "XIELUActivation"}
    with pytest.raises(
        ValueError, match=r"modules= selects \['1 \(XIELUActivation\)'\].*no\s+rule"
    ):
        DeadNeuronMonitor(model, modules=["1"]).attach()


def tiny(transformers, name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    common = {"vocab_size": 50, "num_hidden_layers": 1, "num_attention_heads": 2}
    configs = {
        "bert": lambda: transformers.BertConfig(
            hidden_size=16, intermediate_size=32, max_position_embeddings=16, **common
        ),
        "gpt2": lambda: transformers.GPT2Config(
            n_embd=16, n_positions=16, n_layer=1, n_head=2, vocab_size=50
        ),
        "llama": lambda: transformers.LlamaConfig(
            hidden_size=16, intermediate_size=32, num_key_value_heads=2, **common
        ),
    }
    return transformers.AutoModel.from_config(configs[name]())


@pytest.mark.parametrize(
    "name,expected",
    [
        ("bert", {"encoder.layer.0.intermediate.intermediate_act_fn": "GELUActivation"}),
        ("gpt2", {"h.0.mlp.act": "NewGELUActivation"}),
        ("llama", {"layers.0.mlp.act_fn": "SiLUActivation"}),
    ],
)
def test_transformer_models_have_their_activations_counted(transformers, name, expected):
    """Every activation module of the model is counted, whatever library defines it; none
    is skipped."""
    model = tiny(transformers, name)
    monitor = DeadNeuronMonitor(model)
    assert monitor.skipped_modules == {}
    with monitor:
        ids = torch.randint(0, 50, (2, 6))
        model(input_ids=ids).last_hidden_state.sum().backward()
        layers = monitor.report().layers
    for module_name, kind in expected.items():
        assert layers[module_name].activation in {kind, "SiLU"}  # silu may map to nn.SiLU
        assert layers[module_name].samples == 12


def test_a_container_named_like_an_activation_is_not_one(caplog):
    """torchvision's Conv2dNormActivation (conv, norm, activation) is a block, not an
    activation: only its GLU (not elementwise: no rule) is listed, and the warning names
    GLU alone."""
    ops = pytest.importorskip("torchvision.ops")
    model = torch.nn.Sequential(
        ops.Conv2dNormActivation(3, 8, activation_layer=torch.nn.GLU, inplace=None),
        torch.nn.Flatten(),
    )
    monitor = DeadNeuronMonitor(model)
    assert monitor.skipped_modules == {"0.2": "GLU"}
    with caplog.at_level(logging.WARNING, logger="torch_ext.monitor"):
        monitor.attach()
    assert "1 GLU;" in caplog.text and "Conv2dNormActivation" not in caplog.text
    monitor.remove()


def test_a_model_of_functional_relus_gets_the_hint_and_is_counted_with_it(caplog):
    """torchvision's Inception-v3 calls F.relu in its BasicConv2d blocks: no module matches,
    and the warning says what to do; with functional=True it says nothing and counts."""
    models = pytest.importorskip("torchvision.models")
    model = models.inception_v3(weights=None, init_weights=False, aux_logits=False)
    with caplog.at_level(logging.WARNING, logger="torch_ext.monitor"):
        DeadNeuronMonitor(model).attach().remove()
    assert "nothing is counted" in caplog.text and "pass functional=True" in caplog.text
    caplog.clear()
    model.eval()  # BatchNorm statistics stay; counted anyway with count_eval
    with caplog.at_level(logging.WARNING, logger="torch_ext.monitor"):
        with DeadNeuronMonitor(model, functional=True, count_eval=True) as monitor:
            with torch.no_grad():
                model(torch.randn(1, 3, 75, 75))
            layers = monitor.report().layers
    assert "nothing is counted" not in caplog.text
    assert "Conv2d_1a_3x3:relu#0" in layers and layers["Conv2d_1a_3x3:relu#0"].units == 32


class FeedForward(torch.nn.Module):
    """A transformer's feed-forward block: a Linear's 3-D output [batch, tokens, features]."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.act, self.fc2 = (
            torch.nn.Linear(16, 32),
            torch.nn.ReLU(),
            torch.nn.Linear(32, 16),
        )

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


def test_a_3d_input_of_unknown_feeder_is_not_counted_along_a_guessed_dim(caplog):
    """Compiled before any eager forward, the FFN's feeder is unknown: its tokens would be
    counted as units (one call site per sequence length). It is not counted, and a warning
    says why, once; after an eager forward shows the Linear, every call counts per feature."""
    torch._dynamo.reset()
    model = FeedForward()
    compiled = torch.compile(model, backend="eager")
    with DeadNeuronMonitor(model) as monitor:
        with caplog.at_level(logging.WARNING, logger="torch_ext.monitor"):
            for tokens in (10, 12):
                compiled(torch.randn(2, tokens, 16))
        assert monitor.report().layers == {}
        assert caplog.text.count("got a 3-D input that nothing before it tells") == 1
        model(torch.randn(2, 5, 16))
        compiled(torch.randn(2, 9, 16))
        layers = monitor.report().layers
    assert {name: (layer.units, layer.samples) for name, layer in layers.items()} == {
        "act": (32, 2 * 5 + 2 * 9)
    }


class AutoEncoder(torch.nn.Module):
    """One activation module shared by the encoder (4 wide) and the decoder (16 wide)."""

    def __init__(self) -> None:
        super().__init__()
        self.enc, self.dec, self.out = (
            torch.nn.Linear(16, 4),
            torch.nn.Linear(4, 16),
            torch.nn.Linear(16, 2),
        )
        self.act = torch.nn.ReLU()

    def encode(self, x):
        return self.act(self.enc(x))

    def decode(self, z):
        return self.out(self.act(self.dec(z)))

    def forward(self, x):
        return self.decode(self.encode(x))


def test_a_call_outside_the_forward_does_not_take_the_forwards_call_site():
    """The decoder called on its own first (16 wide) counts as 'act'; the forward's own
    first call (4 wide) then takes 'act', and the earlier counts move to the 16-wide site."""
    model = AutoEncoder()
    with DeadNeuronMonitor(model) as monitor:
        model.decode(torch.randn(2, 4))
        for _ in range(2):
            model(torch.randn(3, 16))
        layers = monitor.report().layers
    assert {name: (layer.units, layer.samples) for name, layer in layers.items()} == {
        "act": (4, 6),
        "act#1": (16, 2 + 6),
    }


def test_gpt2_relu_units_are_its_features(transformers):
    """GPT-2's MLP is fed by Hugging Face's Conv1D, a Linear under another name: its
    ReLU's units are the 4 * n_embd features, not the tokens."""
    torch.manual_seed(0)
    config = transformers.GPT2Config(
        n_embd=16, n_positions=16, n_layer=1, n_head=2, vocab_size=50, activation_function="relu"
    )
    model = transformers.GPT2LMHeadModel(config)
    with DeadNeuronMonitor(model) as monitor:
        for tokens in (10, 12):
            ids = torch.randint(0, 50, (2, tokens))
            model(input_ids=ids, labels=ids).loss.backward()
        layer = monitor.report().layers["transformer.h.0.mlp.act"]
    assert (layer.units, layer.samples) == (64, 2 * 10 + 2 * 12)


class ShiftedGELU(torch.nn.GELU):
    """A GELU subclass whose forward computes something else: GELU's rule would be wrong."""

    def forward(self, x):
        return super().forward(x - 3.0)


@pytest.mark.parametrize(
    "kind",
    [torch.nn.Softmax, torch.nn.LogSoftmax, torch.nn.Softmin, torch.nn.GLU, ShiftedGELU],
    ids=lambda k: k.__name__,
)
def test_torch_activations_without_a_rule_are_refused(kind):
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), kind(), torch.nn.Linear(8, 2))
    assert DeadNeuronMonitor(model).skipped_modules == {"1": kind.__name__}
    with pytest.raises(ValueError, match="no\\s+rule"):
        DeadNeuronMonitor(model, modules=[kind]).attach()


def test_revive_acts_once_per_closed_window_and_checks_its_window(caplog):
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    with torch.no_grad():
        model[0].bias[:3] = -100.0
        model[0].bias[3:] = 100.0  # alive on every sample
    with DeadNeuronMonitor(model, window=1) as monitor:
        model(torch.randn(8, 4)).sum().backward()
        monitor.step()
        assert torch_ext.revive(model, monitor) == {"1": [0, 1, 2]}
        with caplog.at_level(logging.WARNING, logger="torch_ext.revive"):
            assert dict(torch_ext.revive(model, monitor)) == {}  # the same window: not again
        assert "window 0's dead units were revived by an earlier revive()" in caplog.text
        with pytest.raises(TypeError, match="window= expects a MonitorReport"):
            torch_ext.revive(model, monitor, window=0)
        with DeadNeuronMonitor(torch.nn.Sequential(torch.nn.ReLU())) as other:
            other.model(torch.randn(2, 3))
            with pytest.raises(ValueError, match="another monitor's report"):
                torch_ext.revive(model, monitor, window=other.report())


class ReluGeluNet(torch.nn.Module):
    """A ReLU module called twice around a GELU (whose rule is derived, not a C++ one)."""

    def __init__(self):
        super().__init__()
        self.fc1, self.act, self.fc2 = (
            torch.nn.Linear(8, 16),
            torch.nn.ReLU(),
            torch.nn.Linear(16, 16),
        )
        self.g, self.fc3, self.out = torch.nn.GELU(), torch.nn.Linear(16, 8), torch.nn.Linear(8, 1)

    def forward(self, x):
        h = self.act(self.fc1(x))
        h = self.g(self.fc2(h))
        return self.out(self.act(self.fc3(h)))


def test_a_derived_rule_breaks_no_compiled_graph():
    """The GELU's interval is derived and rounded to float32 at attach: the compiled
    forward's first call builds its bounds from the cached rows, with no graph break (the
    rounding through a tensor's .item() broke the graph on every monitored call site), and
    counts what an eager run of the same model counts."""
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    counters.clear()
    torch.manual_seed(0)
    model, x = ReluGeluNet(), torch.randn(4, 8)
    counted = []
    for compiled in (True, False):
        with DeadNeuronMonitor(model, window=1) as monitor:
            run = torch.compile(model, backend="aot_eager") if compiled else model
            run(x).sum().backward()
            monitor.step()
        layers = monitor.history[-1].layers
        counted.append({name: layer.active_counts for name, layer in layers.items()})
        if compiled:
            assert dict(counters["graph_break"]) == {}
    assert counted[0] == counted[1] and set(counted[0]) == {"act", "act#1", "g"}
