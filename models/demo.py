"""The model half of the demo: from a language model trained here to its cost on the accelerator.

1. train (or load from the cache) the zoo's default base model (models.zoo; ~8 minutes once),
2. quantize every linear layer and lm_head to 4-bit weights, group 128 (RTN), with INT8 and with
   FP16 activations, and score FP32 and both quantized models on held-out text of each task,
3. run one prompt through the quantized model with every linear layer on the cycle-exact 8x8
   MixPE array (sim.gemm) and check that the logits equal the torch model's bit for bit,
4. export the model's workload (a 256-token prefill + 32 decode steps; models.export) and replay it
   on an 8x8 array of MixPE and of the baselines (sim.replay), with synthesized area, clock and energy,
5. print perplexity and cycles side by side; write out/demo/model/ (summary.json, the workloads,
   replay tables and plots).

  python -m models.demo [-o out/demo/model] [--preset default] [--eval-windows 16] [--threads N]

-o names a new folder or one an earlier demo wrote (it holds summary.json); --force replaces any other.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from models.zoo.presets import PRESETS
from sim.cli import OneLineParser, add_output_arguments, check_output, fail, positive_int
from sim.files import atomic_write

if TYPE_CHECKING:  # torch, the zoo and the quantizer load in main(), after the arguments are checked
    import torch

PROG = "python -m models.demo"

TASKS = ("code", "english", "math", "recall")
SEQ = 256
PREFILL, DECODE = 256, 32
ARRAY = 8  # rows = cols: a 4.6 M-parameter model keeps an 8x8 array busy in prefill


def quality(model: torch.nn.Module, windows: dict[str, list[torch.Tensor]]) -> dict[str, dict[str, float]]:
    """Perplexity and top-1 next-token accuracy per task on held-out windows."""
    from tqdm import tqdm

    from models.quant import evaluate

    return {task: evaluate(model, seqs) for task, seqs in tqdm(windows.items(), desc="evaluate", leave=False)}


def increase_pct(scores: dict[str, dict[str, float]], reference: dict[str, dict[str, float]]) -> float:
    """Mean over tasks of the perplexity increase over `reference` (percent)."""
    return 100 * sum(scores[t]["ppl"] / reference[t]["ppl"] - 1 for t in TASKS) / len(TASKS)


def on_the_array(model: torch.nn.Module, ids: torch.Tensor) -> dict:
    """Logits of `ids` (1, T) with every QuantLinear on the cycle-exact 8x8 MixPE array, against torch's."""
    import torch

    from hw.config import ArrayConfig
    from models.quant import set_engine
    from sim.gemm import run_gemm

    gemms = []

    def engine(ops, pe):
        y, cycles = run_gemm(ArrayConfig(pe, ARRAY, ARRAY), ops)
        gemms.append(cycles)
        return y

    with torch.no_grad():
        expected = model(input_ids=ids).logits
        set_engine(model, engine)
        try:
            got = model(input_ids=ids).logits
        finally:
            set_engine(model, None)
    return {
        "tokens": ids.shape[1],
        "gemms": len(gemms),
        "cycles": sum(gemms),
        "logits_equal": torch.equal(got, expected),
    }


def main(argv: list[str] | None = None) -> int:
    p = OneLineParser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_output_arguments(p, "output folder (default out/demo/model; new, or an earlier demo's)", required=False)
    p.set_defaults(out=Path("out/demo/model"))
    p.add_argument(
        "--preset", choices=list(PRESETS), default="default", help="zoo preset (tiny: seconds, a quick look)"
    )
    p.add_argument("--eval-windows", type=positive_int, default=16, help=f"held-out windows of {SEQ} tokens per task")
    p.add_argument("--threads", type=positive_int, default=None, help="torch CPU threads (default: torch's)")
    args = p.parse_args(argv)
    try:
        check_output(args.out, own="summary.json", force=args.force)
    except ValueError as e:
        return fail(PROG, e)
    import torch
    from tqdm import tqdm

    from models import zoo
    from models.export import export
    from models.quant import QuantConfig, quantize_model
    from sim.perf_model import MemoryConfig
    from sim.replay import pe_types_for, replay, speedups, write_outputs

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    fp32, tokenizer = zoo.load("base", args.preset)
    seq = min(SEQ, fp32.config.max_position_embeddings)
    windows = {t: zoo.token_windows(tokenizer, t, "test", seq, args.eval_windows, args.preset) for t in TASKS}
    scores = {"fp32": quality(fp32, windows)}
    precisions = {"w4a8": "int8", "w4a16": "fp16"}
    exactness = {}
    for label, act in precisions.items():
        cfg = QuantConfig(wbits=4, group=128, act=act, uneven="divisor", quantize_lm_head=True)
        q = quantize_model(zoo.load("base", args.preset)[0], cfg)
        scores[label] = quality(q, windows)
        exactness[label] = on_the_array(q, windows["code"][0][None, :64])

    prefill = min(PREFILL, fp32.config.max_position_embeddings - DECODE)
    replays, totals = {}, {}
    for label, act in precisions.items():
        cfg = QuantConfig(wbits=4, group=128, act=act, uneven="divisor", quantize_lm_head=True)
        workload = export("base", prefill, DECODE, qcfg=cfg, preset=args.preset)
        (args.out / label).mkdir(parents=True, exist_ok=True)
        workload.save(args.out / label / "workload.json")
        kinds = pe_types_for(act)
        reports = {k: replay(workload, k, ARRAY, ARRAY, MemoryConfig()) for k in tqdm(kinds, desc=f"replay {label}")}
        replays[label] = {"speedups": speedups(reports)}
        write_outputs(reports, replays[label], args.out / label)
        totals[label] = {k: r.totals for k, r in reports.items()}

    print(
        f"\nzoo base model ({sum(p.numel() for p in fp32.parameters()) / 1e6:.1f} M parameters, preset {args.preset}),"
    )
    print(f"perplexity on {args.eval_windows} held-out windows of {seq} tokens per task; W4 = 4-bit weights, group 128")
    print(f"{'model':8s}" + "".join(f"{t:>10s}" for t in TASKS) + f"{'top1 avg':>10s}{'vs fp32':>9s}")
    for label, s in scores.items():
        top1 = sum(s[t]["top1"] for t in TASKS) / len(TASKS)
        row = "".join(f"{s[t]['ppl']:10.3f}" for t in TASKS)
        print(f"{label:8s}{row}{top1:10.2%}{increase_pct(s, scores['fp32']):+8.2f}%")
    for label, e in exactness.items():
        print(
            f"{label}: a {e['tokens']}-token prompt on the cycle-exact {ARRAY}x{ARRAY} MixPE array ({e['gemms']} GEMMs,"
            f" {e['cycles']:,} cycles): logits {'EQUAL to' if e['logits_equal'] else 'DIFFERENT from'} torch's"
        )
    print(f"\nreplay: prefill {prefill} + decode {DECODE} tokens on an {ARRAY}x{ARRAY} array (synthesized osu018 PEs)")
    print(
        f"{'model':8s} {'PE':8s} {'ppl vs fp32':>11s} {'cycles':>12s} {'time ms':>9s} {'energy uJ':>10s} {'util':>6s}"
    )
    for label, by_pe in totals.items():
        ppl = increase_pct(scores[label], scores["fp32"])
        for pe, t in by_pe.items():
            print(
                f"{label:8s} {pe:8s} {ppl:+10.2f}% {t['cycles']:12,d} {t['seconds'] * 1e3:9.2f} "
                f"{t['energy_j'] * 1e6:10.1f} {t['utilization']:6.1%}"
            )
        for base, r in replays[label]["speedups"].items():
            print(f"{label:8s} MixPE vs {base}: speedup {r['speedup']:.2f}x, energy ratio {r['energy_ratio']:.2f}x")
    print(f"workloads, replay tables and plots: {args.out}/w4a8/, {args.out}/w4a16/")

    summary = {
        "preset": args.preset,
        "seq_len": seq,
        "eval_windows": args.eval_windows,
        "quality": scores,
        "exact_on_array": exactness,
        "replay": {"prefill": prefill, "decode": DECODE, "array": ARRAY, "totals": totals, **replays},
    }
    atomic_write(args.out / "summary.json", json.dumps(summary, indent=1) + "\n")
    return 0 if all(e["logits_equal"] for e in exactness.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
