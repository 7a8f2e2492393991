"""Certification math: Clopper-Pearson against scipy, Cohen's CERTIFY, radii, Damerau-Levenshtein, and Text-CRS's
deletion and reordering randomizations."""

import math

import numpy as np
import pytest
from scipy.stats import binomtest

from models.robust.certify import clopper_pearson as cp
from models.robust.certify import (
    cohen_certify,
    cohen_radius,
    damerau_levenshtein,
    deletion_radius,
    frs_radius,
    ranmask_radius,
    reorder_l1,
    reorder_radius,
    safer_radius,
)
from models.robust.randomize import delete, shuffle_positions


@pytest.mark.parametrize(
    ("k", "n", "alpha"), [(0, 10, 0.05), (3, 10, 0.05), (10, 10, 0.01), (47, 50, 0.001), (1, 1, 0.1)]
)
def test_clopper_pearson_matches_scipy_exact_interval(k, n, alpha):
    ci = binomtest(k, n).proportion_ci(confidence_level=1 - alpha, method="exact")
    assert cp(k, n, alpha) == pytest.approx((ci.low, ci.high), abs=1e-9)


def test_cohen_certify_abstains_on_a_close_vote_and_certifies_a_clear_one():
    assert cohen_certify(np.array([3, 1]), np.array([52, 48]), 0.05).abstained
    cert = cohen_certify(np.array([0, 4, 0]), np.array([1, 98, 1]), 0.05)
    assert cert.label == 1
    # one-sided lower bound at alpha = the two-sided bound at 2 alpha
    assert cert.p_a_lower == pytest.approx(cp(98, 100, 0.1)[0])
    assert cohen_radius(cert.p_a_lower, 0.5) > cohen_radius(0.8, 0.5) > 0


def test_frs_radius_follows_theorem_1_and_is_monotone():
    # largest r with 1 - omega^r < p_A - 1/2
    assert frs_radius(0.94, 0.95) == 11
    assert frs_radius(0.94, 0.7) == 1
    assert frs_radius(0.5, 0.9) == -1
    margins = np.linspace(0.51, 0.999, 40)
    radii = [frs_radius(p, 0.9) for p in margins]
    assert all(a <= b for a, b in zip(radii, radii[1:], strict=False))
    assert radii[-1] > radii[0]
    # Corollary 1: a higher randomization rate in the area certifies more, by about log(w_m) / log(w_h)
    r_m, r_h = frs_radius(0.99, 0.7), frs_radius(0.99, 0.95)
    assert r_h > r_m
    assert r_h == pytest.approx(r_m * math.log(0.7) / math.log(0.95), abs=math.log(0.7) / math.log(0.95) + 1)


def test_ranmask_and_safer_radii():
    # 10 words, 9 masked: one perturbed word stays visible with probability 1/10
    assert ranmask_radius(0.65, 10, 9) == 1
    assert ranmask_radius(0.59, 10, 9) == 0
    assert safer_radius(0.99, [1.0, 1.0, 1.0]) == 3
    assert safer_radius(0.9, [0.5, 0.9, 0.95]) == 0
    assert safer_radius(0.9, [0.95, 0.9, 0.5]) == safer_radius(0.9, [0.5, 0.9, 0.95])
    assert safer_radius(0.8, [0.95, 0.9, 0.8]) == 2  # Δ(2) = 1 - 0.8 * 0.9 < 0.3 < Δ(3)


@pytest.mark.parametrize(
    ("a", "b", "d"),
    [
        ("kitten", "sitting", 3),
        ("ca", "abc", 2),  # unrestricted DL (OSA says 3)
        ("abcdef", "badcfe", 3),
        ("", "abc", 3),
        ("same", "same", 0),
        ("a cat sat".split(), "cat a sat".split(), 1),
        ("the cf movie".split(), "the movie".split(), 1),
    ],
)
def test_damerau_levenshtein_known_pairs(a, b, d):
    assert damerau_levenshtein(a, b) == d
    assert damerau_levenshtein(b, a) == d


def _lowrance_wagner(a, b) -> int:
    """The textbook unrestricted Damerau-Levenshtein table (Lowrance and Wagner 1975), as the oracle."""
    big = len(a) + len(b)
    d = [[big] * (len(b) + 2)] + [[big] + [0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(len(a) + 1):
        d[i + 1][1] = i
    for j in range(len(b) + 1):
        d[1][j + 1] = j
    seen: dict = {}
    for i in range(1, len(a) + 1):
        match_col = 0
        for j in range(1, len(b) + 1):
            i1, j1, cost = seen.get(b[j - 1], 0), match_col, int(a[i - 1] != b[j - 1])
            match_col = j if cost == 0 else match_col
            d[i + 1][j + 1] = min(
                d[i][j] + cost, d[i + 1][j] + 1, d[i][j + 1] + 1, d[i1][j1] + (i - i1 - 1) + 1 + (j - j1 - 1)
            )
        seen[a[i - 1]] = i
    return d[len(a) + 1][len(b) + 1]


def test_damerau_levenshtein_equals_the_textbook_table_on_random_word_lists():
    rng = np.random.default_rng(0)
    words = "the of cf mn to a".split()
    for _ in range(300):
        a = list(rng.choice(words, size=rng.integers(0, 12)))
        b = list(rng.choice(words, size=rng.integers(0, 12)))
        assert damerau_levenshtein(a, b) == _lowrance_wagner(a, b)


def _monotone_and_growing(radius) -> None:
    radii = [radius(p) for p in np.linspace(0.51, 0.999, 40)]
    assert all(a <= b for a, b in zip(radii, radii[1:], strict=False))
    assert radii[-1] > radii[0]


def test_textcrs_deletion_radius():
    # largest r <= length with r < log(3/2 - p_A) / log(p): log(0.56) / log(0.7) = 1.63, / log(0.95) = 11.3
    assert deletion_radius(0.94, 0.7, 16) == 1
    assert deletion_radius(0.94, 0.95, 16) == 11
    assert deletion_radius(0.94, 0.95, 8) == 8  # cannot delete more words than the text has
    assert deletion_radius(0.5, 0.9, 16) == -1 and deletion_radius(0.3, 0.9, 16) == -1
    assert deletion_radius(0.51, 0.7, 16) == 0
    _monotone_and_growing(lambda p: deletion_radius(p, 0.9, 100))
    with pytest.raises(ValueError):
        deletion_radius(0.9, 1.0, 16)


def test_textcrs_reorder_radius():
    # l1 < 2 window (p_A - 1/2); an adjacent transposition shifts two positions by one
    assert reorder_l1(0.9, 16) == pytest.approx(12.8)
    assert reorder_radius(0.9, 16, 16) == 6
    assert reorder_radius(0.75, 16, 16) == 3  # r = 4 gives l1 = 8 = the bound, not below it
    assert reorder_radius(0.99, 16, 3) == 3  # at most C(3, 2) transpositions
    assert reorder_radius(0.5, 16, 16) == -1 and reorder_l1(0.5, 16) == -1
    _monotone_and_growing(lambda p: reorder_radius(p, 16, 100))
    assert reorder_radius(0.9, 32, 100) > reorder_radius(0.9, 16, 100)


def test_textcrs_randomizations_are_seeded_and_keep_their_promises():
    words = [f"w{i}" for i in range(20)]
    kept = [len(delete(words, 0.7, np.random.default_rng(s)).split()) for s in range(400)]
    assert np.mean(kept) == pytest.approx(20 * 0.3, abs=0.3)
    assert delete(words, 0.7, np.random.default_rng(1)) == delete(words, 0.7, np.random.default_rng(1))
    out = shuffle_positions(words, 4.0, np.random.default_rng(2)).split()
    assert sorted(out) == sorted(words) and out != words
    # noise of half-width 4 moves a word by less than 8 positions
    assert max(abs(out.index(w) - i) for i, w in enumerate(words)) < 8
    assert shuffle_positions(words, 0.4, np.random.default_rng(3)).split() == words
