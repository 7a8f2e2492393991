"""Tile schedules: SCALE-Sim v3's counts, the manifest's formula, and replay --schedule."""

import json
import math

import numpy as np
import pytest

from hw.build import main as build_main
from hw.config import ArrayConfig, PEConfig
from sim.gemm import random_operands, run_gemm
from sim.perf_model import MemoryConfig, gemm_cost
from sim.replay import main as replay_main
from sim.schedule import cycle_formula, gemm_cycles

ARRAY32 = ArrayConfig(PEConfig("int8", 8, "signed", "int8"), 32, 32)
UNLIMITED = MemoryConfig(dram_bytes_per_cycle=math.inf)
# Compute cycles SCALE-Sim v3.0.0 printed (output-stationary, 32x32 array): M, N, K, cycles.
SCALESIM_V3 = [(100, 37, 300, 2_895), (64, 1024, 1024, 69_503), (512, 512, 512, 146_943)]


@pytest.mark.parametrize("m, n, k, scalesim", SCALESIM_V3)
def test_scalesim_schedule_reproduces_scalesim_v3(m, n, k, scalesim):
    assert gemm_cycles(ARRAY32, m, n, k, "scalesim") == scalesim
    cost = gemm_cost(ARRAY32, UNLIMITED, m, n, k, schedule="scalesim")
    assert cost.cycles == cost.compute_cycles == scalesim
    # The hardware overlaps a tile's stream with the previous tile's drain, so it needs fewer cycles.
    assert gemm_cycles(ARRAY32, m, n, k) < scalesim


def test_scalesim_schedule_hides_fetches_behind_longer_folds():
    mem = MemoryConfig(act_buffer_kib=1, weight_buffer_kib=1, dram_bytes_per_cycle=4.0)
    overlapped = gemm_cost(ARRAY32, mem, 64, 64, 256)
    folds = gemm_cost(ARRAY32, mem, 64, 64, 256, schedule="scalesim")
    assert folds.cycles >= folds.compute_cycles and overlapped.cycles >= overlapped.compute_cycles
    assert folds.cycles - folds.compute_cycles <= overlapped.cycles - overlapped.compute_cycles
    with pytest.raises(ValueError, match="unknown schedule"):
        gemm_cost(ARRAY32, mem, 4, 4, 4, schedule="weight-stationary")


@pytest.mark.parametrize("pe", [PEConfig(kind, 4, "unsigned", "int8", 8) for kind in ("dequant", "mixpe")])
def test_manifest_cycle_formula_counts_the_cycle_model(tmp_path, pe, capsys):
    """The manifest's formula, evaluated, equals the cycle-exact model for the PE's own latency when every PE is
    used; a partial last tile drains sooner (its unused PEs are gated), as gemm_cycles counts."""
    rows, cols = 3, 2
    cli = ["--pe", pe.pe, "--wbits", "4", "--group", "8", "--rows", str(rows), "--cols", str(cols)]
    assert build_main([*cli, "-o", str(tmp_path), "--json"]) == 0
    manifest = json.loads(capsys.readouterr().out)
    formula = manifest["cycle_formula"]
    assert formula == cycle_formula(pe.latency) and "gated" in manifest["cycle_formula_scope"]
    cfg = ArrayConfig(pe, rows, cols)
    for m, n, k in [(3, 2, 8), (6, 4, 16), (7, 5, 16), (2, 9, 8)]:
        tiles = -(-m // rows) * -(-n // cols)
        expected = eval(formula, {"max": max}, {"tiles": tiles, "K": k, "rows": rows, "cols": cols})
        _, cycles = run_gemm(cfg, random_operands(pe, m, n, k, np.random.default_rng(m)))
        assert cycles == gemm_cycles(cfg, m, n, k)
        assert cycles == expected if m % rows == 0 and n % cols == 0 else cycles < expected


def test_replay_cli_schedule_scalesim(tmp_path):
    # The PE of tests/test_replay.py, so a test session synthesizes it once.
    small = ["llama-2-7b", "--prefill", "16", "--decode", "2", "--wbits", "2", "--group", "4", "--rows", "4"]
    small += ["--cols", "4", "--dram-bytes-per-cycle", "inf"]
    totals = {}
    for schedule in ("overlapped", "scalesim"):
        out = tmp_path / schedule
        assert replay_main([*small, "--schedule", schedule, "-o", str(out)]) == 0
        report = json.loads((out / "replay.json").read_text())["reports"]["mixpe"]
        assert report["schedule"] == schedule
        cfg = ArrayConfig(PEConfig(**report["pe"]), 4, 4)
        for op in report["ops"]:
            per_instance = gemm_cycles(cfg, op["m"], op["n"], op["k"], schedule, packed=op["packed"])
            assert op["cycles"] == op["compute_cycles"] == per_instance * op["instances"], op["name"]
        totals[schedule] = report["totals"]["cycles"]
        assert not (out / "cycles.png").exists()  # plots only with --plots
    assert totals["scalesim"] > totals["overlapped"]
