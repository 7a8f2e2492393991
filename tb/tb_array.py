"""cocotb testbench: a systolic array running a random GEMM, against the Numba model and numpy."""

from __future__ import annotations

import json
import time
from pathlib import Path

import cocotb
import numpy as np

from hw.config import ACT_PORT_BITS, Q_PORT_BITS, SCALE_PORT_BITS, ZERO_PORT_BITS
from sim.array_model import array_run
from sim.gemm import collect, gemm_stream, random_operands
from sim.reference import reference_gemm
from tb.harness import config_from, run_cycles, tb_params
from tb.stimulus import insert_bubbles


def pack(lanes: np.ndarray, bits: int) -> list[int]:
    """(cycles, lanes) port values -> one integer per cycle, lane 0 in the low bits."""
    mask = (1 << bits) - 1
    return [sum((int(v) & mask) << (bits * i) for i, v in enumerate(row)) for row in lanes]


def unpack_signed(value: int, bits: int, lanes: int) -> list[int]:
    mask, half = (1 << bits) - 1, 1 << (bits - 1)
    return [((value >> (bits * i)) & mask) - (((value >> (bits * i)) & half) << 1) for i in range(lanes)]


@cocotb.test()
async def array_matches_cycle_model(dut):
    """Random GEMM with idle cycles inside; out_valid every cycle, out_y whenever valid; Y exact.

    params: shape [M, N, K], bubble_prob, packed (the decode mapping, hw/array.py).
    """
    params = tb_params()
    cfg = config_from(params)
    rng = np.random.default_rng(params["seed"])
    m, n, k = params["shape"]
    packed = bool(params.get("packed", False))
    ops = random_operands(cfg.pe, m, n, k, rng)
    stream = insert_bubbles(gemm_stream(cfg, ops, packed=packed), rng, params.get("bubble_prob", 0.1))
    want_valid, want_y = array_run(cfg, stream)
    acc, cols = cfg.pe.acc_bits, cfg.cols
    got_valid = np.zeros_like(want_valid)
    got_y = np.zeros_like(want_y)

    def check(t: int) -> None:
        valid = int(dut.out_valid.value)
        got_valid[t] = [(valid >> j) & 1 for j in range(cols)]
        if valid:
            got_y[t] = unpack_signed(dut.out_y.value.to_unsigned(), acc, cols)

    row_en, col_en = stream.enables(cfg)
    inputs = {
        "in_valid": stream.valid,
        "in_first": stream.first,
        "in_last": stream.last,
        "in_row_en": pack(row_en, 1),
        "in_col_en": pack(col_en, 1),
        "in_packed": [int(packed)] * len(want_valid),  # held until the last result has drained
        "in_act": pack(stream.act, ACT_PORT_BITS),
        "in_q": pack(stream.q, Q_PORT_BITS),
        "in_scale": pack(stream.scale, SCALE_PORT_BITS),  # lane p of column j is entry j * lanes + p
        "in_zero": pack(stream.zero, ZERO_PORT_BITS),
    }
    start = time.perf_counter()
    await run_cycles(dut, inputs, check, len(want_valid))
    if "timing_out" in params:  # for bench/: wall time of the simulated cycles alone
        elapsed = time.perf_counter() - start
        Path(params["timing_out"]).write_text(json.dumps({"seconds": elapsed, "cycles": len(want_valid)}))
    bad = np.flatnonzero((got_valid != want_valid).any(axis=1) | ((got_y != want_y) & (want_valid == 1)).any(axis=1))
    if bad.size:
        t = bad[0]
        raise AssertionError(
            f"{bad.size} mismatching cycles, first {t}: RTL {got_valid[t]} {got_y[t]}, "
            f"model {want_valid[t]} {want_y[t]}"
        )
    y = collect(cfg, ops, got_valid, got_y, packed)
    assert (y == reference_gemm(cfg.pe, ops)).all(), "the RTL's GEMM result differs from the numpy reference"
