import math

import pytest

from hw.config import ArrayConfig, PEConfig
from sim.energy import DRAM_PJ_PER_BYTE, REGISTER_BIT_AREA_UM2, PECost, array_area_um2, gemm_energy, sram_pj_per_byte
from sim.perf_model import MemoryConfig, gemm_cost


def test_sram_energy_follows_the_table_and_interpolates():
    # Horowitz 2014 (45 nm): 10 / 20 / 100 pJ per 64-bit read at 8 KB / 32 KB / 1 MB, scaled x16 to 0.18 µm
    assert sram_pj_per_byte(8) == pytest.approx(10 * 16 / 8)
    assert sram_pj_per_byte(32) == pytest.approx(20 * 16 / 8)
    assert sram_pj_per_byte(1024) == pytest.approx(100 * 16 / 8)
    assert sram_pj_per_byte(8) < sram_pj_per_byte(16) < sram_pj_per_byte(32) < sram_pj_per_byte(256)
    assert sram_pj_per_byte(1) == sram_pj_per_byte(8) and sram_pj_per_byte(4096) == sram_pj_per_byte(1024)


def test_array_register_area_counts_forwarding_skew_and_drain():
    pe = PECost(area_um2=500.0, fmax_mhz=100.0, energy_pj_active=1.0, energy_pj_idle=0.1, source="test")
    one = array_area_um2(ArrayConfig(PEConfig(acc_bits=48), 1, 1), pe)
    assert one == {"pes": 500.0, "registers": 49 * REGISTER_BIT_AREA_UM2}  # only the drain register
    two = array_area_um2(ArrayConfig(PEConfig(acc_bits=48), 2, 2), pe)
    # flags: one shared chain of 2 per flag; rows: 8 activation bits x (1 skew + 2 hops); columns: q, scale
    # and zero (4 + 16 + 4 bits) x (1 skew + 2 hops); 4 drains
    assert two["registers"] == (3 * 2 + 8 * 3 + 24 * 3 + 4 * 49) * REGISTER_BIT_AREA_UM2


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
