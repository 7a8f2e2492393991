"""KV precision configs: presets, average bits, JSON round trip, one-line errors."""

import json

import pytest
from transformers import LlamaConfig

from models.kv import PRESETS, KVConfig, KVConfigError, resolve


def _one_line(err: pytest.ExceptionInfo) -> str:
    message = str(err.value)
    assert "\n" not in message and message
    return message


def test_presets_and_average_bits():
    assert [KVConfig.preset(n, 4).avg_bits for n in PRESETS] == [16, 8, 4, 2]
    assert KVConfig.preset("KIVI-2", 4).residual_length == 32 and KVConfig.preset("KV4", 4).residual_length == 0
    # KVTuner's Llama-3.1-8B KIVI preset: 20 x K4V2, 6 x K4V4, 4 x K2V2, 2 x K8V4 averages 3.25 bits.
    tuned = KVConfig(pairs=((4, 2),) * 20 + ((4, 4),) * 6 + ((2, 2),) * 4 + ((8, 4),) * 2)
    assert tuned.avg_bits == 3.25 and tuned.num_layers == 32


def test_json_round_trip(tmp_path):
    kv = KVConfig(pairs=((8, 4), (16, 2), (4, 4)), group_size=16, residual_length=24, name="tuned")
    kv.save(tmp_path / "kv.json")
    assert KVConfig.load(tmp_path / "kv.json") == kv
    assert json.loads((tmp_path / "kv.json").read_text())["pairs"] == [[8, 4], [16, 2], [4, 4]]
    assert resolve(str(tmp_path / "kv.json"), 3) == kv and resolve("KV8", 3) == KVConfig.preset("KV8", 3)


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ({"pairs": [[8, 3]]}, ["layer 0", "value bits 3", "16, 8, 4, 2"]),
        ({"pairs": [[8, 8], [1, 4]]}, ["layer 1", "key bits 1"]),
        ({"pairs": [[8, 8, 8]]}, ["layer 0", "pair"]),
        ({"pairs": []}, ["no layer pairs"]),
        ({"layers": [[8, 8]]}, ["unknown key 'layers'"]),
        ({"name": "x"}, ["pairs"]),
        ({"pairs": [[4, 4]], "residual_length": -1}, ["residual_length -1"]),
        ({"pairs": [[4, 4]], "group_size": 0}, ["group_size 0"]),
        ([[4, 4]], ["JSON object"]),
    ],
)
def test_bad_configs_give_one_line(tmp_path, data, words):
    path = tmp_path / "kv.json"
    path.write_text(json.dumps(data))
    with pytest.raises(KVConfigError) as err:
        KVConfig.load(path)
    message = _one_line(err)
    assert all(w in message for w in words), message


def test_missing_malformed_and_unknown_preset(tmp_path):
    with pytest.raises(KVConfigError) as err:
        KVConfig.load(tmp_path / "none.json")
    assert "no KV config file" in _one_line(err)
    (tmp_path / "bad.json").write_text('{"pairs": [[8, 8],')
    with pytest.raises(KVConfigError) as err:
        KVConfig.load(tmp_path / "bad.json")
    assert "not valid JSON" in _one_line(err)
    with pytest.raises(KVConfigError) as err:
        KVConfig.preset("KV3", 2)
    assert "KIVI-2" in _one_line(err)


def test_config_must_fit_the_model():
    model = LlamaConfig(num_hidden_layers=2, hidden_size=64, num_attention_heads=4, num_key_value_heads=2)
    KVConfig.preset("KV4", 2).check(model)
    with pytest.raises(KVConfigError) as err:
        KVConfig.preset("KV4", 3).check(model)
    assert "3 layer pairs but the model has 2 layers" in _one_line(err)
    with pytest.raises(KVConfigError) as err:  # value groups of 12 channels cannot tile head_dim 16
        KVConfig.uniform(4, 4, 2, group_size=12).check(model)
    assert "head_dim 16" in _one_line(err)
    KVConfig.uniform(4, 4, 2, group_size=64).check(model)  # larger than head_dim: one group per token
