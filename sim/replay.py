"""Replay a workload on the simulated array: cycles, traffic, energy, area and time per op.

    python -m sim.replay llama-2-7b --act int8 --compare -o out/replay
    python -m sim.replay my_workload.json --pe mixpe --rows 32 --cols 32 --exact

WORKLOAD is a workload file (sim/workload.py) or a built-in model name (sim/model_shapes.py) with
--prefill/--decode/--batch/--wbits/--act/--group. The accelerator is one array of --pe PEs built for
the workload's main precision (that of the linear ops with the most MACs); every op runs on it.

What is measured and what is modeled:
  * cycles: the tile-level model (sim/perf_model.py), exact against the cycle-exact Numba model
    (which `--exact` re-runs on the workload's real tensors, checking Y against torch);
  * PE area and clock: yosys + OpenSTA on osu018 (hw/synth.py), measured, pre-layout; `--clock
    PE=MHZ` replaces the clock, e.g. with the post-route one `python -m eda.flow` reports; energy per PE-cycle:
    gate-level simulation of that netlist, toggles times liberty energies (hw/power.py), measured;
  * SRAM/DRAM energy, the array's register and gating area, and clock gating: modeled (sim/energy.py
    states the sources and the clock-gating assumption). Rows and columns a tile leaves unused are
    gated (hw/array.py); each linear op runs in the ordinary or the packed (decode) mapping, whichever
    takes fewer cycles.
Attention ops use their KV bits for traffic; the array multiplies a KV operand of more than 8 bits
as 8-bit (it has no FP16 x FP16 path), which the report flags.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from functools import cache, lru_cache
from pathlib import Path

import numpy as np

from hw.config import ArrayConfig, ConfigError, PEConfig
from sim.cli import OneLineParser, check_output, fail, int_in
from sim.energy import CLOCK_GATING, PECost, array_area_um2, gemm_energy
from sim.files import atomic_write
from sim.perf_model import MemoryConfig, best_cost, dram_bound_cycles, gemm_cost
from sim.schedule import SCHEDULES
from sim.workload import WORKLOAD_FILE, Attention, Linear, Op, Workload, WorkloadError, load_workload

PE_TYPES = ("mixpe", "dequant", "int8", "mixpe_fp32", "dequant_fp32")  # *_fp32: PEConfig accumulate="fp32"

PROG = "python -m sim.replay"


class ReplayError(ValueError):
    """A replay that cannot run as asked; the message is one line naming the fix."""


def main_precision(workload: Workload) -> Linear:
    """The linear op precision carrying the most MACs: the one the array is built for."""
    macs: dict[tuple, int] = {}
    for op in workload.ops:
        if isinstance(op, Linear):
            key = (op.wbits, op.wformat, op.act, op.group)
            macs[key] = macs.get(key, 0) + op.macs
    if not macs:
        raise ReplayError(f"workload '{workload.model}' has no linear op to choose the array's precision from")
    wbits, wformat, act, group = max(macs, key=macs.get)
    return Linear(name="main", m=1, n=1, k=group, wbits=wbits, wformat=wformat, act=act, group=group)


def pe_types_for(act: str) -> list[str]:
    """The PE types that can run linear ops with these activations (the INT8 PE: INT8; *_fp32: FP16)."""
    return [k for k in PE_TYPES if (k != "int8" or act == "int8") and (not k.endswith("_fp32") or act == "fp16")]


def pe_config(pe: str, precision: Linear) -> PEConfig:
    """The PE the array is built from; the INT8 PE only exists for W8A8 (INT8 activations).

    pe: a PE_TYPES name; "<kind>_fp32" is <kind> accumulating in FP32 (FP16 activations only).
    """
    if pe == "int8":
        if precision.act != "int8":
            raise ReplayError("the int8 PE needs INT8 activations: replay an --act int8 workload, or use mixpe/dequant")
        return PEConfig("int8", 8, "signed", "int8")
    kind, _, accumulate = pe.partition("_")
    if accumulate and precision.act != "fp16":
        raise ReplayError(f"the {pe} PE accumulates FP16 products in FP32: replay an --act fp16 workload")
    group = min(precision.group, 1024)
    return PEConfig(kind, precision.wbits, precision.wformat, precision.act, group, accumulate=accumulate or "int")


def traffic_bits(op: Op, array_pe: PEConfig) -> int:
    """Bits per element of the op's stored operand (weights, or the KV cache for attention)."""
    if isinstance(op, Attention):
        return op.kv_bits
    if array_pe.pe == "int8":
        return 8  # a W8A8 deployment stores INT8 weights
    return op.wbits


@lru_cache(maxsize=4096)
def _cost(cfg: ArrayConfig, mem: MemoryConfig, m: int, n: int, k: int, wbits: int, linear: bool, schedule: str):
    # Attention's KV operand is not packed: the packed mode carries weights of the PE's width
    if linear:
        return best_cost(cfg, mem, m, n, k, wbits, schedule=schedule)
    return gemm_cost(cfg, mem, m, n, k, wbits, schedule=schedule)


def op_cost(cfg: ArrayConfig, mem: MemoryConfig, op: Op, schedule: str = "overlapped"):
    """The tile model's cost of one instance of an op, in its faster mapping (memoized).

    schedule: "overlapped" (the hardware's) or "scalesim" (SCALE-Sim v3's back-to-back folds).
    """
    return _cost(cfg, mem, op.m, op.n, op.k, traffic_bits(op, cfg.pe), isinstance(op, Linear), schedule)


@dataclass
class OpResult:
    """One op on the array, all instances together (cycles, bytes, pJ, s)."""

    name: str
    kind: str
    precision: str
    instances: int
    m: int
    n: int
    k: int
    cycles: int
    compute_cycles: int
    macs: int
    utilization: float
    dram_bytes: int
    sram_bytes: int
    energy_pj: dict
    seconds: float
    approximated: bool  # a KV operand wider than the array's 8-bit path
    packed: bool  # ran in the packed (decode) mapping
    dram_bound_cycles: float  # reading its weights, scales and activations once at the DRAM's bandwidth

    def as_dict(self) -> dict:
        """The fields, shallowly (dataclasses.asdict deep-copies, which dominated a warm replay)."""
        return dict(vars(self))


@dataclass
class Report:
    """A replay of one workload on one array: per-op results, totals, and what the numbers rest on."""

    workload: str
    pe: dict
    rows: int
    cols: int
    memory: dict
    pe_cost: dict
    area_um2: dict
    ops: list[OpResult] = field(default_factory=list)
    schedule: str = "overlapped"  # how tiles follow each other (sim/schedule.py)

    @property
    def totals(self) -> dict:
        cycles = sum(o.cycles for o in self.ops)
        macs = sum(o.macs for o in self.ops)
        seconds = sum(o.seconds for o in self.ops)
        energy = {key: sum(o.energy_pj[key] for o in self.ops) for key in self.ops[0].energy_pj}
        area_mm2 = sum(self.area_um2.values()) / 1e6
        return {
            "cycles": cycles,
            "dram_bound_cycles": sum(o.dram_bound_cycles for o in self.ops),
            "seconds": seconds,
            "macs": macs,
            "utilization": macs / (cycles * self.rows * self.cols),
            "dram_bytes": sum(o.dram_bytes for o in self.ops),
            "sram_bytes": sum(o.sram_bytes for o in self.ops),
            "energy_pj": energy,
            "energy_j": energy["total"] * 1e-12,
            "area_mm2": area_mm2,
            "gops": 2 * macs / seconds / 1e9,
            "gops_per_mm2": 2 * macs / seconds / 1e9 / area_mm2,
            "tops_per_w": 2 * macs / (energy["total"] * 1e-12) / 1e12,
        }

    def as_dict(self) -> dict:
        return {
            "workload": self.workload,
            "pe": self.pe,
            "rows": self.rows,
            "cols": self.cols,
            "memory": self.memory,
            "pe_cost": self.pe_cost,
            "area_um2": self.area_um2,
            "schedule": self.schedule,
            "totals": self.totals,
            "ops": [o.as_dict() for o in self.ops],
            "measured": ["PE area", "PE critical path / clock", "PE energy per cycle (gate-level toggles)"],
            "modeled": [
                "cycles (tile model, exact vs the cycle model)",
                "SRAM/DRAM energy",
                "array register and gating area",
                f"clock gating: {CLOCK_GATING}",
            ],
        }


@cache
def synthesized_cost(cfg: PEConfig) -> PECost:
    """PE area and clock from yosys + OpenSTA; energy per cycle from its gate-level toggle activity.

    Active energy: a realistic operand stream (hw/power.py, zero-delay: no glitches, a lower bound);
    idle energy: valid low with the operands isolated to zero, clock running; gated energy: idle less
    its clock share plus one clock gate (sim/energy.py, CLOCK_GATING). Cached on disk by
    configuration, and in memory for the process (a sweep asks once per point).
    """
    from hw.power import clock_gate_energy_pj, measure_power
    from hw.synth import synthesize

    r = synthesize(cfg)
    active, idle = measure_power(cfg), measure_power(cfg, mode="idle")
    gate = clock_gate_energy_pj()
    return PECost(
        area_um2=r.area_um2,
        fmax_mhz=r.fmax_mhz,
        energy_pj_active=active.energy_pj_per_cycle + gate,
        energy_pj_idle=idle.energy_pj_per_cycle + gate,
        source=f"yosys+OpenSTA osu018 ({r.design}); energy: {active.method}, {active.cycles} cycles",
        energy_pj_gated=idle.energy_pj_per_cycle - idle.clock_energy_pj_per_cycle + gate,
        gating=CLOCK_GATING,
    )


def replay(
    workload: Workload,
    pe: str | PEConfig,
    rows: int,
    cols: int,
    mem: MemoryConfig,
    pe_cost: PECost | None = None,
    schedule: str = "overlapped",
) -> Report:
    """Every op of the workload on an R x C array of `pe` PEs; pe_cost defaults to synthesis.

    pe: a PE type (built for the workload's main precision, pe_config) or a whole PE configuration.
    schedule: "overlapped" (the hardware's) or "scalesim" (SCALE-Sim v3's back-to-back folds).
    """
    pe_cfg = pe if isinstance(pe, PEConfig) else pe_config(pe, main_precision(workload))
    cfg = ArrayConfig(pe_cfg, rows, cols)
    cost = pe_cost or synthesized_cost(cfg.pe)
    mem = mem.at_clock(cost.fmax_mhz)  # DRAM bandwidth fixed in GB/s, if so stated, seen at this PE's clock
    report = Report(
        workload=workload.model,
        pe=cfg.pe.as_dict(),
        rows=rows,
        cols=cols,
        memory=asdict(mem),
        pe_cost=asdict(cost),
        area_um2=array_area_um2(cfg, cost),
        schedule=schedule,
    )
    hz = cost.fmax_mhz * 1e6
    for op in workload.ops:
        c = op_cost(cfg, mem, op, schedule)
        e = gemm_energy(c, mem, cost).as_dict()
        times = op.instances
        report.ops.append(
            OpResult(
                name=op.name,
                kind=op.kind,
                precision=op.precision(),
                instances=times,
                m=op.m,
                n=op.n,
                k=op.k,
                cycles=c.cycles * times,
                compute_cycles=c.compute_cycles * times,
                macs=c.macs * times,
                utilization=c.utilization,
                dram_bytes=(c.dram_read_bytes + c.dram_write_bytes) * times,
                sram_bytes=(c.sram_read_bytes + c.sram_write_bytes) * times,
                energy_pj={key: v * times for key, v in e.items()},
                seconds=c.cycles * times / hz,
                approximated=isinstance(op, Attention) and op.kv_bits > 8,
                packed=c.packed,
                dram_bound_cycles=dram_bound_cycles(cfg, mem, op.m, op.n, op.k, traffic_bits(op, cfg.pe)) * times,
            )
        )
    return report


# Elements of torch's per-group partial sums (int64) held at once when checking Y: 256 MB.
TORCH_CHECK_ELEMENTS = 1 << 25


def matches_torch(pe: PEConfig, ops, y: np.ndarray) -> bool:
    """Y == torch_reference, computed over blocks of rows so a full LLM layer needs little memory."""
    from sim.reference import torch_reference

    m, n, k = ops.shape
    block = max(1, TORCH_CHECK_ELEMENTS // (n * max(1, k // ops.group)))
    return all(
        np.array_equal(y[r : r + block], torch_reference(pe, replace(ops, act=ops.act[r : r + block])))
        for r in range(0, m, block)
    )


def exact_check(workload: Workload, pe: str, rows: int, cols: int, mem: MemoryConfig) -> list[dict]:
    """Run every op that has tensors through the cycle-exact model on the tile model's schedule.

    Each op gets an array built for its own precision (G must match the operands). Checks that the
    cycle model's Y equals torch's and that its cycle count equals the tile model's, stalls included.
    """
    from sim.gemm import run_gemm

    if not workload.tensors:
        raise ReplayError(f"workload '{workload.model}' has no tensors: --exact needs a workload saved with operands")
    checks = []
    for op in workload.ops:
        if op.name not in workload.tensors:
            continue
        ops = workload.operands(op)
        pe_cfg = replace(pe_config(pe, op), group=ops.group) if pe != "int8" else pe_config(pe, op)
        cfg = ArrayConfig(pe_cfg, rows, cols)
        cost = op_cost(cfg, mem, op)
        t0, cpu0 = time.perf_counter(), time.process_time()
        y, cycles = run_gemm(cfg, ops, cost.tile_starts, cost.packed)
        seconds, cpu_seconds = time.perf_counter() - t0, time.process_time() - cpu0
        checks.append(
            {
                "op": op.name,
                "outputs_match_torch": matches_torch(cfg.pe, ops, y),
                "cycles_model": cycles,
                "cycles_tile_model": cost.cycles,
                "model_seconds": seconds,  # wall time of the cycle model alone (s)
                "model_cpu_seconds": cpu_seconds,  # its CPU time, all threads (s)
            }
        )
    return checks


def speedups(reports: dict[str, Report], mixpe: str = "mixpe") -> dict[str, dict]:
    """MixPE (the report named `mixpe`) against each other report: time, energy and throughput-per-area
    ratios (> 1 favours MixPE)."""
    if mixpe not in reports:
        return {}
    mix = reports[mixpe].totals
    out = {}
    for name, rep in reports.items():
        if name == mixpe:
            continue
        base = rep.totals
        out[name] = {
            "speedup": base["seconds"] / mix["seconds"],
            "energy_ratio": base["energy_j"] / mix["energy_j"],
            "iso_area_throughput_ratio": mix["gops_per_mm2"] / base["gops_per_mm2"],
        }
    return out


def _csv(reports: dict[str, Report]) -> bytes:
    buf = io.StringIO()
    keys = ["pe", "name", "kind", "precision", "instances", "m", "n", "k", "cycles", "compute_cycles", "macs"]
    keys += ["utilization", "dram_bytes", "sram_bytes", "energy_pj", "seconds", "approximated"]
    w = csv.writer(buf)
    w.writerow(keys)
    for pe, rep in reports.items():
        for o in rep.ops:
            row = {**o.as_dict(), "pe": pe, "energy_pj": o.energy_pj["total"]}
            w.writerow([row[k] for k in keys])
    return buf.getvalue().encode()


def _plots(reports: dict[str, Report]) -> dict[str, bytes]:
    """Per-op cycle bars and the energy breakdown, as PNG bytes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    first = next(iter(reports.values()))
    top = sorted(range(len(first.ops)), key=lambda i: -first.ops[i].cycles)[:20]
    fig, ax = plt.subplots(figsize=(10, 0.35 * len(top) + 1.5))
    width = 0.8 / len(reports)
    for j, (pe, rep) in enumerate(reports.items()):
        ax.barh([i + j * width for i in range(len(top))], [rep.ops[i].seconds * 1e3 for i in top], width, label=pe)
    ax.set_yticks([i + 0.4 - width / 2 for i in range(len(top))], [first.ops[i].name for i in top], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("time at the synthesized clock (ms), all instances")
    ax.set_title(f"{first.workload}: the {len(top)} costliest ops on a {first.rows}x{first.cols} array")
    ax.legend()
    fig.tight_layout()
    images = {}
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    images["cycles.png"] = buf.getvalue()
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 4))
    parts = ["pe_active", "pe_idle", "sram", "dram"]
    bottom = np.zeros(len(reports))
    for part in parts:
        vals = np.array([rep.totals["energy_pj"][part] * 1e-12 for rep in reports.values()])
        ax.bar(list(reports), vals, bottom=bottom, label=part)
        bottom += vals
    ax.set_ylabel("energy (J)")
    ax.set_title(f"{first.workload}: energy by component")
    ax.legend()
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    images["energy.png"] = buf.getvalue()
    plt.close(fig)
    return images


def write_outputs(reports: dict[str, Report], extra: dict, out: Path, plots: bool = True) -> list[Path]:
    """replay.json, replay.csv and, with plots, cycles.png and energy.png in `out` (each written atomically)."""
    out.mkdir(parents=True, exist_ok=True)
    payload = {"reports": {pe: r.as_dict() for pe, r in reports.items()}, **extra}
    # No indent: the C encoder, several times faster on a few hundred ops.
    files = {"replay.json": (json.dumps(payload) + "\n").encode(), "replay.csv": _csv(reports)}
    if plots:
        files.update(_plots(reports))
    for name, data in files.items():
        atomic_write(out / name, data)
    return [out / name for name in files]


def format_report(reports: dict[str, Report], ratios: dict[str, dict], top: int = 12) -> str:
    """The per-op table of the first report (the costliest `top` ops), totals for every PE, and ratios."""
    first_pe, first = next(iter(reports.items()))
    lines = [f"{first.workload} on a {first.rows}x{first.cols} {first_pe} array ({PEConfig(**first.pe).name()})"]
    lines.append(
        f"{'op':34s} {'precision':16s} {'inst':>6s} {'cycles':>12s} {'util':>6s} {'map':>6s} {'DRAM MB':>9s} {'mJ':>9s}"
    )
    for o in sorted(first.ops, key=lambda o: -o.cycles)[:top]:
        flag = "*" if o.approximated else " "
        lines.append(
            f"{o.name[:34]:34s} {o.precision:16s} {o.instances:6d} {o.cycles:12d} {o.utilization:6.1%} "
            f"{'packed' if o.packed else 'rows':>6s} {o.dram_bytes / 1e6:9.1f} {o.energy_pj['total'] * 1e-9:9.2f}{flag}"
        )
    if len(first.ops) > top:
        lines.append(f"... {len(first.ops) - top} more ops in replay.csv")
    lines.append("")
    width = max(8, *(len(pe) for pe in reports))  # PE names up to "dequant_fp32"
    lines.append(
        f"{'PE':{width}s} {'clock MHz':>9s} {'area mm2':>9s} {'cycles':>13s} {'time s':>9s} {'util':>6s} "
        f"{'GOPS':>8s} {'GOPS/mm2':>9s} {'energy J':>9s} {'TOPS/W':>7s}"
    )
    for pe, rep in reports.items():
        t = rep.totals
        lines.append(
            f"{pe:{width}s} {rep.pe_cost['fmax_mhz']:9.1f} {t['area_mm2']:9.2f} {t['cycles']:13d} {t['seconds']:9.3f} "
            f"{t['utilization']:6.1%} {t['gops']:8.1f} {t['gops_per_mm2']:9.2f} {t['energy_j']:9.3f} "
            f"{t['tops_per_w']:7.3f}"
        )
    for base, r in ratios.items():
        lines.append(
            f"MixPE vs {base}: speedup {r['speedup']:.2f}x, energy ratio {r['energy_ratio']:.2f}x, "
            f"iso-area throughput {r['iso_area_throughput_ratio']:.2f}x"
        )
    if any(o.approximated for o in first.ops):
        lines.append("* KV operand wider than 8 bits: multiplied on the 8-bit path, traffic at its own width")
    lines.append(
        "measured: PE area, clock (yosys+OpenSTA, osu018), PE energy/cycle (gate-level toggles); modeled: memory"
        " energy, register and gating area, clock gating (sim/energy.py); cycles from the tile model (exact vs the"
        " cycle model); map: rows (ordinary) or packed (decode) mapping"
    )
    return "\n".join(lines)


def load(spec: str, args: argparse.Namespace) -> Workload:
    """A workload file or folder, or a built-in model's shapes with the command line's settings."""
    from sim.model_shapes import MODELS, builtin_from_args

    if Path(spec).is_file() or (Path(spec) / WORKLOAD_FILE).is_file():
        return load_workload(spec)
    if spec in MODELS:
        return builtin_from_args(spec, args)
    raise ReplayError(f"'{spec}' is neither a workload file or folder nor a built-in model ({', '.join(MODELS)})")


def clock_overrides(periods_ns: list[str], mhz: list[str] = ()) -> dict[str, float]:
    """{PE type: MHz} from --clock-ns PE=NS options (the period, as every mixkit clock flag takes it) and the older
    --clock PE=MHZ; ReplayError naming a malformed one."""
    clocks = {}
    for flag, specs, unit in (("--clock-ns", periods_ns, "NS"), ("--clock", mhz, "MHZ")):
        for spec in specs:
            pe, _, text = spec.partition("=")
            try:
                value = float(text)
            except ValueError:
                value = math.nan
            if pe not in PE_TYPES or not 0 < value < math.inf:
                raise ReplayError(
                    f"{flag} {spec!r}: expected PE={unit} with PE one of {', '.join(PE_TYPES)} and {unit} > 0"
                )
            clocks[pe] = 1000.0 / value if flag == "--clock-ns" else value
    return clocks


def predicted_clocks(specs: list[str]) -> dict[str, float]:
    """{PE type: MHz} predicted by eda.slack for --clock-from PE=PLACED_DIR|VERILOG options (a Verilog file, e.g.
    hw.build's, is synthesized and placed first, cached); ReplayError on a bad one."""
    if not specs:
        return {}  # eda.slack imports torch and torch-geometric: seconds the warm replay does not pay
    from eda.flow import FlowError
    from eda.slack import predicted_clock_mhz

    clocks = {}
    for spec in specs:
        pe, _, folder = spec.partition("=")
        if pe not in PE_TYPES or not folder:
            raise ReplayError(
                f"--clock-from {spec!r}: expected PE=PLACED_DIR or PE=VERILOG with PE one of {', '.join(PE_TYPES)}"
            )
        try:
            clocks[pe] = predicted_clock_mhz(Path(folder))
        except FlowError as e:
            raise ReplayError(f"--clock-from {spec!r}: {e}") from e
    return clocks


def parser() -> argparse.ArgumentParser:
    from sim.model_shapes import add_builtin_arguments

    p = OneLineParser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("workload", help="workload folder or file (.json), or built-in model name (e.g. llama-2-7b)")
    p.add_argument("--pe", choices=PE_TYPES, default="mixpe", help="PE type of the array (default mixpe)")
    p.add_argument("--compare", action="store_true", help="replay on every PE type that supports the workload")
    p.add_argument("--rows", type=int_in(1), default=32, help="array rows R (default 32)")
    p.add_argument("--cols", type=int_in(1), default=32, help="array columns C (default 32)")
    p.add_argument("--exact", action="store_true", help="also run the workload's tensors through the cycle model")
    p.add_argument("--act-buffer-kib", type=int_in(1), default=256, help="activation SRAM (KiB)")
    p.add_argument("--weight-buffer-kib", type=int_in(1), default=512, help="weight SRAM (KiB)")
    p.add_argument("--dram-bytes-per-cycle", type=float, default=32.0, help="DRAM bandwidth (bytes per array cycle)")
    p.add_argument("--no-double-buffer", action="store_true", help="fetch and compute do not overlap")
    p.add_argument(
        "--schedule",
        choices=SCHEDULES,
        default="overlapped",
        help="how tiles follow each other: overlapped (the hardware: a tile streams while the previous one"
        " drains) or scalesim (SCALE-Sim v3's output-stationary folds back to back, K + R + C - 2 cycles"
        " each, for comparing with SCALE-Sim); --exact always checks the hardware's schedule",
    )
    p.add_argument(
        "--clock-ns",
        action="append",
        default=[],
        metavar="PE=NS",
        help="run PE type PE at a clock period of NS ns (1000 / MHz) instead of its synthesized clock, e.g. the"
        " post-route period `python -m eda.flow` reports achieving (repeatable)",
    )
    p.add_argument("--clock", action="append", default=[], metavar="PE=MHZ", help=argparse.SUPPRESS)  # older form
    p.add_argument(
        "--clock-from",
        action="append",
        default=[],
        metavar="PE=PLACED_DIR|VERILOG",
        help="run PE type PE at the clock E2ESlack predicts before routing for a placed design folder (an"
        " `eda.flow` entry) or a Verilog file such as `python -m hw.build --pe-only` writes (synthesized and placed"
        " first, cached; `python -m eda.slack` documents the model) (repeatable)",
    )
    b = p.add_argument_group("built-in workloads")
    add_builtin_arguments(b, prefill=2048)
    p.add_argument("-o", "--out", type=Path, default=Path("out/replay"), help="output folder (default out/replay)")
    p.add_argument("--plots", action="store_true", help="also write cycles.png and energy.png (slower)")
    p.add_argument("--force", action="store_true", help="overwrite earlier outputs in the -o folder")
    p.add_argument("--json", action="store_true", help="print the totals and ratios as JSON instead of tables")
    return p


def main(argv: list[str] | None = None) -> int:
    from hw.power import PowerError
    from hw.synth import SynthError

    args = parser().parse_args(argv)
    try:
        if not args.dram_bytes_per_cycle > 0:
            raise ReplayError(
                f"--dram-bytes-per-cycle {args.dram_bytes_per_cycle}: expected a positive number (inf for unlimited)"
            )
        check_output(args.out, force=args.force)
        workload = load(args.workload, args)
        mem = MemoryConfig(
            args.act_buffer_kib, args.weight_buffer_kib, args.dram_bytes_per_cycle, not args.no_double_buffer
        )
        precision = main_precision(workload)
        kinds = [args.pe]
        if args.compare:
            kinds = pe_types_for(precision.act)
        clocks = clock_overrides(args.clock_ns, args.clock) | predicted_clocks(args.clock_from)
        # Every configuration is checked before the first (possibly minutes-long) synthesis.
        configs = {kind: ArrayConfig(pe_config(kind, precision), args.rows, args.cols) for kind in kinds}
        reports = {}
        for kind, cfg in configs.items():
            cost = synthesized_cost(cfg.pe)
            if kind in clocks:
                cost = replace(cost, fmax_mhz=clocks[kind])
            reports[kind] = replay(workload, kind, args.rows, args.cols, mem, cost, args.schedule)
        extra = {"speedups": speedups(reports), "clock_overrides_mhz": clocks}
        if args.exact:
            extra["exact"] = exact_check(workload, args.pe, args.rows, args.cols, mem)
    except (WorkloadError, ReplayError, ConfigError, ValueError) as e:
        return fail(PROG, e)
    except (SynthError, PowerError) as e:  # a synthesis or simulation tool is missing or failed
        fail(PROG, e)
        return 1
    files = write_outputs(reports, extra, args.out, args.plots)
    if args.json:
        print(json.dumps({pe: r.totals for pe, r in reports.items()} | extra, indent=1))
    else:
        print(format_report(reports, extra["speedups"]))
        for check in extra.get("exact", []):
            ok = check["outputs_match_torch"] and check["cycles_model"] == check["cycles_tile_model"]
            print(
                f"exact {check['op']}: Y {'==' if check['outputs_match_torch'] else '!='} torch, "
                f"cycles {check['cycles_model']} (cycle model) vs {check['cycles_tile_model']} (tile model)"
                f" {'ok' if ok else 'MISMATCH'}"
            )
        print("wrote " + ", ".join(str(f) for f in files))
    bad = [
        c for c in extra.get("exact", []) if not c["outputs_match_torch"] or c["cycles_model"] != c["cycles_tile_model"]
    ]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
