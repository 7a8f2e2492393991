"""`python -m tb`: any configuration on each simulator, a live comparison, clean refusals, waves files."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tb.cli import main

ROOT = Path(__file__).resolve().parents[1]
SMALL_ARRAY = ["--pe", "mixpe", "--group", "4", "--rows", "2", "--cols", "2", "--cycles", "120"]


def is_vcd(path: Path) -> bool:
    text = path.read_text()
    return "$enddefinitions" in text and "out_valid" in text


def is_fst(path: Path) -> bool:
    """FST is binary; its first block (the header) has type byte 0."""
    data = path.read_bytes()
    return len(data) > 100 and data[0] == 0


@pytest.mark.parametrize("sim, suffix", [("icarus", ".vcd"), ("amaranth", ".vcd")])
def test_small_array_passes_every_check_and_writes_waves(sim, suffix, tmp_path, capsys):
    waves = tmp_path / f"run{suffix}"
    assert main([*SMALL_ARRAY, "--sim", sim, "--seed", "3", "--waves", str(waves)]) == 0
    out = capsys.readouterr().out
    for check in ("out_valid[0] timing", "out_y[1] values", "Y = X @ W against numpy"):
        assert f"PASS  {check}" in out
    assert "FAIL" not in out
    assert (is_fst if suffix == ".fst" else is_vcd)(waves)
    assert [p.name for p in tmp_path.iterdir()] == [waves.name]  # no staging file left behind


def test_verilator_pe_passes_and_writes_fst(tmp_path, capsys):
    """Verilator builds take 15-40 s, so one run covers the simulator and its FST tracing (needs liblz4-dev)."""
    waves = tmp_path / "pe.fst"
    args = ["--pe", "dequant", "--act", "fp16", "--group", "4", "--pe-only", "--cycles", "150"]
    assert main([*args, "--sim", "verilator", "--waves", str(waves)]) == 0
    assert "PASS  out_y values" in capsys.readouterr().out
    assert is_fst(waves)


def test_icarus_writes_fst(tmp_path, capsys):
    waves = tmp_path / "pe.fst"
    assert main(["--pe", "mixpe", "--group", "2", "--pe-only", "--cycles", "40", "--waves", str(waves)]) == 0
    assert is_fst(waves)


def test_a_wrong_model_is_a_mismatch_with_its_cycle(capsys):
    """The RTL keeps a 17-bit accumulator; the model (test hook) wraps at 16 bits: exit 1, first mismatch shown."""
    args = ["--pe", "int8", "--acc-bits", "17", "--pe-only", "--cycles", "200", "--sim", "icarus"]
    assert main([*args, "--model-override", "acc_bits=16"]) == 1
    out = capsys.readouterr().out
    assert "PASS  out_valid timing" in out and "FAIL  out_y values" in out
    line = next(x for x in out.splitlines() if x.startswith("first mismatch:"))
    assert "cycle " in line and "out_y: expected " in line and ", actual " in line


def test_bad_configuration_from_the_shell_exits_2_with_one_line(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "tb", "--wbits", "5"], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120
    )
    assert proc.returncode == 2
    assert proc.stderr == "python -m tb: error: weight bits 5 unsupported: choose 2, 3, 4 or 8\n"
    assert proc.stdout == "" and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "args, message",
    [
        (["--rows", "0"], "--rows: 0 is out of range"),
        (["--pe", "int8", "--act", "fp16"], "the int8 PE is a plain INT8 x INT8 MAC"),
        (["--cycles", "0"], "--cycles: 0 is out of range"),
        (["--sim", "amaranth", "--waves", "x.fst"], "--sim amaranth writes only vcd"),
        (["--waves", "x.txt"], "name a .vcd or .fst file"),
        (["--waves", "no/such/dir/x.vcd"], "does not exist; create it first"),
        (["--sim", "modelsim"], "invalid choice"),
        (["--cycles", "ten"], "'ten' is not an integer"),
    ],
)
def test_bad_flags_exit_2_with_one_line(args, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    try:
        code = main(args)
    except SystemExit as e:  # argparse's own errors (OneLineParser)
        code = e.code
    err = capsys.readouterr()
    assert code == 2
    assert message in err.err and len(err.err.strip().splitlines()) == 1 and err.out == ""
    assert list(tmp_path.iterdir()) == []


def test_an_existing_waves_file_is_refused_and_kept(tmp_path, capsys):
    waves = tmp_path / "keep.vcd"
    waves.write_text("mine")
    assert main([*SMALL_ARRAY, "--sim", "amaranth", "--waves", str(waves)]) == 2
    assert "already exists: remove it or choose a new file name" in capsys.readouterr().err
    assert waves.read_text() == "mine"
