"""Merging the zoo's code, math and English fine-tunes: every method with and without Sens-Merging, beside the
specialized models and the base, on held-out perplexity and task accuracy; then the best merge on the path to
hardware (W4A8 quantization, workload export, replay on MixPE and the dequantize-then-multiply baseline).

Protocol (no test text is used for any choice):
  * calibration (Sens-Merging's gradients and logits): each task's first `--samples` training windows of 128
    tokens; validation (choosing settings): 16 later training windows of 256 tokens per task (disjoint);
  * each plain method's lambda (and TIES/DARE density, TIES normalize) is the grid point with the lowest validation
    task-average NLL; its Sens-Merging variant keeps those and picks only the temperature T from a grid the same
    way (the Sens analysis — s, α, g, τ — is computed once with the defaults of models.merge.SensConfig);
  * everything is then scored once on the zoo's held-out test split (models.zoo.evaluate); an ablation scores
    TA + Sens-Merging with each saliency (weight / delta) and transfer sign (alignment / distance).
Task average = mean over code, math and English of the held-out NLL (nats/token); accuracy = next-token top-1
(code, English) and answer-token top-1 (math). Targets: Sens-Merging lowers the task average of TA, TIES and DARE;
the best merge (chosen on validation) is within 5% of each specialist's perplexity on its own task.

    python -m bench.merge_zoo [--preset default] [--samples 16] [--no-hardware]

Writes bench/results/merge_zoo.json (figures and settings), merge_zoo.csv, merge_zoo.md and merge_zoo.png, and
the best merged model to out/merge_zoo/best (a save_pretrained folder).
"""

from __future__ import annotations

import argparse
import itertools
import json
import platform
import time
from dataclasses import asdict, replace
from pathlib import Path

import torch
from tqdm import tqdm

from models import zoo
from models.merge import SensConfig, compute_sens, load_models, merge_loaded, parse_config, report_for, save
from models.merge.evaluate import (
    TASKS,
    csv_table,
    gap_to_specialists,
    markdown_table,
    plot,
    summary,
    windows_nll,
)
from sim.files import atomic_write

RESULTS = Path(__file__).resolve().parent / "results"
OUT = Path(__file__).resolve().parents[1] / "out" / "merge_zoo"
LAMBDAS = (0.1, 0.2, 0.3, 0.5, 0.75, 1.0)
DENSITIES = (0.3, 0.6)
TEMPERATURES = (1.0, 0.3, 0.1, 0.03)
HOSTS = ("linear", "task_arithmetic", "ties", "dare_linear", "dare_ties")
SHORT = {"linear": "avg", "task_arithmetic": "TA", "ties": "TIES", "dare_linear": "DARE-TA", "dare_ties": "DARE-TIES"}
VAL_SEQ, VAL_SKIP, VAL_COUNT = 256, 24, 16
VARIANTS = (("weight", "alignment"), ("weight", "distance"), ("delta", "alignment"), ("delta", "distance"))


def grid(method: str) -> list[dict]:
    """The settings tried for a plain method: lambda (not for linear) × density (TIES and DARE) × normalize (TIES:
    mergekit's disjoint mean, or the plain sum of agreeing deltas, under which Sens-Merging's weights do not cancel)."""
    lams = [1.0] if method == "linear" else LAMBDAS
    dens = DENSITIES if method in ("ties", "dare_linear", "dare_ties") else [1.0]
    norms = (True, False) if method == "ties" else (None,)
    return [{"lam": lam, "density": d, "normalize": n} for lam, d, n in itertools.product(lams, dens, norms)]


def raw_config(
    preset: str, method: str, lam: float, density: float, normalize: bool | None = None, sens: SensConfig | None = None
) -> dict:
    """The YAML-shaped config of one merge of the zoo's three fine-tunes (normalize None: the method's default)."""
    params = {"lambda": lam, "density": density} | ({} if normalize is None else {"normalize": normalize})
    raw = {"merge_method": method, "base_model": "base", "models": list(TASKS), "parameters": params}
    raw["zoo_preset"] = preset
    if sens is not None:
        raw["sens_merging"] = asdict(sens)
    return raw


def hardware_path(folder: Path, preset: str, tokenizer, seq_len: int) -> dict:
    """W4A8 (group 128, RTN) perplexity of the merged model against FP32 on test windows, and its exported
    workload (real tensors, 32-token prefill + 2 decode steps) replayed on 16×16 MixPE and dequant arrays."""
    from models.export import export
    from models.quant import QuantConfig, quantize_model
    from models.quant import perplexity as q_perplexity
    from sim.perf_model import MemoryConfig
    from sim.replay import exact_check, replay, speedups
    from sim.workload import Workload

    qcfg = QuantConfig(wbits=4, group=128, act="int8", uneven="divisor", quantize_lm_head=True)
    model, _ = zoo.load(folder)
    windows = {t: zoo.token_windows(tokenizer, t, "test", seq_len, 8, preset) for t in TASKS}
    fp = {t: q_perplexity(model, w) for t, w in windows.items()}
    quantize_model(model, qcfg)
    q = {t: q_perplexity(model, w) for t, w in windows.items()}
    workload = export(str(folder), prefill=32, decode=2, qcfg=qcfg, tensors=True, preset=preset)
    mem = MemoryConfig()
    reports = {pe: replay(workload, pe, 16, 16, mem) for pe in ("mixpe", "dequant")}
    first = [op for op in workload.ops if op.name in workload.tensors][:3]
    sub = Workload(workload.model, first, workload.meta, {op.name: workload.tensors[op.name] for op in first})
    return {
        "quant": qcfg.as_dict(),
        "ppl_fp32": fp,
        "ppl_w4a8": q,
        "ops": len(workload.ops),
        "replay_16x16": {pe: r.totals for pe, r in reports.items()},
        "mixpe_vs_dequant": speedups(reports)["dequant"],
        "exact_check_first_ops": exact_check(sub, "mixpe", 16, 16, mem),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench.merge_zoo", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--preset", default="default", help="zoo preset (default: default)")
    p.add_argument("--samples", type=int, default=16, help="Sens-Merging calibration windows per task (128 tokens)")
    p.add_argument("--no-hardware", action="store_true", help="skip quantization, export and replay")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    t0 = time.time()

    loaded = load_models(parse_config(raw_config(args.preset, "task_arithmetic", 1.0, 1.0)))
    window = min(VAL_SEQ, loaded.base.config.max_position_embeddings)  # the tiny preset's window is 96
    sens_cfg = SensConfig(samples=args.samples, seq_len=min(128, window))
    cfg = parse_config(raw_config(args.preset, "task_arithmetic", 1.0, 1.0, sens=sens_cfg))
    tok = loaded.tokenizer
    models = {"base": loaded.base, **dict(zip(TASKS, loaded.tuned, strict=True))}
    val = {t: zoo.token_windows(tok, t, "train", window, VAL_SKIP + VAL_COUNT, args.preset)[VAL_SKIP:] for t in TASKS}

    t_sens = time.time()
    sens = compute_sens(cfg, loaded, progress=True)
    sens_s = time.time() - t_sens
    print(f"Sens-Merging analysis: {sens_s:.1f} s; tau (code, math, english) = {sens.tau.numpy().round(3).tolist()}")

    def coeffs(c):  # the one Sens analysis, combined at the config's temperature
        return sens.with_temperature(c.sens.temperature) if c.sens is not None else None

    selection, chosen = {}, {}
    for method in HOSTS:
        tried = []
        for point in tqdm(grid(method), desc=f"validate {method}"):
            m = merge_loaded(
                parse_config(raw_config(args.preset, method, point["lam"], point["density"], point["normalize"])),
                loaded,
            )
            tried.append({**point, "val_nll": windows_nll(m, val)["mean"]})
        best = min(tried, key=lambda r: r["val_nll"])
        plain_cfg = parse_config(raw_config(args.preset, method, best["lam"], best["density"], best["normalize"]))
        temps = []
        for temp in tqdm(TEMPERATURES, desc=f"validate {method}+Sens"):
            m = merge_loaded(plain_cfg, loaded, sens.with_temperature(temp))
            temps.append({"temperature": temp, "val_nll": windows_nll(m, val)["mean"]})
        best_t = min(temps, key=lambda r: r["val_nll"])
        selection[method] = {"grid": tried, "chosen": best, "temperatures": temps, "chosen_temperature": best_t}
        chosen[SHORT[method]] = plain_cfg
        with_t = replace(sens_cfg, temperature=best_t["temperature"])
        chosen[SHORT[method] + "+Sens"] = parse_config(
            raw_config(args.preset, method, best["lam"], best["density"], best["normalize"], with_t)
        )

    evaluations = {}
    for name, m in tqdm(models.items(), desc="evaluate reference models"):
        evaluations[name] = zoo.evaluate(m, tok, args.preset)
    merged_val = {}
    for label, c in tqdm(chosen.items(), desc="evaluate merges"):
        m = merge_loaded(c, loaded, coeffs(c))
        evaluations[label] = zoo.evaluate(m, tok, args.preset)
        merged_val[label] = windows_nll(m, val)["mean"]

    # Ablation of Sens-Merging's unverified choices, on TA at its chosen lambda: each variant's T picked on
    # validation as above, then scored once on the test split.
    ablation = {}
    ta = chosen["TA"]
    for saliency, transfer in tqdm(VARIANTS, desc="Sens ablation (TA)"):
        variant = replace(sens_cfg, saliency=saliency, transfer=transfer)
        analysis = compute_sens(replace(ta, sens=variant), loaded)
        temps = [
            (windows_nll(merge_loaded(ta, loaded, analysis.with_temperature(t)), val)["mean"], t) for t in TEMPERATURES
        ]
        val_nll, temp = min(temps)
        ev = zoo.evaluate(merge_loaded(ta, loaded, analysis.with_temperature(temp)), tok, args.preset)
        ablation[f"{saliency}/{transfer}"] = {"temperature": temp, "val_nll": val_nll, **summary(ev)}

    specialists = {t: evaluations[t] for t in TASKS}
    rows = {name: summary(ev) for name, ev in evaluations.items()}
    effect = {}
    for method in ("task_arithmetic", "ties", "dare_linear", "dare_ties", "linear"):
        plain, with_sens = rows[SHORT[method]]["mean_nll"], rows[SHORT[method] + "+Sens"]["mean_nll"]
        effect[SHORT[method]] = {
            "mean_nll_plain": plain,
            "mean_nll_sens": with_sens,
            "delta_nll": with_sens - plain,
            "improved": with_sens < plain,
        }
    best_label = min(merged_val, key=merged_val.get)
    gaps = {label: gap_to_specialists(evaluations[label], specialists) for label in merged_val}
    best_gap = gaps[best_label]
    closest = {t: min(gaps.values(), key=lambda g, t=t: g[t])[t] for t in TASKS}
    targets = {
        "sens_improves": {k: effect[k]["improved"] for k in ("TA", "TIES", "DARE-TA", "DARE-TIES")},
        "best_merge": best_label,
        "best_gap_pct": {t: 100 * g for t, g in best_gap.items()},
        "best_within_5pct": {t: g <= 0.05 for t, g in best_gap.items()},
        "closest_any_merge_gap_pct": {t: 100 * g for t, g in closest.items()},
    }

    hardware = None
    if not args.no_hardware:
        best = chosen[best_label]
        co = coeffs(best)
        save(merge_loaded(best, loaded, co), tok, report_for(best, loaded, co), best, OUT / "best")
        hardware = hardware_path(OUT / "best", args.preset, tok, window)

    order = ["base", *TASKS] + [lab for m in HOSTS for lab in (SHORT[m], SHORT[m] + "+Sens")]
    ordered = {k: evaluations[k] for k in order}
    table = markdown_table(ordered, specialists)
    RESULTS.mkdir(parents=True, exist_ok=True)
    settings = {
        "preset": args.preset,
        "sens": asdict(sens_cfg),
        "lambdas": LAMBDAS,
        "densities": DENSITIES,
        "temperatures": TEMPERATURES,
        "validation": {"seq_len": window, "windows_per_task": VAL_COUNT, "skip": VAL_SKIP, "split": "train"},
        "threads": 1,
    }
    result = {
        "settings": settings,
        "sens_analysis": {**sens.as_dict(), "seconds": sens_s},
        "selection": selection,
        "evaluation": ordered,
        "summary": {k: rows[k] for k in order},
        "validation_nll": merged_val,
        "sens_effect": effect,
        "sens_ablation_ta": ablation,
        "targets": targets,
        "hardware": hardware,
        "seconds": time.time() - t0,
        "machine": {"python": platform.python_version(), "torch": torch.__version__, "threads": 1},
    }
    atomic_write(RESULTS / "merge_zoo.json", json.dumps(result, indent=1) + "\n")
    atomic_write(RESULTS / "merge_zoo.csv", csv_table(ordered))
    atomic_write(RESULTS / "merge_zoo.md", table)
    atomic_write(RESULTS / "merge_zoo.png", plot(ordered, f"zoo '{args.preset}': merges ± Sens-Merging vs specialists"))

    print(table)
    for k, e in effect.items():
        print(
            f"{k:>10}: task-average NLL {e['mean_nll_plain']:.4f} -> {e['mean_nll_sens']:.4f} with Sens-Merging "
            f"({e['delta_nll']:+.4f} nats/token, {'better' if e['improved'] else 'not better'})"
        )
    for k, a in ablation.items():
        print(f"TA+Sens saliency/transfer {k:>18}: T={a['temperature']}, task-average NLL {a['mean_nll']:.4f}")
    print(
        f"best merge on validation: {best_label}; perplexity gap to each specialist on its own task: "
        + ", ".join(f"{t} {100 * g:+.1f}%" for t, g in best_gap.items())
        + " (target ≤ +5%)"
    )
    if hardware is not None:
        r = hardware["mixpe_vs_dequant"]
        print(
            "W4A8 perplexity (fp32 -> w4a8): "
            + ", ".join(f"{t} {hardware['ppl_fp32'][t]:.2f} -> {hardware['ppl_w4a8'][t]:.2f}" for t in TASKS)
        )
        print(
            f"replay ({hardware['ops']} ops, 16x16): MixPE speedup {r['speedup']:.2f}x, energy ratio "
            f"{r['energy_ratio']:.2f}x over dequant; exact check on the first ops: "
            f"{all(c['outputs_match_torch'] for c in hardware['exact_check_first_ops'])}"
        )
    print(f"total {time.time() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
