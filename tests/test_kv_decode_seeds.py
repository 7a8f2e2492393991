"""bench.kv_decode reads one tuned config per KVTuner seed and reports every figure as mean and 95% CI."""

from __future__ import annotations

import json

from bench.kv_decode import figures, settings, tuned_configs
from models.kv.config import KVConfig


def _kvtuner_json(path, layers: int, seeds: list[int]) -> None:
    tuning = [
        {
            "seed": s,
            "tuned_configs": {
                "kvtuner-3.5bit": KVConfig(pairs=((4, 2),) * (layers - 1) + ((8, 4),), name="kvtuner-3.5bit").to_dict()
            },
        }
        for s in seeds
    ]
    path.write_text(json.dumps({"seeds": seeds, "tuning": tuning}))


def test_tuned_configs_one_per_seed_only_for_the_shape_they_were_tuned_on(tmp_path):
    path = tmp_path / "kvtuner.json"
    assert tuned_configs(path, 12) == ([], {})  # no file: no tuned settings
    _kvtuner_json(path, 12, [0, 1, 2])
    seeds, tuned = tuned_configs(path, 12)
    assert seeds == [0, 1, 2] and len(tuned["kvtuner-3.5bit"]) == 3
    assert tuned_configs(path, 4) == ([], {})  # tuned on 12 layers: not a 4-layer model's config
    zoo = settings("zoo-deep", 12, tuned)
    assert zoo["kvtuner-3.5bit"] == (tuned["kvtuner-3.5bit"], 1.0) and len(zoo["KV4"][0]) == 1
    assert "kvtuner-3.5bit" not in settings("llama-2-7b", 32, tuned)


def test_figures_pool_the_seeds_into_mean_and_ci():
    base = dict(shape="zoo-deep", batch=1, prompt=512, ratio=1.0, kv_avg_bits=3.0, dram_mb_per_token=1.0)
    rows = [
        base | dict(setting="tuned", seed=s, tokens_per_s=t, gain_vs_kv8=g, energy_uj_per_token=1.0)
        for s, t, g in ((0, 10.0, 1.1), (1, 12.0, 1.3), (2, 11.0, 1.2))
    ]
    rows.append(base | dict(setting="KV8", seed=None, tokens_per_s=9.0, gain_vs_kv8=1.0, energy_uj_per_token=2.0))
    table = {r["setting"]: r for r in figures(rows, 0)}
    tuned, kv8 = table["tuned"]["gain_vs_kv8"], table["KV8"]["gain_vs_kv8"]
    assert tuned["n"] == 3 and abs(tuned["mean"] - 1.2) < 1e-12
    assert 1.1 <= tuned["ci95"][0] < tuned["mean"] < tuned["ci95"][1] <= 1.3
    assert kv8 == {"mean": 1.0, "ci95": [1.0, 1.0], "n": 1}
