"""The Numba cycle model against the numpy reference, float math and the cycle formula."""

import numpy as np
import pytest

from hw.config import ArrayConfig, PEConfig
from sim.array_model import array_run
from sim.gemm import gemm_cycles, gemm_stream, random_operands, run_gemm, run_gemm_stream
from sim.pe_model import decode_acts, pe_trace
from sim.reference import real_gemm, reference_gemm, result_lsb
from sim.schedule import tile_count, tile_spacing

CONFIGS = [
    PEConfig(pe, wbits, wformat, act, group)
    for pe in ("mixpe", "dequant")
    for act in ("int8", "fp16")
    for wbits, wformat, group in (
        (2, "unsigned", 1),
        (3, "signed", 4),
        (4, "unsigned", 8),
        (8, "signed", 16),
        (8, "unsigned", 32),
    )
] + [PEConfig("int8", 8, "signed", "int8")]


def test_fp16_decoding_is_exact_for_every_finite_pattern():
    bits = np.arange(1 << 16)
    finite = ((bits >> 10) & 0x1F) != 0x1F
    got = decode_acts(bits[finite], "fp16").astype(np.float64) * 2.0**-24
    want = bits[finite].astype(np.uint16).view(np.float16).astype(np.float64)
    assert np.array_equal(got, want)


@pytest.mark.parametrize("pe", CONFIGS, ids=lambda c: c.name())
@pytest.mark.parametrize("rows, cols, m, n", [(1, 1, 1, 1), (2, 3, 5, 7), (4, 4, 8, 8)])
def test_array_model_matches_reference(pe, rows, cols, m, n):
    cfg = ArrayConfig(pe, rows, cols)
    rng = np.random.default_rng(rows * 100 + cols)
    k = 2 * pe.group if pe.pe == "mixpe" else 32
    ops = random_operands(pe, m, n, k, rng)
    y, cycles = run_gemm(cfg, ops)
    assert np.array_equal(y, reference_gemm(pe, ops))
    assert cycles == gemm_cycles(cfg, m, n, k)


@pytest.mark.parametrize("pe", [c for c in CONFIGS if c.pe != "int8"], ids=lambda c: c.name())
def test_integer_result_is_the_real_product(pe):
    """Y * lsb equals X @ dequant(W) in float64 when nothing wraps (values drawn in range)."""
    rng = np.random.default_rng(7)
    ops = random_operands(pe, 6, 5, 4 * pe.group, rng, fp16="normal")
    y, _ = run_gemm(ArrayConfig(pe, 2, 2), ops)
    np.testing.assert_allclose(y * result_lsb(pe, 14), real_gemm(pe, ops, 14), rtol=1e-12, atol=1e-12)


def test_mixpe_and_dequant_compute_the_same_integers():
    rng = np.random.default_rng(3)
    mix = PEConfig("mixpe", 4, "unsigned", "fp16", 16)
    ops = random_operands(mix, 9, 9, 64, rng)
    y_mix, _ = run_gemm(ArrayConfig(mix, 4, 4), ops)
    y_deq, _ = run_gemm(ArrayConfig(PEConfig("dequant", 4, "unsigned", "fp16", 16), 4, 4), ops)
    assert np.array_equal(y_mix, y_deq)


def test_accumulator_wraps_like_hardware():
    pe = PEConfig("int8", 8, "signed", "int8", acc_bits=16)
    n = 8
    valid, first, last = np.ones(n), np.eye(1, n, 0)[0], np.eye(1, n, n - 1)[0]
    y, out_valid = pe_trace(pe, valid, first, last, np.full(n, 0x80), np.full(n, 0x80), np.zeros(n), np.zeros(n))
    assert y[-1] == ((8 * 128 * 128 + 2**15) % 2**16) - 2**15 and out_valid[-1] == 1


@pytest.mark.parametrize("group_dequant", ["parallel", "serial"])
def test_pe_holds_state_through_stalls_and_restarts_on_first(group_dequant):
    pe = PEConfig("mixpe", 4, "unsigned", "int8", group=2, group_dequant=group_dequant)
    valid = np.array([1, 0, 1, 1, 1])
    first = np.array([1, 1, 0, 1, 0])  # `first` on the stall cycle is ignored
    last = np.array([0, 1, 1, 0, 1])
    act = np.array([3, 99, 5, 2, 2])
    q, scale, zero = np.array([2, 0, 4, 1, 1]), np.full(5, 10), np.full(5, 1)
    y, out_valid = pe_trace(pe, valid, first, last, act, q, scale, zero)
    # tile 1: 10 * ((3*2 + 5*4) - 1*(3+5)) = 180; tile 2: 10 * ((2 + 2) - (2 + 2)) = 0
    # MixPE dequantizes in a second stage: results land L cycles after `last` (parallel: 2; serial
    # at G=2: 8 bits of S per cycle, 2 cycles + 2), and y holds the previous result until the next
    # dot product's first group lands
    lat = pe.latency
    assert lat == {"parallel": 2, "serial": 4}[group_dequant]
    assert list(out_valid) == [0] * (2 + lat) + [1, 0, 1]
    assert list(y) == [0] * (2 + lat) + [180, 180, 0]


def test_tiles_too_close_for_the_drain_are_refused():
    cfg = ArrayConfig(PEConfig("int8", 8, "signed", "int8"), 4, 2)
    ops = random_operands(cfg.pe, 8, 2, 4, np.random.default_rng(0))  # K=4 < 2R-1: host pads
    stream = gemm_stream(cfg, ops)
    assert np.flatnonzero(stream.last).tolist() == [3, 10]
    stream.last[:], stream.last[[3, 8]] = 0, 1
    stream.first[:], stream.first[[0, 5]] = 0, 1
    with pytest.raises(ValueError, match="needs at least 7"):
        array_run(cfg, stream)


def test_cycle_formula_matches_scale_sim_plus_pe_latency():
    cfg = ArrayConfig(PEConfig(pe="int8", wbits=8, wformat="signed"), 16, 8)
    # one fold: the SCALE-Sim paper's OS formula 2*Sr + Sc + T - 2 (not SCALE-Sim v3's code: tests/test_schedule.py);
    # the registered PE output adds one cycle
    assert gemm_cycles(cfg, 16, 8, 256) == 2 * 16 + 8 + 256 - 2 + 1
    assert gemm_cycles(cfg, 32, 16, 256) == 3 * 256 + 256 + 2 * 16 + 8 - 1
    # the pipelined dequantize-then-multiply PE adds two
    assert gemm_cycles(ArrayConfig(PEConfig(pe="dequant"), 16, 8), 16, 8, 256) == 2 * 16 + 8 + 256 - 2 + 2
    mix = PEConfig(pe="mixpe", group_dequant="parallel")
    assert gemm_cycles(ArrayConfig(mix, 16, 8), 16, 8, 256) == 2 * 16 + 8 + 256 - 2 + 2
    serial = PEConfig(pe="mixpe", group_dequant="serial", serial_bits=1)  # 16 shift-add cycles + 2
    assert gemm_cycles(ArrayConfig(serial, 16, 8), 16, 8, 256) == 2 * 16 + 8 + 256 - 2 + 18


FP32_CONFIGS = [PEConfig(pe, 4, "unsigned", "fp16", 8, accumulate="fp32") for pe in ("mixpe", "dequant")]


@pytest.mark.parametrize("pe", [*CONFIGS[::3], *FP32_CONFIGS], ids=lambda c: c.name())
def test_tile_parallel_run_equals_the_stream_run(pe):
    """run_gemm (tiles straight from the operands, in parallel) equals the per-cycle stream model, stalls
    included: partial tiles (gated rows and columns) and, where the PE packs lanes, a packed GEMV."""
    rng = np.random.default_rng(11)
    cfg = ArrayConfig(pe, 4, 2)
    k = 2 * pe.group if pe.pe == "mixpe" else 16
    cases = [(7, 5, False)]  # edge tiles short in both directions
    if cfg.lanes > 1:
        cases.append((1, cfg.cols * cfg.lanes + 3, True))  # the second packed tile fills only some lanes
    for m, n, packed in cases:
        ops = random_operands(pe, m, n, k, rng)
        count = tile_count(cfg, m, n, packed)
        gaps = tile_spacing(cfg, k) + rng.integers(0, 6, count - 1)
        for starts in (None, np.cumsum([4, *gaps]).tolist()):
            y, cycles = run_gemm(cfg, ops, starts, packed)
            y_stream, cycles_stream = run_gemm_stream(cfg, ops, starts, packed)
            assert np.array_equal(y, y_stream) and cycles == cycles_stream, (m, n, packed, starts)
            if starts is None:
                assert cycles == gemm_cycles(cfg, m, n, k, packed=packed)
