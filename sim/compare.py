"""MixPE against every baseline PE on built-in workloads: speedup, energy ratio, iso-area throughput.

COMPARED is the one table of compared PE configurations: adding a configuration is one line. Each
entry gives its PEConfig fields over the workload's precision, the datapath its figures rest on,
and the activation types it supports. Dequantize-then-multiply baselines are named "dequant...",
MixPE variants "mixpe..."; MIXPE is the headline one, compared with every other entry. Used by
`python -m bench.replay_speed` (which writes the JSON, table and plot) and by the demo.

Workloads: Llama-2-7B and Mixtral-8x7B (sim/model_shapes.py), W4 unsigned weights in groups of 128,
INT8 (W4A8) or FP16 (W4A16) activations, a 2,048-token prefill and/or 128 decode steps, batch 1, on
a 32 x 32 array; every PE at its own area and clock (synthesized, or routed: COST_SOURCES), with clock
gating (sim/energy.py), and DRAM at a fixed 3.2 GB/s (MEMORY), so each PE sees it as fewer bytes per
cycle the faster it runs.
"""

from __future__ import annotations

import functools
import textwrap
from dataclasses import dataclass, field, replace

from hw.config import PEConfig
from sim.energy import CLOCK_GATING, PECost
from sim.model_shapes import builtin_workload
from sim.perf_model import MemoryConfig
from sim.replay import Report, pe_config, replay, speedups, synthesized_cost
from sim.workload import Linear


@dataclass(frozen=True)
class Compared:
    """One compared PE: PEConfig fields over the workload's precision ("pe" at least), its datapath."""

    fields: dict = field(hash=False)
    datapath: str
    acts: tuple[str, ...] = ("int8", "fp16")


COMPARED: dict[str, Compared] = {
    "mixpe": Compared({"pe": "mixpe"}, "exact integer (FP16 aligned to 2^-24)"),
    "dequant": Compared({"pe": "dequant"}, "exact integer (FP16 aligned to 2^-24)"),
    "int8": Compared({"pe": "int8"}, "exact integer, W8A8 (INT8 weights)", acts=("int8",)),
    "dequant_fp32": Compared(
        {"pe": "dequant", "accumulate": "fp32"},
        "FP16 dequantize, FP16 x FP16 multiply, FP32 accumulate (RNE)",
        acts=("fp16",),
    ),
    "mixpe_fp32": Compared(
        {"pe": "mixpe", "accumulate": "fp32"}, "exact group sum, FP32 accumulate (RNE)", acts=("fp16",)
    ),
}
MIXPE = "mixpe"
ROWS = COLS = 32
# DRAM fixed in time, not per cycle, so a faster clock does not also buy bandwidth: 3.2 GB/s is 32 B per
# cycle at a 100 MHz reference clock (MemoryConfig's per-cycle default), about what every PE here runs at.
MEMORY = MemoryConfig(dram_gb_per_s=3.2)
MODELS = {"llama-2-7b": "", "mixtral-8x7b": "Mixtral-8x7B "}  # model -> label prefix (Llama's labels as before)
SCHEMES = {"int8": "W4A8", "fp16": "W4A16"}
PHASES = {"prefill 2048 + decode 128": (2048, 128), "prefill 2048 only": (2048, 0), "decode 128 only": (0, 128)}
# The targets: iso-area throughput over the strongest dequant* baseline (Llama-2-7B prefill),
# energy ratio over it (prefill + decode), and batch-1 decode cycles over the DRAM-bound cycles.
ISO_AREA_TARGET = {"W4A8": 2.6, "W4A16": 1.5}
ENERGY_TARGET = 1.4
DECODE_DRAM_TARGET = 1.5


def pe_for(name: str, act: str) -> PEConfig:
    """The PE configuration COMPARED[name] names for a W4 group-128 workload with `act` activations."""
    precision = Linear(name="main", m=1, n=1, k=128, wbits=4, wformat="unsigned", act=act, group=128)
    fields = dict(COMPARED[name].fields)
    # acc_bits 0: the default width for the changed fields (an FP32 accumulator is 32 bits)
    return replace(pe_config(fields.pop("pe"), precision), acc_bits=0, **fields)


# Where a PE's area and clock come from: "synthesized" (hw.synth: yosys + OpenSTA, unbuffered, no wires;
# minutes for every PE) or "routed" (sim/routed_cost.py: the buffered, placed and routed PE; hours uncached).
# Energy per cycle is hw.power's either way.
COST_SOURCES = ("synthesized", "routed")


@functools.cache
def pe_cost(cfg: PEConfig, source: str = "synthesized") -> PECost:
    """Area and clock from `source` (COST_SOURCES), measured energy; cached on disk by hw.synth, hw.power
    and eda.flow."""
    if source not in COST_SOURCES:
        raise ValueError(f"cost source {source!r}: choose one of {', '.join(COST_SOURCES)}")
    measured = synthesized_cost(cfg)
    if source == "routed":
        from sim.routed_cost import routed_cost

        return routed_cost(cfg, measured)
    return measured


def compare(model: str, act: str, prefill: int, decode: int, mem: MemoryConfig, source: str = "synthesized") -> dict:
    """One workload on every COMPARED PE that supports `act`: MixPE's ratios over each, and the totals; PE
    area and clock from `source` (COST_SOURCES)."""
    workload = builtin_workload(model, prefill=prefill, decode=decode, wbits=4, act=act, group=128)
    names = [n for n, c in COMPARED.items() if act in c.acts]
    reports: dict[str, Report] = {}
    for name in names:
        cfg = pe_for(name, act)
        reports[name] = replay(workload, cfg, ROWS, COLS, mem, pe_cost(cfg, source))
    totals = {name: r.totals for name, r in reports.items()}
    return {
        "model": model,
        "cost_source": source,
        "speedups": speedups(reports, MIXPE),
        "by_mixpe": {n: speedups(reports, n) for n in names if n.startswith("mixpe") and n != MIXPE},
        "datapath": {n: COMPARED[n].datapath for n in names},
        "config": {n: pe_for(n, act).name() for n in names},
        "decode_over_dram_bound": {n: decode_over_dram_bound(r) for n, r in reports.items()} if decode else {},
        "totals": totals,
        "pe_cost": {n: r.pe_cost for n, r in reports.items()},
    }


def decode_over_dram_bound(report: Report) -> float:
    """Cycles of the decode phase's ops over the cycles reading their bytes once from DRAM takes."""
    ops = [o for o in report.ops if o.name.startswith("decode")]
    return sum(o.cycles for o in ops) / sum(o.dram_bound_cycles for o in ops)


def compare_all(mem: MemoryConfig, progress: bool = True, source: str = "synthesized") -> dict[str, dict]:
    """compare() for every model, activation type and phase, keyed by the workload label."""
    from tqdm import tqdm

    cases = [(m, a, p) for m in MODELS for a in SCHEMES for p in PHASES]
    out = {}
    for model, act, phase in tqdm(cases, desc="workloads", disable=not progress):
        out[f"{MODELS[model]}{SCHEMES[act]}, {phase}"] = compare(model, act, *PHASES[phase], mem, source)
    return out


def targets(comparisons: dict[str, dict]) -> dict[str, dict]:
    """Each target of the issue: value, threshold, the baseline it is measured against, met or not."""
    out = {}
    for scheme, goal in ISO_AREA_TARGET.items():
        c = comparisons[f"{scheme}, prefill 2048 only"]["speedups"]
        base = min((b for b in c if b.startswith("dequant")), key=lambda b: c[b]["iso_area_throughput_ratio"])
        value = c[base]["iso_area_throughput_ratio"]
        out[f"iso-area throughput, {scheme}, Llama-2-7B prefill 2048"] = _target(value, goal, ">=", base)
    for scheme in ISO_AREA_TARGET:
        c = comparisons[f"{scheme}, prefill 2048 + decode 128"]["speedups"]
        base = min((b for b in c if b.startswith("dequant")), key=lambda b: c[b]["energy_ratio"])
        value = c[base]["energy_ratio"]
        out[f"energy ratio, {scheme}, Llama-2-7B prefill 2048 + decode 128"] = _target(value, ENERGY_TARGET, ">=", base)
    for scheme in ISO_AREA_TARGET:
        value = comparisons[f"{scheme}, prefill 2048 + decode 128"]["decode_over_dram_bound"][MIXPE]
        label = f"decode cycles / DRAM-bound cycles, {scheme}, Llama-2-7B batch 1 after a 2048-token prompt"
        out[label] = _target(value, DECODE_DRAM_TARGET, "<=", MIXPE)
    return out


def _target(value: float, goal: float, sense: str, against: str) -> dict:
    met = value >= goal if sense == ">=" else value <= goal
    return {"value": value, "target": f"{sense} {goal}", "against": against, "met": bool(met)}


def format_comparisons(comparisons: dict[str, dict], goals: dict[str, dict]) -> str:
    """A readable table: per workload and baseline MixPE's three ratios, then decode vs DRAM, targets."""
    w = max(len(label) for label in comparisons)
    lines = [f"{'workload':{w}s} {'baseline':13s} {'speedup':>8s} {'energy':>8s} {'iso-area':>9s}  datapath"]
    for label, c in comparisons.items():
        for base, r in c["speedups"].items():
            lines.append(
                f"{label:{w}s} {base:13s} {r['speedup']:7.2f}x {r['energy_ratio']:7.2f}x "
                f"{r['iso_area_throughput_ratio']:8.2f}x  {c['datapath'][base]}"
            )
    first = next(iter(comparisons.values()))
    note = (
        f"> 1 favours {MIXPE} ({first['datapath'][MIXPE]}); {ROWS}x{COLS} arrays, each PE at its own"
        f" {first['cost_source']} clock and area;"
    )
    lines += textwrap.wrap(f"({note} energy with clock gating: {CLOCK_GATING})", 110)
    lines.append("")
    lines.append(
        "batch-1 decode phase, cycles / DRAM-bound cycles (weights + scales + KV + activations once, at"
        f" {MEMORY.dram_gb_per_s} GB/s):"
    )
    for label, c in comparisons.items():
        if c["decode_over_dram_bound"]:
            ratios = ", ".join(f"{n} {v:.2f}x" for n, v in c["decode_over_dram_bound"].items())
            lines.append(f"  {label:{w}s} {ratios}")
    lines.append("")
    lines.append("targets:")
    for name, t in goals.items():
        lines.append(
            f"  {name:88s} {t['value']:6.2f} (target {t['target']}, vs {t['against']}): "
            f"{'met' if t['met'] else 'NOT met'}"
        )
    return "\n".join(lines)


def markdown_table(comparisons: dict[str, dict]) -> str:
    """The comparison as a Markdown table (README), one row per workload and baseline."""
    rows = [
        "| workload | baseline (datapath) | speedup | energy ratio | iso-area throughput |",
        "|---|---|---|---|---|",
    ]
    for label, c in comparisons.items():
        for base, r in c["speedups"].items():
            rows.append(
                f"| {label} | {base} ({c['datapath'][base]}) | {r['speedup']:.2f}× | {r['energy_ratio']:.2f}× "
                f"| {r['iso_area_throughput_ratio']:.2f}× |"
            )
    return "\n".join(rows)


def markdown_targets(goals: dict[str, dict]) -> str:
    """The targets as a Markdown table (README): value, target, the PE it is measured against, met."""
    rows = ["| target | value | goal | against | met |", "|---|---|---|---|---|"]
    for name, t in goals.items():
        rows.append(f"| {name} | {t['value']:.2f} | {t['target']} | {t['against']} | {'yes' if t['met'] else 'no'} |")
    return "\n".join(rows)
