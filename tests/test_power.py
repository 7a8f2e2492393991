import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import hw.power as power
from hw.cell_energy import clock_gate_energy_pj, energy_per_cycle
from hw.config import PEConfig
from hw.power import main, measure_power
from hw.power_stimulus import operand_stream, scale_draw
from hw.toggles import count_toggles
from tests.cli import exit_code

INT8 = PEConfig("int8", 8, "signed", "int8")
MIXPE = PEConfig("mixpe", 2, "unsigned", "int8", 4)
DEQUANT = PEConfig("dequant", 2, "unsigned", "int8", 4)
CONFIGS = {"int8": INT8, "mixpe": MIXPE, "dequant": DEQUANT}
CYCLES = 500
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def results(cache):
    return {
        name: (measure_power(cfg, cycles=CYCLES), measure_power(cfg, cycles=CYCLES, mode="idle"))
        for name, cfg in CONFIGS.items()
    }


@pytest.mark.parametrize("name", CONFIGS)
def test_energy_is_plausible(results, name):
    active, idle = results[name]
    for r in (active, idle):
        b = r.power_breakdown_mw
        assert r.energy_pj_per_cycle > 0 and r.energy_pj_per_cycle == pytest.approx(r.power_mw * r.clock_ns)
        assert b["total"] == pytest.approx(b["internal"] + b["switching"] + b["leakage"], rel=1e-4)
        assert r.cycles == CYCLES and r.nets > 500
        assert json.loads((Path(r.work_dir) / "result.json").read_text()) == r.as_dict()
    # Random operands keep a good share of the nets busy; nothing but the clock moves when idle.
    assert 0.05 < active.toggles_per_net_per_cycle < 1.0
    assert idle.toggles_per_net_per_cycle < 1e-3
    # Idle switching is the clock net's alone.
    assert 0 < idle.power_breakdown_mw["switching"] < 0.5 * active.power_breakdown_mw["switching"]
    # Idle still clocks every flop, so it costs something, but far less than computing.
    assert 0 < idle.energy_pj_per_cycle < 0.5 * active.energy_pj_per_cycle
    # The liberty model at hw.synth's uniform activity lands near OpenSTA's figure for the same netlist.
    assert 0.3 < active.global_energy_pj_per_cycle / active.synth_energy_pj_per_cycle < 3.0


def test_zero_operands_cost_less(results, cache):
    stream = operand_stream(MIXPE, CYCLES, seed=0)
    stream["act"][:] = 0
    stream["q"][:] = 0
    zeros = measure_power(MIXPE, stimulus=stream)
    active, idle = results["mixpe"]
    assert idle.energy_pj_per_cycle < zeros.energy_pj_per_cycle < 0.7 * active.energy_pj_per_cycle


@pytest.mark.parametrize("name", ["mixpe", "dequant"])
def test_padded_rows_and_gated_cycles(results, cache, name):
    """A padded row (act 0, valid high) of an ungated array vs a gated PE (valid low, operands zero)."""
    active, idle = results[name]
    padded = measure_power(CONFIGS[name], cycles=CYCLES, mode="padded")
    assert padded.mode == "padded" and idle.mode == "idle" and active.mode == "active"
    assert idle.energy_pj_per_cycle < padded.energy_pj_per_cycle < active.energy_pj_per_cycle
    # idle: only the clock moves, so nearly all of its energy is the clock's, which a clock gate saves
    assert 0 < idle.energy_pj_per_cycle - idle.clock_energy_pj_per_cycle < 0.01 * idle.energy_pj_per_cycle
    assert 0 < clock_gate_energy_pj() < 0.2 * idle.clock_energy_pj_per_cycle
    # the clock's share is the same whatever the operands do
    assert padded.clock_energy_pj_per_cycle == pytest.approx(idle.clock_energy_pj_per_cycle)


def test_unknown_stream_mode_is_rejected():
    with pytest.raises(ValueError, match="stream mode 'busy'"):
        operand_stream(INT8, 10, mode="busy")


def test_cache_key_names_the_fp32_scale_draw(results, cache):
    # the FP32 PEs' scale draw lives in sim/float_model.py, outside the hw/ sources the key hashes
    fp32 = PEConfig("mixpe", 4, "unsigned", "fp16", 8, accumulate="fp32")
    draw = scale_draw(fp32)
    assert draw.startswith("random_fp16_scales ") and scale_draw(MIXPE) != draw
    dirs = {Path(r.work_dir) for pair in results.values() for r in pair}
    assert len(dirs) == 2 * len(CONFIGS)  # active and idle of one PE are separate entries


def test_glitches_add_toggles(results, cache):
    zero_delay = results["mixpe"][0]
    timed = measure_power(MIXPE, cycles=CYCLES, delays=True)
    assert timed.delays and "specify-delay" in timed.method and "zero-delay" in zero_delay.method
    assert timed.toggles_per_net_per_cycle > 1.2 * zero_delay.toggles_per_net_per_cycle
    assert timed.energy_pj_per_cycle > zero_delay.energy_pj_per_cycle


def test_energy_model_is_linear_in_activity(results):
    netlist = (Path(results["int8"][0].work_dir) / "netlist.v").read_text()
    nets = json.loads((Path(results["int8"][0].work_dir) / "activity.json").read_text())
    rates = {n: v["toggles"] / CYCLES for n, v in nets.items()}
    one, two = energy_per_cycle(netlist, rates), energy_per_cycle(netlist, {n: 2 * r for n, r in rates.items()})
    still = energy_per_cycle(netlist, {})
    for kind in ("internal", "switching"):
        assert one[kind] > 0 and two[kind] == pytest.approx(2 * one[kind]) and still[kind] == 0
    assert one["leakage_nw"] == still["leakage_nw"] > 0


def test_second_call_is_cached(results, monkeypatch):
    def no_tools():
        raise AssertionError("tools ran on a cached measurement")

    monkeypatch.setattr(power, "_require_tools", no_tools)
    monkeypatch.setattr(power, "synthesize", no_tools)  # a hit needs neither the netlist nor the stimulus
    monkeypatch.setattr(power, "operand_stream", no_tools)
    assert measure_power(DEQUANT, cycles=CYCLES) == results["dequant"][0]


def test_toggle_counting():
    # clk-free toy dump, VCD unit 1 ns, window (10, 50): b toggles 3 times (x->0 is before it),
    # the vector v drops its leading zeros as VCD does.
    vcd = (
        "$timescale 1ns $end\n$scope module dut $end\n$var wire 1 ! b $end\n$var wire 3 # v [2:0] $end\n"
        "$upscope $end\n$enddefinitions $end\n#0\n$dumpvars\n0!\nb0 #\n$end\n"
        "#20\n1!\nb101 #\n#30\n0!\nb1 #\n#40\n1!\n#60\n0!\nb111 #\n"
    )
    got = count_toggles(vcd.splitlines(keepends=True), 10.0, 50.0)
    assert got["b"] == (3, pytest.approx(0.5))
    assert got["v[2]"] == (2, pytest.approx(0.25))
    assert got["v[1]"] == (0, 0.0)
    assert got["v[0]"] == (1, pytest.approx(0.75))


def test_stimulus_out_of_range_is_rejected(cache):
    stream = operand_stream(INT8, 10)
    stream["q"][3] = 256
    with pytest.raises(ValueError, match="stimulus 'q'"):
        measure_power(INT8, stimulus=stream)


@pytest.mark.parametrize("args", [["--pe", "int8", "--act", "fp16"], ["--cycles", "0"], ["--clock-ns", "-1"]])
def test_cli_rejects_unsupported_configuration(args, capsys):
    code = exit_code(main, args)
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("python -m hw.power: error: ") and err.count("\n") == 1


def test_missing_iverilog_is_one_line(results, cache, tmp_path):
    # The module's cache already holds the INT8 netlist, so no synthesis tool is needed before the simulator.
    env = {**os.environ, "PATH": str(tmp_path), "MIXKIT_CACHE": str(cache)}
    proc = subprocess.run(
        [sys.executable, "-m", "hw.power", "--pe", "int8", "--cycles", "50"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1
    assert "iverilog not found on PATH" in proc.stderr and "make setup" in proc.stderr


def test_a_hung_simulation_is_killed_at_its_timeout_and_named(tmp_path, monkeypatch):
    from hw.power import PowerError, _simulate

    hung = tmp_path / "vvp"
    hung.write_text("#!/bin/sh\nexec sleep 30\n")
    hung.chmod(0o755)
    monkeypatch.setenv("MIXKIT_TOOL_TIMEOUT_S", "0.5")
    start = time.perf_counter()
    with pytest.raises(PowerError, match=r"vvp timed out after 0.5 s .*see .*vvp.log"):
        _simulate(str(hung), tmp_path, 0.0, 10.0)
    assert time.perf_counter() - start < 10
