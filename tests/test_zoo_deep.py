"""The deep preset's machinery on its miniature: twelve layers, grouped-query heads, cache entry, build record."""

from __future__ import annotations

import json
import math
import time
from dataclasses import replace

import pytest
import torch

import models.zoo as zoo
from models.kv import KVConfig
from models.kv.evaluate import evaluate_configs
from models.zoo.evaluate import score_texts
from models.zoo.presets import PRESETS
from models.zoo.zoo import entry_dir


@pytest.fixture(scope="module")
def mini(cache):
    return zoo.build("deep-mini", seed=0, progress=False)


def test_deep_preset_is_deep_and_its_miniature_keeps_its_shape():
    deep, mini = PRESETS["deep"], PRESETS["deep-mini"]
    assert deep.num_layers >= 12 > PRESETS["default"].num_layers
    assert (mini.num_layers, mini.num_heads, mini.num_kv_heads) == (deep.num_layers, deep.num_heads, deep.num_kv_heads)
    assert mini.base_tokens < deep.base_tokens and mini.hidden_size < deep.hidden_size
    keys = {name: p.key(0) for name, p in PRESETS.items()}
    assert len(set(keys.values())) == len(keys)  # every preset has its own cache entry


def test_miniature_builds_twelve_layers_records_time_and_is_cached(mini):
    config = json.loads((mini["base"] / "config.json").read_text())
    assert config["num_hidden_layers"] == PRESETS["deep"].num_layers
    assert config["num_key_value_heads"] == PRESETS["deep"].num_kv_heads
    result = zoo.build_result("deep-mini", 0)
    assert result["preset"] == "deep-mini" and result["key"] == entry_dir("deep-mini", 0).name
    assert result["build_seconds"] >= result["train_seconds"] > 0 and result["build_cpu_seconds"] > 0
    assert all(t["cpu_seconds"] > 0 and t["tokens"] > 0 for t in result["training"].values())
    assert all(math.isfinite(ev[task]["ppl"]) for ev in result["evaluation"].values() for task in ("math", "recall"))
    stamp = (mini["base"] / "model.safetensors").stat().st_mtime_ns
    start = time.perf_counter()
    assert zoo.build("deep-mini", seed=0, progress=False) == mini
    assert time.perf_counter() - start < 1.0
    assert (mini["base"] / "model.safetensors").stat().st_mtime_ns == stamp


def test_per_item_scores_agree_with_the_pooled_ones(mini):
    model, tokenizer = zoo.load(mini["base"])
    texts = zoo.task_texts("math", "test", preset="deep-mini")[:12]
    answers = [3] * len(texts)
    scores = score_texts(model, tokenizer, texts, answers, items=True)
    assert len(scores["item_nll"]) == len(scores["item_exact"]) == len(texts)
    lengths = [len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts]
    lengths = torch.tensor(lengths, dtype=torch.float64)
    pooled = float((torch.tensor(scores["item_nll"], dtype=torch.float64) * lengths).sum() / lengths.sum())
    assert pooled == pytest.approx(scores["nll"], rel=1e-5)
    assert sum(scores["item_exact"]) / len(texts) == pytest.approx(scores["exact_match"])
    assert "item_nll" not in score_texts(model, tokenizer, texts, answers)


def test_kv_configs_on_text_alone_score_no_recall(mini):
    model, tokenizer = zoo.load(mini["base"])
    layers = model.config.num_hidden_layers
    text = zoo.drawn_windows(tokenizer, "test", 48, 2, preset="deep-mini", draw=1)
    assert text.shape == (2, 48)
    assert torch.equal(text, zoo.drawn_windows(tokenizer, "test", 48, 2, preset="deep-mini", draw=1))
    configs = [KVConfig.preset("KV16", layers), replace(KVConfig.preset("KIVI-2", layers), residual_length=8)]
    scores = evaluate_configs(model, configs, text, 40, None, 2, progress=False)
    assert scores["KV16"]["kl"] == 0 and scores["KIVI-2"]["kl"] > 0
    assert math.isnan(scores["KIVI-2"]["recall"]) and scores["KIVI-2"]["per_item"]["recalled"] == []
    assert len(scores["KIVI-2"]["per_item"]["kl"]) == 2
