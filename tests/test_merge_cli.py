"""End to end: `python -m models.merge CONFIG.yml -o OUT` on the tiny zoo, every method with and without
Sens-Merging, zoo names and user folders, and one-line errors that name the offending entry."""

import inspect
import json
import shutil
import textwrap
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file
from transformers import LlamaConfig, LlamaForCausalLM

from models.merge import load_config
from models.merge.__main__ import main
from models.zoo import load

TASKS = ("code", "math", "english")


@pytest.fixture(scope="module")
def calibration(tmp_path_factory):
    """Small calibration texts per task, as a user would give them (files, not zoo tasks)."""
    root = tmp_path_factory.mktemp("calib")
    texts = {
        "code": inspect.getsource(json.decoder),
        "math": "\n".join(f"{a} + {b} = {a + b}" for a in range(40) for b in range(0, 40, 7)),
        "english": textwrap.dedent(shutil.__doc__ or "") * 3 + " ".join(["the file is copied to the folder"] * 80),
    }
    for t, text in texts.items():
        (root / f"{t}.txt").write_text(text)
    return {t: root / f"{t}.txt" for t in TASKS}


def _config(tmp_path, tiny_zoo, calibration, method, sens, **extra):
    raw = {
        "merge_method": method,
        "base_model": str(tiny_zoo["base"]),
        "models": [
            {"model": str(tiny_zoo[t]), "calibration": str(calibration[t]), "parameters": {"weight": 1.0}}
            for t in TASKS
        ],
        "parameters": {"lambda": 0.5, "density": 0.6},
        "seed": 1,
        **extra,
    }
    if sens:
        raw["sens_merging"] = {"samples": 2, "seq_len": 32, "temperature": 0.05}
    path = tmp_path / f"{method}-{sens}.yml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.mark.parametrize("sens", [False, True])
@pytest.mark.parametrize("method", ["linear", "task_arithmetic", "ties", "dare_linear", "dare_ties"])
def test_every_method_merges_from_yaml(tmp_path, tiny_zoo, calibration, method, sens, capsys):
    out = tmp_path / "merged"
    assert main([str(_config(tmp_path, tiny_zoo, calibration, method, sens)), "-o", str(out), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    for name in ("config.json", "model.safetensors", "tokenizer.json", "merge_config.yml", "merge_report.json"):
        assert (out / name).is_file(), name
    report = json.loads((out / "merge_report.json").read_text())
    assert report == printed["report"] and report["method"] == method
    model, tokenizer = load(out)
    base, _ = load(tiny_zoo["base"])
    merged, original = dict(model.named_parameters()), dict(base.named_parameters())
    assert tokenizer.vocab_size == 384
    assert all(torch.isfinite(p).all() for p in merged.values())
    assert any(not torch.equal(merged[n], original[n]) for n in merged)
    if sens:
        sigma = torch.tensor(report["coefficients"]["sigma"])
        torch.testing.assert_close(sigma.sum(dim=0), torch.ones(sigma.shape[1], dtype=sigma.dtype))
        assert len(report["coefficients"]["groups"]) == sigma.shape[1] == 4  # embed, 2 blocks, final norm
    else:
        assert report["coefficients"] is None
    if method == "task_arithmetic" and not sens:
        tuned = [dict(load(tiny_zoo[t])[0].named_parameters()) for t in TASKS]
        n = "model.layers.1.self_attn.o_proj.weight"
        torch.testing.assert_close(merged[n], original[n] + 0.5 * sum(t[n] - original[n] for t in tuned))


def test_zoo_names_and_dare_reproducibility(tmp_path, tiny_zoo):
    raw = {
        "merge_method": "dare_ties",
        "base_model": "base",
        "models": ["code", "math", {"model": "english", "parameters": {"density": 0.3}}],
        "parameters": {"lambda": 1.0, "density": 0.5},
        "zoo_preset": "tiny",
        "seed": 7,
        "dtype": "bfloat16",
    }
    cfg = tmp_path / "zoo.yml"
    cfg.write_text(yaml.safe_dump(raw))
    assert main([str(cfg), "-o", str(tmp_path / "a"), "--json"]) == 0
    assert main([str(cfg), "-o", str(tmp_path / "b"), "--json"]) == 0
    a, b = load_file(tmp_path / "a" / "model.safetensors"), load_file(tmp_path / "b" / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a) and a["model.norm.weight"].dtype == torch.bfloat16
    raw["seed"] = 8
    cfg.write_text(yaml.safe_dump(raw))
    assert main([str(cfg), "-o", str(tmp_path / "a"), "--json"]) == 0  # replaces the old folder whole
    c = load_file(tmp_path / "a" / "model.safetensors")
    assert any(not torch.equal(a[k], c[k]) for k in a)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b", "zoo.yml"]  # no work folders left behind


def test_sens_flags_override_the_config(tmp_path, tiny_zoo, calibration):
    cfg = _config(tmp_path, tiny_zoo, calibration, "ties", False)
    assert main([str(cfg), "-o", str(tmp_path / "on"), "--sens", "--json"]) == 0
    saved = yaml.safe_load((tmp_path / "on" / "merge_config.yml").read_text())
    assert saved["sens_merging"]["temperature"] == 1.0 and saved["merge_method"] == "ties"
    assert json.loads((tmp_path / "on" / "merge_report.json").read_text())["coefficients"] is not None
    with_sens = _config(tmp_path, tiny_zoo, calibration, "ties", True)
    assert main([str(with_sens), "-o", str(tmp_path / "off"), "--no-sens", "--json"]) == 0
    assert "sens_merging" not in yaml.safe_load((tmp_path / "off" / "merge_config.yml").read_text())
    assert json.loads((tmp_path / "off" / "merge_report.json").read_text())["coefficients"] is None


@pytest.fixture(scope="module")
def wider_model(tmp_path_factory, tiny_zoo):
    """A user checkpoint of another size (hidden 96 instead of 64), with the zoo's tokenizer."""
    path = tmp_path_factory.mktemp("wider") / "wider"
    cfg = LlamaConfig(
        vocab_size=384,
        hidden_size=96,
        intermediate_size=160,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=96,
    )
    torch.manual_seed(0)
    LlamaForCausalLM(cfg).save_pretrained(path)
    load(tiny_zoo["base"])[1].save_pretrained(path)
    return path


def _error(tmp_path, capsys, raw, text=None):
    cfg = tmp_path / "bad.yml"
    cfg.write_text(text if text is not None else yaml.safe_dump(raw))
    out = tmp_path / "never"
    assert main([str(cfg), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert not out.exists()
    assert err.count("\n") == 1 and err.startswith("python -m models.merge: error: ")
    return err


def test_errors_name_the_offending_entry(tmp_path, tiny_zoo, wider_model, capsys):
    good = {"merge_method": "ties", "base_model": str(tiny_zoo["base"]), "models": [str(tiny_zoo["code"])]}
    missing = {**good, "models": [str(tiny_zoo["code"]), str(tmp_path / "nowhere")]}
    assert (
        "models[1]" in _error(tmp_path, capsys, missing) and "nowhere" in capsys.readouterr().err + missing["models"][1]
    )
    mismatch = _error(tmp_path, capsys, {**good, "models": [str(tiny_zoo["code"]), str(wider_model)]})
    assert "models[1]" in mismatch and "shape" in mismatch
    assert "merge_method" in _error(tmp_path, capsys, {**good, "merge_method": "slerpy"})
    assert "base_model" in _error(tmp_path, capsys, {**good, "base_model": str(tmp_path / "nobase")})
    dens = _error(
        tmp_path, capsys, {**good, "models": [{"model": str(tiny_zoo["code"]), "parameters": {"density": 0}}]}
    )
    assert "models[0].parameters.density" in dens
    assert "'lamda'" in _error(tmp_path, capsys, {**good, "parameters": {"lamda": 0.5}})
    assert "needs a base_model" in _error(tmp_path, capsys, {k: v for k, v in good.items() if k != "base_model"})
    no_calib = _error(tmp_path, capsys, {**good, "sens_merging": {"samples": 2}})
    assert "models[0]" in no_calib and "calibration" in no_calib
    assert "not valid YAML" in _error(tmp_path, capsys, None, text="models: [a, b\n")
    assert "temperature" in _error(tmp_path, capsys, {**good, "sens_merging": {"temperature": -1}})
    assert main([str(tmp_path / "absent.yml"), "-o", str(tmp_path / "x")]) == 2
    assert "no config file" in capsys.readouterr().err


def test_example_configs_parse():
    examples = sorted((Path(__file__).resolve().parents[1] / "models" / "merge" / "examples").glob("*.yml"))
    assert len(examples) == 2
    configs = [load_config(p) for p in examples]
    assert {c.merge_method for c in configs} == {"dare_ties", "ties"}
    assert all(c.sens is not None for c in configs)
