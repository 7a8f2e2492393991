"""The carved model as a transformers model: save/load round trip, router training behaviour, routed workload."""

import pytest
import torch
from transformers import AutoModelForCausalLM

from models import zoo
from models.moe import CMoEConfig, CMoEForCausalLM, CMoERouter, carve, finetune, routed_counts, routed_workload
from models.moe.finetune import training_windows
from sim.workload import MoeExpert, load_workload

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def carved(tiny_zoo):
    model, tokenizer = zoo.load(tiny_zoo["base"], "tiny")
    calib = zoo.calibration_windows(tokenizer, 64, 8, "tiny")
    moe, _ = carve(model, calib, 12, 4, 40, progress=False)
    return moe, tokenizer


def test_save_pretrained_round_trip(carved, tmp_path):
    moe, tokenizer = carved
    moe.save_pretrained(tmp_path)
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    assert isinstance(loaded, CMoEForCausalLM) and isinstance(loaded.config, CMoEConfig)
    assert (loaded.config.num_shared_neurons, loaded.config.num_experts, loaded.config.num_experts_per_tok) == (
        40,
        12,
        4,
    )
    ids = zoo.token_windows(tokenizer, "code", "test", 64, 1, "tiny")[0][None]
    with torch.no_grad():
        assert torch.equal(loaded(ids).logits, moe(ids).logits)


def test_impossible_layout_is_rejected_by_the_config():
    with pytest.raises(Exception, match="does not divide"):
        CMoEConfig(intermediate_size=160, num_shared_neurons=40, num_experts=7, num_experts_per_tok=2)


def test_router_scores_select_top_k_and_bias_balances():
    config = CMoEConfig(
        hidden_size=8, intermediate_size=16, num_attention_heads=2, num_experts=4, num_experts_per_tok=2
    )
    torch.manual_seed(0)
    router = CMoERouter(config).eval()
    x = torch.randn(50, 8)
    probs, index, weights = router(x)
    assert torch.allclose(probs.sum(1), torch.ones(50))
    assert torch.equal(index, probs.topk(2, dim=1).indices)
    assert torch.equal(weights, torch.ones(50, 2))  # extra_scale starts at 0: training-free sum of experts
    router.train()
    counts = torch.bincount(index.flatten(), minlength=4).float()
    router(x)
    expected = config.router_bias_speed * torch.sign(counts.mean() - counts)
    assert torch.equal(router.balance_bias, expected)
    assert router.aux_loss is not None and router.aux_loss.requires_grad


def test_finetune_trains_routing_scale_and_lowers_loss(carved, tiny_zoo):
    moe, tokenizer = carved
    model = type(moe)(moe.config)
    model.load_state_dict(moe.state_dict())
    data = training_windows(tokenizer, "tiny", 64, 24)
    stats = finetune(model, data, steps=12, batch=2, lr=2e-3, progress=False)
    assert stats["loss_last"] < stats["loss_first"]
    scales = torch.stack([m.extra_scale for m in model.modules() if isinstance(m, CMoERouter)])
    assert scales.abs().sum() > 0
    assert not model.training


def test_routed_workload_counts_sum_to_tokens_times_top_k(carved, tmp_path):
    moe, tokenizer = carved
    tokens = zoo.token_windows(tokenizer, "code", "test", 48, 1, "tiny")[0]
    counts = routed_counts(moe, tokens)
    assert counts.shape == (2, 12)
    assert counts.sum(1).tolist() == [48 * 4, 48 * 4]
    w = routed_workload(moe, tokens, wbits=4, group=32)
    for layer in range(2):
        ops = [op for op in w.ops if isinstance(op, MoeExpert) and op.name.startswith(f"prefill.layers.{layer}.")]
        for proj in ("gate_proj", "up_proj", "down_proj"):
            assert sum(op.m for op in ops if op.name.endswith(proj)) == 48 * 4
        assert {op.expert: op.m for op in ops} == {e: int(c) for e, c in enumerate(counts[layer]) if c}
    w.save(tmp_path / "w.json")
    assert load_workload(tmp_path / "w.json").ops == w.ops
    assert not any(op.name.endswith(("layers.gate_proj", "layers.up_proj", "layers.down_proj")) for op in w.ops)
