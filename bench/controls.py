"""What the controls benches (merge_controls, fusegpt_controls, paser_controls) share: per-window held-out NLL,
pooling it over seeds, and the figures, paired differences, JSON and printout that follow from it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from models.stats import paired, summary
from sim.files import atomic_write

RESULTS = Path(__file__).resolve().parent / "results"


@torch.no_grad()
def window_nll(model, windows: list[torch.Tensor]) -> np.ndarray:
    """Mean next-token NLL (nats/token) of each (seq_len,) window, (len(windows),)."""
    ids = torch.stack(windows)
    logits = model(input_ids=ids).logits[:, :-1].float()
    nll = torch.nn.functional.cross_entropy(logits.transpose(1, 2), ids[:, 1:], reduction="none")
    return nll.mean(1).numpy()


def seed_averaged(per_seed: list[dict], methods, tasks) -> dict[str, np.ndarray]:
    """Per method: each test window's NLL (all tasks' windows in `tasks` order) averaged over the seeds, from one
    {method: {task: [NLL per window]}} per seed: the items of the paired comparisons."""
    return {m: np.mean([np.concatenate([r[m][t] for t in tasks]) for r in per_seed], axis=0) for m in methods}


def finish(name: str, result: dict, items: dict[str, np.ndarray], pairs, seeds: list[int], extra=None) -> dict:
    """Add "seeds", "test_nll" (mean and ci95 per method, and per `extra` {name: per-window NLL}) and "paired"
    (A - B for each (A, B) of `pairs`; lower NLL is better) to `result`, write bench/results/NAME.json, print."""
    figures = {k: summary(v, seeds[0]) for k, v in {**(extra or {}), **items}.items()}
    compared = {f"{a} - {b}": paired(items[a], items[b], higher_is_better=False, seed=seeds[0]) for a, b in pairs}
    result = {"seeds": seeds, "test_nll": figures, "paired": compared, **result}
    RESULTS.mkdir(exist_ok=True)
    atomic_write(RESULTS / f"{name}.json", json.dumps(result, indent=1) + "\n")
    width = max(len(k) for k in figures) + 2
    print(f"test NLL (nats/token, {next(iter(items.values())).size} windows, seeds {seeds}; mean [95% CI]):")
    for k, f in figures.items():
        print(f"  {k:<{width}}{f['mean']:.4f} [{f['ci95'][0]:.4f}, {f['ci95'][1]:.4f}]")
    for k, d in compared.items():
        verdict = {"a": "first better", "b": "second better", None: "no difference (CI includes 0)"}[d["better"]]
        print(f"  {k:<{2 * width}}{d['mean']:+.4f} [{d['ci95'][0]:+.4f}, {d['ci95'][1]:+.4f}]  {verdict}")
    print(f"wrote {RESULTS / f'{name}.json'}")
    return result
