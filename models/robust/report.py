"""Tables and plots of a run_defenses result: certified accuracy vs radius per method, ASR and clean
accuracy per method (PNG, matplotlib Agg), and a CSV of the same numbers."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from sim.files import atomic_write  # noqa: E402


def table(result: dict) -> str:
    """One line per method: clean accuracy, ASR (percent), average certified radius (words and R_r)."""
    lines = [f"{'method':<15}{'CA %':>8}{'ASR %':>8}{'radius':>9}{'R_r %':>8}"]
    for name, key in (("undefended", "victim"), ("undefended*", "frs")):
        u = result["undefended"][key]
        lines.append(f"{name:<15}{100 * u['clean_accuracy']:>8.1f}{100 * u['asr']:>8.1f}{'-':>9}{'-':>8}")
    for name, m in result["methods"].items():
        lines.append(
            f"{name:<15}{100 * m['clean_accuracy']:>8.1f}{100 * m['asr']:>8.1f}"
            f"{m['average_radius']:>9.2f}{100 * m['average_radius_fraction']:>8.1f}"
        )
    return "\n".join(lines)


def csv_text(result: dict) -> str:
    """method, clean_accuracy, asr, average_radius, average_radius_fraction, certified accuracy at radius r..."""
    radii = sorted({int(r) for m in result["methods"].values() for r in m["certified_accuracy"]})
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(
        ["method", "clean_accuracy", "asr", "average_radius", "average_radius_fraction"] + [f"ca@{r}" for r in radii]
    )
    for name, m in result["methods"].items():
        ca = m["certified_accuracy"]
        w.writerow(
            [name, m["clean_accuracy"], m["asr"], m["average_radius"], m["average_radius_fraction"]]
            + [ca.get(str(r), 0.0) for r in radii]
        )
    return buf.getvalue()


def plot(result: dict, path: str | Path, title: str = "") -> None:
    """Two panels: certified accuracy against radius (word edits) per method; CA and ASR bars per method."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for name, m in result["methods"].items():
        radii = sorted(int(r) for r in m["certified_accuracy"])
        left.step(radii, [m["certified_accuracy"][str(r)] for r in radii], where="post", label=name, marker=".")
    left.set_xlabel("certified radius (word edits)")
    left.set_ylabel("certified accuracy")
    left.legend()
    left.grid(alpha=0.3)
    names = ["undefended"] + list(result["methods"])
    ca = [result["undefended"]["victim"]["clean_accuracy"]] + [m["clean_accuracy"] for m in result["methods"].values()]
    asr = [result["undefended"]["victim"]["asr"]] + [m["asr"] for m in result["methods"].values()]
    x = range(len(names))
    right.bar([i - 0.2 for i in x], [100 * v for v in ca], 0.4, label="clean accuracy")
    right.bar([i + 0.2 for i in x], [100 * v for v in asr], 0.4, label="ASR")
    right.set_xticks(list(x), names, rotation=30)
    right.set_ylabel("%")
    right.legend()
    fig.suptitle(title)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110))
    plt.close(fig)
