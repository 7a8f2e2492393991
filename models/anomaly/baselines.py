"""Baseline detectors in the same harness as SpaceGNN: MLP, GCN, GAT, GraphSAGE, BWGNN and H2GCN.

Each is a two-class node classifier on the raw features with full-graph message passing:
forward(data, nodes) gives log-probabilities (len(nodes), 2) and anomaly_probability(data, nodes) the
probability of class 1. BWGNN (Tang et al., ICML 2022) is the beta-wavelet spectral detector of GADBench;
H2GCN (Zhu et al., NeurIPS 2020) stands in for the heterophily-aware detector: it keeps ego and neighbour
embeddings apart and reads 1-hop and strict 2-hop neighbourhoods, which suits graphs where anomalies
mostly neighbour normal nodes.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.data import Data
from torch_geometric.nn import GATConv, GCNConv, MessagePassing, SAGEConv
from torch_geometric.utils import coalesce, degree, remove_self_loops


class FullGraphDetector(nn.Module, ABC):
    """Base class: subclasses implement logits(data) over all nodes, (N, 2)."""

    def preprocess(self, data: Data) -> Data:
        return data

    @abstractmethod
    def logits(self, data: Data) -> Tensor:
        """Class logits (N, 2) of every node: column 1 is the anomaly class."""

    def forward(self, data: Data, nodes: Tensor) -> Tensor:
        return F.log_softmax(self.logits(data)[nodes], dim=-1)

    def anomaly_probability(self, data: Data, nodes: Tensor) -> Tensor:
        return self(data, nodes).exp()[:, 1]


class MLP(FullGraphDetector):
    """Two hidden layers on the node features alone (no graph)."""

    def __init__(self, in_dim: int, hidden: int = 128, dropout: float = 0.0):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(in_dim, hidden), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(hidden, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, 2),
        )  # fmt: skip

    def logits(self, data: Data) -> Tensor:
        return self.net(data.x)


class ConvStack(FullGraphDetector):
    """Two graph convolutions with ReLU, then a linear head; `conv(in, out)` builds one convolution."""

    def __init__(self, conv, in_dim: int, hidden: int = 128, dropout: float = 0.0):
        super().__init__()
        self.convs = nn.ModuleList([conv(in_dim, hidden), conv(hidden, hidden)])
        self.dropout = dropout
        self.head = nn.Linear(hidden, 2)

    def logits(self, data: Data) -> Tensor:
        h = data.x
        for conv in self.convs:
            h = F.dropout(F.relu(conv(h, data.edge_index)), self.dropout, self.training)
        return self.head(h)


def gcn(in_dim: int, hidden: int = 128) -> ConvStack:
    return ConvStack(GCNConv, in_dim, hidden)


def gat(in_dim: int, hidden: int = 128, heads: int = 4) -> ConvStack:
    return ConvStack(lambda i, o: GATConv(i, o // heads, heads=heads), in_dim, hidden)


def graphsage(in_dim: int, hidden: int = 128) -> ConvStack:
    return ConvStack(lambda i, o: SAGEConv(i, o, aggr="mean"), in_dim, hidden)


def beta_wavelet_coefficients(order: int) -> list[list[float]]:
    """Polynomial coefficients (in powers of the Laplacian L, eigenvalues in [0, 2]) of BWGNN's order+1
    beta wavelets W_i(L) = (L/2)^i (I − L/2)^(order−i) / B(i+1, order+1−i), i = 0..order."""
    out = []
    for i in range(order + 1):
        norm = math.gamma(i + 1) * math.gamma(order + 1 - i) / math.gamma(order + 2)
        coef = [0.0] * (order + 1)
        for j in range(order - i + 1):  # expand (1 − L/2)^(order−i)
            coef[i + j] = math.comb(order - i, j) * (-1) ** j / 2 ** (i + j) / norm
        out.append(coef)
    return out


class Laplacian(MessagePassing):
    """x ↦ L x with L = I − D^-1/2 A D^-1/2 (in-degrees, at least 1), as in BWGNN."""

    def __init__(self):
        super().__init__(aggr="add")

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        d = degree(edge_index[1], x.size(0)).clamp_min(1).pow(-0.5).unsqueeze(-1)
        return x - self.propagate(edge_index, x=x * d) * d


class BWGNN(FullGraphDetector):
    """Beta-wavelet GNN: MLP, order+1 band-pass filters W_i(L) in parallel, concatenated, then an MLP."""

    def __init__(self, in_dim: int, hidden: int = 128, order: int = 2):
        super().__init__()
        self.thetas = beta_wavelet_coefficients(order)
        self.encoder = nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU())
        self.laplacian = Laplacian()
        self.decoder = nn.Sequential(nn.Linear(hidden * len(self.thetas), hidden), nn.ReLU(), nn.Linear(hidden, 2))

    def logits(self, data: Data) -> Tensor:
        h = self.encoder(data.x)
        powers = [h]
        for _ in range(len(self.thetas) - 1):
            powers.append(self.laplacian(powers[-1], data.edge_index))
        bands = [sum(c * p for c, p in zip(theta, powers, strict=True)) for theta in self.thetas]
        return self.decoder(torch.cat(bands, dim=-1))


class MeanAggregate(MessagePassing):
    """Mean of neighbour features through a row-normalized sparse adjacency (`mean_adjacency`)."""

    def forward(self, x: Tensor, adj_t: Tensor) -> Tensor:
        return self.propagate(adj_t, x=x)

    def message_and_aggregate(self, adj_t: Tensor, x: Tensor) -> Tensor:
        return torch.sparse.mm(adj_t, x)


def mean_adjacency(edge_index: Tensor, num_nodes: int) -> Tensor:
    """The (N, N) sparse COO matrix with row i = 1/deg(i) at i's neighbours (edges j → i), for mean aggregation."""
    deg = degree(edge_index[1], num_nodes).clamp_min(1)
    shape = (num_nodes, num_nodes)
    return torch.sparse_coo_tensor(edge_index.flip(0), 1 / deg[edge_index[1]], shape, check_invariants=False).coalesce()


def strict_two_hop(edge_index: Tensor, num_nodes: int) -> Tensor:
    """Edges to the nodes exactly two hops away (reachable in two steps, not in one, not itself), (2, E2)."""
    ones = torch.ones(edge_index.size(1))
    a = torch.sparse_coo_tensor(edge_index, ones, (num_nodes, num_nodes), check_invariants=False).coalesce()
    two = torch.sparse.mm(a, a).coalesce().indices()
    two, _ = remove_self_loops(two)
    keep = ~torch.isin(two[0] * num_nodes + two[1], edge_index[0] * num_nodes + edge_index[1])
    return coalesce(two[:, keep], num_nodes=num_nodes)


class H2GCN(FullGraphDetector):
    """H2GCN: ego embedding, then two rounds of [mean over 1-hop ‖ mean over strict 2-hop], with every
    round's representation concatenated (ego/neighbour separation and intermediate combination)."""

    def __init__(self, in_dim: int, hidden: int = 128, rounds: int = 2):
        super().__init__()
        self.embed = nn.Linear(in_dim, hidden)
        self.aggregate = MeanAggregate()
        self.rounds = rounds
        self.head = nn.Linear(hidden * (2 ** (rounds + 1) - 1), 2)

    def preprocess(self, data: Data) -> Data:
        data = data.clone()
        one_hop = remove_self_loops(data.edge_index)[0]
        data.one_hop = mean_adjacency(one_hop, data.num_nodes)
        data.two_hop = mean_adjacency(strict_two_hop(one_hop, data.num_nodes), data.num_nodes)
        return data

    def logits(self, data: Data) -> Tensor:
        h = F.relu(self.embed(data.x))
        reps = [h]
        for _ in range(self.rounds):
            h = torch.cat([self.aggregate(h, data.one_hop), self.aggregate(h, data.two_hop)], dim=-1)
            reps.append(h)
        return self.head(torch.cat(reps, dim=-1))
