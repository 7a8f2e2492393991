"""Replay: the report's numbers against the tile model, the CLI, exact replays, and the sweep."""

import json
import subprocess
import sys

import numpy as np
import pytest

from hw.config import ArrayConfig, PEConfig
from sim.energy import PECost, array_area_um2, gemm_energy
from sim.gemm import random_operands
from sim.perf_model import MemoryConfig, gemm_cost
from sim.replay import ReplayError, exact_check, main, main_precision, op_cost, replay, speedups
from sim.sweep import pareto
from sim.workload import AttnQK, Linear, Workload, load_workload

COST = PECost(area_um2=1000.0, fmax_mhz=100.0, energy_pj_active=2.0, energy_pj_idle=0.5, source="test")
SMALL = ["--prefill", "16", "--decode", "2", "--wbits", "2", "--group", "4", "--rows", "4", "--cols", "4"]


def small_workload() -> Workload:
    return Workload(
        model="tiny",
        ops=[
            Linear(name="up", m=20, n=24, k=64, wbits=4, group=16, repeat=3),
            Linear(name="head", m=20, n=10, k=64, wbits=8, group=64),
            AttnQK(name="qk", m=20, n=20, k=16, kv_bits=16, kept_tokens=20, context=20, heads=2),
        ],
    )


def test_report_adds_up_the_tile_model():
    w = small_workload()
    mem = MemoryConfig(act_buffer_kib=1, weight_buffer_kib=1, dram_bytes_per_cycle=4.0)
    rep = replay(w, "mixpe", 4, 4, mem, pe_cost=COST)
    cfg = ArrayConfig(PEConfig("mixpe", 4, "unsigned", "int8", 16), 4, 4)  # built for the main precision
    assert main_precision(w).wbits == 4
    up = gemm_cost(cfg, mem, 20, 24, 64)
    qk = gemm_cost(cfg, mem, 20, 20, 16, wbits=16)  # FP16 KV traffic
    assert rep.ops[0].cycles == 3 * up.cycles and rep.ops[2].cycles == 2 * qk.cycles
    assert rep.ops[2].approximated and not rep.ops[0].approximated
    assert rep.ops[0].energy_pj["total"] == pytest.approx(3 * gemm_energy(up, mem, COST).total)
    t = rep.totals
    assert t["cycles"] == sum(o.cycles for o in rep.ops)
    assert t["seconds"] == pytest.approx(t["cycles"] / 100e6)
    assert t["macs"] == 3 * 20 * 24 * 64 + 20 * 10 * 64 + 2 * 20 * 20 * 16
    assert t["area_mm2"] == pytest.approx(sum(array_area_um2(cfg, COST).values()) / 1e6)
    assert sum(v for k, v in t["energy_pj"].items() if k != "total") == pytest.approx(t["energy_pj"]["total"])


def test_speedups_compare_time_energy_and_area():
    w = small_workload()
    mem = MemoryConfig()
    slow = PECost(area_um2=2000.0, fmax_mhz=50.0, energy_pj_active=4.0, energy_pj_idle=1.0, source="test")
    reps = {"mixpe": replay(w, "mixpe", 4, 4, mem, COST), "dequant": replay(w, "dequant", 4, 4, mem, slow)}
    r = speedups(reps)["dequant"]
    # half the clock; the same cycles but for MixPE's longer pipeline latency
    cycles = {pe: rep.totals["cycles"] for pe, rep in reps.items()}
    assert 0 < cycles["mixpe"] - cycles["dequant"] < 0.05 * cycles["dequant"]
    assert r["speedup"] == pytest.approx(2.0 * cycles["dequant"] / cycles["mixpe"], rel=1e-9)
    assert 1.0 < r["energy_ratio"] < 2.0  # PE energy doubles, memory energy does not
    assert r["iso_area_throughput_ratio"] > 2.0


def test_int8_pe_needs_int8_activations():
    w = Workload(model="fp", ops=[Linear(name="x", m=4, n=4, k=16, act="fp16", group=16)])
    with pytest.raises(ReplayError, match="int8 PE needs INT8 activations"):
        replay(w, "int8", 4, 4, MemoryConfig(), COST)


def test_cli_compare_on_a_builtin_model(tmp_path):
    out = tmp_path / "rp"
    assert main(["llama-2-7b", *SMALL, "--compare", "--plots", "-o", str(out)]) == 0
    data = json.loads((out / "replay.json").read_text())
    assert set(data["reports"]) == {"mixpe", "dequant", "int8"}  # INT8 activations: the W8A8 PE takes part
    assert set(data["speedups"]) == {"dequant", "int8"}
    assert data["reports"]["int8"]["pe"]["wbits"] == 8
    for name in ("cycles.png", "energy.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = (out / "replay.csv").read_text().splitlines()
    assert len(rows) == 1 + 3 * len(data["reports"]["mixpe"]["ops"])


@pytest.mark.parametrize("clock", [["--clock-ns", "mixpe=20"], ["--clock", "mixpe=50"]])  # the period; older MHz
def test_cli_clock_override_sets_the_time(tmp_path, clock):
    out = tmp_path / "rp"
    assert main(["llama-2-7b", *SMALL, "--compare", *clock, "-o", str(out)]) == 0
    data = json.loads((out / "replay.json").read_text())
    mixpe = data["reports"]["mixpe"]
    assert mixpe["pe_cost"]["fmax_mhz"] == 50 and data["clock_overrides_mhz"] == {"mixpe": 50}
    assert mixpe["totals"]["seconds"] == pytest.approx(mixpe["totals"]["cycles"] / 50e6)
    assert data["reports"]["dequant"]["pe_cost"]["fmax_mhz"] != 50  # only the named PE changes


def test_cli_exact_replay_checks_against_torch(tmp_path):
    pe = PEConfig("mixpe", 4, "unsigned", "int8", 16)
    rng = np.random.default_rng(0)
    ops = random_operands(pe, 6, 9, 32, rng)
    w = Workload(model="exact", ops=[Linear(name="l0", m=6, n=9, k=32, wbits=4, group=16)], tensors={"l0": ops})
    w.save(tmp_path / "w.json")
    out = tmp_path / "rp"
    args = [str(tmp_path / "w.json"), "--exact", "--rows", "4", "--cols", "4", "--dram-bytes-per-cycle", "2"]
    assert main([*args, "-o", str(out)]) == 0
    (check,) = json.loads((out / "replay.json").read_text())["exact"]
    assert check["outputs_match_torch"] and check["cycles_model"] == check["cycles_tile_model"]
    assert load_workload(tmp_path / "w.json").tensors["l0"].q.shape == (32, 9)


@pytest.mark.parametrize(
    "args, words",
    [
        (["no-such-model"], "neither a workload file or folder nor a built-in model"),
        (["llama-2-7b", "--wbits", "5"], "wbits"),
        (["llama-2-7b", "--pe", "int8", "--act", "fp16"], "int8 PE needs INT8 activations"),
        (["llama-2-7b", "--clock", "mixpe=fast"], "expected PE=MHZ"),
        (["llama-2-7b", "--clock", "mixpe=inf"], "expected PE=MHZ"),
        (["llama-2-7b", "--dram-bytes-per-cycle", "nan"], "--dram-bytes-per-cycle nan"),
        (["llama-2-7b", "--dram-bytes-per-cycle", "-1"], "expected a positive number"),
        (["llama-2-7b", "--schedule", "ws"], "invalid choice"),
        (["llama-2-7b", "--rows", "0"], "argument --rows: 0 is out of range"),
    ],
)
def test_cli_bad_input_is_one_line_and_writes_nothing(tmp_path, args, words):
    out = tmp_path / "rp"
    proc = subprocess.run([sys.executable, "-m", "sim.replay", *args, "-o", str(out)], capture_output=True, text=True)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0]
    assert not out.exists()


def test_cli_refuses_to_overwrite(tmp_path):
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "replay.json").write_text("mine")
    a_file = tmp_path / "file"
    a_file.write_text("mine")
    for out, words in [(taken, "already exists"), (a_file, "is a file"), (a_file / "sub", "lies under the file")]:
        proc = subprocess.run(
            [sys.executable, "-m", "sim.replay", "llama-2-7b", "-o", str(out)], capture_output=True, text=True
        )
        assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and words in proc.stderr, proc.stderr
    assert (taken / "replay.json").read_text() == "mine" and a_file.read_text() == "mine"


def test_cli_names_the_bad_op_of_a_malformed_file(tmp_path):
    w = small_workload()
    w.save(tmp_path / "w.json")
    data = json.loads((tmp_path / "w.json").read_text())
    data["ops"][1]["group"] = 60
    (tmp_path / "w.json").write_text(json.dumps(data))
    proc = subprocess.run(
        [sys.executable, "-m", "sim.replay", str(tmp_path / "w.json")], capture_output=True, text=True
    )
    assert proc.returncode == 2 and "op 1 'head'" in proc.stderr and "'group'" in proc.stderr


def test_pareto_front():
    rng = np.random.default_rng(0)
    many = [{"energy_j": float(e), "gops_per_mm2": float(g)} for e, g in rng.integers(0, 20, (300, 2))]
    brute = [
        not any(o["energy_j"] <= r["energy_j"] and o["gops_per_mm2"] >= r["gops_per_mm2"] and o != r for o in many)
        for r in many
    ]
    assert pareto(many) == brute
    rows = [
        {"energy_j": 1.0, "gops_per_mm2": 1.0},
        {"energy_j": 2.0, "gops_per_mm2": 3.0},
        {"energy_j": 2.0, "gops_per_mm2": 2.0},  # dominated by the one above
        {"energy_j": 3.0, "gops_per_mm2": 3.0},  # dominated: same throughput, more energy
    ]
    assert pareto(rows) == [True, True, False, False]


def test_sweep_cli_runs_on_dask(tmp_path):
    out = tmp_path / "sw"
    args = ["--arrays", "4x4,8x8", "--pes", "mixpe,dequant", "--wbits", "2", "--groups", "4", "--prefill", "16"]
    args += ["--decode", "2", "--workers", "1", "-o", str(out)]
    proc = subprocess.run([sys.executable, "-m", "sim.sweep", *args], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = json.loads((out / "sweep.json").read_text())
    assert len(rows) == 4 and any(r["pareto"] for r in rows)
    assert {(r["pe"], r["rows"]) for r in rows} == {("mixpe", 4), ("mixpe", 8), ("dequant", 4), ("dequant", 8)}
    assert (out / "pareto.png").read_bytes()[:4] == b"\x89PNG"


def test_fp32_pe_types_replay_and_check_exactly():
    """The FP32-accumulating PEs run FP16 workloads only; their exact replay matches torch's float16/float32."""
    from sim.replay import exact_check, pe_config, pe_types_for

    assert pe_types_for("int8") == ["mixpe", "dequant", "int8"]
    assert pe_types_for("fp16") == ["mixpe", "dequant", "mixpe_fp32", "dequant_fp32"]
    fp16 = Linear(name="x", m=4, n=4, k=16, act="fp16", group=16)
    assert pe_config("dequant_fp32", fp16).name() == "dequant_w4u_afp16_g16_fp32"
    with pytest.raises(ReplayError, match="FP32"):
        pe_config("mixpe_fp32", Linear(name="x", m=4, n=4, k=16, group=16))
    rep = replay(Workload(model="fp", ops=[fp16]), "dequant_fp32", 4, 4, MemoryConfig(), COST)
    assert rep.pe["accumulate"] == "fp32" and rep.ops[0].cycles > 16

    for pe in ("dequant_fp32", "mixpe_fp32"):
        cfg = pe_config(pe, Linear(name="l0", m=5, n=6, k=32, act="fp16", group=8))
        ops = random_operands(cfg, 5, 6, 32, np.random.default_rng(1), fp16="normal")
        w = Workload(model="exact", ops=[Linear(name="l0", m=5, n=6, k=32, act="fp16", group=8)], tensors={"l0": ops})
        (check,) = exact_check(w, pe, 4, 4, MemoryConfig(dram_bytes_per_cycle=2.0))
        assert check["outputs_match_torch"] and check["cycles_model"] == check["cycles_tile_model"]


def test_exact_check_runs_a_gemv_in_the_packed_mapping():
    pe = PEConfig("mixpe", 4, "unsigned", "int8", 16)
    rng = np.random.default_rng(1)
    layers = [
        Linear(name="gemv", m=1, n=9, k=32, wbits=4, group=16),
        Linear(name="gemm", m=6, n=9, k=32, wbits=4, group=16),
    ]
    tensors = {op.name: random_operands(pe, op.m, op.n, op.k, rng) for op in layers}
    w = Workload(model="exact", ops=layers, tensors=tensors)
    mem = MemoryConfig(dram_bytes_per_cycle=16.0)  # compute-bound: the packed GEMV takes fewer cycles
    cfg = ArrayConfig(pe, 4, 4)
    assert [op_cost(cfg, mem, op).packed for op in layers] == [True, False]
    for check in exact_check(w, "mixpe", 4, 4, mem):
        assert check["outputs_match_torch"] and check["cycles_model"] == check["cycles_tile_model"], check


@pytest.mark.parametrize(
    "args, words",
    [
        (["--workers", "0"], "argument --workers: 0 is out of range"),
        (["--scheduler", "foo"], "missing port number"),
        (["--pes", "mixpe,foo"], "'foo' is not one of"),
        (["--arrays", "8x"], "array sizes look like"),
        (["--arrays", "8x99"], "cols=99"),
        (["--prefill", "-3"], "argument --prefill: -3 is out of range"),
        (["--groups", "100"], "expected a divisor"),
    ],
)
def test_sweep_bad_input_is_one_line_before_dask(tmp_path, args, words):
    out = tmp_path / "sw"
    proc = subprocess.run(
        [sys.executable, "-m", "sim.sweep", *args, "-o", str(out)], capture_output=True, text=True, timeout=60
    )
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and words in lines[0], proc.stderr
    assert not out.exists()


def test_the_warm_replay_path_imports_neither_torch_nor_numba():
    """A replay with cached PE costs must not pay for heavy imports (the warm CLI target in bench.sweep_speed)."""
    code = (
        "import sys\n"
        "from sim.replay import parser, predicted_clocks\n"
        "parser(); assert predicted_clocks([]) == {}\n"
        "heavy = [m for m in ('torch', 'numba', 'matplotlib', 'eda.slack') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
