"""The study's report folder: report.md, results.json and PNG plots."""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Callable
from pathlib import Path

import matplotlib
import matplotlib.patches
import matplotlib.pyplot as plt
import matplotlib.ticker

from .activations import SMOOTH
from .wording import count, span

matplotlib.use("Agg")  # files only: no display needed, none opened

PLOTS = (
    "dead_fraction_vs_epoch.png",
    "final_dead_per_layer.png",
    "accuracy.png",
    "revive.png",
    "born_dead.png",
    "selu_moments.png",
)

# The architectures' names in tables and plots.
NETWORKS = {"mlp": "MLP", "cnn": "CNN"}


def pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def network(cell: dict) -> str:
    return NETWORKS.get(cell["architecture"], cell["architecture"])


def spread(cell: dict, key: str, form: Callable[[float], str]) -> str:
    """The cell's ``key`` mean ± its standard deviation over seeds, each written by
    ``form``; a cell of one seed has no spread, so its value alone (not "± 0.000")."""
    mean = form(cell[f"{key}_mean"])
    if cell["seeds"] == 1:
        return mean
    return f"{mean} ± {form(cell[f'{key}_std'])}"


def decimal(value: float) -> str:
    return f"{value:.3f}"


def seeds_per_cell(results: dict) -> set[int]:
    """The seeds per cell of the networks trained (the CNN's may differ from the MLP's)."""
    config = results["config"]
    return {config["cnn_seeds" if a == "cnn" else "seeds"] for a in config["architectures"]}


def over_seeds(results: dict, what: str = "mean") -> str:
    """What a plot or table shows per cell: "mean over seeds" ("mean ± std over seeds"), or
    "one seed" when every network trained on one."""
    return "one seed" if seeds_per_cell(results) == {1} else f"{what} over seeds"


SUMMARY_COLUMNS = (
    "network",
    "scenario",
    "activation",
    "test accuracy",
    "dead units (final epoch)",
    "tau-dormant units",
    "dormant units",
    "active rate",
)


def summary_rows(results: dict) -> list[tuple[str, ...]]:
    """One row per cell: the summary table's values, formatted once for both outputs."""
    return [
        (
            network(c),
            c["scenario"],
            c["activation"],
            spread(c, "test_accuracy", decimal),
            spread(c, "dead_fraction", pct),
            spread(c, "tau_dormant_fraction", pct),
            pct(c["dormant_fraction_mean"]),
            pct(c["active_rate_mean"]),
        )
        for c in results["cells"]
    ]


def markdown_table(columns: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|---" * len(columns) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def aligned_table(columns: tuple[str, ...], rows: list[tuple[str, ...]], left: int) -> str:
    """A table for stdout: the first `left` columns left-aligned, the others right-aligned."""
    rows = [columns, *rows]
    widths = [max(len(row[i]) for row in rows) for i in range(len(columns))]
    lines = [
        "  ".join(
            cell.ljust(w) if i < left else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths))
        )
        for row in rows
    ]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def summary_table(results: dict) -> str:
    """The summary table in Markdown (report.md)."""
    return markdown_table(SUMMARY_COLUMNS, summary_rows(results))


def text_table(results: dict) -> str:
    """The summary table for stdout, columns aligned."""
    return aligned_table(SUMMARY_COLUMNS, summary_rows(results), left=3)


# --- revive: ReLU under high_lr without (high_lr) and with torch_ext.revive (remedy_revive)
REVIVE_PAIR = ("high_lr", "remedy_revive")


def revive_pairs(results: dict) -> list[tuple[dict, dict]]:
    """Per architecture, the ReLU cells of high_lr and remedy_revive."""
    cells = {(c["architecture"], c["scenario"], c["activation"]): c for c in results["cells"]}
    pairs = []
    for arch in dict.fromkeys(c["architecture"] for c in results["cells"]):
        without, with_ = (cells.get((arch, s, "ReLU")) for s in REVIVE_PAIR)
        if without is not None and with_ is not None:
            pairs.append((without, with_))
    return pairs


def revive_columns(results: dict) -> tuple[str, ...]:
    return (
        "network",
        "revive",
        "test accuracy",
        "dead units (final epoch)",
        f"dead units ({span('last', results['config']['revive_every'], 'epoch')})",
        "units revived per run",
    )


def last_period_dead(cell: dict, results: dict) -> float:
    """The dead fraction averaged over the last `revive_every` epochs: one whole revive
    cycle, so neither the trough just after a revive nor the peak before one stands alone."""
    curve = cell["dead_fraction_per_epoch"]
    return statistics.fmean(curve[-results["config"]["revive_every"] :])


def revive_rows(results: dict) -> list[tuple[str, ...]]:
    rows = []
    for without, with_ in revive_pairs(results):
        for cell, label in ((without, "no"), (with_, "yes")):
            revived = (
                f"{sum(cell['revived_per_epoch']):.1f} (of {count(cell['units'], 'unit')})"
                if cell is with_
                else ""
            )
            rows.append(
                (
                    network(cell),
                    label,
                    spread(cell, "test_accuracy", decimal),
                    spread(cell, "dead_fraction", pct),
                    pct(last_period_dead(cell, results)),
                    revived,
                )
            )
    return rows


def revive_epochs(cell: dict, results: dict) -> list[int]:
    """The epochs (1-based) after which remedy_revive called revive: every `revive_every`,
    never after the last (as training.revive_now schedules them)."""
    every = results["config"]["revive_every"]
    epochs = len(cell["dead_fraction_per_epoch"])
    return [e for e in range(every, epochs, every)]


def revive_times(cell: dict, results: dict) -> str:
    """ "MLP: after epochs 3, 6", "MLP: after epoch 3", or "MLP: not once in its 2 epochs"
    (a run no longer than `revive_every`)."""
    epochs = revive_epochs(cell, results)
    if not epochs:
        trained = count(len(cell["dead_fraction_per_epoch"]), "epoch")
        return f"{network(cell)}: not once in its {trained}"
    return f"{network(cell)}: after {'epoch' if len(epochs) == 1 else 'epochs'} {listed(epochs)}"


def revive_warning_lines(results: dict) -> list[str]:
    """revive's warnings (layers it skipped and why), with how often each was logged."""
    lines = []
    for _, with_ in revive_pairs(results):
        for message, times in with_["revive_warnings"].items():
            lines.append(f"{network(with_)}, {times}x: {message}")
    return lines


def revive_text(results: dict) -> str:
    """The revive comparison for stdout."""
    warnings = revive_warning_lines(results)
    text = (
        "ReLU under high_lr, without and with torch_ext.revive "
        f"{span('every', results['config']['revive_every'], 'epoch')}:\n"
        + aligned_table(revive_columns(results), revive_rows(results), left=2)
    )
    return text + "".join(f"\nrevive warned: {line}" for line in warnings)


def dead_over_epochs_table(results: dict) -> str:
    """Dead units per epoch, without and with revive, and the units revived after it."""
    pairs = revive_pairs(results)
    columns = ["epoch"]
    for without, _ in pairs:
        name = network(without)
        columns += [f"{name} dead, no revive", f"{name} dead, revive", f"{name} revived after"]
    epochs = max((len(w["dead_fraction_per_epoch"]) for w, _ in pairs), default=0)
    rows = []
    for epoch in range(epochs):
        row = [str(epoch + 1)]
        for without, with_ in pairs:
            if epoch < len(without["dead_fraction_per_epoch"]):
                row += [
                    pct(without["dead_fraction_per_epoch"][epoch]),
                    pct(with_["dead_fraction_per_epoch"][epoch]),
                    f"{with_['revived_per_epoch'][epoch]:g}",
                ]
            else:
                row += ["", "", ""]
        rows.append(tuple(row))
    return markdown_table(tuple(columns), rows)


def relu_estimates(results: dict) -> list[dict]:
    """The born-dead estimates of ReLU networks."""
    return [e for e in results["born_dead"] if e["activation"] == "ReLU"]


def variant_estimates(results: dict) -> list[dict]:
    """The born-dead estimates of the variants (every activation but ReLU)."""
    return [e for e in results["born_dead"] if e["activation"] != "ReLU"]


def born_dead_inputs(results: dict) -> list[str]:
    """The input sets the born-dead estimate drew ("one point", "data"), in order."""
    return list(dict.fromkeys(e["inputs"] for e in results["born_dead"]))


def networks_born_dead(estimates: list[dict]) -> tuple[int, int]:
    """How many of the estimates' random networks were born dead, and of how many."""
    dead = sum(round(e["probability"] * e["trials"]) for e in estimates)
    return dead, sum(e["trials"] for e in estimates)


def listed(values) -> str:
    """Distinct values in their first order, joined by commas: "2, 5, 10"."""
    return ", ".join(str(v) for v in dict.fromkeys(values))


def born_dead_columns(results: dict) -> tuple[str, ...]:
    inputs = born_dead_inputs(results)
    probabilities = []
    for name in inputs:
        probabilities.append(f"P(born dead), {name}")
        if name == "one point":
            probabilities.append("analytic, one point")
    return ("activation", "width", "depth", *probabilities, "networks per cell")


def relu_born_dead_row(results: dict, width: int, depth: int) -> tuple[str, ...]:
    """The ReLU row of one width and depth: Monte Carlo ± standard error per input set,
    and the analytic value beside the one-point estimate."""
    at = {
        e["inputs"]: e
        for e in relu_estimates(results)
        if e["width"] == width and e["depth"] == depth
    }
    cells = []
    for name in born_dead_inputs(results):
        e = at.get(name)
        cells.append("" if e is None else f"{e['probability']:.3f} ± {e['standard_error']:.3f}")
        if name == "one point":
            analytic = None if e is None else e.get("analytic")
            cells.append("" if analytic is None else f"{analytic:.3f}")
    trials = listed(f"{e['trials']:,}" for e in at.values())
    return ("ReLU", str(width), str(depth), *cells, trials)


def variants_born_dead_row(results: dict) -> tuple[str, ...]:
    """One row for all the variants: the networks born dead of those drawn, per input set."""
    variants = variant_estimates(results)
    cells = []
    for name in born_dead_inputs(results):
        dead, drawn = networks_born_dead([e for e in variants if e["inputs"] == name])
        never = "never: " if dead == 0 else ""
        cells.append(f"{never}{dead} of {count(drawn, 'network')}")
        if name == "one point":
            cells.append("")
    return (
        listed(e["activation"] for e in variants),
        listed(e["width"] for e in variants),
        listed(e["depth"] for e in variants),
        *cells,
        listed(f"{e['trials']:,}" for e in variants),
    )


def born_dead_table(results: dict) -> str:
    """ReLU: one row per width and depth; the variants: one row for all of them."""
    settings = sorted({(e["width"], e["depth"]) for e in relu_estimates(results)})
    rows = [relu_born_dead_row(results, width, depth) for width, depth in settings]
    if variant_estimates(results):
        rows.append(variants_born_dead_row(results))
    return markdown_table(born_dead_columns(results), rows)


def selu_table(results: dict) -> str:
    moments = results["selu_check"]
    depth = len(next(iter(moments.values())))
    names = list(moments)
    lines = [
        "| layer | " + " | ".join(f"{n} mean | {n} var" for n in names) + " |",
        "|---" * (1 + 2 * len(names)) + "|",
    ]
    for layer in range(depth):
        cells = " | ".join(
            f"{moments[n][layer]['mean']:.3f} | {moments[n][layer]['variance']:.3f}" for n in names
        )
        lines.append(f"| {layer + 1} | {cells} |")
    return "\n".join(lines)


# --- the summary that opens report.md: what this run found, from its own numbers


def shared_cells(results: dict) -> list[dict]:
    """The cells of the scenarios that trained every activation (not the ReLU remedies)."""
    cells = results["cells"]
    activations = {c["activation"] for c in cells}
    trained: dict[str, set[str]] = {}
    for c in cells:
        trained.setdefault(c["scenario"], set()).add(c["activation"])
    return [c for c in cells if trained[c["scenario"]] == activations]


def mean_per_activation(cells: list[dict], key: str) -> dict[str, float]:
    """The mean of ``cell[key]`` over the cells of each activation, in their first order."""
    values: dict[str, list[float]] = {}
    for c in cells:
        values.setdefault(c["activation"], []).append(c[key])
    return {activation: statistics.fmean(v) for activation, v in values.items()}


def relu_versus_variants(values: dict[str, str]) -> str:
    """ "ReLU a vs LeakyReLU b, ELU c": ReLU first, then the others."""
    others = ", ".join(f"{name} {v}" for name, v in values.items() if name != "ReLU")
    if "ReLU" not in values:
        return others
    return f"ReLU {values['ReLU']} vs {others}" if others else f"ReLU {values['ReLU']}"


def scenarios_text(cells: list[dict]) -> str:
    """ "MLP and CNN under `baseline`, `high_lr`": the cells' networks and scenarios."""
    networks = " and ".join(dict.fromkeys(network(c) for c in cells))
    scenarios = listed(f"`{c['scenario']}`" for c in cells)
    return f"{networks} under {scenarios}"


def most_units_lost(results: dict) -> str:
    """ "the most: ReLU, 88.0% of the MLP's hidden units under `negative_bias`", or that no
    network lost a unit."""
    worst = max(results["cells"], key=lambda c: c["dead_fraction_mean"])
    if worst["dead_fraction_mean"] == 0:
        return "no network lost a unit: no hidden unit was dead at the end of any run"
    return (
        f"the most: {worst['activation']}, {pct(worst['dead_fraction_mean'])} of the "
        f"{network(worst)}'s hidden units under `{worst['scenario']}`"
    )


def dead_at_the_end_line(results: dict) -> str:
    cells = shared_cells(results)
    dead = mean_per_activation(cells, "dead_fraction_mean")
    tau_dormant = mean_per_activation(cells, "tau_dormant_fraction_mean")
    values = {a: f"{pct(v)} ({pct(tau_dormant[a])})" for a, v in dead.items()}
    return (
        f"Dead units at the end (tau-dormant in brackets), mean over the "
        f"{scenarios_text(cells)}: {relu_versus_variants(values)}; {most_units_lost(results)}."
    )


def accuracy_line(results: dict) -> str:
    accuracy = mean_per_activation(shared_cells(results), "test_accuracy_mean")
    return (
        "Test accuracy, mean over the same networks and scenarios: "
        f"{relu_versus_variants({a: f'{v:.3f}' for a, v in accuracy.items()})}."
    )


# The scenarios that kill ReLU units, where the summary sets the smooth activations
# against ReLU.
KILLING_SCENARIOS = ("high_lr", "negative_bias")


def smooth_pairs(results: dict) -> list[tuple[dict, list[dict]]]:
    """Per killing scenario and network, its ReLU cell and its GELU and SiLU cells."""
    cells = {(c["architecture"], c["scenario"], c["activation"]): c for c in results["cells"]}
    pairs = []
    for scenario in KILLING_SCENARIOS:
        for arch in dict.fromkeys(c["architecture"] for c in results["cells"]):
            relu = cells.get((arch, scenario, "ReLU"))
            smooth = [cells[(arch, scenario, a)] for a in SMOOTH if (arch, scenario, a) in cells]
            if relu is not None and smooth:
                pairs.append((relu, smooth))
    return pairs


def than_relu(smooth: str, pairs: list[tuple[dict, list[dict]]]) -> str:
    """ "GELU: fewer dead units than ReLU in 2 of 4, as many in 2": how the smooth
    activation's dead fraction at the end compares with ReLU's, network by scenario."""
    fewer = same = more = 0
    for relu, cells in pairs:
        for cell in cells:
            if cell["activation"] == smooth:
                dead, relu_dead = cell["dead_fraction_mean"], relu["dead_fraction_mean"]
                fewer += dead < relu_dead
                same += dead == relu_dead
                more += dead > relu_dead
    parts = [f"fewer dead units than ReLU in {fewer} of {fewer + same + more}"]
    parts += [f"{word} in {n}" for word, n in (("as many", same), ("more", more)) if n]
    return f"{smooth}: " + ", ".join(parts)


def smooth_line(results: dict) -> str:
    """Whether GELU and SiLU escape dying where ReLU dies: per killing scenario and network,
    dead units / tau-dormant units at the end / test accuracy of ReLU, GELU and SiLU."""
    pairs = smooth_pairs(results)
    smooth = list(dict.fromkeys(c["activation"] for _, cells in pairs for c in cells))
    per_scenario: dict[str, list[str]] = {}
    for relu, cells in pairs:
        values = ", ".join(
            f"{c['activation']} {pct(c['dead_fraction_mean'])} / "
            f"{pct(c['tau_dormant_fraction_mean'])} / {c['test_accuracy_mean']:.3f}"
            for c in (relu, *cells)
        )
        per_scenario.setdefault(relu["scenario"], []).append(f"{network(relu)} {values}")
    numbers = "; ".join(
        f"`{scenario}`: {'; '.join(networks)}" for scenario, networks in per_scenario.items()
    )
    scenarios = " and ".join(f"`{s}`" for s in per_scenario)
    verdicts = "; ".join(than_relu(a, pairs) for a in smooth)
    return (
        f"{' and '.join(smooth)} against ReLU under {scenarios}: {verdicts} (dead / "
        f"tau-dormant at the end / test accuracy: {numbers})."
    )


# The born-dead input sets, as the summary says them.
INPUTS_TEXT = {"one point": "at one input point", "data": "on the data"}


def born_dead_line(results: dict) -> str:
    """ReLU at the narrowest width and greatest depth estimated, and the variants."""
    relu = relu_estimates(results)
    width = min(e["width"] for e in relu)
    depth = max(e["depth"] for e in relu)
    at = [e for e in relu if e["width"] == width and e["depth"] == depth]
    rates = ", ".join(
        f"{pct(e['probability'])} of {e['trials']:,} {INPUTS_TEXT.get(e['inputs'], e['inputs'])}"
        for e in at
    )
    line = f"Born dead at initialisation: ReLU nets of width {width} and depth {depth}: {rates}"
    if variant_estimates(results):
        dead, drawn = networks_born_dead(variant_estimates(results))
        line += f"; the variants: {dead} of {count(drawn, 'network')}"
    return line + "."


def revive_line(results: dict) -> str:
    changes = "; ".join(
        f"{network(without)} dead at the end {pct(without['dead_fraction_mean'])} -> "
        f"{pct(with_['dead_fraction_mean'])}, test accuracy "
        f"{without['test_accuracy_mean']:.3f} -> {with_['test_accuracy_mean']:.3f}"
        for without, with_ in revive_pairs(results)
    )
    return f"torch_ext.revive on ReLU under `{REVIVE_PAIR[0]}`: {changes}."


def summary_lines(results: dict) -> list[str]:
    """What the run found, one line each, from its results: five when every part ran
    (``selu-check`` adds none); fewer when some did not."""
    lines = []
    if results["cells"]:
        lines += [dead_at_the_end_line(results), accuracy_line(results)]
    if smooth_pairs(results):
        lines.append(smooth_line(results))
    if relu_estimates(results):
        lines.append(born_dead_line(results))
    if revive_pairs(results):
        lines.append(revive_line(results))
    return lines


def summary_section(results: dict) -> str:
    lines = summary_lines(results)
    if not lines:
        return ""
    return "## Summary\n\n" + "\n".join(f"- {line}" for line in lines) + "\n"


def write_markdown(results: dict, out: Path) -> None:
    sections = [f"# Dying ReLU study\n\n{summary_section(results)}", header_section(results)]
    if results["cells"]:
        sections.append(training_section(results))
        if revive_pairs(results):
            sections.append(revive_section(results))
    if results["born_dead"]:
        sections.append(born_dead_section(results))
    if results["selu_check"]:
        sections.append(selu_section(results))
    (out / "report.md").write_text("\n".join(sections))


def networks_text(results: dict) -> str:
    """The networks trained, and those left out with why."""
    config = results["config"]
    side = math.isqrt(results["data"]["features"])
    text = {
        "mlp": f"- MLP: {count(config['depth'], 'hidden layer')} of "
        f"{count(config['width'], 'unit')}; {count(config['epochs'], 'epoch')}, "
        f"{count(config['seeds'], 'seed')} per cell.",
        "cnn": f"- CNN: the features read as one-channel {side}x{side} images (row-major); "
        + " -> ".join(
            f"Conv 3x3 ({count(c, 'channel')}) -> BatchNorm -> activation"
            for c in config["cnn_channels"]
        )
        + f" -> 2x2 max-pool -> Linear; {count(config['cnn_epochs'], 'epoch')}, "
        f"{count(config['cnn_seeds'], 'seed')} per cell. Its units are channels.",
    }
    lines = [text[a] for a in config["architectures"]]
    lines += [
        f"- {NETWORKS.get(a, a)}: not trained: {why}."
        for a, why in results.get("architectures_left_out", {}).items()
    ]
    return "\n".join(lines)


def data_text(results: dict) -> str:
    """ "digits: 1,347 training samples and 450 test samples, 64 features, 10 classes." """
    data = results["data"]
    return (
        f"{data['name']}: {count(data['train'], 'training sample')} and "
        f"{count(data['test'], 'test sample')},\n{count(data['features'], 'feature')}, "
        f"{count(data['classes'], 'class', 'classes')}."
    )


def seeds_text(results: dict) -> str:
    """How the tables give a cell's seeds: mean ± standard deviation, or one run's value
    (one seed has no spread to show)."""
    seeds = seeds_per_cell(results)
    if seeds == {1}:
        return "one seed per cell: each value is one run's, with no spread"
    if 1 in seeds:
        return "mean ± standard deviation over seeds, or the value alone for one seed"
    return "mean ± standard deviation over seeds"


def header_section(results: dict) -> str:
    config = results["config"]
    return f"""## Data and networks

Data: {data_text(results)}
Networks (Adam, batch {config["batch"]}; {seeds_text(results)}):

{networks_text(results)}

A unit is *dead* when, over a whole epoch, no sample gave it a local derivative |f'(z)|
above 1e-3 (it cannot learn; for GELU every z below about -3.81, for SiLU below -8.99, or
in the narrow band where f' crosses 0); *dormant* when no sample made it active (z > 0); a
CNN channel counts every position of every image. *Tau-dormant* (ReDo, Sokar et al. 2023):
its mean |output| over the epoch is at most tau = {config["tau"]:g} times the mean of its
layer's units, whatever its activation: it may still learn, but its layer hardly hears it.
*Active rate*: the share of inputs (positions) on which a hidden unit is active, averaged
over units, in the final epoch: a unit active on a few inputs only is not dead, yet
contributes little.

Scenarios:
{chr(10).join(f"- `{s['name']}`: {s['description']}" for s in results["scenarios"])}
"""


def training_section(results: dict) -> str:
    return f"""## Dead units and test accuracy

{summary_table(results)}

![dead and tau-dormant units per epoch](dead_fraction_vs_epoch.png)
![final dead fraction per layer](final_dead_per_layer.png)
![test accuracy](accuracy.png)
"""


def revive_section(results: dict) -> str:
    pairs = revive_pairs(results)
    after = "; ".join(revive_times(w, results) for _, w in pairs)
    warnings = revive_warning_lines(results)
    skipped = (
        "revive skipped no layer."
        if not warnings
        else "revive skipped layers, warning (on the logger `torch_ext.revive`; counted over "
        "all calls and seeds):\n\n" + "\n".join(f"- {line}" for line in warnings)
    )
    every = span("every", results["config"]["revive_every"], "epoch")
    return f"""## Reviving dead units

ReLU under the high learning rate, without (`high_lr`) and with (`remedy_revive`)
`torch_ext.revive(model, monitor, optimizer)` {every} ({after}; never after
the last). Revive re-initialises the units the monitor found dead in the epoch just ended,
keeping what the network computes; the next epoch's count shows whether they stayed alive.
"units revived per run": the mean over seeds of all units revived in a run (0 when revive
found none dead, or could not revive them); a unit revived twice counts twice.

{markdown_table(revive_columns(results), revive_rows(results))}

{skipped}

Dead units per epoch ({over_seeds(results)}) and the units revived after each epoch:

{dead_over_epochs_table(results)}

![dead units with and without revive](revive.png)
"""


def born_dead_section(results: dict) -> str:
    data_inputs = min(results["config"]["born_dead"]["data_inputs"], results["data"]["train"])
    return f"""## Born dead at initialisation

He-normal weights, zero biases; the fraction of random networks with a hidden layer that
outputs zero on every input, ± its standard error. "one point": a single input; "data":
the first {count(data_inputs, "training input")}. The analytic value 1 - (1 - 2^-N)^L holds
for one input point (width N, L hidden layers) and bounds the data case from above. The
variants keep a non-zero output for negative inputs: their one row counts their networks
born dead over all their settings.

{born_dead_table(results)}

![born dead](born_dead.png)
"""


def selu_section(results: dict) -> str:
    config = results["config"]
    return f"""## SELU's self-normalisation

Mean and variance of each layer's activations on the data, in {len(next(iter(results["selu_check"].values())))}-layer
MLPs of width {config["selu_width"]} with LeCun-normal init (std 1/sqrt(fan_in)), zero biases.

{selu_table(results)}

![layer moments](selu_moments.png)
"""


def save(fig, path: Path) -> None:
    """Lays out, writes and closes a figure; the image grows to hold legends outside the
    axes."""
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def legend_outside(ax, axes=None, entries: dict | None = None, **kwargs) -> None:
    """A legend right of ``ax``, outside it, so it covers no data.

    Args:
        ax: the axes the legend hangs beside (the rightmost panel of a row).
        axes: the axes whose labelled artists it lists, each label once; default ``[ax]``.
        entries: ``{label: artist}`` to list instead of the axes' labelled artists.
        kwargs: passed to ``Axes.legend`` (``fontsize``, ``title``).
    """
    if entries is None:
        entries = {}
        for each in axes if axes is not None else [ax]:
            for handle, label in zip(*each.get_legend_handles_labels()):
                entries.setdefault(label, handle)
    ax.legend(
        list(entries.values()),
        list(entries),
        loc="upper left",
        bbox_to_anchor=(1.02, 1),
        borderaxespad=0,
        **kwargs,
    )


def activation_colours(results: dict) -> dict[str, str]:
    """One colour per activation, the same in every plot and panel."""
    activations = dict.fromkeys(c["activation"] for c in results["cells"])
    return {activation: f"C{i}" for i, activation in enumerate(activations)}


def cell_label(cell: dict) -> str:
    return f"{network(cell)} {cell['activation']}\n{cell['scenario']}"


def plot_training(results: dict, out: Path) -> None:
    plot_dead_vs_epoch(results, out)
    plot_dead_per_layer(results, out)
    plot_accuracy(results, out)
    plot_revive(results, out)


# The per-epoch measures plot_dead_vs_epoch draws: a row of panels each, per network.
EPOCH_MEASURES = {
    "dead_fraction_per_epoch": "dead units (%)",
    "tau_dormant_fraction_per_epoch": "tau-dormant units (%)",
}


def activation_style(activation: str) -> str:
    """Solid lines for the ReLU family, dashed for the smooth activations (GELU, SiLU)."""
    return "--" if activation in SMOOTH else "-"


def plot_dead_vs_epoch(results: dict, out: Path) -> None:
    """Per network two rows of panels, dead units and tau-dormant units; one panel per
    scenario."""
    scenarios = [s["name"] for s in results["scenarios"]]
    archs = list(dict.fromkeys(c["architecture"] for c in results["cells"]))
    rows = [(arch, key) for arch in archs for key in EPOCH_MEASURES]
    fig, axes = plt.subplots(
        len(rows),
        len(scenarios),
        figsize=(3.6 * len(scenarios), 2.9 * len(rows)),
        sharey=True,
        squeeze=False,
    )
    colours = activation_colours(results)
    for row, (arch, key) in zip(axes, rows):
        for ax, scenario in zip(row, scenarios):
            for cell in (
                c
                for c in results["cells"]
                if c["scenario"] == scenario and c["architecture"] == arch
            ):
                curve = cell[key]
                ax.plot(
                    range(1, len(curve) + 1),
                    [100 * v for v in curve],
                    activation_style(cell["activation"]),
                    marker=".",
                    color=colours[cell["activation"]],
                    label=cell["activation"],
                )
            ax.set_title(f"{NETWORKS.get(arch, arch)}: {scenario}", fontsize=9)
            ax.grid(alpha=0.3)
        row[0].set_ylabel(f"{NETWORKS.get(arch, arch)}: {EPOCH_MEASURES[key]}", fontsize=9)
    for ax in axes[-1]:
        ax.set_xlabel("epoch")
    legend_outside(axes[0][-1], axes.flat, fontsize=8, title="activation")
    fig.suptitle(
        f"Dead and tau-dormant (tau = {results['config']['tau']:g}) hidden units during "
        f"training ({over_seeds(results)})"
    )
    save(fig, out / "dead_fraction_vs_epoch.png")


def plot_dead_per_layer(results: dict, out: Path) -> None:
    fig, ax = plt.subplots(figsize=(max(9, 0.35 * len(results["cells"])), 4))
    cells = results["cells"]
    layers = max(len(c["layer_dead_fraction"]) for c in cells)  # the CNN has fewer
    width = 0.8 / layers
    for layer in range(layers):
        ax.bar(
            [i + layer * width for i in range(len(cells))],
            [
                100
                * (c["layer_dead_fraction"][layer] if layer < len(c["layer_dead_fraction"]) else 0)
                for c in cells
            ],
            width,
            label=f"hidden layer {layer + 1}",
        )
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(cells))])
    ax.set_xticklabels([cell_label(c) for c in cells], rotation=90, fontsize=7)
    ax.set_ylabel("dead units at the end (%)")
    ax.set_title(f"Dead units per hidden layer after training ({over_seeds(results)})")
    legend_outside(ax, fontsize=8)
    save(fig, out / "final_dead_per_layer.png")


def plot_accuracy(results: dict, out: Path) -> None:
    cells = results["cells"]
    colours = activation_colours(results)
    fig, ax = plt.subplots(figsize=(max(9, 0.35 * len(cells)), 4))
    ax.bar(
        range(len(cells)),
        [c["test_accuracy_mean"] for c in cells],
        yerr=[c["test_accuracy_std"] for c in cells],
        capsize=3,
        color=[colours[c["activation"]] for c in cells],
    )
    ax.set_xticks(range(len(cells)))
    ax.set_xticklabels([cell_label(c) for c in cells], rotation=90, fontsize=7)
    ax.set_ylabel("test accuracy")
    ax.set_ylim(0, 1)
    ax.set_title(
        "Held-out accuracy per network, activation and scenario "
        f"({over_seeds(results, 'mean ± std')})"
    )
    legend_outside(
        ax,
        entries={a: matplotlib.patches.Patch(color=c) for a, c in colours.items()},
        fontsize=8,
        title="activation",
    )
    save(fig, out / "accuracy.png")


def plot_revive(results: dict, out: Path) -> None:
    """Dead ReLU units per epoch under high_lr, without (dashed) and with revive (solid), one
    colour per architecture; below, the units revived after each epoch."""
    pairs = revive_pairs(results)
    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(8.5, 5.5), sharex=True, gridspec_kw={"height_ratios": [2, 1]}
    )
    for i, (without, with_) in enumerate(pairs):
        name, colour = network(without), f"C{i}"
        for cell, style, label in ((without, "--", "no revive"), (with_, "-", "revive")):
            curve = cell["dead_fraction_per_epoch"]
            top.plot(
                range(1, len(curve) + 1),
                [100 * v for v in curve],
                style,
                marker=".",
                color=colour,
                label=f"{name}, {label}",
            )
        revived = with_["revived_per_epoch"]
        bottom.bar(
            [e + 1 + (i - 0.5 * (len(pairs) - 1)) * 0.3 for e in range(len(revived))],
            revived,
            0.3,
            color=colour,
            label=name,
        )
    top.set_ylabel("dead ReLU units (%)")
    top.set_title(
        "ReLU, high learning rate: torch_ext.revive "
        f"{span('every', results['config']['revive_every'], 'epoch')} ({over_seeds(results)})",
        fontsize=10,
    )
    top.grid(alpha=0.3)
    legend_outside(top, fontsize=8)
    bottom.set_ylabel("units revived\nafter the epoch")
    bottom.set_xlabel("epoch")
    bottom.grid(alpha=0.3)
    if pairs:
        legend_outside(bottom, fontsize=8)
    save(fig, out / "revive.png")


def plot_born_dead(results: dict, out: Path) -> None:
    estimates = results["born_dead"]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for ax, inputs in zip(axes, ("one point", "data")):
        for width in sorted({e["width"] for e in estimates}):
            rows = [
                e
                for e in estimates
                if e["inputs"] == inputs and e["width"] == width and e["activation"] == "ReLU"
            ]
            ax.errorbar(
                [e["depth"] for e in rows],
                [e["probability"] for e in rows],
                yerr=[e["standard_error"] for e in rows],
                marker="o",
                capsize=2,
                label=f"ReLU, width {width}",
            )
            if inputs == "one point":
                ax.plot(
                    [e["depth"] for e in rows],
                    [e["analytic"] for e in rows],
                    "k--",
                    lw=0.8,
                    label="analytic (one point)",
                )
        others = [e for e in estimates if e["inputs"] == inputs and e["activation"] != "ReLU"]
        if others:
            ax.plot(
                [e["depth"] for e in others],
                [e["probability"] for e in others],
                "x",
                color="gray",
                label="Leaky ReLU / PReLU / ELU / SELU",
            )
        ax.set_xscale("log")
        depths = sorted({e["depth"] for e in estimates})
        ax.set_xticks(depths)
        ax.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        ax.set_xlabel("hidden layers (depth)")
        ax.set_title(f"inputs: {inputs}" + (" (dashed: analytic)" if inputs == "one point" else ""))
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("P(born dead)")
    legend_outside(axes[-1], axes, fontsize=8)
    fig.suptitle("Probability that a He-initialised network is born dead")
    save(fig, out / "born_dead.png")


def plot_selu(results: dict, out: Path) -> None:
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for name, moments in results["selu_check"].items():
        layers = range(1, len(moments) + 1)
        axes[0].plot(layers, [m["mean"] for m in moments], marker=".", label=name)
        axes[1].plot(layers, [m["variance"] for m in moments], marker=".", label=name)
    axes[0].axhline(0, color="k", lw=0.6)
    axes[1].axhline(1, color="k", lw=0.6)
    axes[1].set_yscale("log")
    for ax, what in zip(axes, ("mean", "variance")):
        ax.set_xlabel("layer")
        ax.set_ylabel(f"activation {what}")
        ax.grid(alpha=0.3)
    legend_outside(axes[-1], fontsize=8)
    fig.suptitle(
        "Layer activation moments, LeCun-normal init (SELU's fixed point: mean 0, variance 1)"
    )
    save(fig, out / "selu_moments.png")


def write(results: dict, out: Path) -> None:
    """results.json, report.md and the plots of the parts that ran."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=1))
    write_markdown(results, out)
    if results["cells"]:
        plot_training(results, out)
    if results["born_dead"]:
        plot_born_dead(results, out)
    if results["selu_check"]:
        plot_selu(results, out)
