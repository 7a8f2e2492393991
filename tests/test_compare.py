"""The comparison table behind bench.replay_speed, on fixed PE costs (no synthesis)."""

import pytest

import sim.compare as compare
from sim.energy import PECost
from sim.perf_model import MemoryConfig

COSTS = {
    "mixpe": PECost(50_000.0, 130.0, 60.0, 20.0, "test", energy_pj_gated=0.2),
    "dequant": PECost(90_000.0, 90.0, 110.0, 10.0, "test", energy_pj_gated=0.2),
    "int8": PECost(40_000.0, 140.0, 60.0, 7.0, "test", energy_pj_gated=0.2),
}


@pytest.fixture
def fixed_costs(monkeypatch):
    monkeypatch.setattr(compare, "pe_cost", lambda cfg, source="synthesized": COSTS[cfg.pe])


def test_decode_runs_packed_near_the_dram_bound(fixed_costs):
    c = compare.compare("llama-2-7b", "int8", 0, 4, MemoryConfig())
    int8_pes = {n for n, e in compare.COMPARED.items() if "int8" in e.acts}
    assert set(c["speedups"]) == int8_pes - {"mixpe"} and set(c["datapath"]) == int8_pes
    for name, ratio in c["decode_over_dram_bound"].items():
        assert ratio >= 1.0, name  # no mapping beats reading every byte once
    # W4: two weights per q port feed two rows; W8 (the INT8 PE) has one lane and is compute-bound at
    # C bytes per cycle, which equals the 32 B/cycle DRAM
    assert c["decode_over_dram_bound"]["mixpe"] < 1.2
    mix = c["totals"]["mixpe"]
    assert mix["cycles"] < c["totals"]["int8"]["cycles"]


def test_fp16_leaves_out_the_int8_pe_and_ratios_follow_the_costs(fixed_costs):
    c = compare.compare("llama-2-7b", "fp16", 64, 0, MemoryConfig())
    assert "int8" not in c["speedups"] and "dequant" in c["speedups"] and not c["decode_over_dram_bound"]
    r = c["speedups"]["dequant"]
    # same cycles up to MixPE's pipeline cycle: the speedup is the clock ratio
    assert r["speedup"] == pytest.approx(130.0 / 90.0, rel=1e-3)
    assert r["iso_area_throughput_ratio"] < r["speedup"] * 90_000 / 50_000


def test_targets_pick_the_strongest_dequant_baseline():
    def entry(iso: dict, energy: dict, decode: float = 0.0) -> dict:
        ratios = {b: {"speedup": 1.0, "energy_ratio": energy[b], "iso_area_throughput_ratio": iso[b]} for b in iso}
        return {"speedups": ratios, "decode_over_dram_bound": {"mixpe": decode}}

    iso = {"dequant": 3.0, "dequant_fp32": 2.0, "int8": 0.5}
    energy = {"dequant": 1.2, "dequant_fp32": 1.6, "int8": 0.1}
    comparisons = {}
    for scheme in ("W4A8", "W4A16"):
        comparisons[f"{scheme}, prefill 2048 only"] = entry(iso, energy)
        comparisons[f"{scheme}, prefill 2048 + decode 128"] = entry(iso, energy, decode=1.3)
    goals = compare.targets(comparisons)
    a8 = goals["iso-area throughput, W4A8, Llama-2-7B prefill 2048"]
    assert a8["against"] == "dequant_fp32" and a8["value"] == 2.0 and not a8["met"]  # the int8 PE is no dequant*
    a16 = goals["iso-area throughput, W4A16, Llama-2-7B prefill 2048"]
    assert a16["met"]  # 2.0 >= 1.5
    e = goals["energy ratio, W4A8, Llama-2-7B prefill 2048 + decode 128"]
    assert e["against"] == "dequant" and not e["met"]
    assert goals["decode cycles / DRAM-bound cycles, W4A8, Llama-2-7B batch 1 after a 2048-token prompt"]["met"]
    table = compare.markdown_table(
        {"W4A8, prefill 2048 only": comparisons["W4A8, prefill 2048 only"] | {"datapath": {b: "x" for b in iso}}}
    )
    assert (
        table.count("\n") == 1 + len(iso)
        and "| W4A8, prefill 2048 only | dequant_fp32 (x) | 1.00× | 1.60× | 2.00× |" in table
    )


def test_an_unknown_cost_source_is_refused():
    with pytest.raises(ValueError, match="cost source 'placed': choose one of synthesized, routed"):
        compare.pe_cost(compare.pe_for("mixpe", "int8"), "placed")
