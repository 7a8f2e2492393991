"""PASER's selection math: budget allocation, manifold clustering, RAKE concepts and the consistency graph, and
the selection methods' budgets, on small synthetic inputs."""

import numpy as np
import pytest

from models.recover import ConceptGraph, RecoverError, allocate, capability_clusters, concepts, select
from models.recover.cluster import diffusion_affinity, manifold_embedding
from models.recover.select import budget_tokens


@pytest.mark.parametrize(
    ("budget", "weights", "capacity"),
    [
        (100, [1.0, 1.0, 1.0], [50, 50, 50]),
        (1000, [0.5, 0.3, 0.2], [400, 40, 900]),  # the middle cluster is capped, its excess goes to the others
        (10_000, [1.0, 2.0], [30, 40]),  # more budget than tokens: everything
        (57, [0.0, 0.0, 1e-9], [20, 20, 20]),
        (7, [3.0, 1.0, 1.0, 1.0], [100, 100, 100, 100]),
    ],
)
def test_allocation_sums_to_the_budget_and_respects_capacity(budget, weights, capacity):
    out = allocate(budget, weights, capacity)
    assert out.sum() == min(budget, sum(capacity))
    assert np.all(out <= np.array(capacity)) and np.all(out >= 0)


def test_allocation_is_proportional_to_degradation():
    out = allocate(1000, [0.6, 0.3, 0.1], [10_000] * 3)
    assert out.tolist() == [600, 300, 100]
    capped = allocate(1000, [0.6, 0.3, 0.1], [100, 10_000, 10_000])
    assert capped[0] == 100 and capped[1] == 675 and capped[2] == 225  # excess 500 shared 3:1


def _blobs(seed=0, per=30, dim=16):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(3, dim)) * 4
    x = np.concatenate([c + rng.normal(size=(per, dim)) for c in centers])
    return x / np.linalg.norm(x, axis=1, keepdims=True), np.repeat(np.arange(3), per)


def test_clustering_recovers_separated_groups():
    x, truth = _blobs()
    found = capability_clusters(x, k=3)
    # every found cluster is pure (one true group), up to relabelling
    for c in np.unique(found):
        assert len(np.unique(truth[found == c])) == 1
    assert np.array_equal(found, capability_clusters(x, k=3))  # deterministic


def test_manifold_embedding_solves_the_random_walk_laplacian_and_sparse_path_agrees():
    x, truth = _blobs(per=20)
    a = diffusion_affinity(x)
    y = manifold_embedding(a, 3)
    lap = np.eye(len(x)) - a / a.sum(1, keepdims=True)
    vals = np.sort(np.linalg.eigvals(lap).real)[:3]
    for j in range(3):  # each column is an eigenvector of L with one of its 3 smallest eigenvalues
        lam = (y[:, j] @ lap @ y[:, j]) / (y[:, j] @ y[:, j])
        assert np.allclose(lap @ y[:, j], lam * y[:, j], atol=1e-6)
        assert np.min(np.abs(vals - lam)) < 1e-6
    sparse = capability_clusters(x, k=3, dense_limit=10)
    for c in np.unique(sparse):
        assert len(np.unique(truth[sparse == c])) == 1


def test_rake_concepts_and_the_consistency_rule():
    found = concepts("Write the body of this Python function: def parse_header(line):", limit=3)
    assert "parse_header" in " ".join(found) and "the" not in found
    g = ConceptGraph()
    assert g.consistent(["apples", "ann"])
    g.add(["apples", "ann"])
    g.add(["pens", "ben"])
    assert g.consistent(["apples", "ann", "new idea"])  # known concepts that co-occurred, plus a new one
    assert not g.consistent(["apples", "ben"])  # both known, never together: a conflicting sample
    g.add(["apples", "ben"])
    assert g.consistent(["apples", "ben"])


def _pool(n=60, seed=0):
    rng = np.random.default_rng(seed)
    tokens = rng.integers(10, 120, size=n)
    clusters = np.repeat(np.arange(3), n // 3)
    jsd = np.concatenate(
        [rng.uniform(0.01, 0.02, n // 3), rng.uniform(0.05, 0.06, n // 3), rng.uniform(0.1, 0.2, n // 3)]
    )
    texts = [f"sample {i} about topic{i % 3} and item{i}" for i in range(n)]
    return texts, tokens, jsd, clusters


@pytest.mark.parametrize("method", ["paser", "random", "stratified", "ifd"])
@pytest.mark.parametrize("budget", [0.04, 0.1, 0.2])
def test_every_method_stays_within_the_token_budget(method, budget):
    texts, tokens, jsd, clusters = _pool()
    caps = [f"cap{c}" for c in clusters]
    sel = select(method, texts, tokens, budget, jsd=jsd, clusters=clusters, ifd=jsd * 10, capabilities=caps, seed=3)
    assert sel.budget_tokens == budget_tokens(tokens, budget)
    assert sel.tokens == tokens[sel.indices].sum() <= sel.budget_tokens
    assert len(set(sel.indices)) == len(sel.indices)
    assert sel.tokens > sel.budget_tokens - tokens.max()  # greedy fill leaves less than one sample unused


def test_paser_favours_degraded_clusters_and_efficient_samples():
    texts, tokens, jsd, clusters = _pool()
    sel = select("paser", texts, tokens, 0.2, jsd=jsd, clusters=clusters, ccg=False)
    per = {c["cluster"]: c for c in sel.details["clusters"]}
    assert per[2]["budget_tokens"] > per[1]["budget_tokens"] > per[0]["budget_tokens"]
    assert sum(c["budget_tokens"] for c in per.values()) == sel.budget_tokens
    assert [c["cluster"] for c in sel.details["clusters"]] == [2, 1, 0]  # most degraded first
    # inside the most degraded cluster, the first pick has the best JSD / log(tokens^2)
    members = np.flatnonzero(clusters == 2)
    ies = jsd[members] / np.log(tokens[members].astype(float) ** 2)
    assert sel.indices[0] == members[np.argmax(ies)]


def test_concept_filter_rejects_conflicts_and_backfill_keeps_the_budget():
    texts = (
        ["ann and apples"] * 2 + ["ben and pens"] * 2 + ["ann and pens"] * 4
    )  # "ann pens" relates two known concepts
    tokens = np.full(8, 10)
    jsd = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2])
    clusters = np.zeros(8, dtype=int)
    strict = select("paser", texts, tokens, 0.5, jsd=jsd, clusters=clusters)
    assert strict.indices[:4] == [0, 1, 2, 3] and strict.details["clusters"][0]["backfilled"] == 0
    both = select("paser", texts, tokens, 1.0, jsd=jsd, clusters=clusters)
    info = both.details["clusters"][0]
    assert info["ccg_rejected"] == 0 and info["backfilled"] == 4 and both.tokens == 80


def test_without_backfill_rejected_samples_stay_out_even_when_budget_is_left():
    texts = ["ann and apples"] * 2 + ["ben and pens"] * 2 + ["ann and pens"] * 4
    tokens, jsd, clusters = np.full(8, 10), np.linspace(0.9, 0.2, 8), np.zeros(8, dtype=int)
    sel = select("paser", texts, tokens, 1.0, jsd=jsd, clusters=clusters, backfill=False)
    info = sel.details["clusters"][0]
    assert sorted(sel.indices) == [0, 1, 2, 3] and sel.tokens == 40 < sel.budget_tokens
    assert info["ccg_rejected"] == 4 and info["backfilled"] == 0 and sel.details["spilled"] == 0


def test_stratified_random_gives_each_capability_its_pool_share():
    tokens = np.array([10] * 30 + [20] * 10)  # capability a: 300 tokens, b: 200
    caps = ["a"] * 30 + ["b"] * 10
    sel = select("stratified", [""] * 40, tokens, 0.5, capabilities=caps, seed=1)
    assert sel.details["budget_tokens_per_capability"] == {"a": 150, "b": 100}
    chosen = np.asarray(caps)[sel.indices]
    assert (chosen == "a").sum() == 15 and (chosen == "b").sum() == 5 and sel.tokens == 250
    assert sel.indices != select("stratified", [""] * 40, tokens, 0.5, capabilities=caps, seed=2).indices


def test_budget_a_cluster_cannot_spend_spills_to_the_others():
    texts = [f"t{i}" for i in range(6)]
    tokens = np.array([60, 60, 60, 10, 10, 10])  # cluster 0: long samples, cluster 1: short ones
    jsd = np.array([0.5, 0.5, 0.5, 0.1, 0.1, 0.1])
    clusters = np.array([0, 0, 0, 1, 1, 1])
    sel = select("paser", texts, tokens, 0.4, jsd=jsd, clusters=clusters, ccg=False)  # budget 84
    per = {c["cluster"]: c for c in sel.details["clusters"]}
    assert per[0]["selected"] == 1 and per[1]["selected"] == 1  # cluster 1's share (14) holds one sample
    assert sel.details["spilled"] == 1 and sel.tokens == 80


def test_random_selection_follows_its_seed():
    texts, tokens, jsd, clusters = _pool()
    a, b = (select("random", texts, tokens, 0.1, seed=5) for _ in range(2))
    assert a.indices == b.indices != select("random", texts, tokens, 0.1, seed=6).indices


def test_bad_budgets_and_methods_are_rejected():
    texts, tokens, jsd, clusters = _pool()
    for bad in (0.0, -0.1, 1.5):
        with pytest.raises(RecoverError, match="fraction"):
            select("random", texts, tokens, bad)
    with pytest.raises(RecoverError, match="unknown selection method"):
        select("best", texts, tokens, 0.1)
    with pytest.raises(RecoverError, match="JSD"):
        select("paser", texts, tokens, 0.1)
