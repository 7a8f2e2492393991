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
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from hw.config import SCALE_PORT_BITS, ArrayConfig, PEConfig
from sim.perf_model import GemmCost, MemoryConfig

SRAM_PJ_PER_64B_45NM = ((8, 10.0), (32, 20.0), (1024, 100.0))  # (KiB, pJ per 64-bit read)
SRAM_NODE_SCALE = 16.0
DRAM_PJ_PER_BYTE = 1950.0 / 8
DFF_AREA_UM2 = 96.0  # osu018 DFFPOSX1: 96 µm² (from the .lib)
REGISTER_BIT_AREA_UM2 = DFF_AREA_UM2 + 32.0  # + AND2X1 (32 µm²) clearing it on the synchronous reset


@dataclass(frozen=True)
class PECost:
    """What synthesis measured for one PE configuration."""

    area_um2: float
    fmax_mhz: float
    energy_pj_active: float  # per PE-cycle that consumes an operand
    energy_pj_idle: float  # per PE-cycle without one (clock and leakage)
    source: str  # where the numbers come from


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


FLAG_BITS = 3  # valid, first, last


def operand_bits(pe: PEConfig) -> tuple[int, int]:
    """(row, column) operand bits a PE reads, so the bits its neighbours forward (bits).

    Row: the activation (INT8 uses the port's low 8 bits, FP16 all 16). Column: q (wbits), the
    scale (16, not read by the INT8 PE) and the zero point (wbits, unsigned weights only).
    Port bits no PE reads are dropped by synthesis along with their registers.
    """
    act = 8 if pe.act == "int8" else 16
    if pe.pe == "int8":
        return act, pe.wbits
    return act, pe.wbits + SCALE_PORT_BITS + (0 if pe.signed_weights else pe.wbits)


def array_register_bits(cfg: ArrayConfig) -> dict[str, int]:
    """Flip-flops of the array outside its PEs, as synthesis keeps them (bits), by role.

    flags: valid/first/last reach PE (i, j) delayed i + j cycles; the registers of equal delay are
    identical and merged, leaving one chain of R + C - 2 per flag. rows: row i's activation crosses
    i skew and C - 1 forwarding registers; columns likewise with j skew and R - 1. drain: each PE's
    result register and its valid bit (acc_bits + 1).
    """
    rows, cols = cfg.rows, cfg.cols
    row_bits, col_bits = operand_bits(cfg.pe)
    return {
        "flags": FLAG_BITS * (rows + cols - 2),
        "rows": row_bits * (rows * (rows - 1) // 2 + rows * (cols - 1)),
        "columns": col_bits * (cols * (cols - 1) // 2 + cols * (rows - 1)),
        "drain": rows * cols * (cfg.pe.acc_bits + 1),
    }


def array_area_um2(cfg: ArrayConfig, pe: PECost) -> dict[str, float]:
    """Area (µm²) of the PEs and of the registers around them (forwarding, skew, drain)."""
    bits = sum(array_register_bits(cfg).values())
    return {"pes": cfg.rows * cfg.cols * pe.area_um2, "registers": bits * REGISTER_BIT_AREA_UM2}


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

    Every MAC is one active PE-cycle; every other PE-cycle of the run (fill, drain, padding, stalls)
    is idle. Both buffers are costed per byte at their mean size.
    """
    sram_pj = sram_pj_per_byte((mem.act_buffer_kib + mem.weight_buffer_kib) / 2)
    return Energy(
        pe_active=cost.macs * pe.energy_pj_active,
        pe_idle=(cost.pe_cycles - cost.macs) * pe.energy_pj_idle,
        sram=(cost.sram_read_bytes + cost.sram_write_bytes) * sram_pj,
        dram=(cost.dram_read_bytes + cost.dram_write_bytes) * DRAM_PJ_PER_BYTE,
    )
