"""Controls for PASER (bench.paser) over several seeds, at one budget, on the zoo base model with one block dropped:

  * paser               PASER as bench.paser runs it (concept filter; rejected samples backfilled to the budget);
  * paser-no-backfill   the same selection with the filter's rejections left out (fewer tokens if any rejected);
  * stratified          capability-stratified random: each capability's budget share is its share of the pool's
                        tokens, filled in random order (the baseline PASER's clustering has to beat);
  * random              plain random order.

The pool is the same for every seed (zoo training data drawn with seed 0, so no held-out text enters it); seed s
seeds PASER's clustering, the random orders and the LoRA training (r 8, 2 epochs, batch 8, lr 1e-3). Every method
trains on the same pruned model. Figures: per-window held-out NLL (nats/token) of the recovered model on the first
--test-windows windows of 128 tokens of each task (code, math, English, recall), averaged over seeds; each
method's mean and 95% CI, and each pair's paired difference (lower is better; "better" only when the CI of the
difference excludes 0). Selected tokens and the filter's rejections are reported per seed.

    python -m bench.paser_controls [--preset default] [--seeds 0,1,2] [--budget 0.2] [--pool-size 300]

Writes bench/results/paser_controls.json; one torch thread.
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import torch
from tqdm import tqdm

from bench.controls import finish, seed_averaged, window_nll
from models import zoo
from models.recover.cluster import capability_clusters
from models.recover.embed import embed
from models.recover.instructions import build_pool
from models.recover.pipeline import TASKS, Scored, load_model, parse_drop, run_selection, score, train_copy

TRAIN = {"epochs": 2, "batch": 8, "lr": 1e-3, "r": 8, "alpha": 16.0}
SEQ = 128
METHODS = {"paser": ("paser", True), "paser-no-backfill": ("paser", False), "stratified": ("stratified", True)}
METHODS["random"] = ("random", True)
PAIRS = (
    ("paser", "stratified"),
    ("paser", "random"),
    ("paser-no-backfill", "paser"),
    ("paser-no-backfill", "stratified"),
    ("stratified", "random"),
)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench.paser_controls", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--preset", default="default", help="zoo preset (default: default)")
    p.add_argument("--drop", default="1", help="decoder blocks removed for the pruned model (default 1)")
    p.add_argument("--pool-size", type=int, default=300, help="pool samples per capability (recall a quarter)")
    p.add_argument("--budget", type=float, default=0.2, help="fraction of the pool's tokens (default 0.2)")
    p.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (default 0,1,2)")
    p.add_argument("--test-windows", type=int, default=64, help="held-out windows per task (default 64)")
    args = p.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    torch.set_num_threads(1)
    t0 = time.time()
    original, tokenizer = load_model("base", args.preset)
    pruned, _ = load_model("base", args.preset, parse_drop(args.drop))
    n = args.pool_size
    pool = build_pool(args.preset, {"arithmetic": n, "recall": n // 4, "code": n, "english": n}, 0)
    test = {t: zoo.token_windows(tokenizer, t, "test", SEQ, args.test_windows, args.preset) for t in TASKS}
    base = score(Scored(pool), ["paser"], original, pruned, tokenizer, seed=seeds[0], progress=True)
    emb = embed([s.instruction for s in pool])  # cached by score: each seed only re-clusters
    reference = {
        name: np.concatenate([window_nll(m, test[t]) for t in TASKS])
        for name, m in (("original", original), ("pruned", pruned))
    }
    runs: dict[str, dict] = {}
    for seed in tqdm(seeds, desc="seeds"):
        scored = Scored(pool, base.tokens, base.jsd, capability_clusters(emb, 10, seed), seconds=base.seconds)
        runs[str(seed)] = {}
        for name, (method, backfill) in METHODS.items():
            sel = run_selection(method, scored, args.budget, seed, backfill=backfill)
            model, stats = train_copy(pruned, tokenizer, [pool[i] for i in sel.indices], {**TRAIN, "seed": seed})
            clusters = sel.details.get("clusters", [])
            runs[str(seed)][name] = {
                "selected": len(sel.indices),
                "selected_tokens": sel.tokens,
                "budget_tokens": sel.budget_tokens,
                "ccg_rejected": sum(c["ccg_rejected"] for c in clusters),
                "backfilled": sum(c["backfilled"] for c in clusters),
                "train_loss_last": stats["loss_last"],
                "test_nll": {t: window_nll(model, test[t]).tolist() for t in TASKS},
            }
        print(
            f"seed {seed}: "
            + ", ".join(
                f"{k} {r['selected_tokens']} tokens ({r['backfilled']} backfilled)" for k, r in runs[str(seed)].items()
            ),
            flush=True,
        )
    items = seed_averaged([{m: r[m]["test_nll"] for m in METHODS} for r in runs.values()], METHODS, TASKS)
    result = {
        "settings": {**vars(args), "train": TRAIN, "seq_len": SEQ, "tasks": TASKS, "pool_seed": 0, "threads": 1},
        "pool_samples": len(pool),
        "runs": runs,
        "seconds": round(time.time() - t0, 1),
        "machine": {"python": platform.python_version(), "torch": torch.__version__},
    }
    print(f"budget {args.budget}")
    finish("paser_controls", result, items, PAIRS, seeds, extra=reference)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
