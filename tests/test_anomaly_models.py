"""Every detector trains (forward and backward) on a small graph; the graph operators they rely on."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch_geometric.data import Data
from torch_geometric.utils import to_undirected

from models.anomaly import METHODS
from models.anomaly.baselines import beta_wavelet_coefficients, mean_adjacency, strict_two_hop
from models.anomaly.spacegnn import hop_features, one_hop_block
from models.anomaly.train import build_detector, load_checkpoint, save_checkpoint, score

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def graph():
    g = torch.Generator().manual_seed(0)
    n = 80
    edge_index = to_undirected(torch.randint(0, n, (2, 240), generator=g), num_nodes=n)
    y = (torch.rand(n, generator=g) < 0.15).long()
    return Data(x=torch.randn(n, 7, generator=g) + y[:, None], edge_index=edge_index, y=y)


@pytest.mark.parametrize("method", METHODS)
def test_forward_and_backward(method, graph):
    torch.manual_seed(0)
    model = build_detector(method, 7, "toy", hidden=16)
    data = model.preprocess(graph)
    nodes = torch.arange(0, 80, 3)
    model.train()
    out = model(data, nodes)
    assert out.shape == (len(nodes), 2)
    loss = F.nll_loss(out, graph.y[nodes])
    assert torch.isfinite(loss)
    loss.backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert sum(g.abs().sum() for g in grads) > 0
    if method == "spacegnn":  # the learnable curvatures get gradients
        assert model.branches["hyperbolic"].curvature.grad.abs().sum() > 0
    p = score(model, data)
    assert p.shape == (80,) and ((p >= 0) & (p <= 1)).all()


def test_checkpoint_round_trip(graph, tmp_path):
    torch.manual_seed(0)
    model = build_detector("spacegnn", 7, "toy", hidden=16)
    save_checkpoint(model, tmp_path / "m.pt", "spacegnn", "toy", 7, 16)
    again = load_checkpoint(tmp_path / "m.pt")
    assert np.array_equal(score(model, model.preprocess(graph)), score(again, again.preprocess(graph)))


def test_hop_features_average_neighbours_with_self_loops():
    x = torch.tensor([[1.0], [2.0], [4.0]])
    edge_index = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])  # path 0 - 1 - 2
    hops = hop_features(x, edge_index, 3)
    assert torch.allclose(hops[1].squeeze(), torch.tensor([1.5, 7 / 3, 3.0]))
    assert torch.allclose(hops[2][0], (hops[1][0] + hops[1][1]) / 2)


def test_one_hop_block_keeps_edges_into_the_batch_only():
    edge_index = torch.tensor([[0, 1, 2, 3, 4], [1, 2, 1, 4, 3]])
    src, block, dst = one_hop_block(edge_index, torch.tensor([1, 3]), 5)
    assert src[: len(dst)].tolist() == [1, 3] and sorted(src.tolist()) == [0, 1, 2, 3, 4]
    pairs = sorted((src[a].item(), [1, 3][b]) for a, b in block.t().tolist())
    assert pairs == [(0, 1), (2, 1), (4, 3)]


def test_strict_two_hop_excludes_one_hop_and_self():
    edge_index = to_undirected(torch.tensor([[0, 1, 2], [1, 2, 3]]))  # path 0 - 1 - 2 - 3
    two = strict_two_hop(edge_index, 4)
    assert sorted(map(tuple, two.t().tolist())) == [(0, 2), (1, 3), (2, 0), (3, 1)]
    adj = mean_adjacency(edge_index, 4).to_dense()
    assert torch.allclose(adj.sum(1), torch.ones(4)) and adj[1, 0] == 0.5


def test_beta_wavelets_match_their_definition():
    order = 2
    coefs = beta_wavelet_coefficients(order)
    for lam in (0.0, 0.7, 1.3, 2.0):
        for i, c in enumerate(coefs):
            direct = (
                (lam / 2) ** i
                * (1 - lam / 2) ** (order - i)
                / math.exp(math.lgamma(i + 1) + math.lgamma(order + 1 - i) - math.lgamma(order + 2))
            )
            assert sum(cj * lam**j for j, cj in enumerate(c)) == pytest.approx(direct)
    # W_0 is low-pass (1 at λ=0), W_order high-pass (0 at λ=0).
    assert coefs[0][0] > 0 and coefs[-1][0] == 0


def test_unknown_method_is_refused():
    with pytest.raises(ValueError, match="unknown method"):
        build_detector("gin", 7, "toy")
