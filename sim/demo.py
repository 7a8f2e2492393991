"""The end-to-end demo on a built-in default: no downloads, no user files.

For each PE type (MixPE and the two baselines) at W4A8 and W4A16 (the INT8 PE at W8A8):
  1. emit the Verilog of an 8x8 output-stationary array (hw.build) into out/demo/verilog/,
  2. run a random 64x64x512 GEMM (group size 128) on the Numba cycle model, check it bit for bit
     against the numpy reference and against X @ dequant(W) in float64, and its cycle count against
     the array's formula,
  3. run a smaller GEMM (8x8x256) on the emitted Verilog with cocotb + Icarus and check that the
     RTL agrees with the cycle model on every cycle,
  4. replay the built-in Llama-2-7B workload (2,048-token prefill + 128 decode steps, W4A8 and
     W4A16) on a 32x32 array of each compared PE (sim/compare.py), with area, clock and energy from
     synthesis (sim/replay.py), then print the comparison bench.replay_speed prints: MixPE's speedup,
     energy ratio and iso-area throughput over every baseline on Llama-2-7B and Mixtral-8x7B, batch-1
     decode against the DRAM bound, and the targets met or not,
  5. E2ESlack before routing (eda.preroute_clock): the W4A8 MixPE PE is synthesized and placed (qflow,
     cached), E2ESlack predicts its clock (training a quick model first on a machine without one), and
     Llama-2-7B W4A8 is replayed on the 32x32 MixPE array at that clock, beside the synthesized clock, the RMST
     estimate + STA and, when its route is cached, the post-route clock (the demo never routes).
Prints the tables and writes out/demo/summary.json and out/demo/replay_w4a8|w4a16/.

    python -m sim.demo [--out out/demo] [--seed 0] [--no-rtl] [--no-preroute]
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING

from hw.config import ArrayConfig, PEConfig
from sim.cli import OneLineParser, add_output_arguments, check_output, fail, seed_int
from sim.files import atomic_write

if TYPE_CHECKING:
    from eda.preroute_clock import PreRouteClock
    from sim.energy import PECost

PROG = "python -m sim.demo"
DEMO_PES = [
    PEConfig("mixpe", 4, "unsigned", "int8", 128),
    PEConfig("dequant", 4, "unsigned", "int8", 128),
    PEConfig("mixpe", 4, "unsigned", "fp16", 128),
    PEConfig("dequant", 4, "unsigned", "fp16", 128),
    PEConfig("int8", 8, "signed", "int8", 128),
]
SCALE_FRAC_BITS = 12  # real scale = S * 2**-12


def run_case(pe: PEConfig, out: Path, seed: int, rtl: bool) -> dict:
    import numpy as np

    from hw.build import write_design
    from sim.gemm import gemm_cycles, random_operands, run_gemm
    from sim.reference import real_gemm, reference_gemm, result_lsb

    cfg = ArrayConfig(pe, 8, 8)
    verilog, _ = write_design(cfg, out / "verilog")
    rng = np.random.default_rng(seed)
    m, n, k = 64, 64, 512
    ops = random_operands(pe, m, n, k, rng, fp16="normal")
    start = time.perf_counter()
    y, cycles = run_gemm(cfg, ops)
    model_s = time.perf_counter() - start
    exact = bool(np.array_equal(y, reference_gemm(pe, ops)))
    real = real_gemm(pe, ops, SCALE_FRAC_BITS)
    rel_err = float(np.abs(y * result_lsb(pe, SCALE_FRAC_BITS) - real).max() / np.abs(real).max())
    row = {
        "config": cfg.name(),
        "verilog": str(verilog),
        "gemm_mnk": [m, n, k],
        "cycles": cycles,
        "cycles_formula": gemm_cycles(cfg, m, n, k),
        "utilization": m * n * k / (cycles * cfg.rows * cfg.cols),
        "model_seconds": model_s,
        "exact_vs_numpy": exact,
        "max_rel_error_vs_float64": rel_err,
    }
    if rtl:
        from tb import runner

        tests, failed = runner.run(cfg, "tb_array", seed, shape=[8, 8, 256], bubble_prob=0.05)
        row["rtl_matches_model"] = bool(tests == 1 and failed == 0)
    return row


def preroute_step() -> dict:
    """Step 5: the W4A8 MixPE PE's clock before routing (eda.preroute_clock), then replay_at_clocks."""
    from eda.preroute_clock import ensure_model, pe_preroute_clock
    from sim.compare import MIXPE, pe_cost, pe_for

    pe = pe_for(MIXPE, "int8")  # the demo's W4A8 MixPE PE (DEMO_PES[0]), as the replay prices it
    model = ensure_model()
    clock = pe_preroute_clock(pe, Path(model["model_dir"]))
    trained = "a quick model trained here" if model["trained_here"] else "the cached model"
    print(f"\n== E2ESlack: {clock.design} ({clock.cells:,} cells) placed, its clock predicted before routing ==")
    print(f"model: {trained}, trained on {', '.join(model['trained_on'] or ['bench.e2eslack designs'])}")
    return replay_at_clocks(pe, pe_cost(pe), clock) | {"model": model}


def replay_at_clocks(pe: PEConfig, cost: PECost, clock: PreRouteClock) -> dict:
    """Llama-2-7B W4A8 (prefill 2048 + decode 128) on a 32x32 array of `pe` at each clock source: `cost`'s
    (synthesized) and `clock`'s (RMST estimate, E2ESlack and, when cached, post-route); prints them side by side.
    Only this PE is re-clocked: the cross-PE comparison keeps every PE on the same (synthesized) source."""
    from sim.compare import MEMORY
    from sim.model_shapes import builtin_workload
    from sim.replay import replay

    sources = {
        "synthesized (yosys + OpenSTA, no wires)": cost.fmax_mhz,
        "RMST estimate + OpenSTA, placed": clock.rmst_mhz,
        "E2ESlack, placed, before routing": clock.predicted_mhz,
    }
    if clock.routed_mhz is not None:
        sources["post-route OpenSTA (cached route)"] = clock.routed_mhz
    workload = builtin_workload("llama-2-7b", prefill=2048, decode=128, wbits=4, act=pe.act, group=pe.group)
    seconds = {k: replay(workload, pe, 32, 32, MEMORY, replace(cost, fmax_mhz=v)).totals["seconds"]
               for k, v in sources.items()}  # fmt: skip
    print(f"{'clock source':42s} {'MHz':>7s} {'Llama-2-7B s':>13s}  (32x32 array, prefill 2048 + decode 128)")
    for k, v in sources.items():
        print(f"{k:42s} {v:7.1f} {seconds[k]:13.3f}")
    if clock.routed_mhz is None:
        print("post-route clock: not routed yet (python -m bench.replay_speed --costs routed routes it, cached)")
    else:
        print(f"E2ESlack vs post-route: {clock.predicted_mhz / clock.routed_mhz - 1:+.1%}; "
              f"RMST estimate vs post-route: {clock.rmst_mhz / clock.routed_mhz - 1:+.1%}")  # fmt: skip
    print(f"synthesis + placement {clock.place_seconds:.0f} s (cached after the first run), "
          f"prediction {clock.predict_seconds:.1f} s")  # fmt: skip
    return {"clock": asdict(clock), "clock_mhz": sources, "replay_seconds": seconds}


def main(argv: list[str] | None = None) -> int:
    p = OneLineParser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_output_arguments(p, "output folder (default out/demo; new, or an earlier demo's)", required=False)
    p.set_defaults(out=Path("out/demo"))
    p.add_argument("--seed", type=seed_int, default=0, help="seed for the random operands")
    p.add_argument("--no-rtl", action="store_true", help="skip the cocotb + Icarus runs")
    p.add_argument("--no-preroute", action="store_true", help="skip step 5 (placement and E2ESlack's clock)")
    args = p.parse_args(argv)
    try:
        check_output(args.out, own="summary.json", force=args.force)
    except ValueError as e:
        return fail(PROG, e)
    from tqdm import tqdm  # the model, Numba and the replay load after the arguments are checked

    from sim.compare import COMPARED, MEMORY, MIXPE, compare_all, format_comparisons, pe_cost, pe_for, targets
    from sim.model_shapes import builtin_workload
    from sim.replay import format_report, replay, speedups, write_outputs

    rows = [run_case(pe, args.out, args.seed, not args.no_rtl) for pe in tqdm(DEMO_PES, desc="PE configurations")]
    print(f"\n8x8 output-stationary array, GEMM 64x64x512, group 128, real scale = S * 2^-{SCALE_FRAC_BITS}")
    print(
        f"{'configuration':32s} {'cycles':>7s} {'formula':>7s} {'util':>6s} {'exact':>6s} {'rel.err':>9s}"
        f" {'RTL=model':>10s}"
    )
    for r in rows:
        rtl = {True: "yes", False: "NO"}.get(r.get("rtl_matches_model"), "-")
        print(
            f"{r['config']:32s} {r['cycles']:7d} {r['cycles_formula']:7d} {r['utilization']:6.1%} "
            f"{'yes' if r['exact_vs_numpy'] else 'NO':>6s} {r['max_rel_error_vs_float64']:9.1e} {rtl:>10s}"
        )
    print("exact: cycle model == numpy reference bit for bit; rel.err: |Y*lsb - X@dequant(W)| / max|X@dequant(W)|")
    print("Every PE accepts one operand per cycle, so cycles agree across PE types up to their pipeline latency")
    print("(PEConfig.latency: 18 for the serial MixPE, whose group multiplier runs 16 cycles, 2 for the dequant PE);")
    print("they differ in area, clock and energy per operation, which synthesis measures.")
    print(f"Verilog: {args.out / 'verilog'}/   numbers: {args.out / 'summary.json'}")

    replays = {}
    for act, label in (("int8", "w4a8"), ("fp16", "w4a16")):
        workload = builtin_workload("llama-2-7b", prefill=2048, decode=128, wbits=4, act=act, group=128)
        names = [n for n, c in COMPARED.items() if act in c.acts]
        reports = {
            n: replay(workload, pe_for(n, act), 32, 32, MEMORY, pe_cost(pe_for(n, act)))
            for n in tqdm(names, desc=f"replay {label}")
        }
        ratios = speedups(reports, MIXPE)
        write_outputs(reports, {"speedups": ratios}, args.out / f"replay_{label}")
        print(f"\n== Llama-2-7B {label.upper()}, prefill 2048 + 128 decode ==")
        print(format_report(reports, ratios, top=6))
        replays[label] = {"speedups": ratios, "totals": {k: r.totals for k, r in reports.items()}}
    print(f"\nreplay tables, plots: {args.out}/replay_w4a8/, {args.out}/replay_w4a16/")
    comparisons = compare_all(MEMORY)
    goals = targets(comparisons)
    print("\n== MixPE against every baseline (as python -m bench.replay_speed prints it) ==")
    print(format_comparisons(comparisons, goals))

    preroute, preroute_ok = None, True
    if not args.no_preroute:
        from eda.flow import FlowError

        try:
            preroute = preroute_step()
        except FlowError as e:  # a flow tool is missing or failed: the rest of the demo still stands
            print(f"\nE2ESlack step failed: {e}")
            preroute_ok = False

    payload = {
        "seed": args.seed,
        "scale_frac_bits": SCALE_FRAC_BITS,
        "cases": rows,
        "replays": replays,
        "comparisons": {label: c["speedups"] for label, c in comparisons.items()},
        "targets": goals,
        "preroute_clock": preroute,
    }
    atomic_write(args.out / "summary.json", json.dumps(payload, indent=2) + "\n")
    ok = all(
        r["exact_vs_numpy"] and r["cycles"] == r["cycles_formula"] and r.get("rtl_matches_model", True) for r in rows
    )
    return 0 if ok and preroute_ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
