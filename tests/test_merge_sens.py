"""Sens-Merging: normalisations as specified, the softmax over models, the identity T → ∞ ⇒ plain method, and
layer sensitivity as the first-order Taylor saliency, on the tiny zoo."""

from dataclasses import replace

import pytest
import torch

from models.merge import (
    SensCoefficients,
    SensConfig,
    coefficients,
    compute_sens,
    load_models,
    merge_loaded,
    normalize_layers,
    parse_config,
    transferability,
)
from models.merge.sensitivity import layer_sensitivity
from models.merge.task_vector import layer_group, layer_groups, parameters


def test_layer_normalisation():
    s = torch.tensor([[3.0, 4.0, 0.0], [1.0, 1.0, 2.0]], dtype=torch.float64)
    l2 = normalize_layers(s, "l2")
    torch.testing.assert_close(l2.norm(dim=1), torch.ones(2, dtype=torch.float64))
    torch.testing.assert_close(l2[0], torch.tensor([0.6, 0.8, 0.0], dtype=torch.float64))
    torch.testing.assert_close(normalize_layers(s, "l1").sum(dim=1), torch.ones(2, dtype=torch.float64))


def test_transferability_is_l1_normalised_and_signed_as_configured():
    # model 0 is close to both other experts on their data; model 2 is far from both
    g = torch.tensor([[0.0, 1.0, 1.0], [2.0, 0.0, 3.0], [4.0, 4.0, 0.0]], dtype=torch.float64)
    align, dist = transferability(g, "alignment"), transferability(g, "distance")
    for tau in (align, dist):
        torch.testing.assert_close(tau.sum(), torch.tensor(1.0, dtype=torch.float64))
        assert (tau > 0).all()
    assert align.argmax() == 0 and align.argmin() == 2
    assert dist.argmax() == 2 and dist.argmin() == 0
    torch.testing.assert_close(dist, torch.tensor([2.0, 5.0, 8.0], dtype=torch.float64) / 15)
    torch.testing.assert_close(transferability(torch.zeros(1, 1)), torch.ones(1, dtype=torch.float64))


def test_coefficients_are_a_softmax_over_models_per_layer():
    alpha = torch.tensor([[0.6, 0.8], [0.8, 0.6], [1.0, 0.0]], dtype=torch.float64)
    tau = torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64)
    sigma = coefficients(alpha, tau, 0.1)
    torch.testing.assert_close(sigma.sum(dim=0), torch.ones(2, dtype=torch.float64))
    logits = alpha * tau[:, None] / 0.1
    torch.testing.assert_close(sigma[:, 0], torch.exp(logits[:, 0]) / torch.exp(logits[:, 0]).sum())
    torch.testing.assert_close(coefficients(alpha, tau, 1e12), torch.full((3, 2), 1 / 3, dtype=torch.float64))
    assert sigma[0, 0] > sigma[1, 0] > sigma[2, 0]  # α·τ = 0.3, 0.24, 0.2 in layer 0
    sc = SensCoefficients(["model.layers.0", "model.norm.weight"], alpha, alpha, torch.zeros(3, 3), tau, sigma)
    assert sc.weights("model.layers.0.mlp.up_proj.weight") == pytest.approx((3 * sigma[:, 0]).tolist())


def test_layer_groups():
    assert layer_group("model.layers.12.self_attn.q_proj.weight") == "model.layers.12"
    assert layer_group("model.embed_tokens.weight") == "model.embed_tokens.weight"
    assert layer_groups(["model.layers.0.a", "model.layers.0.b", "model.norm.weight"]) == [
        "model.layers.0",
        "model.norm.weight",
    ]


@pytest.fixture(scope="module")
def tiny_loaded(tiny_zoo):
    raw = {
        "merge_method": "task_arithmetic",
        "base_model": str(tiny_zoo["base"]),
        "models": [{"model": str(tiny_zoo[n]), "calibration": n} for n in ("code", "math", "english")],
        "parameters": {"lambda": 0.6},
        "sens_merging": {"samples": 3, "seq_len": 48, "temperature": 0.05},
    }
    cfg = parse_config(raw)
    return cfg, load_models(cfg)


@pytest.fixture(scope="module")
def tiny_sens(tiny_loaded):
    cfg, loaded = tiny_loaded
    return compute_sens(cfg, loaded)


def test_layer_sensitivity_is_the_taylor_saliency(tiny_loaded):
    cfg, loaded = tiny_loaded
    model = loaded.tuned[0]
    window = torch.arange(4, 40) % model.config.vocab_size
    groups = layer_groups([n for n, _ in model.named_parameters()])
    s = layer_sensitivity(model, [window], groups)
    model.zero_grad()
    model(input_ids=window[None], labels=window[None]).loss.backward()
    expected = sum((p * p.grad).abs().sum() for n, p in model.named_parameters() if n.startswith("model.layers.1."))
    model.zero_grad(set_to_none=True)
    assert s[groups.index("model.layers.1")].item() == pytest.approx(expected.item(), rel=1e-5)
    assert (s > 0).all()
    # the delta saliency of a model against itself is zero: no task vector, nothing to be sensitive to
    assert layer_sensitivity(model, [window], groups, parameters(model)).abs().max().item() == 0.0


def test_sens_coefficients_on_the_tiny_zoo(tiny_sens):
    co = tiny_sens
    k, layers = 3, len(co.groups)
    assert co.sigma.shape == (k, layers) and co.alpha.shape == (k, layers)
    torch.testing.assert_close(co.alpha.norm(dim=1), torch.ones(k, dtype=torch.float64))
    torch.testing.assert_close(co.sigma.sum(dim=0), torch.ones(layers, dtype=torch.float64))
    torch.testing.assert_close(co.tau.sum(), torch.tensor(1.0, dtype=torch.float64))
    assert (co.distances.diagonal() == 0).all() and (co.distances + torch.eye(k) > 0).all()
    assert co.sigma.std() > 0  # at T = 0.05 the models get different weights


def test_infinite_temperature_reduces_to_the_plain_method(tiny_loaded, tiny_sens):
    cfg, loaded = tiny_loaded
    co = tiny_sens.with_temperature(1e12)
    for method in ("task_arithmetic", "ties"):
        c = replace(cfg, merge_method=method)
        plain, sens = merge_loaded(c, loaded), merge_loaded(c, loaded, co)
        for (n, a), (_, b) in zip(plain.named_parameters(), sens.named_parameters(), strict=True):
            torch.testing.assert_close(a, b, msg=n)
    sharp = merge_loaded(cfg, loaded, tiny_sens)
    plain = merge_loaded(cfg, loaded)
    assert any(not torch.allclose(a, b) for a, b in zip(plain.parameters(), sharp.parameters(), strict=True))


def test_sens_merged_layer_is_the_weighted_task_arithmetic(tiny_loaded, tiny_sens):
    cfg, loaded = tiny_loaded
    co = tiny_sens
    merged = dict(merge_loaded(cfg, loaded, co).named_parameters())
    name = "model.layers.0.mlp.down_proj.weight"
    base = parameters(loaded.base)[name]
    w = 3 * co.sigma[:, co.groups.index("model.layers.0")]
    expected = base + 0.6 * sum(w[i].item() * (parameters(m)[name] - base) for i, m in enumerate(loaded.tuned))
    torch.testing.assert_close(merged[name], expected)


def test_default_sens_config_matches_the_documented_defaults():
    assert SensConfig() == SensConfig(True, 16, 128, 1.0, "l2", "weight", "alignment")
