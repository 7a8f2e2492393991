"""Controls for FuseGPT (bench.fusegpt) over several seeds, one block removed from the zoo base model:

  * fuse/macro    FuseGPT: the lowest Macro Influence block fused into a group of --group blocks (smaller than
                  the model's depth, so group-level fusion is exercised: the default group of 8 covers all 4);
  * fuse/cosine   the same fusion of the block ShortGPT's Block Influence picks (both picks fused);
  * tune/macro    the Macro Influence block removed and the same group tuned with the same budget, without the
                  removed block's weights (the fair baseline for fusion's learnable weights).

Seed s seeds fusion's initialisation and data order and takes its own disjoint chunk of --calib training
windows of 128 tokens (code, English, math; the first 16 score importance). The test set is the same for every
seed: the first --test-windows held-out windows of 128 tokens per task (code, English, math). Figures: per-window
test NLL (nats/token) averaged over seeds, pooled over tasks; each method's mean and 95% CI and each pair's paired
difference (lower is better; "better" only when the CI of the difference excludes 0).

    python -m bench.fusegpt_controls [--preset default] [--seeds 0,1,2] [--group 2] [--epochs 12]

Writes bench/results/fusegpt_controls.json; one torch thread.
"""

from __future__ import annotations

import argparse
import copy
import platform
import time

import numpy as np
import torch
from tqdm import tqdm

from bench.controls import finish, seed_averaged, window_nll
from models import zoo
from models.moe import training_windows
from models.prune import fuse

SEQ = 128
TASKS = ("code", "english", "math")
METHODS = {"fuse/macro": ("macro", True), "fuse/cosine": ("cosine", True), "tune/macro": ("macro", False)}
PAIRS = (("fuse/macro", "tune/macro"), ("fuse/macro", "fuse/cosine"), ("fuse/cosine", "tune/macro"))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench.fusegpt_controls",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--preset", default="default", help="zoo preset (default: default)")
    p.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (default 0,1,2)")
    p.add_argument("--group", type=int, default=2, help="blocks per fusion group, removed one included (default 2)")
    p.add_argument("--calib", type=int, default=64, help=f"fine-tune windows of {SEQ} tokens per seed (default 64)")
    p.add_argument("--epochs", type=int, default=12, help="passes over the windows per fusion (default 12)")
    p.add_argument("--rank", type=int, default=16, help="rank of the coefficient matrices (default 16)")
    p.add_argument("--test-windows", type=int, default=64, help="held-out windows per task (default 64)")
    args = p.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    torch.set_num_threads(1)
    t0 = time.time()
    model, tokenizer = zoo.load("base", args.preset)
    depth = model.config.num_hidden_layers
    test = {t: zoo.token_windows(tokenizer, t, "test", SEQ, args.test_windows, args.preset) for t in TASKS}
    dense = np.concatenate([window_nll(model, test[t]) for t in TASKS])
    # Every seed's chunk comes from the zoo's own (seed-0) training split, so no held-out text is ever tuned on.
    pool = training_windows(tokenizer, args.preset, SEQ, args.calib * (max(seeds) + 1))
    runs: dict[str, dict] = {}
    for seed in tqdm(seeds, desc="seeds"):
        data = pool[seed * args.calib : (seed + 1) * args.calib]
        runs[str(seed)] = {}
        for name, (metric, inject) in METHODS.items():
            t = time.time()
            pruned, stats = fuse(
                copy.deepcopy(model),
                data,
                1,
                metric=metric,
                inject=inject,
                group_size=args.group,
                rank=args.rank,
                epochs=args.epochs,
                seed=seed,
                progress=False,
            )
            runs[str(seed)][name] = {
                "removed": stats["removed"],
                "seconds": round(time.time() - t, 1),
                "test_nll": {task: window_nll(pruned, test[task]).tolist() for task in TASKS},
            }
        print(f"seed {seed}: " + ", ".join(f"{n} removed {r['removed']}" for n, r in runs[str(seed)].items()))
    items = seed_averaged([{m: r[m]["test_nll"] for m in METHODS} for r in runs.values()], METHODS, TASKS)
    result = {
        "settings": {**vars(args), "depth": depth, "seq_len": SEQ, "removed_blocks": 1, "threads": 1},
        "runs": runs,
        "seconds": round(time.time() - t0, 1),
        "machine": {"python": platform.python_version(), "torch": torch.__version__},
    }
    print(f"group {args.group} of {depth} blocks")
    finish("fusegpt_controls", result, items, PAIRS, seeds, extra={"dense": dense})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
