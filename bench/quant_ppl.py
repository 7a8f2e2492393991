"""Quality cost of MixPE-format weight quantization: FP32 against RTN and GPTQ at W8/W4/W3/W2, group 128.

The zoo's base model (models.zoo, preset `--preset`) is scored with the zoo's own evaluation
(models.zoo.evaluate: held-out perplexity per task, arithmetic exact match and recall accuracy) in FP32
and quantized: every decoder linear layer, unsigned weights with a zero point, group 128 (a layer
whose in_features 128 does not divide gets the largest divisor below it, recorded as layer_groups),
INT8 per-token activations at every width and FP16 activations at W4. GPTQ calibrates on the zoo's
training text, never on the held-out text it is scored on. Checks: GPTQ beats RTN at W3 and W2 on
the mean perplexity increase over tasks.

    python -m bench.quant_ppl [--preset default] [--calib 32]

Prints a table and writes bench/results/quant_ppl.json.
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

from models import zoo
from models.quant import QuantConfig, QuantLinear, quantize_model
from sim.files import atomic_write

RESULTS = Path(__file__).resolve().parent / "results" / "quant_ppl.json"
GROUP = 128
CALIB_SEQ = 128
SWEEP = [("int8", b, m) for b in (8, 4, 3, 2) for m in ("rtn", "gptq")] + [("fp16", 4, m) for m in ("rtn", "gptq")]


def summary(ev: dict, fp: dict | None) -> dict:
    """Per-task perplexity, increase over FP32 (percent), and the two task accuracies."""
    ppl = {t: ev[t]["ppl"] for t in zoo.TASKS}
    row = {"ppl": ppl, "math_exact_match": ev["math"]["exact_match"], "recall_accuracy": ev["recall"]["exact_match"]}
    if fp is not None:
        row["increase_pct"] = {t: 100.0 * (ppl[t] / fp["ppl"][t] - 1.0) for t in zoo.TASKS}
        row["mean_increase_pct"] = float(np.mean(list(row["increase_pct"].values())))
    return row


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.quant_ppl", description=__doc__)
    p.add_argument("--preset", default="default", help="zoo preset (default: default)")
    p.add_argument("--calib", type=int, default=32, help=f"GPTQ calibration sequences of {CALIB_SEQ} tokens")
    args = p.parse_args(argv)
    torch.set_num_threads(2)

    t0 = time.time()
    model, tokenizer = zoo.load("base", args.preset)
    calib = zoo.calibration_windows(tokenizer, CALIB_SEQ, args.calib, args.preset)
    fp = summary(zoo.evaluate(model, tokenizer, args.preset), None)
    print(f"zoo base model, preset {args.preset}; perplexity per task, increase over FP32; accuracies in %")
    head = "".join(f"{t:>17}" for t in zoo.TASKS)
    print(f"{'config':<22}{head}{'mean':>8}{'math EM':>8}{'recall':>8}{'s':>6}")
    cells = "".join(f"{fp['ppl'][t]:>17.3f}" for t in zoo.TASKS)
    print(f"{'fp32':<22}{cells}{'':>8}{100 * fp['math_exact_match']:>8.1f}{100 * fp['recall_accuracy']:>8.1f}")

    rows = []
    for act, wbits, method in SWEEP:
        cfg = QuantConfig(wbits=wbits, group=GROUP, act=act, method=method, calib_samples=args.calib, uneven="divisor")
        t = time.time()
        qm = quantize_model(copy.deepcopy(model), cfg, calib)
        row = {**cfg.as_dict(), "name": cfg.name(), **summary(zoo.evaluate(qm, tokenizer, args.preset), fp)}
        row["seconds"] = time.time() - t
        rows.append(row)
        cells = "".join(f"{row['ppl'][k]:>10.3f}{row['increase_pct'][k]:>+6.1f}%" for k in zoo.TASKS)
        print(
            f"{cfg.name():<22}{cells}{row['mean_increase_pct']:>+7.2f}%{100 * row['math_exact_match']:>8.1f}"
            f"{100 * row['recall_accuracy']:>8.1f}{row['seconds']:>6.0f}",
            flush=True,
        )

    by = {r["name"]: r for r in rows}
    checks = {
        f"gptq_beats_rtn_w{b}": by[f"w{b}u_g{GROUP}_aint8_gptq"]["mean_increase_pct"]
        < by[f"w{b}u_g{GROUP}_aint8_rtn"]["mean_increase_pct"]
        for b in (3, 2)
    }
    print("GPTQ beats RTN:", ", ".join(f"{k}={v}" for k, v in checks.items()))
    result = {
        "model": f"models.zoo base, preset {args.preset}",
        "group": GROUP,
        "layer_groups": sorted({(m.in_features, m.group) for m in qm.modules() if isinstance(m, QuantLinear)}),
        "calib_sequences": len(calib),
        "fp32": fp,
        "quantized": rows,
        "checks": checks,
        "seconds": time.time() - t0,
        "machine": {"python": platform.python_version(), "torch": torch.__version__, "threads": 2},
    }
    atomic_write(RESULTS, json.dumps(result, indent=1) + "\n")
    print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
