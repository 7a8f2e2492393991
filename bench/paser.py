"""PASER recovery-data selection on the default zoo base model with one decoder block removed.

The original is the zoo base model (4 blocks); the pruned model drops block --drop (default 1: block 0 is
indispensable, removing it multiplies perplexity by ~10; blocks 2 and 3 cost only 3-15% perplexity, block 1
15-34%, which leaves room to measure recovery, most on recall). The pool is built from zoo training data
(--pool-size samples each of arithmetic, code, English, a quarter as many recall). Every method (paser, random,
ifd, full) selects at each budget (fractions of the pool's tokens), and a LoRA (r 8, alpha 16, dropout 0.05) on
all projections is trained from the same pruned model with the same settings and seed (2 epochs, batch 8, peak
lr 1e-3), merged, and scored on held-out text and problems of every task. Selection time includes the scoring a
method needs (PASER: MiniLM embedding, recomputed here even if cached, clustering and the JSD pass over both
models; IFD: two pruned-model passes). Ablations at the middle budget: PASER without the concept-consistency
filter, and PASER with clusters from the original model's mean hidden states instead of MiniLM.

    python -m bench.paser [--drop 1] [--pool-size 300] [--budgets 0.04,0.1,0.2]

Prints a table and writes bench/results/paser.json and bench/results/paser.png; one torch thread.
"""

from __future__ import annotations

import argparse
import platform
import time

import torch

from bench import save_results
from models.recover.__main__ import report
from models.recover.cluster import capability_clusters
from models.recover.embed import model_embeddings
from models.recover.instructions import build_pool
from models.recover.pipeline import TASKS, Scored, compare, load_model, parse_drop, plot, run, score

TRAIN = {"epochs": 2, "batch": 8, "lr": 1e-3, "r": 8, "alpha": 16.0}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench.paser", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--preset", default="default", help="zoo preset (default: default)")
    p.add_argument("--drop", default="1", help="decoder blocks removed for the pruned model (default 1)")
    p.add_argument("--pool-size", type=int, default=300, help="pool samples per capability (recall a quarter)")
    p.add_argument("--budgets", default="0.04,0.1,0.2", help="fractions of the pool's tokens (default 0.04,0.1,0.2)")
    p.add_argument("--seed", type=int, default=0, help="seed of pool, clustering, random selection and training")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    t0 = time.time()
    original, tokenizer = load_model("base", args.preset)
    pruned, _ = load_model("base", args.preset, parse_drop(args.drop))
    n = args.pool_size
    pool = build_pool(args.preset, {"arithmetic": n, "recall": n // 4, "code": n, "english": n}, args.seed)
    budgets = [float(b) for b in args.budgets.split(",")]
    methods = ["paser", "random", "ifd", "full"]
    scored = score(Scored(pool), methods, original, pruned, tokenizer, seed=args.seed, progress=True, cache=False)
    result = compare(scored, original, pruned, tokenizer, budgets, methods, TRAIN, args.preset, args.seed)
    # ablations at the middle budget: no concept-consistency filter; clusters from the model's own states
    mid = budgets[len(budgets) // 2]
    ablations = {
        "paser without CCG": run("paser", mid, scored, pruned, tokenizer, TRAIN, args.preset, args.seed, False)
    }
    states = model_embeddings(original, tokenizer, [s.instruction for s in pool])
    own = Scored(pool, scored.tokens, scored.jsd, capability_clusters(states, 10, args.seed), seconds=scored.seconds)
    ablations["paser, model-state clusters"] = run("paser", mid, own, pruned, tokenizer, TRAIN, args.preset, args.seed)
    for name, row in ablations.items():
        row["method"] = name
    result["ablations"] = list(ablations.values())
    full = next(r for r in result["runs"] if r["method"] == "full")["quality"]["average"]
    for r in result["runs"] + result["ablations"]:
        avg = r["quality"]["average"]
        r["vs_full"] = {
            "ppl_pct": 100 * (avg["ppl"] / full["ppl"] - 1),
            "top1_points": 100 * (avg["top1"] - full["top1"]),
        }
    result["settings"] = {**vars(args), "train": TRAIN, "threads": 1, "tasks": TASKS}
    result["total_seconds"] = round(time.time() - t0, 1)
    result["machine"] = {"python": platform.python_version(), "torch": torch.__version__}
    print(report({**result, "runs": result["runs"] + result["ablations"]}))
    path = save_results("paser", result, lambda png: plot(result, png))
    print(f"total {result['total_seconds']} s; wrote {path} and paser.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
