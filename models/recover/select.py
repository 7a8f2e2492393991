"""Recovery-data selection under a token budget: PASER and the baselines it is compared with.

The budget is a fraction of the pool's tokens (BOS + instruction + response + EOS, as trained), so every method
trains on the same number of tokens; PASER's paper counts samples, which would let a method that prefers long
samples train on more. Methods:

* `paser`: clusters from `cluster.capability_clusters`; cluster budget B_c proportional to the cluster's
  capability degradation score CDS_c (mean per-sample JSD between the original and the pruned model), capped at
  the cluster's own tokens with the excess passed on to the others; inside a cluster, samples in descending
  individual efficiency IES = JSD / log(Cost), Cost = tokens^2; the Concept Consistency Graph (one graph over the
  whole selection, clusters taken in descending CDS) rejects conflicting samples. If rejections leave a cluster
  short of its budget, the best rejected samples fill it (`backfill`, on by default so the methods stay on equal
  tokens; the count is reported). Budget a cluster cannot spend (its remaining samples are all longer than
  what is left) goes to the best remaining samples of any cluster, in IES order ("spilled").
  `backfill=False` leaves the rejected samples out altogether (neither backfilled nor spilled), so PASER may then
  train on fewer tokens than the budget.
* `random`: a seeded random order.
* `stratified`: capability-stratified random: each capability (arithmetic, recall, code, English) gets the
  budget share its pool tokens have, filled in a seeded random order; what a capability cannot spend goes to
  the rest of the pool in random order.
* `ifd`: the instruction-quality heuristic of Cherry-LLM: descending instruction-following difficulty
  IFD = PPL(response | instruction) / PPL(response) under the pruned model, samples with IFD >= 1 (the
  instruction does not help) last.
* `full`: every sample.

Every method fills its budget greedily in its order, skipping a sample that no longer fits.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from models.recover.concepts import ConceptGraph, concepts
from models.recover.errors import RecoverError

METHODS = ("paser", "random", "stratified", "ifd", "full")


@dataclass
class Selection:
    """Chosen sample indices (in training order), the tokens they hold, and method-specific details."""

    method: str
    indices: list[int]
    tokens: int
    budget_tokens: int
    details: dict = field(default_factory=dict)


def budget_tokens(tokens: Sequence[int], budget: float) -> int:
    """The token budget: `budget` (a fraction in (0, 1]) of the pool's tokens, rounded down."""
    if not 0 < budget <= 1:
        raise RecoverError(f"budget {budget} is not a fraction in (0, 1]: use e.g. 0.1 for 10% of the pool's tokens")
    return int(budget * int(np.sum(tokens)))


def allocate(budget: int, weights: Sequence[float], capacity: Sequence[int]) -> np.ndarray:
    """Integer budgets per cluster: proportional to `weights`, never above a cluster's `capacity`, summing to
    min(budget, sum(capacity)) (largest remainders get the rounding; a capped cluster's excess is shared out
    again among the others by weight)."""
    w = np.clip(np.asarray(weights, dtype=np.float64), 0.0, None)
    cap = np.asarray(capacity, dtype=np.int64)
    if len(w) != len(cap):
        raise RecoverError("allocate: one weight and one capacity per cluster")
    target = min(int(budget), int(cap.sum()))
    out = np.zeros(len(w), dtype=np.int64)
    open_ = cap > 0
    while (left := target - int(out.sum())) > 0:
        ww = np.where(open_, w if w[open_].sum() > 0 else 1.0, 0.0)
        share = left * ww / ww.sum()
        add = np.floor(share).astype(np.int64)
        for i in np.argsort(-(share - add), kind="stable")[: left - int(add.sum())]:
            add[i] += 1
        out = np.minimum(out + add, cap)
        open_ = out < cap
    return out


def _fill(order: Sequence[int], tokens: Sequence[int], budget: int) -> list[int]:
    chosen, used = [], 0
    for i in order:
        if used + tokens[i] <= budget:
            chosen.append(int(i))
            used += int(tokens[i])
    return chosen


def random_selection(tokens: Sequence[int], budget: int, seed: int = 0) -> Selection:
    chosen = _fill(np.random.default_rng(seed).permutation(len(tokens)), tokens, budget)
    return Selection("random", chosen, int(np.sum(np.asarray(tokens)[chosen])), budget, {"seed": seed})


def stratified_selection(tokens: Sequence[int], capabilities: Sequence[str], budget: int, seed: int = 0) -> Selection:
    tokens = np.asarray(tokens, dtype=np.int64)
    caps = np.asarray(capabilities)
    names = sorted(set(capabilities))
    pool = [int(tokens[caps == c].sum()) for c in names]
    alloc = allocate(budget, pool, pool)
    order = np.random.default_rng(seed).permutation(len(tokens))
    chosen = []
    for name, share in zip(names, alloc, strict=True):
        chosen += _fill([i for i in order if caps[i] == name], tokens, int(share))
    taken = set(chosen)
    chosen += _fill([int(i) for i in order if int(i) not in taken], tokens, budget - int(tokens[chosen].sum()))
    details = {"seed": seed, "budget_tokens_per_capability": dict(zip(names, alloc.tolist(), strict=True))}
    return Selection("stratified", chosen, int(tokens[chosen].sum()), budget, details)


def ifd_selection(tokens: Sequence[int], ifd: np.ndarray, budget: int) -> Selection:
    helpful = ifd < 1.0
    order = sorted(range(len(ifd)), key=lambda i: (not helpful[i], -ifd[i]))
    chosen = _fill(order, tokens, budget)
    details = {
        "score": "IFD = PPL(response | instruction) / PPL(response), pruned model",
        "ifd_below_1": int(helpful.sum()),
    }
    return Selection("ifd", chosen, int(np.sum(np.asarray(tokens)[chosen])), budget, details)


def full_selection(tokens: Sequence[int]) -> Selection:
    total = int(np.sum(tokens))
    return Selection("full", list(range(len(tokens))), total, total)


def paser_selection(
    texts: Sequence[str],
    tokens: Sequence[int],
    jsd: np.ndarray,
    clusters: np.ndarray,
    budget: int,
    ccg: bool = True,
    backfill: bool = True,
    max_concepts: int = 5,
) -> Selection:
    """PASER's selection given per-sample texts (for concepts), token counts, JSD and cluster ids."""
    tokens = np.asarray(tokens, dtype=np.int64)
    ids = np.unique(clusters)
    cds = np.array([jsd[clusters == c].mean() for c in ids])
    alloc = allocate(budget, cds, [int(tokens[clusters == c].sum()) for c in ids])
    ies = jsd / np.log(np.maximum(tokens, 2).astype(np.float64) ** 2)
    graph = ConceptGraph()
    chosen: list[int] = []
    rejected_all: set[int] = set()
    per_cluster = []
    for k in np.argsort(-cds, kind="stable"):
        members = np.flatnonzero(clusters == ids[k])
        order = members[np.argsort(-ies[members], kind="stable")]
        used, taken, rejected = 0, [], []
        for i in order:
            if used + tokens[i] > alloc[k]:
                continue
            found = concepts(texts[i], max_concepts) if ccg else []
            if ccg and not graph.consistent(found):
                rejected.append(int(i))
                continue
            graph.add(found)
            taken.append(int(i))
            used += int(tokens[i])
        filled = 0
        if backfill:
            for i in rejected:
                if used + tokens[i] <= alloc[k]:
                    taken.append(i)
                    used += int(tokens[i])
                    filled += 1
        chosen += taken
        rejected_all.update(rejected)
        per_cluster.append(
            {
                "cluster": int(ids[k]),
                "size": int(len(members)),
                "cds": float(cds[k]),
                "budget_tokens": int(alloc[k]),
                "selected": len(taken),
                "selected_tokens": used,
                "ccg_rejected": len(rejected) - filled,
                "backfilled": filled,
            }
        )
    # a cluster budget smaller than its remaining samples stays unspent: spend it on the best remaining samples
    # overall (IES order), so PASER trains on as many tokens as the other methods
    taken_set = set(chosen)
    left_out = taken_set if backfill else taken_set | rejected_all  # without backfill, rejected stays rejected
    rest = [int(i) for i in np.argsort(-ies, kind="stable") if int(i) not in left_out]
    spill = _fill(rest, tokens, budget - int(tokens[chosen].sum()))
    chosen += spill
    details = {
        "clusters": per_cluster,
        "spilled": len(spill),
        "ccg": ccg,
        "backfill": backfill,
        "max_concepts": max_concepts,
    }
    return Selection("paser", chosen, int(tokens[chosen].sum()), budget, details)


def select(
    method: str,
    texts: Sequence[str],
    tokens: Sequence[int],
    budget: float,
    *,
    jsd: np.ndarray | None = None,
    clusters: np.ndarray | None = None,
    ifd: np.ndarray | None = None,
    capabilities: Sequence[str] | None = None,
    seed: int = 0,
    ccg: bool = True,
    backfill: bool = True,
) -> Selection:
    """Run `method` (one of METHODS) at `budget` (fraction of the pool's tokens); the scores it needs must be
    given (paser: jsd and clusters; ifd: ifd; stratified: capabilities). details["seconds"] is the time of this
    step alone."""
    t0 = time.perf_counter()
    b = budget_tokens(tokens, budget)
    if method == "paser":
        if jsd is None or clusters is None:
            raise RecoverError("paser needs per-sample JSD and cluster ids")
        sel = paser_selection(texts, tokens, jsd, clusters, b, ccg=ccg, backfill=backfill)
    elif method == "random":
        sel = random_selection(tokens, b, seed)
    elif method == "stratified":
        if capabilities is None:
            raise RecoverError("stratified needs each sample's capability")
        sel = stratified_selection(tokens, capabilities, b, seed)
    elif method == "ifd":
        if ifd is None:
            raise RecoverError("ifd needs per-sample IFD scores")
        sel = ifd_selection(tokens, ifd, b)
    elif method == "full":
        sel = full_selection(tokens)
    else:
        raise RecoverError(f"unknown selection method {method!r}: use one of {', '.join(METHODS)}")
    sel.details["seconds"] = time.perf_counter() - t0
    return sel
