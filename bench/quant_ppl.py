"""Quality cost of MixPE-format weight quantization: FP32 against RTN and GPTQ at W8/W4/W3/W2, group 128.

The zoo's base model (models.zoo, preset `--preset`, default "deep": 12 layers) is scored with the zoo's own
evaluation (models.zoo.evaluate: held-out code and English texts up to the preset's token cap, 300 arithmetic
and 200 recall examples; per text its NLL, per example exact match) in FP32 and quantized: every decoder linear
layer, unsigned weights with a zero point, group 128 (a layer whose in_features 128 does not divide gets the
largest divisor below it, recorded as layer_groups), INT8 per-token activations at every width and FP16
activations at W4. GPTQ calibrates on --calib windows of the zoo's training text drawn by each seed (--seeds),
never on the held-out text it is scored on; RTN needs no calibration, so it runs once and is paired with every
seed's GPTQ.

Statistics (models.stats): per config and task, perplexity is exp of the mean per-text NLL with a bootstrap 95%
CI over texts (and seeds); the NLL increase over FP32 is a paired difference over the same texts. GPTQ is
called better than RTN at a width only when the CI of the paired per-text NLL difference (all tasks, all
seeds) excludes 0.

    python -m bench.quant_ppl [--preset deep] [--calib 32] [--seeds 0,1,2]

Prints a table and writes bench/results/quant_ppl.json (quant_ppl_PRESET.json for another preset).
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import platform
import time

import numpy as np
import torch

from bench import MODEL_PRESET, result_stem
from models import zoo
from models.quant import QuantConfig, QuantLinear, quantize_model
from models.stats import paired, summary
from sim.files import atomic_write

GROUP = 128
CALIB_SEQ = 128
SWEEP = [("int8", b, m) for b in (8, 4, 3, 2) for m in ("rtn", "gptq")] + [("fp16", 4, m) for m in ("rtn", "gptq")]


def items(ev: dict) -> dict[str, np.ndarray]:
    """Per task the per-text NLL (nats/token), and "math_exact"/"recall_exact" per example (0 or 1)."""
    out = {t: np.asarray(ev[t]["item_nll"]) for t in zoo.TASKS}
    out |= {f"{t}_exact": np.asarray(ev[t]["item_exact"]) for t in ("math", "recall")}
    return out


def describe(per_seed: list[dict[str, np.ndarray]], fp: dict[str, np.ndarray], seed: int) -> dict:
    """Mean and 95% CI per task of perplexity (exp of the per-text NLL's), its increase over FP32 (percent,
    paired per text) and the two exact-match accuracies, pooled over seeds."""
    pooled = {k: np.concatenate([s[k] for s in per_seed]) for k in per_seed[0]}
    fp_pooled = {k: np.concatenate([fp[k]] * len(per_seed)) for k in fp}
    row: dict = {"ppl": {}, "increase_pct": {}}
    for t in zoo.TASKS:
        nll = summary(pooled[t], seed)
        row["ppl"][t] = {"mean": math.exp(nll["mean"]), "ci95": [math.exp(x) for x in nll["ci95"]], "n": nll["n"]}
        diff = paired(pooled[t], fp_pooled[t], False, seed)
        row["increase_pct"][t] = {
            "mean": 100 * math.expm1(diff["mean"]),
            "ci95": [100 * math.expm1(x) for x in diff["ci95"]],
        }
    row["mean_increase_pct"] = float(np.mean([row["increase_pct"][t]["mean"] for t in zoo.TASKS]))
    row["math_exact_match"] = summary(pooled["math_exact"], seed)
    row["recall_accuracy"] = summary(pooled["recall_exact"], seed)
    return row


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.quant_ppl", description=__doc__)
    p.add_argument("--preset", choices=list(zoo.PRESETS), default=MODEL_PRESET, help="zoo preset (default: deep)")
    p.add_argument("--calib", type=int, default=32, help=f"GPTQ calibration windows of {CALIB_SEQ} tokens per seed")
    p.add_argument("--seeds", default="0,1,2", help="calibration draws, comma-separated (default 0,1,2)")
    args = p.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    if not seeds or args.calib < 2:
        p.error("--seeds must name a seed and --calib must be at least 2")
    torch.set_num_threads(1)

    t0 = time.time()
    model, tokenizer = zoo.load("base", args.preset)
    calib = {s: list(zoo.drawn_windows(tokenizer, "train", CALIB_SEQ, args.calib, args.preset, s)) for s in seeds}
    fp = items(zoo.evaluate(model, tokenizer, args.preset, items=True))
    fp_row = describe([fp], fp, seeds[0])
    print(f"zoo base model, preset {args.preset}, seeds {seeds}: perplexity per task (mean over seeds), increase")
    print("over FP32 with its 95% CI; accuracies in %")
    print(f"{'config':<22}" + "".join(f"{t:>30}" for t in zoo.TASKS) + f"{'math EM':>8}{'recall':>8}{'s':>6}")
    print(
        f"{'fp32':<22}"
        + "".join(f"{fp_row['ppl'][t]['mean']:>30.3f}" for t in zoo.TASKS)
        + f"{100 * fp_row['math_exact_match']['mean']:>8.1f}{100 * fp_row['recall_accuracy']['mean']:>8.1f}"
    )

    rows, per_item = [], {}
    for act, wbits, method in SWEEP:
        cfg = QuantConfig(wbits=wbits, group=GROUP, act=act, method=method, calib_samples=args.calib, uneven="divisor")
        t = time.time()
        runs = []
        for s in seeds if method == "gptq" else seeds[:1]:  # RTN reads no calibration data: one run serves all
            qm = quantize_model(copy.deepcopy(model), cfg, calib[s])
            runs.append(items(zoo.evaluate(qm, tokenizer, args.preset, items=True)))
        per_item[cfg.name()] = runs
        row = {**cfg.as_dict(), "name": cfg.name(), **describe(runs, fp, seeds[0]), "seconds": time.time() - t}
        rows.append(row)
        cells = "".join(
            f"{row['ppl'][k]['mean']:>10.3f} {row['increase_pct'][k]['mean']:+6.1f}% "
            f"[{row['increase_pct'][k]['ci95'][0]:+5.1f},{row['increase_pct'][k]['ci95'][1]:+5.1f}]"
            for k in zoo.TASKS
        )
        print(
            f"{cfg.name():<22}{cells}{100 * row['math_exact_match']['mean']:>8.1f}"
            f"{100 * row['recall_accuracy']['mean']:>8.1f}{row['seconds']:>6.0f}",
            flush=True,
        )

    comparisons = {}
    for act, wbits in sorted({(a, b) for a, b, _ in SWEEP}, key=lambda x: (x[0], -x[1])):
        gptq, rtn = (per_item[f"w{wbits}u_g{GROUP}_a{act}_{m}"] for m in ("gptq", "rtn"))
        rtn = rtn * len(gptq)  # the one RTN run, paired with each seed's GPTQ run on the same texts
        flat = [np.concatenate([run[t] for run in r for t in zoo.TASKS]) for r in (gptq, rtn)]
        comparisons[f"gptq-rtn w{wbits} a{act}"] = {"nll": paired(flat[0], flat[1], False, seeds[0])}
    checks = {f"gptq_beats_rtn_w{b}": comparisons[f"gptq-rtn w{b} aint8"]["nll"]["better"] == "a" for b in (3, 2)}
    for name, c in comparisons.items():
        d = c["nll"]
        print(
            f"{name}: per-text NLL difference {1e3 * d['mean']:+.1f} mnat [{1e3 * d['ci95'][0]:+.1f}, "
            f"{1e3 * d['ci95'][1]:+.1f}], better: {'GPTQ' if d['better'] == 'a' else 'RTN' if d['better'] else '-'}"
        )
    print("GPTQ beats RTN (CI of the paired difference excludes 0):", ", ".join(f"{k}={v}" for k, v in checks.items()))
    result = {
        "model": f"models.zoo base, preset {args.preset}",
        "seeds": seeds,
        "group": GROUP,
        "layer_groups": sorted({(m.in_features, m.group) for m in qm.modules() if isinstance(m, QuantLinear)}),
        "calib_sequences": args.calib,
        "eval_items": {t: int(len(fp[t])) for t in fp},
        "fp32": fp_row,
        "quantized": rows,
        "comparisons": comparisons,
        "checks": checks,
        "seconds": time.time() - t0,
        "machine": {"python": platform.python_version(), "torch": torch.__version__, "threads": 1},
    }
    path = result_stem("quant_ppl", args.preset).with_suffix(".json")
    atomic_write(path, json.dumps(result, indent=1) + "\n")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
