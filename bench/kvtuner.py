"""KVTuner mixed-precision KV cache vs uniform KV8, KV4 and K2V2 (KIVI-2), over seeds, on a zoo base model.

Model: the base model of zoo preset --preset (default "deep": 12 layers), scored on held-out code and English
text; or, with --recall RECIPE, the recall model (models.zoo.recall) on MQAR sequences with recall accuracy.
Per seed (the model is the seed-0 build; the seed draws the calibration sequences, the held-out windows and the
search): tuning (models.kv.tune) runs on 4 TRAIN-split sequences (7/8 prefilled, the rest decoded): per-layer
sensitivity of 7 candidate pairs, one group per layer, --trials NSGA-II trials. The search space (the product of
each group's kept candidates) is reported beside the trial budget, which must be smaller. The tuned configs with
the lowest calibration KL within 3.5 and 4 average bits are scored with every uniform preset on --windows
held-out windows (3/4 prefilled, the rest decoded through the cache; zoo: half code, half English, drawn from
the held-out text by the seed) and, for the recall model, --prompts held-out recall prompts (the question
prefilled; the first answer token comes from the exact prefill, the second is decoded through the cache;
recalled = both right). A zoo base model is not trained on MQAR prompts, so its recall is not scored.

Fairness: every config, presets and candidates alike, keeps the same exact residual window (--residual, default
32 most recent tokens) and group size 32, so KIVI-2 here is K2V2 with the same window as the rest; stored bits
per element (codes, 16-bit scale and zero point per group, the residual window at 16 bits) are reported beside
KVTuner's average bits. K2V2 is the fewest stored bits any candidate config can reach, so when it stores more
than 3.5 bits the target below cannot be met by construction. Statistics pool the per-window and per-prompt
values of all seeds (models.stats): mean and bootstrap 95% CI, and a config is called better than KV4 only when
the CI of the paired difference excludes 0.

Target: a tuned config at <= 3.5 stored bits per element with lower KL than KV4 (CI of the difference below 0).

    python -m bench.kvtuner [--preset deep] [--recall RECIPE] [--seeds 0,1,2] [--trials 24] [--windows 64]
                            [--prompts 128] [--residual 32] [--jobs 1]

Prints a table and writes bench/results/kvtuner.json and .png (kvtuner_PRESET for another preset,
kvtuner_recall_RECIPE for the recall model).
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import platform
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace

import numpy as np
import torch

from bench import MODEL_PRESET, result_stem, save_results
from models import zoo
from models.kv import KLMeter, KVConfig, choose, tune
from models.kv.evaluate import evaluate_configs
from models.stats import paired, summary
from models.zoo import mqar
from models.zoo.recall import build_recall, get_recipe

BUDGETS = (3.5, 4.0)
UNIFORM = ("KV16", "KV8", "KV4", "KIVI-2")


def _plot(runs: dict, model: str, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, bits in zip(axes, ("avg_bits", "stored_bits"), strict=True):
        for name, r in runs.items():
            if name == "KV16":
                continue
            tuned = name.startswith("kvtuner")
            low, high = r["kl"]["ci95"]
            ax.errorbar(
                r[bits],
                1e3 * r["kl"]["mean"],
                yerr=[[1e3 * (r["kl"]["mean"] - low)], [1e3 * (high - r["kl"]["mean"])]],
                fmt="*" if tuned else "s",
                ms=10 if tuned else 5,
                c="tab:red" if tuned else "k",
            )
            ax.annotate(name, (r[bits], 1e3 * r["kl"]["mean"]), fontsize=8, xytext=(3, 3), textcoords="offset points")
        ax.set_yscale("log")
        ax.set_xlabel("average KV bits (KVTuner's count)" if bits == "avg_bits" else "stored bits per element")
        ax.set_ylabel("held-out KL from KV16 (1e-3 nats/token)")
    fig.suptitle(f"{model}, mean and 95% CI over seeds and windows", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=120)
    plt.close(fig)


def _model(args: argparse.Namespace) -> tuple:
    """(model, tokenizer or None, MQAR shape or None, window length in tokens, description) of the run."""
    if args.recall:
        model, _ = zoo.load(build_recall(args.recall, 0))
        shape = get_recipe(args.recall).eval_shape
        return model, None, shape, shape.length, f"recall model ({args.recall})"
    model, tokenizer = zoo.load("base", args.preset)
    return model, tokenizer, None, zoo.PRESETS[args.preset].seq_len, f"zoo base model ({args.preset} preset)"


def run_seed(args: argparse.Namespace, seed: int) -> tuple[dict, dict, tuple]:
    """One seed's tuning record, its held-out evaluation (models.kv.evaluate_configs) and (description, window
    length, calibration prefill, text prefill); one torch thread, so seeds can run in parallel processes."""
    torch.set_num_threads(1)
    model, tokenizer, shape, length, described = _model(args)
    layers = model.config.num_hidden_layers
    calibration_prefill, text_prefill = 7 * length // 8, 3 * length // 4
    uniform = [replace(KVConfig.preset(name, layers), residual_length=args.residual) for name in UNIFORM]
    if args.recall:
        calibration = mqar.prompts(shape, 4, "train", seed)
        text = mqar.prompts(shape, args.windows, "test", seed)
        recall = mqar.prompts(shape, args.prompts, "test", seed + 1000)
    else:
        calibration = zoo.drawn_windows(tokenizer, "train", length, 4, args.preset, seed)
        text, recall = zoo.drawn_windows(tokenizer, "test", length, args.windows, args.preset, seed), None
    meter = KLMeter(model, calibration, prefill=calibration_prefill)
    result = tune(meter, layers, args.trials, seed, residual_length=args.residual, progress=False)
    space = math.prod(len(g) for g in result.group_pairs)
    tuned = [choose(result, b, name=f"kvtuner-{b:g}bit") for b in BUDGETS]
    record = {
        "seed": seed,
        "search_space": space,
        "trials": args.trials,
        "space_larger_than_trials": space > args.trials,
        "tuned_configs": {kv.name: kv.to_dict() for kv in tuned},
        **result.to_dict(),
    }
    print(
        f"seed {seed}: search space {space:.3g} configs, {args.trials} trials; tuned: "
        + ", ".join(f"{kv.name} {' '.join(f'K{k}V{v}' for k, v in kv.pairs)}" for kv in tuned),
        flush=True,
    )
    scores = evaluate_configs(model, uniform + tuned, text, text_prefill, recall, mqar.ANSWER_TOKENS, progress=False)
    return record, scores, (described, length, calibration_prefill, text_prefill)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench.kvtuner", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--preset", choices=list(zoo.PRESETS), default=MODEL_PRESET, help="zoo preset (default deep)")
    p.add_argument("--recall", help="tune the recall model of this recipe instead (default, long, tiny)")
    p.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (default 0,1,2)")
    p.add_argument("--trials", type=int, default=24, help="NSGA-II trials per seed (default 24)")
    p.add_argument("--windows", type=int, default=64, help="held-out text windows per seed (default 64)")
    p.add_argument("--prompts", type=int, default=128, help="held-out recall prompts per seed (default 128)")
    p.add_argument("--residual", type=int, default=32, help="exact recent tokens, every config (default 32)")
    p.add_argument("--jobs", type=int, default=1, help="seeds run in parallel processes (default 1)")
    args = p.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    if not seeds or args.trials < 2 or min(args.windows, args.prompts, args.jobs) < 1 or args.residual < 0:
        p.error("need a seed, --trials >= 2, --windows, --prompts and --jobs >= 1, --residual >= 0")
    start = time.time()
    with ProcessPoolExecutor(args.jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        done = list(pool.map(run_seed, [args] * len(seeds), seeds))
    tuning, per_seed = [d[0] for d in done], [d[1] for d in done]
    described, length, calibration_prefill, text_prefill = done[0][2]
    seconds = time.time() - start

    runs = {}
    for name in per_seed[0]:
        items = {k: np.concatenate([r[name]["per_item"][k] for r in per_seed]) for k in per_seed[0][name]["per_item"]}
        nll = summary(items["nll"], seeds[0])
        runs[name] = {
            "avg_bits": float(np.mean([r[name]["avg_bits"] for r in per_seed])),
            "stored_bits": float(np.mean([r[name]["stored_bits"] for r in per_seed])),
            "residual_length": args.residual,
            "kl": summary(items["kl"], seeds[0]),
            "recall": summary(items["recalled"], seeds[0]) if len(items["recalled"]) else None,
            "ppl": {"mean": float(np.exp(nll["mean"])), "ci95": [float(np.exp(x)) for x in nll["ci95"]]},
            "_items": items,
        }
    kv4 = runs["KV4"]
    compared = {
        f"{name}-KV4": {
            "kl": paired(r["_items"]["kl"], kv4["_items"]["kl"], False, seeds[0]),
            "recall": paired(r["_items"]["recalled"], kv4["_items"]["recalled"], True, seeds[0])
            if args.recall
            else None,
            "stored_bits": [r["stored_bits"], kv4["stored_bits"]],
        }
        for name, r in runs.items()
        if name.startswith("kvtuner")
    }
    print(f"{'config':<16}{'avg bits':>9}{'stored':>8}{'KL mnat [95% CI]':>28}{'recall %':>10}{'ppl':>8}")
    for name, r in runs.items():
        kl = r["kl"]
        print(
            f"{name:<16}{r['avg_bits']:>9.2f}{r['stored_bits']:>8.2f}{1e3 * kl['mean']:>12.3f} "
            f"[{1e3 * kl['ci95'][0]:.3f}, {1e3 * kl['ci95'][1]:.3f}]"
            f"{100 * r['recall']['mean'] if r['recall'] else float('nan'):>10.1f}"
            f"{r['ppl']['mean']:>8.3f}"
        )
    target = False
    for name, c in compared.items():
        kl = c["kl"]
        met = c["stored_bits"][0] <= 3.5 and kl["better"] == "a"
        target = target or met
        print(
            f"{name}: KL diff {1e3 * kl['mean']:+.3f} mnat [{1e3 * kl['ci95'][0]:+.3f}, {1e3 * kl['ci95'][1]:+.3f}] "
            f"(better: {'tuned' if kl['better'] == 'a' else 'KV4' if kl['better'] == 'b' else 'neither'}); "
            f"stored bits {c['stored_bits'][0]:.2f} vs KV4 {c['stored_bits'][1]:.2f}"
        )
    floor = runs["KIVI-2"]["stored_bits"]  # K2V2, the fewest bits of every candidate pair
    print(
        "target (a tuned config at <= 3.5 stored bits with lower KL than KV4, CI excluding 0): "
        f"{'met' if target else 'NOT met'}; the fewest stored bits any candidate config reaches (K2V2 with the "
        f"{args.residual}-token window, {length}-token windows) is {floor:.2f}"
    )
    for r in runs.values():
        r.pop("_items")
    report = {
        "settings": {**vars(args), "calibration_prefill": calibration_prefill, "text_prefill": text_prefill},
        "seeds": seeds,
        "model": described,
        "machine": {"platform": platform.platform(), "torch": torch.__version__},
        "seconds": seconds,
        "tuning": tuning,
        "held_out": runs,
        "comparisons": compared,
        "target_met": target,
        "fewest_stored_bits": floor,
        "target_reachable": floor <= 3.5,
    }
    stem = result_stem("kvtuner", f"recall_{args.recall}" if args.recall else args.preset)
    save_results(stem.name, report, lambda png: _plot(runs, described, png))
    print(f"wrote {stem}.json and .png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
