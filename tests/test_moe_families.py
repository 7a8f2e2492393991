"""`python -m models.moe carve` on tiny random Mistral (sliding window shorter than the window scored) and Qwen2
(q/k/v biases) checkpoints built here: the output loads back with from_pretrained as the same family with CMoE
MLPs, gives finite logits, and with every expert running equals the dense model; other model types exit 2."""

import json

import pytest
import torch
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    MistralConfig,
    MistralForCausalLM,
    MixtralConfig,
    MixtralForCausalLM,
    Qwen2Config,
    Qwen2ForCausalLM,
)

import models.moe.modeling  # noqa: F401  (registers the CMoE model types for from_pretrained)
from models.moe.__main__ import main
from models.moe.modeling import CMoEMLP

pytestmark = pytest.mark.usefixtures("one_thread")

SHAPE = {
    "hidden_size": 64,
    "intermediate_size": 96,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 256,
}
FAMILIES = {
    "mistral": (MistralConfig, MistralForCausalLM, {"sliding_window": 16}),
    "qwen2": (Qwen2Config, Qwen2ForCausalLM, {}),
}
SMALL = ["--preset", "tiny", "--seq-len", "32", "--eval-windows", "2", "--calib-windows", "2", "--json"]


def _checkpoint(tmp_path, tiny_zoo, config_class, model_class, extra):
    """A random-weight checkpoint of `model_class` with the tiny zoo's tokenizer (no download)."""
    tokenizer = AutoTokenizer.from_pretrained(tiny_zoo["base"])
    torch.manual_seed(0)
    model = model_class(config_class(vocab_size=len(tokenizer), **SHAPE, **extra)).eval()
    folder = tmp_path / config_class.model_type
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder, model


@pytest.mark.parametrize("family", list(FAMILIES))
def test_carve_a_random_family_checkpoint(tiny_zoo, tmp_path, capsys, family):
    config_class, model_class, extra = FAMILIES[family]
    folder, dense = _checkpoint(tmp_path, tiny_zoo, config_class, model_class, extra)
    ids = torch.randint(0, dense.config.vocab_size, (1, 40), generator=torch.Generator().manual_seed(1))
    for top_k in ("2", "4"):
        out = tmp_path / f"top{top_k}"
        assert (
            main(["carve", str(folder), "--experts", "4", "--top-k", top_k, "--shared", "32", "-o", str(out), *SMALL])
            == 0
        )
        assert json.loads(capsys.readouterr().out)["ppl"]["carved"]["code"] > 0
        carved = AutoModelForCausalLM.from_pretrained(out).eval()
        assert isinstance(carved, model_class) and carved.config.model_type == f"cmoe_{family}"
        assert all(isinstance(layer.mlp, CMoEMLP) for layer in carved.model.layers)
        with torch.no_grad():
            logits = carved(input_ids=ids).logits
        assert torch.isfinite(logits).all()
        if top_k == "4":  # every expert runs, unweighted: the dense FFN's neurons regrouped, the family's attention
            torch.testing.assert_close(logits, dense(input_ids=ids).logits, atol=1e-4, rtol=1e-4)


def test_an_unsupported_model_type_names_the_supported_ones(tiny_zoo, tmp_path, capsys):
    folder, _ = _checkpoint(
        tmp_path, tiny_zoo, MixtralConfig, MixtralForCausalLM, {"num_local_experts": 2, "num_experts_per_tok": 1}
    )
    out = tmp_path / "out"
    assert main(["carve", str(folder), "--experts", "4", "--top-k", "2", "--shared", "32", "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "'mixtral'" in err and "llama, mistral, qwen2" in err
    assert not out.exists()
