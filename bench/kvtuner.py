"""KVTuner mixed-precision KV cache vs uniform KV8, KV4 and KIVI-2 on held-out text of the zoo's base model.

Tuning (models.kv.tune) runs on the zoo's training text only: per-layer sensitivity of 7 candidate pairs,
--groups layer groups, --trials NSGA-II trials (seed --seed). The tuned configs with the lowest calibration KL
within 3.5 and 4 average KV bits are then scored with models.kv.evaluate on the held-out code and English windows
(128 tokens, 32 prefilled, 96 decoded through the cache): KL from KV16 (mnat = 1e-3 nats/token), top-1
agreement with KV16, perplexity and key-value recall. Tuned configs keep no exact residual window (like KV8 and
KV4); KIVI-2 keeps its 32 most recent tokens exact. Check: does a tuned config beat uniform KV4 on held-out KL
at equal or fewer average bits?

    python -m bench.kvtuner [--preset default] [--trials 40] [--groups 2] [--seed 0]

Prints a table and writes bench/results/kvtuner.json and bench/results/kvtuner.png.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from models import zoo
from models.kv import KLMeter, KVConfig, calibration_ids, choose, evaluate, tune
from sim.files import atomic_write

RESULTS = Path(__file__).resolve().parent / "results"
BUDGETS = (3.5, 4.0)
UNIFORM = ("KV8", "KV4", "KIVI-2")


def _plot(results: dict, calibration: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, bx) = plt.subplots(1, 2, figsize=(10, 3.8))
    ax.plot(
        [p["avg_bits"] for p in calibration["pareto"]],
        [1e3 * p["kl"] for p in calibration["pareto"]],
        "o-",
        ms=4,
        label="tuned Pareto set",
    )
    for name, r in calibration["uniform"].items():
        ax.scatter(r["avg_bits"], 1e3 * r["kl"], marker="s", c="k", zorder=3)
        ax.annotate(name, (r["avg_bits"], 1e3 * r["kl"]), fontsize=8, xytext=(3, 3), textcoords="offset points")
    ax.set_title("calibration (training text)", fontsize=9)
    for name, r in results.items():
        if name == "KV16":
            continue
        tuned = name.startswith("kvtuner")
        bx.scatter(
            r["avg_bits"],
            1e3 * r["kl"],
            marker="*" if tuned else "s",
            s=100 if tuned else 30,
            c="tab:red" if tuned else "k",
            zorder=3,
        )
        bx.annotate(name, (r["avg_bits"], 1e3 * r["kl"]), fontsize=8, xytext=(3, 3), textcoords="offset points")
    bx.set_title("held-out text (test split)", fontsize=9)
    for a in (ax, bx):
        a.set_yscale("log")
        a.set_xlabel("average KV bits")
        a.set_ylabel("KL from KV16 (1e-3 nats/token)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench.kvtuner", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--preset", default="default", help="zoo preset (default: default)")
    p.add_argument("--trials", type=int, default=40, help="NSGA-II trials (default 40)")
    p.add_argument("--groups", type=int, default=2, help="layer groups sharing one pair (default 2)")
    p.add_argument("--seed", type=int, default=0, help="search and calibration seed (default 0)")
    args = p.parse_args(argv)
    torch.set_num_threads(1)

    t0 = time.time()
    model, tokenizer = zoo.load("base", args.preset)
    layers = model.config.num_hidden_layers
    meter = KLMeter(model, calibration_ids(tokenizer, args.preset, 96, 4, args.seed), prefill=32)
    result = tune(meter, args.groups, args.trials, args.seed)
    tune_s = time.time() - t0
    uniform = [KVConfig.preset(name, layers) for name in UNIFORM]
    calibration = {
        "uniform": {kv.name: {"avg_bits": kv.avg_bits, "kl": meter(kv)} for kv in uniform},
        **result.to_dict(),
    }
    tuned = [choose(result, b, name=f"kvtuner-{b:g}bit") for b in BUDGETS]
    unique = [kv for i, kv in enumerate(tuned) if all(kv.pairs != t.pairs for t in tuned[:i])]
    t1 = time.time()
    results = evaluate(model, tokenizer, uniform + unique, args.preset, seed=args.seed)
    eval_s = time.time() - t1

    print(f"zoo base model, preset {args.preset}; tuned on training text, scored on held-out text")
    print(f"{'config':<16}{'avg bits':>9}{'KL mnat':>10}{'top1 %':>8}{'ppl':>9}{'recall %':>9}  pairs")
    pairs = {kv.name: kv.pairs for kv in uniform + unique}
    for name, r in results.items():
        shown = " ".join(f"K{k}V{v}" for k, v in pairs.get(name, ()))
        print(
            f"{name:<16}{r['avg_bits']:>9.2f}{1e3 * r['kl']:>10.4f}{100 * r['top1_agree']:>8.2f}{r['ppl']:>9.3f}"
            f"{100 * r['recall']:>9.1f}  {shown}"
        )
    kv4 = results["KV4"]
    beats = {kv.name: kv.avg_bits <= kv4["avg_bits"] and results[kv.name]["kl"] < kv4["kl"] for kv in unique}
    for name, ok in beats.items():
        print(f"{name} beats uniform KV4 (fewer or equal bits, lower held-out KL): {ok}")
    print(f"tuning {tune_s:.1f} s, held-out evaluation {eval_s:.1f} s (1 torch thread)")

    report = {
        "settings": {
            **vars(args),
            "calibration_windows": 4,
            "calibration_seq_len": 96,
            "prefill": 32,
            "eval_seq_len": 128,
            "eval_windows_per_task": 8,
            "threads": 1,
        },
        "machine": platform.machine(),
        "tune_seconds": tune_s,
        "eval_seconds": eval_s,
        "tuned_configs": {kv.name: kv.to_dict() for kv in unique},
        "held_out": results,
        "beats_uniform_kv4": beats,
        "calibration": calibration,
    }
    RESULTS.mkdir(exist_ok=True)
    atomic_write(RESULTS / "kvtuner.json", json.dumps(report, indent=1) + "\n")
    atomic_write(RESULTS / "kvtuner.png", lambda tmp: _plot(results, calibration, tmp))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
