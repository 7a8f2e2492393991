"""FuseGPT fusion: the FusedLinear formula, zero coefficients equal plain removal, folding back to nn.Linear,
group-level tuning that lowers the group's error, and a result that save_pretrained/from_pretrained round-trips."""

import copy

import pytest
import torch
from torch import nn
from transformers import AutoModelForCausalLM, LlamaForCausalLM

from models import zoo
from models.prune import FusedLinear, PruneError, block_importance, fuse, fuse_block, group_of, remove_blocks
from tests.test_prune_importance import small_llama, windows

pytestmark = pytest.mark.usefixtures("one_thread")


def test_fused_linear_weight_formula_and_fold():
    g = torch.Generator().manual_seed(0)
    host, donor = nn.Linear(6, 5), nn.Linear(6, 5)
    f = FusedLinear(host, [donor], rank=3, generator=g)
    x = torch.randn(2, 4, 6, generator=g)
    assert torch.equal(f(x), host(x))  # B and c start at zero: the host alone
    with torch.no_grad():
        for p in (f.lora_b, f.coef_b, f.bias_coef):
            p.normal_(generator=g)
    w = host.weight + f.lora_b @ f.lora_a + (f.coef_b[0] @ f.coef_a[0]) * donor.weight
    b = host.bias + f.bias_coef[0] * donor.bias
    assert torch.allclose(f(x), x @ w.T + b, atol=1e-5)
    plain = f.to_linear()
    assert type(plain) is nn.Linear and torch.allclose(plain(x), f(x), atol=1e-5)
    with pytest.raises(PruneError, match="cannot fuse"):
        FusedLinear(host, [nn.Linear(5, 5)], rank=2)


def test_groups_hold_the_block_and_clip_at_the_ends():
    assert group_of(0, 4, 3) == range(0, 3) and group_of(3, 4, 3) == range(1, 4)
    assert group_of(2, 4, 8) == range(0, 4)
    assert group_of(20, 32, 8) == range(16, 24)
    assert all(i in group_of(i, 32, s) and len(group_of(i, 32, s)) == s for i in range(32) for s in (1, 2, 7, 8))


def test_untrained_fusion_is_plain_removal_and_training_lowers_the_group_error():
    model, data = small_llama(), windows(count=8)
    ids = torch.stack(data)
    dropped = remove_blocks(copy.deepcopy(model), [2])
    untrained = copy.deepcopy(model)
    stats = fuse_block(untrained, data, 2, group_size=3, epochs=0, progress=False)
    assert stats["group"] == [1, 2, 3] and stats["steps"] == 0
    with torch.no_grad():
        assert torch.equal(untrained(ids).logits, dropped(ids).logits)  # zero coefficients: exactly the drop
    tuned = copy.deepcopy(model)
    stats = fuse_block(tuned, data, 2, group_size=3, epochs=6, batch=4, progress=False)
    assert stats["steps"] == 12 and stats["loss_last"] < 0.8 * stats["loss_first"]
    assert not any(isinstance(m, FusedLinear) for m in tuned.modules())
    assert [b.self_attn.layer_idx for b in tuned.model.layers] == [0, 1, 2]
    # Block 0 is outside the group: untouched. Blocks 1 and 3 (now 2) took on block 2's role.
    assert torch.equal(tuned.model.layers[0].mlp.up_proj.weight, model.model.layers[0].mlp.up_proj.weight)
    assert not torch.equal(tuned.model.layers[2].mlp.up_proj.weight, model.model.layers[3].mlp.up_proj.weight)


def test_one_shot_ranking_is_one_importance_computation():
    model, data = small_llama(), windows(count=8)
    scores = block_importance(model, data[:4], "macro")
    _, stats = fuse(copy.deepcopy(model), data, 2, iterative=False, importance_windows=4, epochs=1, progress=False)
    assert stats["importance"] == pytest.approx(scores)
    assert stats["removed"] == sorted(range(4), key=lambda i: scores[i])[:2]
    with pytest.raises(PruneError, match="cannot remove 4 of 4"):
        fuse(model, data, 4)
    with pytest.raises(PruneError, match="cannot fuse block 4 of a 4-block model"):
        fuse_block(model, data, 4)


def test_fused_zoo_model_round_trips_and_is_deterministic(tiny_zoo, tmp_path):
    model, tokenizer = zoo.load(tiny_zoo["base"])
    data = zoo.calibration_windows(tokenizer, seq_len=32, count=8, preset="tiny")
    calls = []
    a, stats = fuse(
        copy.deepcopy(model), data, 1, epochs=1, seed=3, progress=False, callback=lambda m, r: calls.append(r)
    )
    b, _ = fuse(copy.deepcopy(model), data, 1, epochs=1, seed=3, progress=False)
    assert calls == stats["steps"] and len(stats["removed"]) == 1
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True))
    a.save_pretrained(tmp_path)
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path, attn_implementation="eager").eval()
    assert type(loaded) is LlamaForCausalLM and loaded.config.num_hidden_layers == 1
    ids = torch.stack(data[:2])
    with torch.no_grad():
        assert torch.equal(loaded(ids).logits, a(ids).logits)
        out = loaded.generate(ids[:1, :8], max_new_tokens=4, do_sample=False)  # the KV cache follows the new depth
    assert out.shape == (1, 12)
