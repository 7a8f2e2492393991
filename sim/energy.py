"""Energy and area of a GEMM on the array: measured PE costs plus modeled memory costs.

Measured (hw/synth.py, per PE configuration, osu018 0.18 µm): PE area, critical path, and power
from OpenSTA at a stated switching activity, turned into energy per PE-cycle.

Modeled (documented constants, not measured here):
  * SRAM and DRAM access energy from M. Horowitz, "Computing's energy problem (and what we can do
    about it)", ISSCC 2014, 45 nm, 0.9 V: a 64-bit read costs 10 pJ from an 8 KB SRAM, 20 pJ from
    32 KB, 100 pJ from 1 MB, and 1.3-2.6 nJ from DRAM. SRAM energy is interpolated in log(size)
    and scaled to 0.18 µm / 1.8 V by C·V² (4x capacitance, 4x V²: SRAM_NODE_SCALE = 16); DRAM
    energy is an off-chip interface cost and is not scaled (the midpoint, 1.95 nJ / 64 bit).
  * Forwarding, skew and drain registers of the array: the flip-flops synthesis keeps
    (array_register_bits) times the area of one register bit as osu018 builds it, a D flip-flop
    plus the AND gate of its synchronous reset (the library has no reset flop): REGISTER_BIT_AREA_UM2.
    `python -m bench.array_area` checks the total against whole flattened arrays synthesized with
    hw.synth's script (a 4x4 dequant array measured 129 µm² per kept flip-flop beyond its PEs).
  * Gating logic per PE (hw/array.py): operand isolation (an AND2X1 per isolated input bit), the
    packed mode's lane multiplexers (a MUX2X1 per selected bit, rows with a lane other than 0), and
    one clock gate (an AND2X1 and a latch, counted at the DFF's area: the liberty lists LATCH as 0).
  * Clock gating (CLOCK_GATING, the assumption every gated energy figure rests on): osu018 has no
    clock-gating cell or enable flop, so it is modeled, not synthesized. Each PE gets one integrated
    clock gate (enable latch + AND on the clock, built from osu018's LATCH and AND2X1) enabled by its
    valid and its L-cycle pipeline tail. In a gated PE-cycle the PE's flops get no clock edge, so
    it costs the measured idle energy (valid low, operands isolated to zero: hw.power mode "idle")
    minus the clock's share of it (clock net switching and flop clock-pin internal energy, from the
    same liberty model) plus the clock gate's own energy (its latch and AND clocked every cycle);
    every clocked PE-cycle also pays the gate. Source: the osu018 liberty tables through hw/power.py.
    Not modeled: the clock tree above the gate (hw.power assumes an ideal clock for every cycle alike).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from hw.config import ACT_PORT_BITS, SCALE_PORT_BITS, ArrayConfig, PEConfig
from sim.perf_model import GemmCost, MemoryConfig

SRAM_PJ_PER_64B_45NM = ((8, 10.0), (32, 20.0), (1024, 100.0))  # (KiB, pJ per 64-bit read)
SRAM_NODE_SCALE = 16.0
DRAM_PJ_PER_BYTE = 1950.0 / 8
DFF_AREA_UM2 = 96.0  # osu018 DFFPOSX1: 96 µm² (from the .lib)
AND2_AREA_UM2 = 32.0  # osu018 AND2X1
MUX2_AREA_UM2 = 48.0  # osu018 MUX2X1
CLOCK_GATE_AREA_UM2 = AND2_AREA_UM2 + DFF_AREA_UM2  # AND2X1 + a latch counted as a DFF
CLOCK_GATING = (
    "modeled (osu018 has no clock-gating cell): one clock gate per PE (osu018 LATCH + AND2X1) enabled by"
    " valid and the L-cycle pipeline tail; gated PE-cycle = measured idle energy (valid low, operands"
    " isolated to zero) - its clock share (clock net + flop clock pins, liberty) + the gate's own clocked"
    " energy (liberty); clocked PE-cycles pay the gate too; clock tree above the gate not modeled"
)
REGISTER_BIT_AREA_UM2 = DFF_AREA_UM2 + 32.0  # + AND2X1 (32 µm²) clearing it on the synchronous reset


@dataclass(frozen=True)
class PECost:
    """What synthesis measured for one PE configuration."""

    area_um2: float
    fmax_mhz: float
    energy_pj_active: float  # per PE-cycle that consumes an operand
    energy_pj_idle: float  # per PE-cycle without one, clock running (pipeline tail; every idle cycle ungated)
    source: str  # where the numbers come from
    energy_pj_gated: float | None = None  # per clock-gated PE-cycle (None: no clock gating)
    gating: str = ""  # the clock-gating assumption energy_pj_gated rests on


def sram_pj_per_byte(kib: float) -> float:
    """Access energy of an SRAM of `kib` KiB (pJ per byte) at 0.18 µm; see the module docstring."""
    sizes = [math.log(s) for s, _ in SRAM_PJ_PER_64B_45NM]
    costs = [c for _, c in SRAM_PJ_PER_64B_45NM]
    x = math.log(max(kib, 1e-3))
    if x <= sizes[0]:
        pj = costs[0]
    elif x >= sizes[-1]:
        pj = costs[-1]
    else:
        i = next(i for i in range(1, len(sizes)) if x <= sizes[i])
        t = (x - sizes[i - 1]) / (sizes[i] - sizes[i - 1])
        pj = costs[i - 1] + t * (costs[i] - costs[i - 1])
    return pj * SRAM_NODE_SCALE / 8


def shared_flags(pe: PEConfig) -> int:
    """Flags every row sees alike: first, last, and MixPE's group_end (counted once at the array edge)."""
    return 3 if pe.pe == "mixpe" else 2


def operand_bits(cfg: ArrayConfig) -> tuple[int, int]:
    """(row, column) operand bits the PEs read, so the bits their neighbours forward (bits).

    Row: the activation (INT8 uses the port's low 8 bits, FP16 all 16). Column, per lane of the
    packed mode (hw/array.py; one lane at W8): q (wbits), the scale (16, not read by the INT8 PE),
    the zero point (wbits, unsigned weights only) and the lane's enable (1). Port bits no PE reads are
    dropped by synthesis along with their registers.
    """
    pe, lanes = cfg.pe, cfg.lanes
    act = 8 if pe.act == "int8" else 16
    scale = 0 if pe.pe == "int8" else SCALE_PORT_BITS
    zero = 0 if pe.signed_weights else pe.wbits
    return act, lanes * (pe.wbits + scale + zero + 1)


def array_register_bits(cfg: ArrayConfig) -> dict[str, int]:
    """Flip-flops of the array outside its PEs, as synthesis keeps them (bits), by role.

    flags: first/last (and MixPE's group_end) reach PE (i, j) delayed i + j cycles; the registers of
    equal delay are identical and merged, leaving one chain of R + C - 2 per flag. valid carries its
    row's enable, so each row keeps its own: i skew and C - 1 forwarding registers. rows: row i's
    activation likewise; columns: j skew and R - 1 forwarding registers. drain: each PE's result
    register and its valid bit (acc_bits + 1).
    """
    rows, cols = cfg.rows, cfg.cols
    row_bits, col_bits = operand_bits(cfg)
    row_chain = rows * (rows - 1) // 2 + rows * (cols - 1)
    return {
        "flags": shared_flags(cfg.pe) * (rows + cols - 2) + row_chain,
        "rows": row_bits * row_chain,
        "columns": col_bits * (cols * (cols - 1) // 2 + cols * (rows - 1)),
        "drain": rows * cols * (cfg.pe.acc_bits + 1),
    }


def array_area_um2(cfg: ArrayConfig, pe: PECost) -> dict[str, float]:
    """Area (µm²) of the PEs, the registers around them (forwarding, skew, drain), and the gating logic."""
    rows, cols, lanes, w = cfg.rows, cfg.cols, cfg.lanes, cfg.pe.wbits
    isolated_bits = ACT_PORT_BITS + w + SCALE_PORT_BITS + w
    lane_rows = rows - -(-rows // lanes)  # rows whose lane is not 0
    gating = rows * cols * (CLOCK_GATE_AREA_UM2 + isolated_bits * AND2_AREA_UM2)
    gating += lane_rows * cols * (w + SCALE_PORT_BITS + w + 1) * MUX2_AREA_UM2
    bits = sum(array_register_bits(cfg).values())
    return {"pes": rows * cols * pe.area_um2, "registers": bits * REGISTER_BIT_AREA_UM2, "gating": gating}


@dataclass(frozen=True)
class Energy:
    """Energy of one GEMM (pJ), by where it is spent."""

    pe_active: float
    pe_idle: float
    sram: float
    dram: float

    @property
    def total(self) -> float:
        return self.pe_active + self.pe_idle + self.sram + self.dram

    def as_dict(self) -> dict:
        return {**asdict(self), "total": self.total}


def gemm_energy(cost: GemmCost, mem: MemoryConfig, pe: PECost) -> Energy:
    """Energy (pJ) of a GEMM from its performance-model counts and the measured PE cost.

    Every MAC is one active PE-cycle; every other PE-cycle of the run (fill, drain, gated rows and
    columns, stalls) is idle: clock-gated (pe.energy_pj_gated) except the pipeline tails, which run
    clocked (pe.energy_pj_idle); without a gated energy every idle cycle is clocked. Both buffers are
    costed per byte at their mean size.
    """
    sram_pj = sram_pj_per_byte((mem.act_buffer_kib + mem.weight_buffer_kib) / 2)
    gated = pe.energy_pj_idle if pe.energy_pj_gated is None else pe.energy_pj_gated
    return Energy(
        pe_active=cost.macs * pe.energy_pj_active,
        pe_idle=cost.tail_pe_cycles * pe.energy_pj_idle + cost.gated_pe_cycles * gated,
        sram=(cost.sram_read_bytes + cost.sram_write_bytes) * sram_pj,
        dram=(cost.dram_read_bytes + cost.dram_write_bytes) * DRAM_PJ_PER_BYTE,
    )
