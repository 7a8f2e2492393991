"""FRS against RanMASK, SAFER, Text-CRS and uniform randomized smoothing on a backdoored
MiniLM classifier (which local source a 16-word snippet comes from: code, man page, doc, arithmetic).

Attack: rare-word trigger ("cf", "mn", ...) on 20% of the non-target training samples, target label 0
(data poisoning during fine-tuning); --attack ripple for the RIPPLe-like weight poisoning. FRS runs on
its BMPS fine-tune, the baselines on the ordinary one; uniform, RanMASK and FRS share the randomization
budget omega = 0.7 (FRS: omega_h = 0.95 in the fuzzed area, omega_l below 0.7 elsewhere; Text-CRS's word
deletion: p = 0.7). Text-CRS runs as three defenses, one per certified operation: textcrs (Gaussian noise on
word embeddings, substitutions), textcrs-del (Bernoulli deletion, deleted words) and textcrs-order (uniform
noise of half-width 16 on word positions, adjacent transpositions). Reported: clean
accuracy (CA) and ASR of the smoothed classifiers, certified accuracy against radius (word edits; each
method's own threat model, see models/robust/certify.py), the average certified radius, and the fuzzing
cost per sample. Checks: FRS's ASR below every baseline's at no larger CA loss, and FRS's average radius
above uniform's. Classifiers are cached, so a second run only re-certifies.

    python -m bench.frs [--layers 3] [--attack word|ripple] [--quant 8,4]

Prints a table and writes bench/results/frs.json and frs.png (frs_<attack>.* for the other attacks); the
quantized certification (FRS and uniform at 8/4-bit weights) is added to the JSON last, being the slow part.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from models.robust.harness import MonteCarlo
from models.robust.pipeline import Setup, quantized_certificates, run_defenses
from models.robust.report import plot, table
from sim.files import atomic_write

RESULTS = Path(__file__).resolve().parent / "results"
PAPER = {
    "note": "FRS paper, author rebuttal (Appendix N), SST-2 under RIPPLe_a, BERT",
    "asr_pct": {"frs": 45.1, "textcrs": 55.8, "ranmask": 58.4, "safer": 61.3},
    "pa_pct": {"frs": 73.3, "textcrs": 64.7, "ranmask": 63.5, "safer": 62.8},
    "fuzz_ms_per_sample": 5.0,
}


def checks(result: dict) -> dict:
    m = result["methods"]
    frs = m["frs"]
    base_ca = result["undefended"]["victim"]["clean_accuracy"]
    frs_cost = base_ca - frs["clean_accuracy"]
    out = {}
    for name in m:
        if name == "frs":
            continue
        out[f"asr_below_{name}"] = frs["asr"] < m[name]["asr"]
        out[f"ca_cost_not_above_{name}"] = frs_cost <= base_ca - m[name]["clean_accuracy"]
    if "uniform" in m:
        out["radius_above_uniform"] = frs["average_radius"] > m["uniform"]["average_radius"]
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench.frs", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--attack", default="word", choices=("word", "sentence", "ripple"))
    p.add_argument("--layers", type=int, default=3, help="MiniLM encoder layers kept (6: all; default 3 for CPU time)")
    p.add_argument("--test-per-class", type=int, default=10, help="clean test snippets per label (4 labels)")
    p.add_argument("--n", type=int, default=32, help="Monte Carlo estimation draws per text (selection: n/4)")
    p.add_argument("--quant", default="8,4", help="weight bits to certify FRS/uniform at (comma list, '' for none)")
    p.add_argument("--quant-samples", type=int, default=6, help="clean (and triggered) texts certified quantized")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    t0 = time.time()
    setup = Setup(attack=args.attack, layers=args.layers, test_per_class=args.test_per_class)
    mc = MonteCarlo(n0=max(4, args.n // 4), n=args.n, n_attack=max(8, args.n // 2))
    bits = tuple(int(b) for b in args.quant.split(",") if b)
    result = run_defenses(setup, mc=mc)
    result["checks"] = checks(result)
    result["paper"] = PAPER
    result["machine"] = {"platform": platform.platform(), "torch_threads": args.threads}
    print(f"attack {args.attack}, MiniLM {args.layers} layers; CA/ASR in %, radius in word edits (R_r: fraction)")
    print(table(result))
    print(f"FRS fuzzing: {result['methods']['frs']['fuzz_ms_per_sample']:.0f} ms/sample (paper: ~5 ms on GPU)")
    print("checks:", json.dumps(result["checks"]))
    RESULTS.mkdir(exist_ok=True)
    name = "frs" if args.attack == "word" else f"frs_{args.attack}"
    result["seconds"] = time.time() - t0
    atomic_write(RESULTS / f"{name}.json", json.dumps(result, indent=1))
    plot(result, RESULTS / f"{name}.png", f"backdoored MiniLM ({args.attack} trigger): smoothing defenses")
    if bits:  # written after the main figures: quantized certification is the slow part
        result["quantized"] = quantized_certificates(setup, mc, 0.7, 24, bits, args.quant_samples)
        for wbits, row in result["quantized"].items():
            print(
                f"w{wbits}: "
                + ", ".join(
                    f"{k} CA {100 * v['clean_accuracy']:.0f}% ASR {100 * v['asr']:.0f}% r {v['average_radius']:.2f}"
                    for k, v in row.items()
                )
            )
        result["seconds"] = time.time() - t0
        atomic_write(RESULTS / f"{name}.json", json.dumps(result, indent=1))
    print(f"total {result['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
