"""What the models.kv commands leave behind: text tables, CSV files and PNG plots of their figures, and the one
files they write into an output folder (which sim.files.staged_folder puts in place whole).

KL figures are stored in nats/token and shown in mnat (1e-3 nats/token); bits are average KV bits (key and value
bits summed over 2 x layers, as KVTuner counts them).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from sim.files import atomic_write, staged_folder

EVAL_COLUMNS = ("avg_bits", "ppl", "ppl_change_pct", "kl", "top1_agree", "recall", "stored_kbit_per_window")
EVICT_COLUMNS = ("policy", "ratio", "ppl", "kl", "top1_agree", "text_recovery", "recall", "answer_nll")
EVICT_COLUMNS += ("recall_recovery", "mean_kept", "mean_resident", "mean_context")


def write_folder(out: Path, files: dict[str, str | Callable[[str], None]]) -> None:
    """The folder `out` holding `files` ({name: text, or a function that writes the file at the path it is
    given}), built beside it and renamed into place (sim.files.staged_folder)."""
    with staged_folder(out) as folder:
        for name, content in files.items():
            atomic_write(folder / name, content)


def write_results(
    out: Path,
    stem: str,
    report: dict,
    key: str,
    columns: Sequence[str],
    plot: Callable[[dict, str, str], None],
    title: str,
) -> None:
    """The folder `out` with stem.json (the report), stem.csv (results_csv of report["results"]) and stem.png
    (plot(results, title, path) draws it)."""
    results = report["results"]
    files = {
        f"{stem}.json": json_text(report),
        f"{stem}.csv": results_csv(key, columns, results),
        f"{stem}.png": lambda path: plot(results, title, path),
    }
    write_folder(out, files)


def json_text(report: dict) -> str:
    return json.dumps(report, indent=1) + "\n"


def csv_text(head: Sequence[str], rows: Iterable[Sequence]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(head)
    w.writerows(rows)
    return buf.getvalue()


def results_csv(key: str, columns: Sequence[str], results: dict[str, dict]) -> str:
    """One row per entry of `results` ({name: figures}): the name under `key`, then `columns` in order."""
    return csv_text((key, *columns), ((name, *(r[c] for c in columns)) for name, r in results.items()))


def eval_table(results: dict[str, dict[str, float]]) -> str:
    """The `eval` text table, one row per config."""
    head = f"{'config':<16}{'avg bits':>9}{'ppl':>10}{'Δppl %':>9}{'KL mnat':>10}{'top1 %':>8}"
    head += f"{'recall %':>9}{'kbit':>9}"
    rows = [head]
    for name, r in results.items():
        rows.append(
            f"{name:<16}{r['avg_bits']:>9.2f}{r['ppl']:>10.3f}{r['ppl_change_pct']:>9.3f}{1e3 * r['kl']:>10.4f}"
            f"{100 * r['top1_agree']:>8.2f}{100 * r['recall']:>9.1f}{r['stored_kbit_per_window']:>9.1f}"
        )
    return "\n".join(rows)


def _save_figure(fig, path: str) -> None:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, format="png", dpi=120)
    plt.close(fig)


def _figure(size: tuple[float, float], panels: int = 1):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(1, panels, figsize=size)


def _bits_kl_plot(path: str, title: str, ylabel: str, draw: Callable, size: tuple[float, float]) -> None:
    """A PNG of KL (mnat) against average KV bits; draw(ax) adds the points."""
    fig, ax = _figure(size)
    draw(ax)
    ax.set_xlabel("average KV bits")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    _save_figure(fig, path)


def _labelled_points(ax, results: dict[str, dict[str, float]], **style) -> None:
    for name, r in results.items():
        ax.scatter(r["avg_bits"], 1e3 * r["kl"], **style)
        ax.annotate(name, (r["avg_bits"], 1e3 * r["kl"]), fontsize=8, xytext=(3, 3), textcoords="offset points")


def eval_plot(results: dict[str, dict[str, float]], title: str, path: str) -> None:
    """`eval`'s PNG: KL from KV16 against average bits, one labelled point per config."""
    _bits_kl_plot(path, title, "KL from KV16 (1e-3 nats/token)", lambda ax: _labelled_points(ax, results), (5, 3.5))


TUNE_FRONT_HEAD = ("config", "avg_bits", "kl_mnat", "pairs")


def tune_front(report: dict) -> tuple[list[tuple], dict]:
    """(rows of pareto.csv under TUNE_FRONT_HEAD: the uniform presets, then the Pareto set with its per-layer
    pairs; the Pareto point config.json holds) from `tune`'s report (KL in mnat in the rows)."""
    rows = [(name, r["avg_bits"], f"{1e3 * r['kl']:.6g}", "") for name, r in report["uniform"].items()]
    rows += [
        (f"pareto{i}", p["avg_bits"], f"{1e3 * p['kl']:.6g}", " ".join(f"K{k}V{v}" for k, v in p["pairs"]))
        for i, p in enumerate(report["pareto"])
    ]
    chosen = next(p for p in report["pareto"] if p["pairs"] == report["chosen"]["pairs"])
    return rows, chosen


def tune_csvs(report: dict) -> tuple[str, str]:
    """(sensitivity.csv, pareto.csv) of `tune`'s report: per layer, its group and the sensitivity (mnat) of
    each candidate pair; and tune_front's rows."""
    sens = csv_text(
        ("layer", "group", *(f"K{k}V{v}_mnat" for k, v in report["candidates"])),
        (
            (layer, report["labels"][layer], *(f"{1e3 * x:.6g}" for x in row))
            for layer, row in enumerate(report["sensitivity_nats"])
        ),
    )
    return sens, csv_text(TUNE_FRONT_HEAD, tune_front(report)[0])


def tune_plot(report: dict, title: str, path: str) -> None:
    """`tune`'s PNG: every trial, the Pareto set, the chosen config and the uniform presets (KL on a log axis)."""
    chosen = tune_front(report)[1]

    def draw(ax) -> None:
        trials, pareto = report["trials"], report["pareto"]
        ax.scatter([p["avg_bits"] for p in trials], [1e3 * p["kl"] for p in trials], s=10, c="0.75", label="trials")
        ax.plot([p["avg_bits"] for p in pareto], [1e3 * p["kl"] for p in pareto], "o-", ms=4, label="Pareto set")
        ax.scatter(
            chosen["avg_bits"], 1e3 * chosen["kl"], marker="*", s=120, c="tab:red", label="config.json", zorder=3
        )
        _labelled_points(ax, report["uniform"], marker="s", c="k", zorder=3)
        ax.set_yscale("log")
        ax.legend(fontsize=7)

    _bits_kl_plot(path, title, "calibration KL from KV16 (1e-3 nats/token)", draw, (5.5, 3.8))


def evict_table(results: dict[str, dict]) -> str:
    """The `evict` text table, one row per run (policy at a ratio): text figures, then recall figures."""
    head = f"{'run':<16}{'ppl':>9}{'KL mnat':>10}{'top1 %':>8}{'recov %':>9}{'recall %':>9}{'ans nll':>9}{'recov %':>9}"
    rows = [head + "   (text | recall)"]
    for name, r in results.items():
        rows.append(
            f"{name:<16}{r['ppl']:>9.2f}{1e3 * r['kl']:>10.1f}{100 * r['top1_agree']:>8.1f}"
            f"{100 * r['text_recovery']:>9.1f}{100 * r['recall']:>9.1f}{r['answer_nll']:>9.3f}"
            f"{100 * r['recall_recovery']:>9.1f}"
        )
    return "\n".join(rows)


def evict_plot(results: dict[str, dict], title: str, path: str) -> None:
    """KL from dense, recall and recall-time attention recovery against the compression ratio, per policy."""
    panels = (("kl", "text KL from dense (nats/token)"), ("recall", "recall (fraction of prompts)"))
    panels += (("recall_recovery", "recall attention recovery"),)
    fig, axes = _figure((4 * len(panels), 3.5), len(panels))
    policies = sorted({r["policy"] for r in results.values() if r["policy"] != "dense"})
    for ax, (key, label) in zip(axes, panels, strict=True):
        for policy in policies:
            runs = sorted((r["ratio"], r[key]) for r in results.values() if r["policy"] == policy)
            ax.plot([x for x, _ in runs], [y for _, y in runs], "o-", ms=4, label=policy)
        if "dense" in results:
            ax.axhline(results["dense"][key], c="k", ls=":", lw=1, label="dense")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("compression ratio (x)")
        ax.set_title(label, fontsize=9)
    axes[0].legend(fontsize=7)
    fig.suptitle(title, fontsize=9)
    _save_figure(fig, path)
