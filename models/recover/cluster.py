"""PASER's semantic-structural clustering: a diffusion-kernel manifold embedding, then NMF spectral clustering.

As BokwaiHo/PASER `paser.py` does it: pairwise distances D_ij = |e_i - e_j|, sigma = median(D), affinity
A = exp(-D^2 / 2 sigma^2), random-walk Laplacian L = I - Deg^-1 A; its k eigenvectors of smallest eigenvalue
are the manifold coordinates Y (N, k). Clusters: NMF with k components of S = |Y Y^T|, each sample in the
cluster of its largest NMF weight. L's eigenvectors are computed from the symmetric normalized affinity
Deg^-1/2 A Deg^-1/2 (same eigenvalues, eigenvectors v = Deg^-1/2 u), which is stable with `eigh`. Deliberate
difference: for N above `dense_limit` the affinity keeps only each sample's `neighbors` nearest neighbours
(symmetrized, sparse), since the dense N x N matrices of the reference code do not fit for large pools.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import eigsh
from sklearn.decomposition import NMF
from sklearn.neighbors import NearestNeighbors

from models.recover.errors import RecoverError


def diffusion_affinity(emb: np.ndarray, dense_limit: int = 4000, neighbors: int = 30) -> np.ndarray | sp.csr_matrix:
    """(N, N) Gaussian affinity exp(-D^2 / 2 sigma^2) of the rows of `emb`, sigma the median distance; sparse
    kNN (symmetrized) when N > dense_limit."""
    x = np.asarray(emb, dtype=np.float64)
    n = len(x)
    if n <= dense_limit:
        sq = (x * x).sum(1)
        d = np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2 * x @ x.T, 0.0))
        np.fill_diagonal(d, 0.0)
        sigma = float(np.median(d[np.triu_indices(n, 1)])) if n > 1 else 1.0
        return np.exp(-(d**2) / (2 * max(sigma, 1e-12) ** 2))
    k = min(neighbors + 1, n)
    dist, idx = NearestNeighbors(n_neighbors=k).fit(x).kneighbors(x)
    sigma = float(np.median(dist[:, 1:])) or 1.0
    a = sp.csr_matrix(
        (np.exp(-(dist.ravel() ** 2) / (2 * sigma**2)), (np.repeat(np.arange(n), k), idx.ravel())), (n, n)
    )
    return a.maximum(a.T).tocsr()


def manifold_embedding(affinity, k: int) -> np.ndarray:
    """(N, k) eigenvectors of the random-walk Laplacian I - Deg^-1 A with the k smallest eigenvalues."""
    n = affinity.shape[0]
    deg = np.asarray(affinity.sum(1)).ravel()
    inv_sqrt = 1.0 / np.sqrt(np.maximum(deg, 1e-12))
    if sp.issparse(affinity):
        sym = sp.diags(inv_sqrt) @ affinity @ sp.diags(inv_sqrt)
        # the smallest eigenvalues of I - sym are the largest of sym; v0 fixed so the result is deterministic
        vals, vecs = eigsh(sym, k=k, which="LA", v0=np.full(n, 1.0 / np.sqrt(n)))
    else:
        vals, vecs = np.linalg.eigh(inv_sqrt[:, None] * affinity * inv_sqrt[None, :])
        vals, vecs = vals[-k:], vecs[:, -k:]
    order = np.argsort(-vals)
    y = inv_sqrt[:, None] * vecs[:, order]
    # an eigenvector's sign is arbitrary: fix it so the largest-magnitude entry is positive
    signs = np.sign(y[np.abs(y).argmax(0), np.arange(k)])
    return y * np.where(signs == 0, 1.0, signs)


def nmf_clusters(y: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    """(N,) cluster ids in [0, k): argmax of NMF(k) of S = |Y Y^T| (PASER's spectral clustering)."""
    s = np.abs(y @ y.T)
    w = NMF(n_components=k, init="random", random_state=seed, max_iter=400).fit_transform(s)
    return w.argmax(1)


def capability_clusters(emb: np.ndarray, k: int = 10, seed: int = 0, dense_limit: int = 4000) -> np.ndarray:
    """(N,) cluster ids of the samples embedded as rows of `emb`: diffusion manifold, then NMF clustering.
    Cluster ids are renumbered 0..C-1 in order of first appearance (an NMF component may stay empty)."""
    if len(emb) < 2:
        raise RecoverError(f"clustering needs at least 2 samples, got {len(emb)}")
    k = min(k, len(emb) - 1)
    if k < 1:
        raise RecoverError("--clusters must be at least 1")
    y = manifold_embedding(diffusion_affinity(emb, dense_limit), k)
    raw = nmf_clusters(y, k, seed)
    _, first = np.unique(raw, return_index=True)
    remap = {c: i for i, c in enumerate(raw[np.sort(first)])}
    return np.array([remap[c] for c in raw], dtype=np.int64)
