"""KVTuner tuning: Pareto pruning, layer clustering, the seeded NSGA-II search and `python -m models.kv tune`."""

import csv
import json

import numpy as np
import pytest
import torch

from models import zoo
from models.kv import (
    KLMeter,
    KVConfig,
    calibration_ids,
    choose,
    cluster_layers,
    pareto_front,
    pareto_pairs,
    search,
    tune,
)
from models.kv.__main__ import main
from tests.cli import one_line_error

pytestmark = pytest.mark.usefixtures("one_thread")
PAIRS = ((8, 8), (8, 4), (4, 4), (4, 2), (2, 2), (2, 4))


def test_pruning_keeps_exactly_the_non_dominated_pairs():
    # bits 16, 12, 8, 6, 4, 6: K2V4 (6 bits, 0.5) is dominated by K4V2 (6 bits, 0.3); K4V4 (8 bits, 0.35) by K4V2.
    sensitivity = np.array([0.001, 0.02, 0.35, 0.3, 0.9, 0.5])
    assert [PAIRS[i] for i in pareto_pairs(sensitivity, PAIRS)] == [(2, 2), (4, 2), (8, 4), (8, 8)]
    flat = np.full(6, 0.1)  # equal sensitivity: only the fewest bits survive
    assert [PAIRS[i] for i in pareto_pairs(flat, PAIRS)] == [(2, 2)]


def test_clustering_groups_identical_profiles():
    a, b = [1e-4, 1e-3, 1e-1], [1e-6, 1e-5, 1e-3]
    table = np.array([a, b, a, b, a])
    assert cluster_layers(table, 2) == [0, 1, 0, 1, 0]
    assert cluster_layers(table, 3) == [0, 1, 0, 1, 0]  # only two distinct profiles
    assert cluster_layers(table, 5) == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="groups 0"):
        cluster_layers(table, 0)


def test_pareto_front_drops_dominated_and_duplicate_points():
    points = [{"avg_bits": b, "kl": k} for b, k in [(4, 1.0), (3, 2.0), (4, 1.5), (3, 2.0), (6, 1.0), (8, 0.1)]]
    assert [(p["avg_bits"], p["kl"]) for p in pareto_front(points)] == [(3, 2.0), (4, 1.0), (8, 0.1)]


@pytest.fixture(scope="module")
def meter(tiny_zoo):
    torch.set_num_threads(1)
    model, tokenizer = zoo.load(tiny_zoo["base"])
    return KLMeter(model, calibration_ids(tokenizer, "tiny", seq_len=48, windows=2), prefill=16)


def test_search_is_non_dominated_deterministic_and_respects_the_budget(meter, tmp_path):
    result = tune(meter, groups=2, trials=8, seed=3, progress=False)
    assert result.sensitivity.shape == (2, 7) and (result.sensitivity[:, -1] > result.sensitivity[:, 0]).all()
    assert len(result.trials) == 8
    # The first two trials are every group at its most and at its fewest kept bits, whatever the pruning kept
    # (which pairs survive depends on the model's numbers, so only the structure is asserted).
    for trial, pick in zip(result.trials[:2], (-1, 0), strict=True):
        expected = [list(result.candidates[result.group_pairs[g][pick]]) for g in result.labels]
        assert trial["pairs"] == expected
    bits = [t["avg_bits"] for t in result.trials]
    assert bits[0] == max(bits) and bits[1] == min(bits) == 2  # K2V2 has the fewest bits and is never pruned
    front = result.pareto
    for p in front:
        for q in front:
            assert p is q or not (q["avg_bits"] <= p["avg_bits"] and q["kl"] <= p["kl"])
    assert all(any(p == t for t in result.trials) for p in front)
    fresh = KLMeter(meter.model, meter.ids, meter.prefill)  # nothing remembered: the numbers are recomputed
    again = search(fresh, result.labels, result.group_pairs, trials=8, seed=3, progress=False)
    assert again == result.trials
    kv = choose(result, 4.0, name="tuned")
    assert kv.avg_bits <= 4.0
    kv.save(tmp_path / "c.json")
    assert KVConfig.load(tmp_path / "c.json") == kv
    with pytest.raises(ValueError, match="within 1.5 average KV bits"):
        choose(result, 1.5)


def test_cli_tune_writes_files_that_eval_loads(tiny_zoo, tmp_path, capsys):
    out = tmp_path / "tuned"
    small = ["--preset", "tiny", "--seq-len", "48", "--prefill", "16", "--windows", "2"]
    assert main(["tune", str(tiny_zoo["base"]), "--trials", "6", "--max-bits", "3.5", "-o", str(out), *small]) == 0
    assert "config.json" in capsys.readouterr().out
    report = json.loads((out / "pareto.json").read_text())
    config = KVConfig.load(out / "config.json")
    assert config.avg_bits <= 3.5 and config.to_dict() == report["chosen"]
    assert set(report["uniform"]) == {"KV8", "KV4", "KIVI-2"} and report["uniform"]["KV4"]["kl"] > 0
    rows = list(csv.DictReader((out / "sensitivity.csv").open()))
    assert [r["layer"] for r in rows] == ["0", "1"] and "K2V2_mnat" in rows[0]
    assert (out / "pareto.png").read_bytes()[:4] == b"\x89PNG"
    eval_args = ["eval", str(tiny_zoo["base"]), "--config", str(out / "config.json"), "-o", str(tmp_path / "e")]
    assert main([*eval_args, *small[:6], "--windows", "1", "--recall-examples", "2"]) == 0


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--trials", "1"], "--trials 1 must be at least 2"),
        (["--max-bits", "1.5"], "--max-bits 1.5 is below 2"),
        (["--prefill", "48"], "--prefill 48"),
        (["--preset", "huge"], "unknown zoo preset 'huge'"),
        (["--group-size", "5"], "does not divide the model's head_dim"),
        (["--trials", "x"], "invalid int value"),
    ],
)
def test_cli_tune_bad_input_exits_2_with_one_line(tiny_zoo, tmp_path, capsys, args, words):
    out = tmp_path / "never"
    argv = ["tune", str(tiny_zoo["base"]), "--preset", "tiny", "--seq-len", "48", "--prefill", "16", *args]
    assert words in one_line_error(main, [*argv, "-o", str(out)], capsys)
    assert not out.exists()
