"""Decode workloads with a compressed KV cache: op counts, per-layer bits, residual window, eviction, replay."""

import pytest

from models.kv.__main__ import main
from models.kv.config import KVConfig
from models.kv.workload import decode_workload, kept_table, ratio_kept
from sim.energy import PECost
from sim.model_shapes import ModelShape, shape_workload
from sim.perf_model import MemoryConfig
from sim.replay import replay
from sim.workload import Attention, AttnPV, AttnQK, Linear, WorkloadError, load_workload

SHAPE = ModelShape(hidden=64, intermediate=128, layers=3, heads=4, kv_heads=2, vocab=100)
COST = PECost(area_um2=1000.0, fmax_mhz=100.0, energy_pj_active=2.0, energy_pj_idle=0.5, source="test")


def _attention(w):
    return [op for op in w.ops if isinstance(op, Attention)]


def test_full_cache_matches_the_shape_model():
    """Without eviction the decode phase has the same linear ops and attention MACs as sim.model_shapes."""
    kv = KVConfig.preset("KV8", SHAPE.layers)
    w = decode_workload("t", SHAPE, kv, prefill=10, decode=3, group=32)
    ref = shape_workload("t", SHAPE, prefill=10, decode=3, group=32, kv_bits=8)
    ref_decode = [op for op in ref.ops if op.name.startswith("decode")]
    assert [op for op in w.ops if isinstance(op, Linear)] == [op for op in ref_decode if isinstance(op, Linear)]
    assert sum(op.macs for op in _attention(w)) == sum(op.macs for op in ref_decode if isinstance(op, Attention))
    # grouped-query attention: the 2 query heads of a K/V head are the rows of one GEMM
    assert {(op.m, op.heads) for op in _attention(w)} == {(2, 2)}
    assert w.totals().kv_bytes == ref.totals().kv_bytes - sum(
        op.kv_bits_total() / 8 for op in ref.ops if isinstance(op, Attention) and op.name.startswith("prefill")
    )


def test_per_layer_bits_and_residual_window():
    kv = KVConfig(pairs=((8, 4), (2, 4), (2, 4)), residual_length=5, name="mixed")
    w = decode_workload("t", SHAPE, kv, prefill=20, decode=2, group=32)
    step1 = [op for op in _attention(w) if op.name.startswith("decode.t1.")]
    bits: dict = {}
    for op in step1:
        if "residual" not in op.name:
            bits[type(op), op.kv_bits] = bits.get((type(op), op.kv_bits), 0) + op.repeat
    assert bits == {(AttnQK, 8): 1, (AttnPV, 4): 1 + 2, (AttnQK, 2): 2}
    quantized = {op.kept_tokens for op in step1 if "residual" not in op.name}
    residual = [op for op in step1 if "residual" in op.name]
    assert quantized == {21 - 5} and {op.kept_tokens for op in residual} == {5}
    assert {op.kv_bits for op in residual} == {16} and sum(op.repeat for op in residual) == 2 * SHAPE.layers
    assert w.meta["kv_avg_bits"] == pytest.approx(kv.avg_bits)


def test_eviction_keeps_the_budget_and_cuts_traffic():
    assert ratio_kept(100, 16) == 7 and ratio_kept(3, 16) == 1 and ratio_kept(5, 1) == 5
    table = kept_table(prefill=64, decode=4, layers=SHAPE.layers, ratio=4)
    assert table == [[17] * 3, [17] * 3, [17] * 3, [17] * 3]
    kv = KVConfig.preset("KV8", SHAPE.layers)
    full = decode_workload("t", SHAPE, kv, prefill=64, decode=4, group=32)
    kept = decode_workload("t", SHAPE, kv, prefill=64, decode=4, kept=table, group=32)
    assert {op.kept_tokens for op in _attention(kept)} == {17}
    assert {op.context for op in _attention(kept) if op.name.startswith("decode.t4.")} == {68}
    mem = MemoryConfig(act_buffer_kib=1, weight_buffer_kib=1, dram_bytes_per_cycle=4.0)
    a, b = (replay(x, "mixpe", 4, 4, mem, pe_cost=COST).totals for x in (full, kept))
    assert b["dram_bytes"] < a["dram_bytes"] and b["cycles"] < a["cycles"]


def test_fewer_kv_bits_never_cost_more_cycles():
    mem = MemoryConfig(act_buffer_kib=1, weight_buffer_kib=1, dram_bytes_per_cycle=2.0)
    cycles = [
        replay(
            decode_workload("t", SHAPE, KVConfig.preset(name, SHAPE.layers), prefill=200, decode=2, group=32),
            "mixpe",
            4,
            4,
            mem,
            pe_cost=COST,
        ).totals["cycles"]
        for name in ("KV16", "KV8", "KV4")
    ]
    assert cycles[0] > cycles[1] >= cycles[2]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(kv=KVConfig.preset("KV8", 2)), "has 2 layer pairs but the model has 3 layers"),
        (dict(kept=[[5, 5, 5]]), "must be a (2 steps, 3 layers) table"),
        (dict(kept=[[5, 5, 5], [5, 0, 5]]), "decode step 2: kept tokens [5, 0, 5] must lie in 1..6"),
        (dict(prefill=0), "expected integers >= 1"),
    ],
)
def test_bad_requests_name_the_problem(kwargs, message):
    args = dict(name="t", shape=SHAPE, kv=KVConfig.preset("KV8", 3), prefill=4, decode=2) | kwargs
    with pytest.raises(WorkloadError, match=None) as e:
        decode_workload(**args)
    assert message in str(e.value)
    with pytest.raises(WorkloadError, match="compression ratio"):
        ratio_kept(10, 0.5)


def test_workload_cli_writes_a_replayable_file(tiny_zoo, tmp_path, capsys):
    out = tmp_path / "w"
    assert main(["workload", str(tiny_zoo["base"]), "--config", "KIVI-2", "--ratio", "4", "--prefill", "64",
                 "--decode", "3", "--group", "32", "--preset", "tiny", "-o", str(out)]) == 0  # fmt: skip
    assert [f.name for f in out.iterdir()] == ["workload.json"]
    w = load_workload(out / "workload.json")
    assert w.meta["kept_tokens"] == kept_table(64, 3, 2, 4) and w.meta["kv_config"]["name"] == "KIVI-2"
    assert "python -m sim.replay" in capsys.readouterr().out
    assert replay(w, "mixpe", 4, 4, MemoryConfig(), pe_cost=COST).totals["cycles"] > 0
    bad = tmp_path / "bad.json"
    with pytest.raises(SystemExit, match="2"):  # argparse checks the number
        main(["workload", "llama-2-7b", "--config", "KV8", "--ratio", "0.5", "-o", str(bad)])
    assert main(["workload", "llama-2-7b", "--config", "nope.json", "-o", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "--ratio: 0.5 is out of range" in err[0] and "nope.json" in err[1] and not bad.exists()
