"""models.stats: bootstrap CIs and paired differences, on fixed synthetic samples."""

import numpy as np
import pytest

from models.stats import bootstrap_ci, paired, summary


def test_bootstrap_ci_brackets_the_mean_narrows_with_samples_and_is_seeded():
    rng = np.random.default_rng(0)
    small, large = rng.normal(1.0, 1.0, 20), rng.normal(1.0, 1.0, 2000)
    s, big = summary(small), summary(large)
    assert s["ci95"][0] < s["mean"] < s["ci95"][1] and s["n"] == 20
    assert big["ci95"][1] - big["ci95"][0] < (s["ci95"][1] - s["ci95"][0]) / 4
    assert big["ci95"][0] < 1.0 < big["ci95"][1]
    assert bootstrap_ci(small, seed=3) == bootstrap_ci(small, seed=3)
    assert bootstrap_ci([2.0, 2.0, 2.0]) == [2.0, 2.0]
    with pytest.raises(ValueError, match="finite"):
        bootstrap_ci([1.0, float("nan")])


def test_paired_calls_a_side_better_only_when_the_ci_excludes_zero():
    rng = np.random.default_rng(1)
    base = rng.normal(0, 1, 200)
    better = paired(base + 0.5 + rng.normal(0, 0.1, 200), base)
    assert better["better"] == "a" and better["ci95"][0] > 0
    # lower is better (e.g. KL): a larger a is then worse
    assert paired(base + 0.5, base, higher_is_better=False)["better"] == "b"
    noise = paired(base + rng.normal(0, 1, 200), base + rng.normal(0, 1, 200))
    assert noise["better"] is None and noise["ci95"][0] < 0 < noise["ci95"][1]
    with pytest.raises(ValueError, match="differ in size"):
        paired([1.0, 2.0], [1.0])
