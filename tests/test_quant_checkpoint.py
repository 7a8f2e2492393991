"""Quantized checkpoints: bit packing, save + load giving exactly the saved model's logits, the
`python -m models.quant save|eval` CLI, and corrupt folders as one line and exit 2."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from models import zoo
from models.quant import QuantConfig, load_quantized, quantize_model, save_quantized
from models.quant.__main__ import main
from models.quant.checkpoint import pack_bits, unpack_bits

pytestmark = pytest.mark.usefixtures("one_thread")

SMALL = ["--preset", "tiny", "--seq-len", "32", "--eval-windows", "2", "--json"]


@pytest.mark.parametrize("bits", [2, 3, 4, 8])
@pytest.mark.parametrize("signed", [False, True])
def test_packing_round_trips_and_takes_bits_per_value(bits, signed):
    low = -(1 << (bits - 1)) if signed else 0
    values = torch.randint(low, low + (1 << bits), (37, 5), generator=torch.Generator().manual_seed(bits))
    packed = pack_bits(values, bits)
    assert packed.dtype == torch.uint8 and tuple(packed.shape) == (5, -(-37 * bits // 8))
    assert torch.equal(unpack_bits(packed, 37, bits, signed), values)


@pytest.mark.parametrize(
    "qcfg",
    [
        QuantConfig(wbits=4, group=32, act="int8", quantize_lm_head=True),
        QuantConfig(wbits=3, group=16, wformat="signed", act="fp16"),
    ],
    ids=["w4u-int8-head", "w3s-fp16"],
)
def test_saved_checkpoint_reproduces_the_logits_exactly(tiny_zoo, tmp_path, qcfg):
    model, tokenizer = zoo.load(tiny_zoo["base"])
    quantize_model(model, qcfg)
    out = tmp_path / "q"
    save_quantized(model, tokenizer, qcfg, out)
    loaded, loaded_tokenizer = load_quantized(out)
    ids = zoo.token_windows(tokenizer, "code", "test", seq_len=40, limit=1, preset="tiny")[0][None]
    with torch.no_grad():
        assert torch.equal(loaded(input_ids=ids).logits, model(input_ids=ids).logits)
    assert loaded_tokenizer.encode("def f(x):") == tokenizer.encode("def f(x):")
    stored = load_file(out / "model.safetensors")
    q = stored["model.layers.0.mlp.up_proj.qweight"]
    k, n = model.model.layers[0].mlp.up_proj.in_features, model.model.layers[0].mlp.up_proj.out_features
    assert q.dtype == torch.uint8 and q.numel() == n * k * qcfg.wbits // 8  # packed, not one byte per weight
    assert stored["model.layers.0.mlp.up_proj.scales"].dtype == torch.uint16
    assert ("lm_head.qweight" in stored) == qcfg.quantize_lm_head


def test_cli_save_then_eval(tiny_zoo, tmp_path, capsys):
    out = tmp_path / "q"
    assert main(["save", str(tiny_zoo["base"]), "--wbits", "4", "--group", "32", "-o", str(out), *SMALL]) == 0
    saved = json.loads(capsys.readouterr().out)
    assert set(saved["ppl"]) == {"dense", "quantized"} and saved["bytes"] == (out / "model.safetensors").stat().st_size
    assert main(["eval", str(out), *SMALL]) == 0
    assert json.loads(capsys.readouterr().out)["ppl"]["quantized"] == saved["ppl"]["quantized"]


def _damage(folder, how: str) -> None:
    weights = folder / "model.safetensors"
    if how == "truncated":
        weights.write_bytes(weights.read_bytes()[:-100])
    elif how == "manifest":
        (folder / "quant.json").write_text('{"format": 1, "layers": ')
    else:  # a layer's packed weights missing, the file itself whole
        tensors = load_file(weights)
        del tensors["model.layers.1.self_attn.q_proj.qweight"]
        save_file(tensors, weights)


@pytest.mark.parametrize(
    ("how", "message"),
    [
        ("truncated", "model.safetensors is truncated"),
        ("manifest", "quant.json is not valid JSON"),
        ("missing", "model.layers.1.self_attn.q_proj.qweight is missing"),
    ],
)
def test_a_corrupt_checkpoint_is_one_line_and_exit_2(tiny_zoo, tmp_path, capsys, how, message):
    out = tmp_path / "q"
    model, tokenizer = zoo.load(tiny_zoo["base"])
    qcfg = QuantConfig(wbits=4, group=32)
    save_quantized(quantize_model(model, qcfg), tokenizer, qcfg, out)
    _damage(out, how)
    assert main(["eval", str(out), *SMALL]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err and "python -m models.quant save" in err


def test_a_folder_that_is_not_a_quantized_checkpoint_exits_2(tiny_zoo, capsys):
    assert main(["eval", str(tiny_zoo["base"]), *SMALL]) == 2
    assert "has no quant.json" in capsys.readouterr().err
