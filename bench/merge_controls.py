"""Control for Sens-Merging (bench.merge_zoo): is it more than a per-model weight? Task arithmetic (TA) on the zoo's
code, math and English fine-tunes, three ways, over several seeds:

  * TA:          base + lambda * sum_i tau_i, lambda chosen on validation (the grid of bench.merge_zoo);
  * TA+Sens:     the same lambda, Sens-Merging's per-layer, per-model coefficients, T chosen on validation;
  * TA+scalars:  the same lambda, one weight per model from {0.5, 0.75, 1, 1.25, 1.5} chosen on the same
                 validation windows (coordinate search, --sweeps passes over the three models): the control
                 Sens-Merging must beat, since its layer profiles are nearly flat.

Seed s takes its own, disjoint chunk of training text for Sens-Merging's calibration (--samples windows of 128
tokens per task) and for validation (--val-windows windows of 256 tokens per task); the test set is the same for
every seed: the first --test-windows held-out windows of 128 tokens (at most the model's positions) per task.
Figures: test NLL (nats/token) per window, averaged over the three tasks' windows; each method's mean and 95% CI
(bootstrap over test windows of the seed-averaged NLL) and each pair's paired difference (A - B, lower NLL is
better; "better" only when the CI excludes 0).

    python -m bench.merge_controls [--preset default] [--seeds 0,1,2] [--samples 16] [--test-windows 64]

Writes bench/results/merge_controls.json; one torch thread.
"""

from __future__ import annotations

import argparse
import platform
import time

import torch
from tqdm import tqdm

from bench.controls import finish, seed_averaged, window_nll
from bench.merge_zoo import LAMBDAS, TEMPERATURES, VAL_SEQ, raw_config
from models import zoo
from models.merge import SensConfig, load_models, merge_loaded, parse_config
from models.merge.evaluate import TASKS, windows_nll
from models.merge.sensitivity import sens_merging

SCALARS = (0.5, 0.75, 1.0, 1.25, 1.5)
CALIB_SEQ, TEST_SEQ = 128, 128
METHODS = ("TA", "TA+Sens", "TA+scalars")
PAIRS = (("TA+Sens", "TA"), ("TA+Sens", "TA+scalars"), ("TA+scalars", "TA"))


def coordinate_search(loss, count: int, sweeps: int = 2) -> tuple[float, ...]:
    """Per-model weights from SCALARS minimising `loss(weights)`: start at all 1, then `sweeps` passes that set
    each model's weight in turn to its best value with the others fixed (ties: the earlier value)."""
    weights = [1.0] * count
    best = loss(tuple(weights))
    for _ in range(sweeps):
        for i in range(count):
            for value in SCALARS:
                trial = tuple(weights[:i] + [value] + weights[i + 1 :])
                score = loss(trial) if value != weights[i] else best
                if score < best:
                    best, weights = score, list(trial)
    return tuple(weights)


def ta_config(preset: str, lam: float, weights=(1.0, 1.0, 1.0)):
    """The TA merge config of the three fine-tunes with per-model weights."""
    raw = raw_config(preset, "task_arithmetic", lam, 1.0)
    raw["models"] = [{"model": t, "parameters": {"weight": w}} for t, w in zip(TASKS, weights, strict=True)]
    return parse_config(raw)


def one_seed(
    loaded, preset: str, seed: int, samples: int, val_count: int, sweeps: int, test: dict[str, list[torch.Tensor]]
) -> dict:
    """The three methods' choices and per-test-window NLL for one seed's calibration and validation chunks."""
    tok = loaded.tokenizer
    window = min(VAL_SEQ, loaded.base.config.max_position_embeddings)
    calib_seq = min(CALIB_SEQ, window)
    # Seed s's chunks: calibration windows [s*samples, (s+1)*samples) of 128 tokens; validation windows after all
    # seeds' calibration text (a generous offset in 256-token windows), VAL_COUNT per seed.
    calib = {t: zoo.token_windows(tok, t, "train", calib_seq, (seed + 1) * samples, preset)[-samples:] for t in TASKS}
    skip = 24 + seed * val_count
    val = {t: zoo.token_windows(tok, t, "train", window, skip + val_count, preset)[skip:] for t in TASKS}

    def val_nll(cfg, coeffs=None) -> float:
        return windows_nll(merge_loaded(cfg, loaded, coeffs), val)["mean"]

    lam = min(LAMBDAS, key=lambda x: val_nll(ta_config(preset, x)))
    plain = ta_config(preset, lam)
    sens = sens_merging(loaded.tuned, [calib[t] for t in TASKS], SensConfig(samples=samples, seq_len=calib_seq))
    temperature = min(TEMPERATURES, key=lambda t: val_nll(plain, sens.with_temperature(t)))
    weights = coordinate_search(lambda w: val_nll(ta_config(preset, lam, w)), len(TASKS), sweeps)
    merged = {
        "TA": merge_loaded(plain, loaded),
        "TA+Sens": merge_loaded(plain, loaded, sens.with_temperature(temperature)),
        "TA+scalars": merge_loaded(ta_config(preset, lam, weights), loaded),
    }
    return {
        "lambda": lam,
        "temperature": temperature,
        "weights": dict(zip(TASKS, weights, strict=True)),
        "val_nll": {"TA": val_nll(plain), "TA+Sens": val_nll(plain, sens.with_temperature(temperature))},
        "test_nll": {m: {t: window_nll(model, test[t]).tolist() for t in TASKS} for m, model in merged.items()},
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench.merge_controls", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--preset", default="default", help="zoo preset (default: default)")
    p.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (default 0,1,2)")
    p.add_argument("--samples", type=int, default=16, help="Sens-Merging calibration windows per task (default 16)")
    p.add_argument("--test-windows", type=int, default=64, help="held-out windows per task (default 64)")
    p.add_argument("--val-windows", type=int, default=16, help="validation windows per task and seed (default 16)")
    p.add_argument("--sweeps", type=int, default=2, help="coordinate-search passes over the models (default 2)")
    args = p.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    torch.set_num_threads(1)
    t0 = time.time()
    loaded = load_models(ta_config(args.preset, 1.0))
    seq = min(TEST_SEQ, loaded.base.config.max_position_embeddings)  # the tiny preset has 96 positions
    test = {t: zoo.token_windows(loaded.tokenizer, t, "test", seq, args.test_windows, args.preset) for t in TASKS}
    runs = {}
    for seed in tqdm(seeds, desc="seeds"):
        runs[str(seed)] = one_seed(loaded, args.preset, seed, args.samples, args.val_windows, args.sweeps, test)
        r = runs[str(seed)]
        print(f"seed {seed}: lambda {r['lambda']}, T {r['temperature']}, weights {r['weights']}", flush=True)
    # Item = one test window (all tasks' windows pooled: the task average), value = its NLL averaged over seeds.
    items = seed_averaged([r["test_nll"] for r in runs.values()], METHODS, TASKS)
    result = {
        "settings": {
            "preset": args.preset,
            "samples": args.samples,
            "test_windows_per_task": len(test[TASKS[0]]),
            "test_seq_len": seq,
            "validation_windows_per_task": args.val_windows,
            "coordinate_sweeps": args.sweeps,
            "scalars": SCALARS,
            "lambdas": LAMBDAS,
            "temperatures": TEMPERATURES,
            "threads": 1,
        },
        "runs": runs,
        "seconds": round(time.time() - t0, 1),
        "machine": {"python": platform.python_version(), "torch": torch.__version__},
    }
    finish("merge_controls", result, items, PAIRS, seeds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
