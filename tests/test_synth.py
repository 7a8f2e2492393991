import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import hw.synth as synth
from hw.config import PEConfig
from hw.synth import SynthError, main, synthesize, synthesize_all
from tests.cli import exit_code

INT8 = PEConfig("int8", 8, "signed", "int8")
MIXPE = PEConfig("mixpe", 2, "unsigned", "int8", 4)
DEQUANT = PEConfig("dequant", 2, "unsigned", "int8", 4)
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def results(cache):
    return dict(zip(("int8", "mixpe", "dequant"), synthesize_all([INT8, MIXPE, DEQUANT], progress=False), strict=True))


@pytest.mark.parametrize("name", ["int8", "mixpe", "dequant"])
def test_results_are_plausible(results, name):
    r = results[name]
    # A few hundred to a few thousand osu018 cells of 16-700 µm² each.
    assert 200 < r.cells < 10_000 and 10_000 < r.area_um2 < 500_000
    assert sum(r.cell_counts.values()) == r.cells and not any(c.startswith("$") for c in r.cell_counts)
    # The accumulator alone is acc_bits flops, plus out_valid.
    assert r.flops >= r.config["acc_bits"] + 1 and r.cell_counts["DFFPOSX1"] == r.flops
    assert 1.0 < r.critical_path_ns < 40.0
    assert r.fmax_mhz == pytest.approx(1000.0 / r.critical_path_ns)
    assert r.slack_ns == pytest.approx(r.clock_ns - r.critical_path_ns)
    assert 0.1 < r.power_mw < 100.0 and r.power_breakdown_mw["total"] == r.power_mw
    assert r.energy_pj_per_cycle == pytest.approx(r.power_mw * r.clock_ns)
    assert r.tool_versions["yosys"].startswith("Yosys") and r.tool_versions["opensta"]
    assert json.loads((Path(r.work_dir) / "result.json").read_text()) == r.as_dict()
    assert (Path(r.work_dir) / "netlist.v").read_text().count(f"module {r.design}(") == 1


def test_key_follows_sources_and_tools(results, monkeypatch):
    entry = synth.entry_dir(MIXPE, 10.0)
    assert Path(results["mixpe"].work_dir) == entry
    assert synth.entry_dir(MIXPE, 5.0) != entry and synth.entry_dir(DEQUANT, 10.0) != entry
    monkeypatch.setattr(synth, "source_hash", lambda: "edited")
    assert synth.entry_dir(MIXPE, 10.0) != entry  # an edited hw/ file rebuilds
    monkeypatch.undo()
    monkeypatch.setattr(synth, "_tool_versions", lambda: {"yosys": "Yosys 0.99"})
    assert synth.entry_dir(MIXPE, 10.0) != entry  # so does another yosys


def test_int8_pe_structure(results):
    r = results["int8"]
    assert r.design == "pe_int8_w8a8" and r.flops == 33


def test_second_call_is_cached(results, monkeypatch):
    def no_tools():
        raise AssertionError("tools ran on a cached design")

    monkeypatch.setattr(synth, "_require_tools", no_tools)
    monkeypatch.setattr(synth, "emit", no_tools)  # the key comes from the configuration, not the Verilog
    t0 = time.perf_counter()
    again = synthesize(MIXPE)
    assert again == results["mixpe"]
    assert time.perf_counter() - t0 < 5.0


def test_pipeline_registers_show_in_flops(results):
    # Beyond the 48-bit accumulator and out_valid: MixPE keeps the group sums P and A in flops; the pipelined
    # dequant PE registers its INT8 activation and w = S * (q - z) (16 + 2 + 1 bits at W2) between its two
    # stages. Area, delay and power of these small PEs are too close to order, so structure is asserted.
    bare = DEQUANT.acc_bits + 1
    assert results["mixpe"].flops > bare + 16
    assert results["dequant"].flops >= bare + 8 + 19


def test_clock_changes_power_not_logic(results, cache):
    fast = synthesize(INT8, clock_ns=5.0)
    slow = results["int8"]
    assert fast.work_dir != slow.work_dir
    assert fast.area_um2 == slow.area_um2 and fast.critical_path_ns == pytest.approx(slow.critical_path_ns)
    assert fast.power_mw > 1.5 * slow.power_mw


def test_cli_prints_table_and_json(results, capsys, tmp_path):
    assert main(["--pe", "int8"]) == 0
    assert "pe_int8_w8a8" in capsys.readouterr().out
    assert main(["--pe", "int8", "--json", "-o", str(tmp_path / "out")]) == 0
    assert json.loads(capsys.readouterr().out) == results["int8"].as_dict()
    assert json.loads((tmp_path / "out" / "synth.json").read_text()) == results["int8"].as_dict()


@pytest.mark.parametrize(
    "args", [["--pe", "int8", "--act", "fp16"], ["--wbits", "5"], ["--group", "0"], ["--clock-ns", "0"]]
)
def test_cli_rejects_unsupported_configuration(args, capsys):
    code = exit_code(main, args)
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("python -m hw.synth: error: ") and err.count("\n") == 1


def test_missing_yosys_is_one_line(tmp_path):
    env = {**os.environ, "PATH": str(tmp_path), "MIXKIT_CACHE": str(tmp_path / "cache")}
    proc = subprocess.run(
        [sys.executable, "-m", "hw.synth", "--pe", "int8"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1
    assert "yosys not found on PATH" in proc.stderr and "make setup" in proc.stderr


def test_tool_failure_names_the_log(tmp_path, monkeypatch, cache):
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "sta").write_text("#!/bin/sh\necho 'sta: broken' >&2\nexit 3\n")
    (fake / "sta").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake}{os.pathsep}{os.environ['PATH']}")
    with pytest.raises(SynthError, match=r"sta failed \(exit 3\): see .*sta\.log") as err:
        synthesize(INT8, clock_ns=7.5)
    log = Path(str(err.value).rsplit("see ", 1)[1])
    assert "sta: broken" in log.read_text()
