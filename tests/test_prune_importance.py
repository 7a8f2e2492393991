"""Block importance: FuseGPT Macro Influence and ShortGPT Block Influence, checked against direct computations."""

import copy

import pytest
import torch
from torch.nn import functional as F
from transformers import LlamaConfig, LlamaForCausalLM

from models import zoo
from models.prune import PruneError, block_importance, remove_blocks, select_blocks
from models.prune.importance import trace

pytestmark = pytest.mark.usefixtures("one_thread")


def small_llama(layers: int = 4, seed: int = 0) -> LlamaForCausalLM:
    """A randomly initialised 4-block Llama (hidden 32): real transformers code, seconds-free."""
    torch.manual_seed(seed)
    cfg = LlamaConfig(
        vocab_size=64,
        hidden_size=32,
        intermediate_size=48,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
        attn_implementation="eager",
    )
    return LlamaForCausalLM(cfg).eval()


def windows(count: int = 4, length: int = 12, seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(0, 64, (length,), generator=g) for _ in range(count)]


def test_macro_influence_is_the_whole_model_change_when_a_block_is_removed():
    model, data = small_llama(), windows()
    ids = torch.stack(data)
    full = trace(model, ids).output
    expected = []
    for i in range(4):
        without = trace(remove_blocks(copy.deepcopy(model), [i]), ids).output
        expected.append(1 - F.cosine_similarity(full.flatten(0, 1), without.flatten(0, 1), dim=-1).mean().item())
    assert block_importance(model, data, "macro") == pytest.approx(expected, abs=1e-5)


def test_block_influence_is_one_minus_cosine_of_block_input_and_output():
    model, data = small_llama(), windows()
    t = trace(model, torch.stack(data))
    states = [*t.inputs, t.output]
    expected = [
        1 - F.cosine_similarity(a.flatten(0, 1), b.flatten(0, 1), dim=-1).mean().item()
        for a, b in zip(states, states[1:], strict=False)
    ]
    scores = block_importance(model, data, "cosine")
    assert scores == pytest.approx(expected, abs=1e-5)
    # For the last block both metrics compare the same two states.
    assert block_importance(model, data, "macro")[-1] == pytest.approx(scores[-1], abs=1e-5)


def test_a_block_that_does_nothing_scores_zero_and_is_removed_first():
    model, data = small_llama(), windows()
    with torch.no_grad():  # block 1 becomes the identity: both residual branches write zeros
        model.model.layers[1].self_attn.o_proj.weight.zero_()
        model.model.layers[1].mlp.down_proj.weight.zero_()
    for metric in ("macro", "cosine"):
        scores = block_importance(model, data, metric)
        assert scores[1] == pytest.approx(0.0, abs=1e-6)
        assert min(scores[i] for i in (0, 2, 3)) > 1e-4
        assert select_blocks(model, data, 1, metric) == [1]
    assert select_blocks(model, data, 2, "macro", iterative=True)[0] == 1


def test_zoo_model_scores_and_bad_input(tiny_zoo):
    model, tokenizer = zoo.load(tiny_zoo["base"])
    data = zoo.calibration_windows(tokenizer, seq_len=32, count=4, preset="tiny")
    for metric in ("macro", "cosine"):
        scores = block_importance(model, data, metric)
        assert len(scores) == 2 and all(0 < s < 2 for s in scores)
    with pytest.raises(PruneError, match="unknown importance metric 'l2'"):
        block_importance(model, data, "l2")
    with pytest.raises(PruneError, match="differ in length"):
        block_importance(model, [data[0], data[1][:10]])
    with pytest.raises(PruneError, match="cannot remove 2 of 2"):
        select_blocks(model, data, 2)
