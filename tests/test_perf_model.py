"""The tile-level performance model against the cycle-exact Numba model."""

import math

import numpy as np
import pytest

from hw.config import ArrayConfig, PEConfig
from sim.gemm import random_operands, run_gemm
from sim.perf_model import MemoryConfig, best_cost, dram_bound_cycles, gemm_cost, packable

UNLIMITED = MemoryConfig(dram_bytes_per_cycle=math.inf)
SHAPES = [(1, 1, 8), (3, 5, 16), (8, 8, 32), (9, 17, 64), (20, 6, 128)]


@pytest.mark.parametrize("rows, cols", [(1, 1), (2, 3), (4, 4), (8, 2)])
@pytest.mark.parametrize("wbits, group", [(2, 1), (3, 4), (4, 8), (8, 16)])
def test_compute_cycles_equal_the_cycle_model(rows, cols, wbits, group):
    pe = PEConfig("mixpe", wbits, "unsigned", "int8", group)
    cfg = ArrayConfig(pe, rows, cols)
    rng = np.random.default_rng(rows * cols + wbits)
    for m, n, k in SHAPES:
        k = max(k, group) // group * group
        for packed in (False, True) if packable(cfg) else (False,):
            cost = gemm_cost(cfg, UNLIMITED, m, n, k, packed=packed)
            _, cycles = run_gemm(cfg, random_operands(pe, m, n, k, rng), packed=packed)
            assert cost.cycles == cost.compute_cycles == cycles, (m, n, k, packed)


@pytest.mark.parametrize("packed", [False, True])
@pytest.mark.parametrize("double_buffer", [True, False])
@pytest.mark.parametrize("bandwidth", [0.5, 2.0, 16.0])
def test_memory_stalls_equal_the_cycle_model_with_delayed_tiles(bandwidth, double_buffer, packed):
    """With finite DRAM bandwidth, tiles start late; the Numba model fed that schedule agrees exactly."""
    pe = PEConfig("dequant", 4, "unsigned", "fp16", 8)
    cfg = ArrayConfig(pe, 4, 4)
    mem = MemoryConfig(
        act_buffer_kib=1, weight_buffer_kib=1, dram_bytes_per_cycle=bandwidth, double_buffer=double_buffer
    )
    rng = np.random.default_rng(1)
    for m, n, k in [(9, 17, 64), (4, 4, 256), (16, 3, 8), (1, 13, 64)]:
        cost = gemm_cost(cfg, mem, m, n, k, packed=packed)
        _, cycles = run_gemm(cfg, random_operands(pe, m, n, k, rng), list(cost.tile_starts), packed)
        assert cycles == cost.cycles >= cost.compute_cycles


def test_traffic_reuse_and_stalls():
    cfg = ArrayConfig(PEConfig("mixpe", 4, "unsigned", "int8", 128), 32, 32)
    big = MemoryConfig()
    cost = gemm_cost(cfg, big, 2048, 256, 1024)
    # weights (4 bit + 16-bit scale + 4-bit zero per 128) fit: fetched once; activations once per row block
    weights = 1024 * 256 // 2 + 1024 // 128 * 256 * 20 // 8
    assert cost.dram_read_bytes == 2048 * 1024 + weights
    first_fetch = 32 * 1024 + weights // 8  # one activation block and one column tile of weights
    assert cost.cycles == cost.compute_cycles + first_fetch // 32  # otherwise hidden at 32 B/cycle
    llm = gemm_cost(cfg, big, 2048, 4096, 4096)  # 8.7 MB of weights: refetched for every row block
    assert llm.dram_read_bytes == 2048 * 4096 + 64 * (4096 * 4096 // 2 + 4096 // 128 * 4096 * 20 // 8)
    decode = gemm_cost(cfg, big, 1, 4096, 4096)
    # a GEMV uses one row of 32 (the others are gated, so the drain ends with row 0): each column tile
    # streams K for a single output row, compute-bound at under 1/32 utilization, 2x the DRAM floor
    assert decode.compute_cycles == 128 * 4096 + 31 + cfg.pe.latency + 1 and decode.utilization < 1 / 32
    assert (
        decode.gated_pe_cycles > 31 * decode.macs and decode.tail_pe_cycles == 32 * cfg.pe.latency
    )  # the last tile only
    bound = dram_bound_cycles(cfg, big, 1, 4096, 4096)
    assert bound == (4096 * 4096 // 2 + 4096 // 128 * 4096 * 20 // 8 + 4096) / 32
    assert decode.cycles > 1.9 * bound
    # packed: two W4 weights per q port feed rows 0 and 1, 64 outputs per tile, at the DRAM's pace
    packed = best_cost(cfg, big, 1, 4096, 4096)
    assert packed.packed and packed.compute_cycles == 64 * 4096 + 2 * 1 + 31 + cfg.pe.latency + 1
    assert packed.dram_read_bytes == decode.dram_read_bytes and packed.cycles < 1.05 * bound
    assert not best_cost(cfg, big, 2048, 4096, 4096).packed  # prefill keeps the ordinary mapping
    tiny = gemm_cost(cfg, MemoryConfig(act_buffer_kib=1, weight_buffer_kib=1), 64, 64, 4096)
    assert tiny.dram_read_bytes == 4 * (32 * 4096 + 4096 * 32 // 2 + 32 * 32 * 20 // 8)  # refetch per tile


def test_dequantization_counts():
    m, n, k = 64, 64, 512
    costs = {
        kind: gemm_cost(ArrayConfig(PEConfig(kind, 4, "unsigned", "int8", 128), 8, 8), MemoryConfig(), m, n, k)
        for kind in ("mixpe", "dequant")
    }
    assert costs["mixpe"].dequant_ops == m * n * k // 128
    assert costs["dequant"].dequant_ops == m * n * k


def test_dram_fixed_in_time_is_fewer_bytes_per_cycle_at_a_faster_clock():
    mem = MemoryConfig(dram_gb_per_s=3.2)
    assert mem.at_clock(100.0).dram_bytes_per_cycle == pytest.approx(32.0)
    assert mem.at_clock(200.0).dram_bytes_per_cycle == pytest.approx(16.0)
    assert MemoryConfig().at_clock(200.0) == MemoryConfig()  # stated per cycle: unchanged
    cfg = ArrayConfig(PEConfig("mixpe", 4, "unsigned", "int8", 128), 32, 32)
    slow, fast = (best_cost(cfg, mem.at_clock(f), 1, 4096, 4096) for f in (100.0, 200.0))
    assert fast.cycles / 200 == pytest.approx(slow.cycles / 100, rel=0.1)  # a DRAM-bound GEMV: same time
    with pytest.raises(ValueError, match="GB/s"):
        MemoryConfig(dram_gb_per_s=math.inf)
