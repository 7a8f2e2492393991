"""Replay speed and the headline comparison of MixPE against every baseline PE.

1. Time `sim.replay.replay` on the full Llama-2-7B workload (2,048-token prefill plus 128 decode
   steps, batch 1) on a 32x32 array (target: under 2 s on one core), with synthesis cached.
2. MixPE against every configuration in sim/compare.py's COMPARED table (the dequantize-then-multiply
   baselines dequant*, the W8A8 INT8 PE, further MixPE variants) on Llama-2-7B and Mixtral-8x7B at
   W4A8 and W4A16: speedup, energy ratio and iso-area throughput per workload label, each figure
   with its datapath; batch-1 decode cycles against the DRAM-bound cycle count; the issue's targets
   as met / not met.

PE area and clock come from the routed flow by default (sim/routed_cost.py: each PE buffered, placed,
routed and timed with a propagated clock; the first run routes seven PEs and places a 4x4 array, hours on one
core, then eda.flow's cache answers); `--costs synthesized` takes them from hw.synth alone. Either way
the JSON also holds the pre-layout comparison (`comparisons_synthesized`).

Prints its figures and writes bench/results/replay_speed.json and replay_speed.png;
`--markdown` also prints the comparison as the Markdown table the README shows.

    python -m bench.replay_speed [--repeats 5] [--markdown] [--costs routed|synthesized] [--array 4]
"""

from __future__ import annotations

import argparse
import io
import json
import math
import platform
import statistics
import time
from dataclasses import asdict, replace
from pathlib import Path

from hw.config import ArrayConfig
from hw.power import clock_gate_energy_pj, measure_power
from sim.compare import (
    COMPARED,
    COST_SOURCES,
    MEMORY,
    MIXPE,
    SCHEMES,
    compare,
    compare_all,
    format_comparisons,
    markdown_table,
    markdown_targets,
    pe_cost,
    pe_for,
    targets,
)
from sim.energy import CLOCK_GATING, array_area_um2
from sim.files import atomic_write
from sim.model_shapes import builtin_workload
from sim.perf_model import MemoryConfig
from sim.replay import _cost, replay, speedups
from sim.routed_cost import routed_timing

RESULTS = Path(__file__).resolve().parent / "results" / "replay_speed.json"
PAPER = {"speedup": 2.6, "energy_ratio": 1.4}


def pe_costs(source: str) -> dict[str, dict]:
    """Per compared PE and activation type: the costs the replay uses (area and clock from `source`), the
    synthesized area and clock beside them, and the measured padded-row energy."""
    out = {}
    for act, scheme in SCHEMES.items():
        for name, c in COMPARED.items():
            if act in c.acts:
                cfg = pe_for(name, act)
                padded = measure_power(cfg, mode="padded").energy_pj_per_cycle
                synthesized = pe_cost(cfg)
                out[f"{name}, {scheme}"] = {
                    **asdict(pe_cost(cfg, source)),
                    "synthesized_area_um2": synthesized.area_um2,
                    "synthesized_fmax_mhz": synthesized.fmax_mhz,
                    **({"routed": routed_timing(cfg)} if source == "routed" else {}),
                    "config": cfg.name(),
                    "datapath": c.datapath,
                    "energy_pj_padded_row_ungated": padded,
                }
    return out


def gating_effect(mem: MemoryConfig, source: str) -> dict[str, dict]:
    """Llama-2-7B prefill 2048 + decode 128: each PE's energy (J) with the modeled clock gating and with
    every idle PE-cycle clocked instead (same cycles, same gated operands), and MixPE's energy ratios."""
    out = {}
    for act, scheme in SCHEMES.items():
        workload = builtin_workload("llama-2-7b", prefill=2048, decode=128, wbits=4, act=act, group=128)
        energy = {}
        for name, c in COMPARED.items():
            if act in c.acts:
                cfg = pe_for(name, act)
                cost = pe_cost(cfg, source)
                energy[name] = {
                    "clock_gated": replay(workload, cfg, 32, 32, mem, cost).totals["energy_j"],
                    "clocked": replay(workload, cfg, 32, 32, mem, replace(cost, energy_pj_gated=None)).totals[
                        "energy_j"
                    ],
                }
        ratios = {
            mode: {n: e[mode] / energy[MIXPE][mode] for n, e in energy.items() if n != MIXPE}
            for mode in ("clock_gated", "clocked")
        }
        out[f"{scheme}, prefill 2048 + decode 128"] = {"energy_j": energy, "energy_ratio": ratios}
    return out


def markdown_costs(costs: dict[str, dict]) -> str:
    """The PE costs as a Markdown table (README)."""
    rows = [
        "| PE | area µm² | clock MHz | pJ per active cycle | idle, clocked | idle, clock-gated | padded row, ungated |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, c in costs.items():
        rows.append(
            f"| {name} | {c['area_um2']:,.0f} | {c['fmax_mhz']:.1f} | {c['energy_pj_active']:.1f} "
            f"| {c['energy_pj_idle']:.1f} | {c['energy_pj_gated']:.2f} | {c['energy_pj_padded_row_ungated']:.1f} |"
        )
    return "\n".join(rows)


def plot(comparisons: dict[str, dict], goals: dict[str, dict]) -> bytes:
    """Three panels (speedup, energy ratio, iso-area throughput): one bar per workload and baseline."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = list(comparisons)
    bases = sorted({b for c in comparisons.values() for b in c["speedups"]})
    fig, axes = plt.subplots(1, 3, figsize=(16, 0.32 * len(labels) * len(bases) + 2), sharey=True)
    width = 0.8 / len(bases)
    for ax, key, title in zip(
        axes,
        ("speedup", "energy_ratio", "iso_area_throughput_ratio"),
        ("speedup", "energy ratio (baseline / MixPE)", "iso-area throughput"),
        strict=True,
    ):
        for j, base in enumerate(bases):
            ys = [i + j * width for i, lab in enumerate(labels) if base in comparisons[lab]["speedups"]]
            xs = [comparisons[lab]["speedups"][base][key] for lab in labels if base in comparisons[lab]["speedups"]]
            ax.barh(ys, xs, width, label=f"vs {base}")
        ax.axvline(1.0, color="k", lw=0.8)
        ax.set_title(title)
        ax.set_xlabel("MixPE ratio (> 1 favours MixPE)")
    for scheme, goal in (("W4A8", 2.6), ("W4A16", 1.5)):
        axes[2].axvline(goal, ls="--", lw=0.8, color="tab:red" if scheme == "W4A8" else "tab:purple")
        axes[2].text(goal, len(labels) - 0.5, f" {scheme} target", fontsize=7, rotation=90, va="bottom")
    axes[1].axvline(1.4, ls="--", lw=0.8, color="tab:red")
    axes[0].set_yticks([i + 0.4 - width / 2 for i in range(len(labels))], labels, fontsize=7)
    axes[0].invert_yaxis()
    axes[2].legend(fontsize=7)
    met = sum(t["met"] for t in goals.values())
    fig.suptitle(f"{MIXPE} against each baseline, 32x32 arrays, osu018 ({met} of {len(goals)} targets met)")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()


def unlimited_dram_iso_area(source: str) -> dict[str, dict[str, float]]:
    """MixPE's iso-area throughput over each baseline on the Llama-2-7B prefill with DRAM never stalling:
    what the arrays themselves give, before the fixed DRAM bandwidth caps the faster clock."""
    mem = MemoryConfig(dram_bytes_per_cycle=math.inf)
    out = {}
    for act, scheme in SCHEMES.items():
        ratios = compare("llama-2-7b", act, 2048, 0, mem, source)["speedups"]
        out[scheme] = {b: r["iso_area_throughput_ratio"] for b, r in ratios.items()}
    return out


def at_clocks(clocks: dict[str, float], source: str) -> dict[str, dict]:
    """MixPE's W4A8 ratios over the other named PEs on Llama-2-7B with each PE's clock replaced (MHz), e.g.
    by the post-route clocks `python -m eda.flow` reports for the PEs; other costs as measured."""
    out = {}
    for label, (prefill, decode) in (("prefill 2048 only", (2048, 0)), ("prefill 2048 + decode 128", (2048, 128))):
        workload = builtin_workload("llama-2-7b", prefill=prefill, decode=decode, wbits=4, act="int8", group=128)
        reports = {}
        for name, mhz in clocks.items():
            cfg = pe_for(name, "int8")
            reports[name] = replay(workload, cfg, 32, 32, MEMORY, replace(pe_cost(cfg, source), fmax_mhz=mhz))
        out[f"W4A8, {label}"] = speedups(reports, MIXPE)
    return out


def array_check(size: int) -> dict:
    """The size x size MixPE W4A8 array through the physical flow as far as the session affords: placed
    (eda.flow.run_placement, cached), its clock from the RMST wire estimate + OpenSTA and from E2ESlack, and
    the routed clock when eda.flow has routed it (never routed here: a 40k-cell array takes hours). Compared
    with the same PE's RMST clock on its own placement, and its placed cell area with the replay's array model
    fed the routed PE area (per-PE area x count + modeled registers and gating)."""
    from eda.preroute_clock import ensure_model, pe_preroute_clock, preroute_clock
    from eda.slack import default_model_dir
    from hw.build import design_name, emit
    from sim.routed_cost import ARRAY_START_LAYERS, def_cells_area_um2

    pe = pe_for(MIXPE, "int8")
    cfg = ArrayConfig(pe, size, size)
    model_dir = default_model_dir()
    ensure_model(model_dir)
    array = preroute_clock(emit(cfg)[0], design_name(cfg), ARRAY_START_LAYERS, model_dir)
    alone = pe_preroute_clock(pe, model_dir)
    cells, area = def_cells_area_um2(str(Path(array.placed_dir) / "placed.def"))
    model = sum(array_area_um2(cfg, pe_cost(pe, "routed")).values())
    return {
        "array": asdict(array) | {"area_um2": area},
        "pe": asdict(alone) | {"routed_timing": routed_timing(pe)},
        "rmst_clock_array_over_pe": array.rmst_mhz / alone.rmst_mhz,
        "area_model_um2": model,
        "area_model_over_placed": model / area,
    }


def clock_spec(text: str) -> tuple[str, float]:
    """NAME=NS (a clock period, as every mixkit clock flag takes it) with NAME a W4A8 entry of COMPARED and NS
    finite and positive (argparse type): (NAME, MHz)."""
    name, _, ns = text.partition("=")
    try:
        value = float(ns)
    except ValueError:
        value = math.nan
    if name not in COMPARED or "int8" not in COMPARED[name].acts or not 0 < value < math.inf:
        raise argparse.ArgumentTypeError(f"{text!r}: expected NAME=NS, NAME a W4A8 PE of sim/compare.py, NS > 0")
    return name, 1000.0 / value


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.replay_speed", description=__doc__)
    p.add_argument("--repeats", type=int, default=5, help="timed replays (median reported)")
    p.add_argument("--markdown", action="store_true", help="also print the comparison as a Markdown table")
    p.add_argument(
        "--clock-ns",
        dest="clock",
        type=clock_spec,
        action="append",
        default=[],
        help="NAME=NS: also compare the W4A8 PEs at these clock periods (give mixpe and each baseline; repeatable)",
    )
    p.add_argument(
        "--costs",
        choices=COST_SOURCES,
        default="routed",
        help="where each PE's area and clock come from: the routed flow (default; hours for the first run, then"
        " cached) or hw.synth alone (minutes)",
    )
    p.add_argument(
        "--array",
        type=int,
        default=4,
        metavar="N",
        help="also place an N x N MixPE array and compare its pre-route clock and area with the PE's (default 4;"
        " 0: skip; with --costs routed)",
    )
    args = p.parse_args(argv)
    if args.array < 0:
        p.error(f"--array {args.array}: give 0 (skip) or an array size >= 1")
    mem, source = MEMORY, args.costs

    comparisons = compare_all(mem, source=source)
    goals = targets(comparisons)
    pre_layout = compare_all(mem, source="synthesized") if source == "routed" else comparisons
    costs = pe_costs(source)
    gating = gating_effect(mem, source)
    unlimited = unlimited_dram_iso_area(source)
    given = at_clocks(dict(args.clock), source) if args.clock else {}
    whole_array = array_check(args.array) if args.array and source == "routed" else {}

    workload = builtin_workload("llama-2-7b", prefill=2048, decode=128, wbits=4, act="int8", group=128)
    cfg = pe_for(MIXPE, "int8")
    times = []
    for _ in range(args.repeats):
        _cost.cache_clear()  # time the whole replay, not a memoized one
        start = time.perf_counter()
        report = replay(workload, cfg, 32, 32, mem, pe_cost=pe_cost(cfg, source))
        times.append(time.perf_counter() - start)
    seconds = statistics.median(times)

    print(f"replay of llama-2-7b (prefill 2048 + 128 decode, {len(workload.ops)} ops) on a 32x32 MixPE array:")
    print(f"  {seconds:.3f} s median of {args.repeats} (target < 2 s), {report.totals['cycles']:.3e} simulated cycles")
    print("  (PE area, clock and energy were measured beforehand; they are cached by configuration)")
    print()
    print(f"PE area and clock: {source} (synthesized: hw.synth alone, for comparison)")
    print(
        f"{'PE':22s} {'area um2':>9s} {'MHz':>6s} {'synth um2':>9s} {'MHz':>6s} {'active':>7s} {'idle':>6s}"
        f" {'gated':>6s} {'padded':>7s}  pJ/cycle"
    )
    for name, c in costs.items():
        print(
            f"{name:22s} {c['area_um2']:9.0f} {c['fmax_mhz']:6.1f} {c['synthesized_area_um2']:9.0f}"
            f" {c['synthesized_fmax_mhz']:6.1f} {c['energy_pj_active']:7.2f} {c['energy_pj_idle']:6.2f}"
            f" {c['energy_pj_gated']:6.2f} {c['energy_pj_padded_row_ungated']:7.2f}"
        )
    print("(idle: clock running, no operand; gated: clock-gated; padded: act 0 with valid high, the ungated")
    print(
        f" padded row of a batch-1 GEMV before gating; each includes one clock gate, {clock_gate_energy_pj():.2f} pJ)"
    )
    print()
    print(format_comparisons(comparisons, goals))
    print()
    print("clock gating's share (Llama-2-7B, same cycles; energy ratio baseline / MixPE):")
    for label, g in gating.items():
        for base in g["energy_ratio"]["clocked"]:
            print(
                f"  {label:34s} vs {base:13s} {g['energy_ratio']['clock_gated'][base]:.2f}x gated,"
                f" {g['energy_ratio']['clocked'][base]:.2f}x with every idle PE-cycle clocked"
            )
    print()
    print("iso-area throughput on Llama-2-7B prefill 2048 with unlimited DRAM bandwidth (compute only):")
    for scheme, ratios in unlimited.items():
        print(f"  {scheme}: " + ", ".join(f"vs {b} {r:.2f}x" for b, r in ratios.items()))
    if whole_array:
        a, pe = whole_array["array"], whole_array["pe"]
        routed = f"{a['routed_mhz']:.1f} MHz routed" if a["routed_mhz"] else "not routed"
        print(
            f"{args.array}x{args.array} MixPE W4A8 array, placed: {a['cells']:,} cells, {a['area_um2']:,.0f} um2;"
            f" RMST + STA {a['rmst_mhz']:.1f} MHz ({whole_array['rmst_clock_array_over_pe']:.2f}x the PE's"
            f" {pe['rmst_mhz']:.1f}), E2ESlack {a['predicted_mhz']:.1f} MHz, {routed}; area model"
            f" {whole_array['area_model_um2']:,.0f} um2 ({whole_array['area_model_over_placed']:.2f}x the placed cells)"
        )
    if source == "routed":
        print("pre-layout (hw.synth area and clock) for comparison:")
        for label, c in pre_layout.items():
            if "prefill 2048 only" in label and not label.startswith("Mixtral"):
                for base, r in c["speedups"].items():
                    print(
                        f"  {label:24s} vs {base:13s} speedup {r['speedup']:.2f}x, energy {r['energy_ratio']:.2f}x,"
                        f" iso-area {r['iso_area_throughput_ratio']:.2f}x"
                    )
    for label, ratios in given.items():
        clocks = ", ".join(f"{n} {mhz:g} MHz" for n, mhz in args.clock)
        for base, r in ratios.items():
            print(
                f"  at {clocks}: {label} vs {base}: speedup {r['speedup']:.2f}x, energy {r['energy_ratio']:.2f}x,"
                f" iso-area {r['iso_area_throughput_ratio']:.2f}x"
            )
    if args.markdown:
        print()
        print(markdown_costs(costs))
        print()
        print(markdown_table(comparisons))
        print()
        print(markdown_targets(goals))

    result = {
        "benchmark": "replay_speed",
        "replay_seconds_median": seconds,
        "replay_seconds_all": times,
        "ops": len(workload.ops),
        "simulated_cycles": report.totals["cycles"],
        "comparisons": comparisons,
        "targets": goals,
        "pe_costs": costs,
        "clock_gating": CLOCK_GATING,
        "gating_effect": gating,
        "iso_area_unlimited_dram": unlimited,
        "at_given_clocks": {"clocks_mhz": dict(args.clock), "comparisons": given},
        "cost_source": source,
        "comparisons_synthesized": pre_layout,
        "targets_synthesized": targets(pre_layout),
        "whole_array_routed": whole_array,
        "paper": PAPER,
        "settings": {
            "models": ["llama-2-7b", "mixtral-8x7b"],
            "prefill": 2048,
            "decode": 128,
            "batch": 1,
            "array": "32x32",
            "wbits": 4,
            "group": 128,
            "memory": asdict(mem),
            "headline_mixpe": MIXPE,
            "compared": {n: {"fields": c.fields, "datapath": c.datapath} for n, c in COMPARED.items()},
        },
        "machine": {"platform": platform.platform(), "python": platform.python_version()},
    }
    RESULTS.parent.mkdir(exist_ok=True)
    atomic_write(RESULTS, json.dumps(result, indent=1) + "\n")
    atomic_write(RESULTS.with_suffix(".png"), plot(comparisons, goals))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
