"""The study's report folder: report.md, results.json and PNG plots."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402

PLOTS = ("dead_fraction_vs_epoch.png", "final_dead_per_layer.png", "accuracy.png",
         "born_dead.png", "selu_moments.png")


def pct(value: float) -> str:
    return f"{100 * value:.1f}%"


SUMMARY_COLUMNS = ("scenario", "activation", "test accuracy", "dead units (final epoch)",
                   "dormant units")


def summary_rows(results: dict) -> list[tuple[str, ...]]:
    """One row per cell: the summary table's values, formatted once for both outputs."""
    return [(c["scenario"], c["activation"],
             f"{c['test_accuracy_mean']:.3f} ± {c['test_accuracy_std']:.3f}",
             f"{pct(c['dead_fraction_mean'])} ± {pct(c['dead_fraction_std'])}",
             pct(c["dormant_fraction_mean"]))
            for c in results["cells"]]


def summary_table(results: dict) -> str:
    """The summary table in Markdown (report.md)."""
    lines = ["| " + " | ".join(SUMMARY_COLUMNS) + " |", "|---" * len(SUMMARY_COLUMNS) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in summary_rows(results)]
    return "\n".join(lines)


def text_table(results: dict) -> str:
    """The summary table for stdout, columns aligned."""
    rows = [SUMMARY_COLUMNS, *summary_rows(results)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(SUMMARY_COLUMNS))]
    lines = ["  ".join(cell.ljust(w) if i < 2 else cell.rjust(w)
                       for i, (cell, w) in enumerate(zip(row, widths))) for row in rows]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def born_dead_table(results: dict) -> str:
    lines = ["| activation | inputs | width | depth | P(born dead), Monte Carlo | analytic (one point) |",
             "|---|---|---|---|---|---|"]
    for e in results["born_dead"]:
        analytic = e.get("analytic")
        lines.append(f"| {e['activation']} | {e['inputs']} | {e['width']} | {e['depth']} | "
                     f"{e['probability']:.3f} ± {e['standard_error']:.3f} | "
                     f"{'' if analytic is None else f'{analytic:.3f}'} |")
    return "\n".join(lines)


def selu_table(results: dict) -> str:
    moments = results["selu_check"]
    depth = len(next(iter(moments.values())))
    names = list(moments)
    lines = ["| layer | " + " | ".join(f"{n} mean | {n} var" for n in names) + " |",
             "|---" * (1 + 2 * len(names)) + "|"]
    for layer in range(depth):
        cells = " | ".join(f"{moments[n][layer]['mean']:.3f} | {moments[n][layer]['variance']:.3f}"
                           for n in names)
        lines.append(f"| {layer + 1} | {cells} |")
    return "\n".join(lines)


def write_markdown(results: dict, out: Path) -> None:
    sections = [header_section(results)]
    if results["cells"]:
        sections.append(training_section(results))
    if results["born_dead"]:
        sections.append(born_dead_section(results))
    if results["selu_check"]:
        sections.append(selu_section(results))
    (out / "report.md").write_text("\n".join(sections))


def header_section(results: dict) -> str:
    config = results["config"]
    return f"""# Dying ReLU study

Data: {results['data']['name']}: {results['data']['train']} training and {results['data']['test']}
test samples, {results['data']['features']} features, {results['data']['classes']} classes.
Network: MLP with {config['depth']} hidden layers of {config['width']} units, Adam, batch
{config['batch']}, {config['epochs']} epochs, {config['seeds']} seeds per cell (mean ± standard
deviation over seeds). A unit is *dead* when, over a whole epoch, no sample gave it a local
derivative above 1e-3 (it cannot learn); *dormant* when no sample made it active (z > 0).

Scenarios:
{chr(10).join(f"- `{s['name']}`: {s['description']}" for s in results['scenarios'])}
"""


def training_section(results: dict) -> str:
    return f"""## Dead units and test accuracy

{summary_table(results)}

![dead fraction per epoch](dead_fraction_vs_epoch.png)
![final dead fraction per layer](final_dead_per_layer.png)
![test accuracy](accuracy.png)
"""


def born_dead_section(results: dict) -> str:
    return f"""## Born dead at initialisation

He-normal weights, zero biases. "one point": a single input; "data": every training
input. The analytic value 1 - (1 - 2^-N)^L holds for one input point (width N, L hidden
layers) and bounds the data case from above.

{born_dead_table(results)}

![born dead](born_dead.png)
"""


def selu_section(results: dict) -> str:
    config = results["config"]
    return f"""## SELU's self-normalisation

Mean and variance of each layer's activations on the data, in {len(next(iter(results['selu_check'].values())))}-layer
MLPs of width {config['selu_width']} with LeCun-normal init (std 1/sqrt(fan_in)), zero biases.

{selu_table(results)}

![layer moments](selu_moments.png)
"""


def save(fig, path: Path) -> None:
    """Lays out, writes and closes a figure."""
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_training(results: dict, out: Path) -> None:
    scenarios = [s["name"] for s in results["scenarios"]]
    fig, axes = plt.subplots(1, len(scenarios), figsize=(4 * len(scenarios), 3.6), sharey=True)
    for ax, scenario in zip(axes, scenarios):
        for cell in (c for c in results["cells"] if c["scenario"] == scenario):
            curve = cell["dead_fraction_per_epoch"]
            ax.plot(range(1, len(curve) + 1), [100 * v for v in curve], marker=".", label=cell["activation"])
        ax.set_title(scenario)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("dead hidden units (%)")
    axes[0].legend(fontsize=8)
    fig.suptitle("Dead units during training (mean over seeds)")
    save(fig, out / "dead_fraction_vs_epoch.png")

    fig, ax = plt.subplots(figsize=(9, 4))
    cells = results["cells"]
    layers = len(cells[0]["layer_dead_fraction"])
    width = 0.8 / layers
    for layer in range(layers):
        ax.bar([i + layer * width for i in range(len(cells))],
               [100 * c["layer_dead_fraction"][layer] for c in cells], width, label=f"hidden layer {layer + 1}")
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(cells))])
    ax.set_xticklabels([f"{c['activation']}\n{c['scenario']}" for c in cells], rotation=90, fontsize=7)
    ax.set_ylabel("dead units at the end (%)")
    ax.set_title("Dead units per hidden layer after training (mean over seeds)")
    ax.legend(fontsize=8)
    save(fig, out / "final_dead_per_layer.png")

    fig, ax = plt.subplots(figsize=(9, 4))
    ax.bar(range(len(cells)), [c["test_accuracy_mean"] for c in cells],
           yerr=[c["test_accuracy_std"] for c in cells], capsize=3,
           color=[f"C{list(dict.fromkeys(x['activation'] for x in cells)).index(c['activation'])}" for c in cells])
    ax.set_xticks(range(len(cells)))
    ax.set_xticklabels([f"{c['activation']}\n{c['scenario']}" for c in cells], rotation=90, fontsize=7)
    ax.set_ylabel("test accuracy")
    ax.set_ylim(0, 1)
    ax.set_title("Held-out accuracy per activation and scenario (mean ± std over seeds)")
    save(fig, out / "accuracy.png")


def plot_born_dead(results: dict, out: Path) -> None:
    estimates = results["born_dead"]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for ax, inputs in zip(axes, ("one point", "data")):
        for width in sorted({e["width"] for e in estimates}):
            rows = [e for e in estimates if e["inputs"] == inputs and e["width"] == width
                    and e["activation"] == "ReLU"]
            ax.errorbar([e["depth"] for e in rows], [e["probability"] for e in rows],
                        yerr=[e["standard_error"] for e in rows], marker="o", capsize=2,
                        label=f"ReLU, width {width}")
            if inputs == "one point":
                ax.plot([e["depth"] for e in rows], [e["analytic"] for e in rows], "k--", lw=0.8)
        others = [e for e in estimates if e["inputs"] == inputs and e["activation"] != "ReLU"]
        if others:
            ax.plot([e["depth"] for e in others], [e["probability"] for e in others], "x",
                    color="gray", label="Leaky ReLU / PReLU / ELU / SELU")
        ax.set_xscale("log")
        depths = sorted({e["depth"] for e in estimates})
        ax.set_xticks(depths)
        ax.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        ax.set_xlabel("hidden layers (depth)")
        ax.set_title(f"inputs: {inputs}" + (" (dashed: analytic)" if inputs == "one point" else ""))
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("P(born dead)")
    axes[0].legend(fontsize=7)
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
        ax.legend()
    fig.suptitle("Layer activation moments, LeCun-normal init (SELU's fixed point: mean 0, variance 1)")
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
