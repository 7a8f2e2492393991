"""Quality vs removed blocks: FuseGPT fusion against plain removal (per importance metric) and removal + tuning.

Methods, each run at 1..max_remove removed blocks of the same model on the same data:
* remove/cosine: ShortGPT, the lowest Block Influence of one ranking dropped, no training;
* remove/macro: the lowest Macro Influence dropped, rescored after each removal, no training;
* tune/macro: the same blocks as fusion would pick, removed, and the group tuned with the same budget (host
  LoRA and norms, no injected weights): the fair baseline for fusion's learnable weights;
* fuse/macro: FuseGPT (models.prune.fuse);
* fuse/cosine: the same fusion, choosing blocks by Block Influence instead (rescored after each fusion).
Every model is scored with the zoo's held-out evaluation (perplexity and top-1 per task, math answer accuracy).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn
from transformers import PreTrainedTokenizerBase

from models.prune.fusion import fuse, select_blocks
from models.prune.importance import decoder_blocks
from models.prune.remove import remove_blocks

METHODS = ("remove/cosine", "remove/macro", "tune/macro", "fuse/macro", "fuse/cosine")
PANELS = (("code", "ppl"), ("english", "ppl"), ("math", "ppl"), ("math", "answer_top1"))
KEYS = ("ppl", "top1", "answer_top1", "exact_match")


def scores(model: nn.Module, tokenizer: PreTrainedTokenizerBase, preset: str, seed: int = 0) -> dict:
    """The zoo's held-out scores per task: ppl, top1 (fractions) and, for math and recall, answer_top1 and
    exact_match."""
    from models import zoo

    return {
        t: {k: v for k, v in r.items() if k in KEYS} for t, r in zoo.evaluate(model, tokenizer, preset, seed).items()
    }


def compare(
    model: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    windows: Sequence[torch.Tensor],
    max_remove: int,
    preset: str = "default",
    methods: Sequence[str] = METHODS,
    seed: int = 0,
    progress: bool = True,
    **fuse_args,
) -> dict:
    """Scores of `model` with 1..max_remove blocks removed by each method; `windows` (equal-length 1-D token
    tensors) calibrate importance (the first 16) and tune; `fuse_args` go to `fuse` (epochs, rank, ...).

    Returns {"dense": {"blocks", "scores"}, "methods": {method: {str(n): {"removed", "seconds", "scores"}}}};
    seconds is the time to choose and remove (and tune) the blocks, cumulative over depths, scoring excluded."""
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown method {unknown[0]!r}: choose from {', '.join(METHODS)}")
    result = {"dense": {"blocks": len(decoder_blocks(model)), "scores": scores(model, tokenizer, preset, seed)}}
    result["methods"] = {}
    probe = list(windows[:16])
    for method in methods:
        kind, metric = method.split("/")
        rows: dict[str, dict] = {}
        if kind == "remove":
            for n in range(1, max_remove + 1):
                t0 = time.time()
                chosen = select_blocks(model, probe, n, metric, iterative=metric == "macro")
                pruned = remove_blocks(copy.deepcopy(model), chosen)
                rows[str(n)] = {"removed": chosen, "seconds": time.time() - t0}
                rows[str(n)]["scores"] = scores(pruned, tokenizer, preset, seed)
        else:
            clock = {"start": time.time(), "scoring": 0.0}
            removed: list[int] = []

            def record(m: nn.Module, rec: dict, rows=rows, removed=removed, clock=clock) -> None:
                removed.append(rec["block"])
                row = {"removed": sorted(removed), "seconds": time.time() - clock["start"] - clock["scoring"]}
                t0 = time.time()
                row["scores"] = scores(m, tokenizer, preset, seed)
                clock["scoring"] += time.time() - t0
                rows[str(len(removed))] = row

            fuse(
                copy.deepcopy(model),
                windows,
                max_remove,
                metric=metric,
                inject=kind == "fuse",
                seed=seed,
                progress=progress,
                callback=record,
                **fuse_args,
            )
        result["methods"][method] = rows
    return result


def plot(result: dict, path: Path) -> None:
    """Quality vs removed blocks, one line per method, one panel per (task, figure), written atomically (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sim.files import atomic_write

    dense = result["dense"]["scores"]
    fig, axes = plt.subplots(1, len(PANELS), figsize=(13, 3.3))
    for ax, (task, key) in zip(axes, PANELS, strict=True):
        for method, rows in result["methods"].items():
            xs = [0] + [int(n) for n in rows]
            ys = [dense[task][key]] + [r["scores"][task][key] for r in rows.values()]
            ax.plot(xs, ys, marker="o", label=method)
        ax.set_title(f"{task} {'perplexity' if key == 'ppl' else key}", fontsize=9)
        ax.set_xlabel(f"removed blocks (of {result['dense']['blocks']})")
        ax.set_xticks(range(0, 1 + max(int(n) for rows in result["methods"].values() for n in rows)))
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110))
    plt.close(fig)


def table(result: dict) -> str:
    """A text table: one row per (method, removed blocks) with per-task perplexity and math answer accuracy."""
    tasks = ("code", "english", "math")
    head = f"{'method':<16}{'removed':>12}" + "".join(f"{t + ' ppl':>13}" for t in tasks)
    lines = [head + f"{'math ans top1':>15}{'seconds':>9}"]

    def row(name: str, blocks: str, s: dict, seconds: str) -> str:
        return (
            f"{name:<16}{blocks:>12}"
            + "".join(f"{s[t]['ppl']:>13.2f}" for t in tasks)
            + f"{100 * s['math'].get('answer_top1', 0.0):>14.1f}%{seconds:>9}"
        )

    lines.append(row("dense", "-", result["dense"]["scores"], ""))
    for method, rows in result["methods"].items():
        for n, r in rows.items():
            lines.append(row(method, f"{n} {r['removed']}", r["scores"], f"{r['seconds']:.1f}"))
    return "\n".join(lines)
