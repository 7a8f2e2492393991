"""CMoE carving math on the tiny zoo model: profiling, shared neurons, balanced experts, exactness, ratios."""

import itertools
import math

import pytest
import torch

from models import zoo
from models.moe import activated_parameters, balanced_assignment, carve, mlp_inputs, plan_experts, profile_neurons
from models.quant import evaluate

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def tiny(tiny_zoo):
    model, tokenizer = zoo.load(tiny_zoo["base"], "tiny")
    calib = zoo.calibration_windows(tokenizer, 64, 8, "tiny")
    return model, tokenizer, calib


def test_profile_counts_top_k_neurons_per_token(tiny):
    model, _, calib = tiny
    mlp = model.model.layers[0].mlp
    x = mlp_inputs(model, 0, calib)
    assert x.shape == (8 * 64, model.config.hidden_size)
    prof = profile_neurons(x, mlp, k_act=10)
    assert torch.equal(prof.markers.sum(1), torch.full((x.shape[0],), 10.0))
    # Independent check of one token: normalised SwiGLU activation, its 10 largest magnitudes.
    t = 5
    xn = x[t] / x[t].norm()
    g = mlp.gate_proj.weight / mlp.gate_proj.weight.norm(dim=1, keepdim=True)
    u = mlp.up_proj.weight / mlp.up_proj.weight.norm(dim=1, keepdim=True)
    h = torch.nn.functional.silu(g @ xn) * (u @ xn)
    assert set(h.abs().topk(10).indices.tolist()) == set(prof.markers[t].nonzero()[:, 0].tolist())
    assert torch.allclose(prof.rate, prof.markers.mean(0))


def test_balanced_assignment_is_optimal_and_balanced():
    gen = torch.Generator().manual_seed(0)
    points = torch.randint(0, 2, (6, 9), generator=gen).float()
    centroids = torch.randint(0, 2, (2, 9), generator=gen).float()
    labels = balanced_assignment(points, centroids)
    assert torch.bincount(labels, minlength=2).tolist() == [3, 3]
    cost = torch.cdist(points, centroids, p=1)
    best = min(
        sum(cost[i, 0] for i in a) + sum(cost[i, 1] for i in range(6) if i not in a)
        for a in itertools.combinations(range(6), 3)
    )
    assert float(cost[torch.arange(6), labels].sum()) == pytest.approx(float(best))


def test_plan_covers_every_neuron_once_with_most_active_shared(tiny):
    model, _, calib = tiny
    prof = profile_neurons(mlp_inputs(model, 1, calib), model.model.layers[1].mlp)
    plan = plan_experts(prof, num_shared=40, num_experts=12)
    assert plan.experts.shape == (12, 10)
    everything = torch.cat([plan.shared, plan.experts.flatten()])
    assert sorted(everything.tolist()) == list(range(160))
    rest = plan.experts.flatten()
    assert prof.rate[plan.shared].min() >= prof.rate[rest].max()
    for e in range(12):
        assert plan.representatives[e] in plan.experts[e]


@pytest.mark.parametrize(("experts", "top_k", "shared"), [(0, 0, 160), (12, 12, 40), (8, 8, 0)])
def test_all_neurons_active_reproduces_dense(tiny, experts, top_k, shared):
    model, _, calib = tiny
    carved, _ = carve(model, calib, experts, top_k, shared, progress=False)
    x = torch.randn(2, 7, model.config.hidden_size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        for dense_layer, moe_layer in zip(model.model.layers, carved.model.layers, strict=True):
            torch.testing.assert_close(moe_layer.mlp(x), dense_layer.mlp(x), rtol=1e-5, atol=1e-6)
        ids = calib[0][None]
        torch.testing.assert_close(carved(ids).logits, model(ids).logits, rtol=1e-4, atol=1e-4)


def test_activated_parameter_ratio(tiny):
    model, _, calib = tiny
    carved, _ = carve(model, calib, 12, 4, 40, progress=False)
    a = activated_parameters(carved)
    assert a["ffn_ratio"] == pytest.approx((40 + 4 * 10) / 160)
    total = sum(p.numel() for p in carved.parameters())
    per_expert = sum(layer.mlp.experts.gate_proj[0].numel() * 3 for layer in carved.model.layers)
    assert a["total"] == total
    assert a["activated"] == total - (12 - 4) * per_expert
    assert a["ratio"] == pytest.approx(a["activated"] / total)


def test_half_activation_perplexity_is_finite_and_close(tiny):
    model, tokenizer, calib = tiny
    windows = zoo.token_windows(tokenizer, "english", "test", 64, 6, "tiny")
    dense = evaluate(model, windows)["ppl"]
    carved, _ = carve(model, calib, 12, 4, 40, progress=False)
    half = evaluate(carved, windows)["ppl"]
    assert math.isfinite(half)
    assert 0.97 * dense <= half <= 1.5 * dense
    # Dropping to top-1 of 12 experts (no shared neurons) must hurt more than 50% activation does.
    sparse, _ = carve(model, calib, 16, 1, 0, progress=False)
    assert evaluate(sparse, windows)["ppl"] > half
