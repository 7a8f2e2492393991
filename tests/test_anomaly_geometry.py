"""κ-stereographic geometry and SpaceGNN's space projection and ensemble weights."""

import math

import pytest
import torch

from models.anomaly.manifolds import artan_k, dist, dist_taylor, expmap0, logmap0, project, tan_k
from models.anomaly.spacegnn import SpaceGNN, SpaceGNNSettings, ensemble_weights, squash

torch.manual_seed(0)
X = torch.randn(64, 5, dtype=torch.float64) * 0.3
Y = torch.randn(64, 5, dtype=torch.float64) * 0.3


@pytest.mark.parametrize("k", [-1.0, -0.1, 0.1, 1.0])
def test_exp_and_log_invert_each_other(k):
    u = torch.randn(64, 5, dtype=torch.float64) * 0.25  # ‖u‖·√|κ| < π/2: inside tan's first branch
    assert torch.allclose(logmap0(expmap0(u, k), k), u, atol=1e-10)
    x = project(X, k)
    assert torch.allclose(expmap0(logmap0(x, k), k), x, atol=1e-10)


def test_zero_curvature_is_euclidean():
    assert torch.allclose(expmap0(X, 0.0), X, atol=1e-15) and torch.allclose(logmap0(X, 0.0), X, atol=1e-15)
    assert torch.allclose(dist(X, Y, 0.0), 2 * (X - Y).norm(dim=-1))
    assert torch.allclose(dist_taylor(X, Y, 0.0), 2 * (X - Y).norm(dim=-1))
    for tiny in (1e-9, -1e-9):  # the maps are continuous through κ = 0
        assert torch.allclose(expmap0(X, tiny), X, atol=1e-8)
        assert torch.allclose(dist(X, Y, tiny), dist(X, Y, 0.0), atol=1e-8)


def test_tan_k_is_smooth_in_curvature_at_zero():
    k = torch.zeros((), dtype=torch.float64, requires_grad=True)
    r = torch.tensor([0.5, 1.0], dtype=torch.float64)
    tan_k(r, k).sum().backward()
    assert torch.allclose(k.grad, (r**3 / 3).sum())  # d tan_κ(r) / dκ at 0 = r³/3
    assert torch.allclose(artan_k(tan_k(r, 0.3), 0.3), r)


def test_hyperbolic_distance_matches_the_poincare_ball():
    x, y = X * 0.5, Y * 0.5
    sq = ((x - y) ** 2).sum(-1)
    ref = torch.acosh(1 + 2 * sq / ((1 - (x * x).sum(-1)) * (1 - (y * y).sum(-1))))
    assert torch.allclose(dist(x, y, -1.0), ref, atol=1e-10)


def test_spherical_distance_is_the_great_circle_angle():
    def lift(v):  # inverse stereographic projection onto the unit sphere
        r2 = (v * v).sum(-1, keepdim=True)
        return torch.cat([2 * v, 1 - r2], dim=-1) / (1 + r2)

    angle = torch.acos((lift(X) * lift(Y)).sum(-1).clamp(-1, 1))
    assert torch.allclose(dist(X, Y, 1.0), angle, atol=1e-9)


def test_taylor_distance_error_is_second_order_in_curvature():
    errs = [(dist(X, Y, k) - dist_taylor(X, Y, k)).abs().max().item() for k in (-0.1, -0.05, -0.025)]
    assert errs[0] / errs[1] > 3.5 and errs[1] / errs[2] > 3.5  # halving κ quarters the error


@pytest.mark.parametrize("k", [-0.1, 0.1, -1.0])
def test_squash_is_the_composed_space_projection(k):
    k = torch.tensor(k, dtype=torch.float64)
    h = torch.randn(200, 8, dtype=torch.float64) * torch.logspace(-3, 2, 200, dtype=torch.float64)[:, None]
    out = squash(h, k)
    assert torch.allclose(out, logmap0(project(expmap0(h, k), k), k), atol=1e-8)
    assert torch.allclose(torch.nn.functional.cosine_similarity(out[:20], h[:20]), torch.ones(20, dtype=h.dtype))
    if k < 0:  # hyperbolic norms are bounded by artanh(1 − ε)/√|κ|
        assert out.norm(dim=-1).max() <= math.atanh(1 - 1e-5) / math.sqrt(-k) + 1e-6


@pytest.mark.parametrize("alpha,beta", [(0.5, 1 / 3), (0.0, 0.0), (1.0, 1.0), (0.3, 0.6)])
def test_ensemble_weights_sum_to_one(alpha, beta):
    w = ensemble_weights(alpha, beta)
    assert sum(w.values()) == pytest.approx(1.0)
    assert w["euclidean"] == beta and w["spherical"] == pytest.approx((1 - beta) * alpha)


def test_ensemble_mixes_branches_as_specified():
    torch.manual_seed(0)
    from torch_geometric.data import Data

    data = Data(x=torch.randn(30, 4), edge_index=torch.randint(0, 30, (2, 90)), y=torch.zeros(30, dtype=torch.long))
    s = SpaceGNNSettings(layers=2, hidden=16, alpha=0.25, beta=0.4)
    model = SpaceGNN(4, s).eval()
    assert set(model.branches) == {"hyperbolic", "spherical", "euclidean"}
    hyp = model.branches["hyperbolic"].curvature
    sph = model.branches["spherical"].curvature
    assert (hyp < 0).all() and (sph > 0).all() and hyp.requires_grad
    prepared = model.preprocess(data)
    nodes = torch.arange(10)
    with torch.no_grad():
        parts = model.branch_log_probs(prepared, nodes)
        mixed = 0.6 * (0.75 * parts["hyperbolic"] + 0.25 * parts["spherical"]) + 0.4 * parts["euclidean"]
        assert torch.allclose(model(prepared, nodes), mixed)
        p = 0.6 * (0.75 * parts["hyperbolic"].exp() + 0.25 * parts["spherical"].exp()) + 0.4 * parts["euclidean"].exp()
        assert torch.allclose(model.anomaly_probability(prepared, nodes), p[:, 1])
    only_euclid = SpaceGNN(4, SpaceGNNSettings(layers=2, hidden=16, beta=1.0))
    assert set(only_euclid.branches) == {"euclidean"}
