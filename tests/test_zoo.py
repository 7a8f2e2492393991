"""The model zoo on the tiny preset: build and cache, determinism, round trips, variants, tasks, errors."""

from __future__ import annotations

import json
import math
import time

import pytest
import torch
from safetensors.torch import load_file
from transformers import Qwen2Config, Qwen2ForCausalLM

import models.zoo as zoo
from models.zoo import tasks
from models.zoo.__main__ import main
from models.zoo.zoo import entry_dir


@pytest.fixture(scope="module")
def built(cache):
    start = time.perf_counter()
    paths = zoo.build("tiny", seed=0, progress=False)
    return paths, time.perf_counter() - start


def _weights(folder):
    return load_file(folder / "model.safetensors")


def test_build_makes_four_checkpoints_and_caches(built):
    paths, first = built
    assert set(paths) == {"base", "code", "math", "english"}
    stamps = {p: (p / "model.safetensors").stat().st_mtime_ns for p in paths.values()}
    start = time.perf_counter()
    again = zoo.build("tiny", seed=0, progress=False)
    assert time.perf_counter() - start < 1.0 < first
    assert again == paths
    assert {p: (p / "model.safetensors").stat().st_mtime_ns for p in again.values()} == stamps
    config = json.loads((paths["base"] / "config.json").read_text())
    assert config["model_type"] == "llama" and "rope_parameters" in config


def test_same_seed_same_weights(built, tmp_path, monkeypatch):
    paths, _ = built
    monkeypatch.setenv("MIXKIT_CACHE", str(tmp_path))
    again = zoo.build("tiny", seed=0, progress=False)
    assert again["math"].parent != paths["math"].parent
    for name in ("base", "math"):
        a, b = _weights(paths[name]), _weights(again[name])
        assert all(torch.equal(a[k], b[k]) for k in a)


def test_round_trip_identical_logits(built, tmp_path):
    model, tokenizer = zoo.load("code", preset="tiny")
    assert model.config._attn_implementation == "eager"
    ids = tokenizer("def f(x):\n    return x + 1\n", return_tensors="pt")["input_ids"]
    model.save_pretrained(tmp_path / "copy")
    tokenizer.save_pretrained(tmp_path / "copy")
    copy, tok2 = zoo.load(tmp_path / "copy")
    assert tok2("def f(x):\n    return x + 1\n")["input_ids"] == ids[0].tolist()
    with torch.no_grad():
        assert torch.equal(model(ids).logits, copy(ids).logits)


def test_variants_beat_base_on_own_task_perplexity(built):
    result = json.loads((entry_dir("tiny", 0) / "result.json").read_text())
    ev = result["evaluation"]
    for variant, task in (("code", "code"), ("math", "math"), ("english", "english")):
        assert ev[variant][task]["ppl"] < ev["base"][task]["ppl"], (variant, ev[variant][task], ev["base"][task])
    assert result["checks"]["math"]["math"]["ppl"]
    assert all(src["chars_used"] > 0 for src in result["corpus"].values())


def test_evaluate_and_perplexity(built):
    model, tokenizer = zoo.load("math", preset="tiny")
    texts = zoo.task_texts("math", "test", preset="tiny")
    ppl = zoo.perplexity(model, tokenizer, texts[:10])
    assert math.isfinite(ppl) and 1 < ppl < len(tokenizer)
    assert zoo.perplexity(model, tokenizer, texts, max_tokens=50) > 0
    ev = zoo.evaluate(model, tokenizer, preset="tiny")
    assert set(ev) == {"code", "math", "english", "recall"}
    assert 0 <= ev["math"]["exact_match"] <= 1 and 0 <= ev["recall"]["exact_match"] <= 1


def test_task_texts_split_and_deterministic():
    train = zoo.task_texts("code", "train", preset="tiny")
    test = zoo.task_texts("code", "test", preset="tiny")
    assert train and test and not set(train) & set(test)
    assert zoo.task_texts("recall", "test", preset="tiny", seed=3) == zoo.task_texts("recall", "test", "tiny", 3)
    assert zoo.task_texts("math", "test", "tiny", 0) != zoo.task_texts("math", "test", "tiny", 1)
    assert not set(zoo.task_texts("math", "train", "tiny")) & set(zoo.task_texts("math", "test", "tiny"))
    with pytest.raises(zoo.ZooError):
        zoo.task_texts("poetry")


def test_generated_answers_are_exact_and_scorer_fails_wrong_answers():
    for e in tasks.arithmetic(300, "train", seed=5):
        assert int(e.answer) == tasks.solve_arithmetic(e.prompt)
        assert tasks.score(e.answer, e.answer) == 1.0
        assert tasks.score(str(int(e.answer) + 1), e.answer) == 0.0
    for e in tasks.recall(100, pairs=12, split="test", seed=5):
        assert int(e.answer) == tasks.solve_recall(e.prompt)
        assert tasks.score(" 7" + e.answer.strip(), e.answer) == 0.0
    assert tasks.arithmetic(5, seed=1) == tasks.arithmetic(5, seed=1)


def test_load_errors_are_one_line(tmp_path):
    with pytest.raises(zoo.ZooError) as err:
        zoo.load(tmp_path / "missing")
    assert "\n" not in str(err.value) and "missing" in str(err.value)
    (tmp_path / "gpt").mkdir()
    (tmp_path / "gpt" / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    with pytest.raises(zoo.ZooError) as err:
        zoo.load(tmp_path / "gpt")
    assert "\n" not in str(err.value) and "gpt2" in str(err.value)
    assert isinstance(err.value, ValueError)


def test_local_qwen2_checkpoint_works(built, tmp_path):
    _, tokenizer = zoo.load("base", preset="tiny")
    config = Qwen2Config(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
        num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=128,
    )  # fmt: skip
    torch.manual_seed(0)
    Qwen2ForCausalLM(config).save_pretrained(tmp_path / "qwen")
    tokenizer.save_pretrained(tmp_path / "qwen")
    model, tok = zoo.load(tmp_path / "qwen")
    assert model.config.model_type == "qwen2"
    assert math.isfinite(zoo.perplexity(model, tok, zoo.task_texts("english", "test", "tiny")[:4]))


def test_cli(built, capsys):
    assert main(["eval", "math", "--preset", "tiny"]) == 0
    assert "recall" in capsys.readouterr().out
    assert main(["eval", "/no/such/folder"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "/no/such/folder" in err
    with pytest.raises(SystemExit) as stop:
        main(["build", "--preset", "huge"])
    assert stop.value.code == 2 and capsys.readouterr().err.count("\n") == 1
