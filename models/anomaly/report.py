"""Result tables and the AUROC plot: JSON, CSV and PNG of the same numbers, written atomically."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from sim.files import atomic_write

COLUMNS = ("dataset", "method", "seeds", "auroc_mean", "auroc_std", "auprc_mean", "auprc_std", "f1_mean", "f1_std",
           "train_seconds_mean")  # fmt: skip


def rows(results: list[dict]) -> list[dict]:
    """One flat row per (dataset, method) with mean ± std over seeds."""
    out = []
    for r in results:
        row = {k: r[k] for k in COLUMNS if k in r}
        row["seeds"] = len(r["runs"])
        row["train_seconds_mean"] = sum(run["train_seconds"] for run in r["runs"]) / len(r["runs"])
        out.append(row)
    return out


def table(results: list[dict]) -> str:
    """A text table: AUROC, AUPRC and macro-F1 as mean ± std (in %) over seeds, and training seconds."""
    lines = [f"{'dataset':28s} {'method':10s} {'AUROC %':>14s} {'AUPRC %':>14s} {'macro-F1 %':>14s} {'train s':>8s}"]
    for r in rows(results):
        cells = [f"{100 * r[f'{m}_mean']:6.2f} ± {100 * r[f'{m}_std']:5.2f}" for m in ("auroc", "auprc", "f1")]
        lines.append(f"{r['dataset']:28s} {r['method']:10s} " + " ".join(cells) + f" {r['train_seconds_mean']:8.1f}")
    return "\n".join(lines)


def plot_auroc(results: list[dict], path: Path, title: str = "AUROC per method per dataset") -> None:
    """Grouped bars of mean test AUROC with ±std whiskers, one group per dataset."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    datasets = list(dict.fromkeys(r["dataset"] for r in results))
    methods = list(dict.fromkeys(r["method"] for r in results))
    by = {(r["dataset"], r["method"]): r for r in results}
    width = 0.8 / len(methods)
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(datasets) * max(1, len(methods) / 4)), 4.5))
    for j, m in enumerate(methods):
        xs = [i + (j - (len(methods) - 1) / 2) * width for i, d in enumerate(datasets) if (d, m) in by]
        rs = [by[(d, m)] for d in datasets if (d, m) in by]
        ax.bar(xs, [r["auroc_mean"] for r in rs], width, yerr=[r["auroc_std"] for r in rs], label=m, capsize=2)
    ax.set_xticks(range(len(datasets)), datasets, fontsize=8)
    low = min(r["auroc_mean"] - r["auroc_std"] for r in results)
    ax.set_ylim(max(0.0, low - 0.05), 1.0)
    ax.set_ylabel("test AUROC (mean ± std over seeds)")
    ax.set_title(title)
    ax.legend(fontsize=7, ncol=len(methods), loc="upper center", bbox_to_anchor=(0.5, -0.2))
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=120))
    plt.close(fig)


def write_results(results: list[dict], out_dir: Path, stem: str = "results", meta: dict | None = None) -> list[Path]:
    """<stem>.json (meta's keys, e.g. settings, beside the per-seed runs and summaries), <stem>.csv (the
    summaries) and <stem>_auroc.png."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{stem}.json", out_dir / f"{stem}.csv", out_dir / f"{stem}_auroc.png"]
    atomic_write(paths[0], json.dumps({**(meta or {}), "results": results}, indent=1) + "\n")
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS)
    writer.writeheader()
    writer.writerows(rows(results))
    atomic_write(paths[1], buf.getvalue())
    plot_auroc(results, paths[2])
    return paths
