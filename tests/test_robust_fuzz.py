"""The MCTS fuzzer finds an inserted trigger on a toy model; mutations stay inside their segment."""

import numpy as np

from models.robust.fuzz import fuzz, kl, mutate
from models.robust.randomize import fuzzed_rates


def toy_backdoor(texts):
    """Class 0 with high confidence when the word 'cf' is present; a little length-dependent noise otherwise."""
    out = []
    for t in texts:
        words = t.split()
        p = 0.95 if "cf" in words else 0.1 + 0.05 * (len(words) % 3)
        out.append([p, 1 - p])
    return np.array(out)


def test_fuzzer_finds_an_inserted_trigger_token():
    rng = np.random.default_rng(0)
    texts, positions = [], []
    for _ in range(12):
        words = [f"w{i}" for i in range(16)]
        pos = int(rng.integers(17))
        words.insert(pos, "cf")
        texts.append(" ".join(words))
        positions.append(pos)
    found = fuzz(texts, toy_backdoor, budget=24, seed=1)
    hits = sum(r.area[p] for r, p in zip(found, positions, strict=True))
    assert hits >= 10
    for r in found:
        assert r.area.sum() == 5  # ceil(0.25 * 17)
        assert r.seconds > 0


def test_fuzzer_is_deterministic_and_kl_is_zero_on_equal_rows():
    texts = ["a b cf d e f g h", "x y z w v u"]
    a = fuzz(texts, toy_backdoor, budget=8, seed=3)
    b = fuzz(texts, toy_backdoor, budget=8, seed=3)
    assert all((x.scores == y.scores).all() for x, y in zip(a, b, strict=True))
    p = np.array([[0.3, 0.7]])
    assert kl(p, p)[0] == 0
    assert kl(p, np.array([[0.7, 0.3]]))[0] > 0


def test_mutation_leaves_words_outside_the_segment_alone():
    words = [f"w{i}" for i in range(10)]
    rng = np.random.default_rng(0)
    for _ in range(50):
        out = mutate(words, 4, 6, 4, rng)
        assert out[:4] == words[:4]
        assert out[-4:] == words[-4:]
        assert abs(len(out) - len(words)) <= 2


def test_fuzzed_rates_keep_the_uniform_budget():
    area = np.zeros(16, dtype=bool)
    area[[3, 7, 8, 12]] = True
    rates = fuzzed_rates(area, 0.7, 0.95)
    assert rates[area].tolist() == [0.95] * 4
    assert abs(rates.sum() - 0.7 * 16) < 1e-9
    assert (rates[~area] < 0.7).all()
