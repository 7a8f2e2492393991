"""Certification math: Clopper-Pearson bounds, Cohen et al.'s CERTIFY, and the certified radii.

Radii are counts of word-level edits. All text certificates here have the form of FRS's Theorem 1
(and RanMASK's / SAFER's): the smoothed prediction cannot change while p_A - p_B > 2 Δ(r), where Δ(r)
bounds the probability that the r adversarial edits are not all wiped out by the randomization. We use
the sound p_B <= 1 - p_A, so the condition is p_A_lower - 1/2 > Δ(r).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from rapidfuzz.distance import DamerauLevenshtein
from scipy.stats import beta, norm


def clopper_pearson(k: int, n: int, alpha: float) -> tuple[float, float]:
    """Two-sided (1 - alpha) exact binomial confidence interval for a proportion with k successes in n."""
    lo = 0.0 if k == 0 else float(beta.ppf(alpha / 2, k, n - k + 1))
    hi = 1.0 if k == n else float(beta.ppf(1 - alpha / 2, k + 1, n - k))
    return lo, hi


@dataclass(frozen=True)
class Certificate:
    """Cohen et al.'s CERTIFY outcome: `label` (-1: abstain) and p_a_lower, the one-sided (1 - alpha)
    Clopper-Pearson lower bound on the top class's probability."""

    label: int
    p_a_lower: float

    @property
    def abstained(self) -> bool:
        return self.label < 0


def cohen_certify(selection: np.ndarray, estimation: np.ndarray, alpha: float) -> Certificate:
    """CERTIFY (Cohen et al. 2019): the top class of the n0 `selection` vote counts, its count in the n
    `estimation` counts (an independent draw), the lower bound at 2*alpha two-sided (alpha one-sided);
    abstain when that bound is below 1/2."""
    label = int(np.argmax(selection))
    n = int(estimation.sum())
    p_low = clopper_pearson(int(estimation[label]), n, 2 * alpha)[0]
    return Certificate(label if p_low > 0.5 else -1, p_low)


def cohen_radius(p_a_lower: float, sigma: float) -> float:
    """Cohen et al.'s l2 radius sigma * Phi^-1(p_A_lower) for Gaussian noise of std sigma (0 below 1/2)."""
    return max(0.0, sigma * float(norm.ppf(p_a_lower))) if p_a_lower < 1 else math.inf


def _largest(delta, p_a_lower: float, limit: int) -> int:
    """The largest r in 0..limit with p_a_lower - 1/2 > delta(r) (delta non-decreasing, delta(0) = 0);
    -1 when p_a_lower <= 1/2 (nothing certified)."""
    half_margin = p_a_lower - 0.5
    if half_margin <= 0:
        return -1
    r = 0
    while r < limit and delta(r + 1) < half_margin:
        r += 1
    return r


def frs_radius(p_a_lower: float, omega: float, limit: int = 10_000) -> int:
    """FRS Theorem 1: with every token randomized (wiped) independently with probability omega, a trigger of
    r tokens survives partly with probability Δ = 1 - omega^r; certified while p_A - p_B > 2 Δ. Returns the
    largest such r in tokens (R_r * L in the paper's notation). Corollary 1 is this with omega = omega_H."""
    if not 0 <= omega < 1:
        raise ValueError(f"omega={omega} out of range: a randomization probability in [0, 1)")
    return _largest(lambda r: 1 - omega**r, p_a_lower, limit)


def ranmask_radius(p_a_lower: float, length: int, masked: int) -> int:
    """RanMASK: `masked` of `length` tokens are masked uniformly without replacement (keep k = length - masked);
    r perturbed positions are all masked with probability C(length - r, k) / C(length, k), so at least one stays
    visible with Δ = 1 - C(length - r, k) / C(length, k). Largest certified r (substitutions)."""
    keep = length - masked

    def delta(r: int) -> float:
        return 1 - math.comb(length - r, keep) / math.comb(length, keep)

    return _largest(delta, p_a_lower, length)


def safer_radius(p_a_lower: float, overlaps: Sequence[float]) -> int:
    """SAFER: every word is replaced by a uniform draw from its substitution set; an attacker who changes word
    i within the set leaves the randomized distribution unchanged on a fraction overlaps[i] of it, so r
    substitutions change at most Δ = 1 - (product of the r smallest overlaps). Largest certified r."""
    ordered = np.sort(np.asarray(overlaps, dtype=np.float64))
    cum = np.concatenate([[1.0], np.cumprod(ordered)])
    return _largest(lambda r: 1 - cum[r], p_a_lower, len(ordered))


def deletion_radius(p_a_lower: float, p: float, length: int) -> int:
    """Text-CRS's word-deletion certificate (Theorem 4 as we read it, from memory; a Bernoulli-mask bound
    like RanMASK's and FRS's Theorem 1): every word is deleted independently with probability p. Deleting r
    words of a text only changes the randomized distribution on the event that not all r are deleted by the
    noise too, Δ(r) = 1 - p^r; certified while p_A - p_B > 2 Δ, i.e. with p_B <= 1 - p_A the largest r <= length
    with r < log(3/2 - p_A_lower) / log(p). Returns r in deleted words (-1 below p_A_lower = 1/2)."""
    if not 0 < p < 1:
        raise ValueError(f"p={p} out of range: a deletion probability in (0, 1)")
    return _largest(lambda r: 1 - p**r, p_a_lower, length)


def reorder_l1(p_a_lower: float, window: float) -> float:
    """Text-CRS's word-reordering certificate (Theorem 2 as we read it, from memory): uniform noise U[-window,
    window] on every word's position index, words read in the order of their noisy positions. Smoothing with
    uniform noise certifies an l1 shift of the position vector below window * (p_A - p_B) (Yang et al. 2020's
    uniform-noise l1 bound, Δ = ||δ||_1 / (2 window)); with p_B <= 1 - p_A that is 2 window (p_A_lower - 1/2).
    Returns that l1 radius in positions (-1 below p_A_lower = 1/2)."""
    if window <= 0:
        raise ValueError(f"window={window} out of range: a positive position-noise half-width")
    return 2 * window * (p_a_lower - 0.5) if p_a_lower > 0.5 else -1.0


def reorder_radius(p_a_lower: float, window: float, length: int) -> int:
    """reorder_l1 in Damerau-Levenshtein edits: each adjacent transposition moves two words by one position
    (l1 shift 2), so r transpositions are certified while 2 r < 2 window (p_A_lower - 1/2), i.e. Δ(r) = r /
    window < p_A_lower - 1/2; at most C(length, 2) transpositions (every pair inverted)."""
    return _largest(lambda r: r / window, p_a_lower, math.comb(length, 2))


def damerau_levenshtein(a: Sequence, b: Sequence) -> int:
    """Unrestricted Damerau-Levenshtein distance (insert, delete, substitute, transpose adjacent; a
    substring may be edited after a transposition) between two sequences (strings or word lists), by
    rapidfuzz's C++ implementation (about 60x faster than a Python O(len(a) len(b)) table for 16-word texts)."""
    return int(DamerauLevenshtein.distance(a, b))
