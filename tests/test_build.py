import json
import subprocess
import sys

import pytest

from hw.build import main

PE_VARIANTS = [
    ["--pe", "mixpe", "--act", "int8"],
    ["--pe", "mixpe", "--act", "fp16", "--wformat", "signed", "--wbits", "3"],
    ["--pe", "mixpe", "--act", "int8", "--group-dequant", "parallel"],
    ["--pe", "mixpe", "--act", "fp16", "--accumulate", "fp32"],
    ["--pe", "dequant", "--act", "fp16", "--accumulate", "fp32"],
    ["--pe", "dequant", "--act", "int8", "--wbits", "2"],
    ["--pe", "dequant", "--act", "fp16", "--wbits", "8"],
    ["--pe", "int8"],
]


@pytest.mark.parametrize("args", PE_VARIANTS)
def test_emits_verilog_and_manifest(tmp_path, args, capsys):
    assert main([*args, "--rows", "2", "--cols", "3", "--group", "16", "-o", str(tmp_path), "--json"]) == 0
    manifest = json.loads(capsys.readouterr().out)
    top = manifest["top"]
    verilog = (tmp_path / f"{top}.v").read_text()
    assert f"module {top}(" in verilog
    ports = {p["name"]: p for p in manifest["ports"]}
    assert ports["in_act"]["bits"] == 2 * 16 and ports["in_q"]["lanes"] == 3
    assert ports["out_y"]["lanes"] == 3 and ports["out_y"]["lane_bits"] == manifest["config"]["pe"]["acc_bits"]
    # gating: an enable per row and per column lane; the packed mode widens each column's scale per lane
    lanes = manifest["packed_lanes"]
    assert lanes == max(1, 8 // manifest["config"]["pe"]["wbits"]) and ports["in_row_en"]["bits"] == 2
    assert ports["in_col_en"]["lane_bits"] == lanes and ports["in_scale"]["lane_bits"] == 16 * lanes
    for name in ports:
        assert name in verilog
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([f"{top}.v", f"{top}.json"])


def test_single_pe(tmp_path):
    assert main(["--pe", "mixpe", "--act", "fp16", "--pe-only", "-o", str(tmp_path)]) == 0
    manifest = json.loads((tmp_path / "pe_mixpe_w4u_afp16_g128.json").read_text())
    # MixPE registers the group, multiplies it by S in 16 shift-add cycles, then accumulates
    assert manifest["kind"] == "pe" and manifest["latency_cycles"] == 18
    assert {p["name"] for p in manifest["ports"]} >= {"valid", "first", "last", "act", "q", "scale", "zero", "out_y"}


def test_mixpe_weight_path_has_no_multiplier(tmp_path):
    """Parallel MixPE's only multiply is the once-per-group S * P; the serial one has none (only
    constant part-select offsets); the dequant baseline has two."""
    import re

    from hw.build import emit
    from hw.config import PEConfig

    for act in ("int8", "fp16"):
        par, _ = emit(PEConfig(pe="mixpe", act=act, group=8, group_dequant="parallel"))
        ser, _ = emit(PEConfig(pe="mixpe", act=act, group=8, group_dequant="serial"))
        deq, _ = emit(PEConfig(pe="dequant", act=act, group=8))
        assert par.count(" * ") == 1
        assert re.findall(r" \* (?!\d+'h)", ser) == []
        assert deq.count(" * ") == 2


@pytest.mark.parametrize(
    "args, words",
    [
        (["--pe", "int8", "--act", "fp16"], "int8 PE"),
        (["--wbits", "5"], "weight bits 5"),
        (["--group", "0"], "--group: 0 is out of range"),
        (["--rows", "0"], "--rows: 0 is out of range"),
        (["--accumulate", "fp32"], "FP32 accumulation needs FP16 activations"),
        (["--accumulate", "fp32", "--act", "fp16", "--acc-bits", "48"], "FP32 accumulator is 32 bits"),
        (["--group", "8", "--serial-bits", "1"], "group size 8 is shorter than the 16 cycles"),
        (["--group", "4", "--serial-bits", "2", "--pe-only"], "group size 4 is shorter than the 8 cycles"),
    ],
)
def test_unsupported_exits_2_and_writes_nothing(tmp_path, args, words):
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "hw.build", *args, "-o", str(out)], capture_output=True, text=True)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0]
    assert not out.exists()


def test_array_counts_groups_once_for_all_its_mixpes():
    """Inside an array the group-end flag is computed at the edge and forwarded; PEs have no counter."""
    import re

    from hw.build import emit
    from hw.config import ArrayConfig, PEConfig

    pe = PEConfig(pe="mixpe", group=16)
    array_text, _ = emit(ArrayConfig(pe, 3, 3))
    pe_text, _ = emit(pe)
    counter = r"reg \[\d+:0\] group_count\b"
    assert len(re.findall(counter, pe_text)) == 1
    assert len(re.findall(counter, array_text)) == 1
