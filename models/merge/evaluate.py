"""Scoring merged models on the zoo's three tasks (code, math, English): held-out perplexity and task accuracy,
task averages, a markdown/CSV table and a plot.

Task accuracy is the zoo's own measure per task: next-token top-1 for code and English, answer-token top-1 for
math (a 5 M-parameter model cannot do arithmetic, so exact match stays near 0). The task average of a model is
the mean over the three tasks of its held-out NLL (nats/token; the log of the geometric-mean perplexity), which
weighs code's ~150 and math's ~3 perplexity alike.
"""

from __future__ import annotations

import io
import math

import torch
from transformers import PreTrainedModel

from models.zoo.zoo import ACCURACY

TASKS = ("code", "math", "english")


def summary(ev: dict[str, dict[str, float]]) -> dict[str, float]:
    """Per task ppl and accuracy (fractions) from a zoo evaluation, plus mean_nll and mean_accuracy over TASKS."""
    out = {}
    for t in TASKS:
        out[f"{t}_ppl"] = ev[t]["ppl"]
        out[f"{t}_acc"] = ev[t][ACCURACY[t]]
    out["mean_nll"] = sum(ev[t]["nll"] for t in TASKS) / len(TASKS)
    out["mean_accuracy"] = sum(out[f"{t}_acc"] for t in TASKS) / len(TASKS)
    return out


def gap_to_specialists(ev: dict[str, dict[str, float]], specialists: dict[str, dict]) -> dict[str, float]:
    """Per task, how much worse the model's perplexity is than that task's specialist's: ppl / ppl_spec − 1."""
    return {t: ev[t]["ppl"] / specialists[t][t]["ppl"] - 1 for t in TASKS}


@torch.no_grad()
def windows_nll(model: PreTrainedModel, windows: dict[str, list[torch.Tensor]]) -> dict[str, float]:
    """Mean causal-LM NLL (nats/token) per task over (seq_len,) token windows, and their mean as "mean"."""
    model.eval()
    out = {t: model(input_ids=torch.stack(w), labels=torch.stack(w)).loss.item() for t, w in windows.items()}
    out["mean"] = sum(out.values()) / len(windows)
    return out


def markdown_table(rows: dict[str, dict], specialists: dict[str, dict]) -> str:
    """One row per model: per task ppl and accuracy (%), the task-average NLL and accuracy, and the worst gap to
    a specialist's perplexity on its own task (%)."""
    head = ["model", *[f"{t} ppl" for t in TASKS], *[f"{t} acc%" for t in TASKS], "avg NLL", "avg acc%", "max gap%"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, ev in rows.items():
        s, gap = summary(ev), gap_to_specialists(ev, specialists)
        cells = [name, *[f"{s[f'{t}_ppl']:.2f}" for t in TASKS], *[f"{100 * s[f'{t}_acc']:.1f}" for t in TASKS]]
        cells += [f"{s['mean_nll']:.4f}", f"{100 * s['mean_accuracy']:.2f}", f"{100 * max(gap.values()):+.1f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def csv_table(rows: dict[str, dict]) -> str:
    """The summary of every model as CSV (perplexities, accuracies as fractions, averages)."""
    keys = list(summary(next(iter(rows.values()))))
    lines = [",".join(["model", *keys])]
    lines += [",".join([name, *[f"{v:.6g}" for v in summary(ev).values()]]) for name, ev in rows.items()]
    return "\n".join(lines) + "\n"


def plot(rows: dict[str, dict], title: str) -> bytes:
    """PNG: per task, each model's perplexity relative to the base (bars; lower is better) and, beside it, its
    task accuracy (%)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(rows)
    base = rows.get("base", next(iter(rows.values())))
    fig, axes = plt.subplots(1, 2, figsize=(max(10, 0.55 * len(names) + 4), 5))
    width = 0.8 / len(TASKS)
    for k, t in enumerate(TASKS):
        xs = [i + (k - 1) * width for i in range(len(names))]
        axes[0].bar(xs, [rows[n][t]["ppl"] / base[t]["ppl"] for n in names], width, label=t)
        axes[1].bar(xs, [100 * rows[n][t][ACCURACY[t]] for n in names], width, label=t)
    axes[0].axhline(1.0, color="k", lw=0.8)
    axes[0].set_title("held-out perplexity / base's (lower is better)", fontsize=10)
    axes[0].set_ylabel("ratio")
    axes[1].set_title("task accuracy (code, English: next-token top-1; math: answer top-1)", fontsize=10)
    axes[1].set_ylabel("%")
    low = min(rows[n][t]["ppl"] / base[t]["ppl"] for n in names for t in TASKS)
    axes[0].set_ylim(max(0.0, math.floor(low * 10) / 10 - 0.1), None)
    for ax in axes:
        ax.set_xticks(range(len(names)), names, rotation=60, ha="right", fontsize=8)
        ax.legend()
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()
