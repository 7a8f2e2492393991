import math

import pytest

from hw.config import ArrayConfig, PEConfig
from sim.energy import (
    AND2_AREA_UM2,
    CLOCK_GATE_AREA_UM2,
    DRAM_PJ_PER_BYTE,
    MUX2_AREA_UM2,
    REGISTER_BIT_AREA_UM2,
    PECost,
    array_area_um2,
    gemm_energy,
    sram_pj_per_byte,
)
from sim.perf_model import MemoryConfig, gemm_cost


def test_sram_energy_follows_the_table_and_interpolates():
    # Horowitz 2014 (45 nm): 10 / 20 / 100 pJ per 64-bit read at 8 KB / 32 KB / 1 MB, scaled x16 to 0.18 µm
    assert sram_pj_per_byte(8) == pytest.approx(10 * 16 / 8)
    assert sram_pj_per_byte(32) == pytest.approx(20 * 16 / 8)
    assert sram_pj_per_byte(1024) == pytest.approx(100 * 16 / 8)
    assert sram_pj_per_byte(8) < sram_pj_per_byte(16) < sram_pj_per_byte(32) < sram_pj_per_byte(256)
    assert sram_pj_per_byte(1) == sram_pj_per_byte(8) and sram_pj_per_byte(4096) == sram_pj_per_byte(1024)


def test_array_register_area_counts_forwarding_skew_drain_and_gating():
    pe = PECost(area_um2=500.0, fmax_mhz=100.0, energy_pj_active=1.0, energy_pj_idle=0.1, source="test")
    # one clock gate, and an isolating AND per operand bit (act 16, q 4, scale 16, zero 4), per PE
    per_pe_gating = CLOCK_GATE_AREA_UM2 + 40 * AND2_AREA_UM2
    one = array_area_um2(ArrayConfig(PEConfig(acc_bits=48), 1, 1), pe)
    assert one == {"pes": 500.0, "registers": 49 * REGISTER_BIT_AREA_UM2, "gating": per_pe_gating}  # the drain only
    two = array_area_um2(ArrayConfig(PEConfig(acc_bits=48), 2, 2), pe)
    # MixPE's shared flags (first, last, group_end): one chain of 2 each; valid (with the row enable) per
    # row: 1 skew + 2 hops, like the 8 activation bits; columns at W4, 2 lanes: (q 4 + scale 16 + zero 4
    # + enable 1) x 2 = 50 bits x (1 skew + 2 hops); 4 drains of 49
    assert two["registers"] == (3 * 2 + 3 + 8 * 3 + 50 * 3 + 4 * 49) * REGISTER_BIT_AREA_UM2
    # row 1 takes lane 1 in the packed mode: a multiplexer per q, scale, zero and enable bit
    assert two["gating"] == 4 * per_pe_gating + 2 * (4 + 16 + 4 + 1) * MUX2_AREA_UM2


def test_gemm_energy_adds_its_parts():
    cfg = ArrayConfig(PEConfig("mixpe", 4, "unsigned", "int8", 32), 4, 4)
    mem = MemoryConfig(act_buffer_kib=8, weight_buffer_kib=8, dram_bytes_per_cycle=math.inf)
    pe = PECost(area_um2=1.0, fmax_mhz=1.0, energy_pj_active=3.0, energy_pj_idle=0.5, source="test")
    cost = gemm_cost(cfg, mem, 16, 16, 64)
    e = gemm_energy(cost, mem, pe)
    assert e.pe_active == 16 * 16 * 64 * 3.0
    assert e.pe_idle == (cost.cycles * 16 - 16 * 16 * 64) * 0.5
    assert e.dram == (cost.dram_read_bytes + cost.dram_write_bytes) * DRAM_PJ_PER_BYTE
    assert e.sram == pytest.approx((cost.sram_read_bytes + cost.sram_write_bytes) * sram_pj_per_byte(8))
    assert e.total == pytest.approx(e.pe_active + e.pe_idle + e.sram + e.dram)


def test_clock_gating_prices_idle_cycles_as_gated_except_pipeline_tails():
    cfg = ArrayConfig(PEConfig("mixpe", 4, "unsigned", "int8", 32), 4, 4)
    mem = MemoryConfig(act_buffer_kib=8, weight_buffer_kib=8, dram_bytes_per_cycle=math.inf)
    pe = PECost(1.0, 1.0, energy_pj_active=3.0, energy_pj_idle=0.5, source="test", energy_pj_gated=0.01)
    cost = gemm_cost(cfg, mem, 1, 16, 64)  # a GEMV: one row of four used, four column tiles back to back
    tail = 4 * cfg.pe.latency  # only the last tile's PEs idle, clocked, through their L-cycle pipeline tail
    assert cost.tail_pe_cycles == tail
    assert cost.gated_pe_cycles == cost.cycles * 16 - 16 * 64 - tail
    e = gemm_energy(cost, mem, pe)
    assert e.pe_idle == pytest.approx(tail * 0.5 + cost.gated_pe_cycles * 0.01)
