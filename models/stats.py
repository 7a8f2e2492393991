"""Bootstrap statistics for model-side comparisons: the mean with a 95% CI, and the CI of a paired difference.

    summary(values)               # {"mean": m, "ci95": [low, high]}
    paired(a, b)                  # {"mean": mean(a - b), "ci95": [...], "better": "a" | "b" | None}

A method is called better than another only when the CI of the paired difference (the same windows, prompts
or seeds scored by both) excludes 0. Percentile bootstrap; every resampling takes a seed.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

RESAMPLES = 2000


def bootstrap_ci(
    values: Sequence[float] | np.ndarray, seed: int = 0, resamples: int = RESAMPLES, level: float = 0.95
) -> list[float]:
    """[low, high] percentile-bootstrap CI of the mean of `values` (1-D, at least one finite value)."""
    x = np.asarray(values, dtype=np.float64).reshape(-1)
    if x.size == 0 or not np.isfinite(x).all():
        raise ValueError("bootstrap_ci needs at least one value, all finite")
    rng = np.random.default_rng([seed, 95])
    means = x[rng.integers(x.size, size=(resamples, x.size))].mean(axis=1)
    tail = 100 * (1 - level) / 2
    return [float(np.percentile(means, tail)), float(np.percentile(means, 100 - tail))]


def summary(values: Sequence[float] | np.ndarray, seed: int = 0) -> dict:
    """{"mean", "ci95": [low, high], "n"} of `values`."""
    x = np.asarray(values, dtype=np.float64).reshape(-1)
    return {"mean": float(x.mean()), "ci95": bootstrap_ci(x, seed), "n": int(x.size)}


def paired(
    a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray, higher_is_better: bool = True, seed: int = 0
) -> dict:
    """The mean of a - b over paired items with its bootstrap CI, and which side is better ("a", "b", or None
    when the CI contains 0)."""
    x, y = (np.asarray(v, dtype=np.float64).reshape(-1) for v in (a, b))
    if x.shape != y.shape:
        raise ValueError(f"paired samples differ in size: {x.size} vs {y.size}")
    diff = summary(x - y, seed)
    low, high = diff["ci95"]
    sign = 1 if higher_is_better else -1
    better = None
    if low > 0 or high < 0:
        better = "a" if sign * diff["mean"] > 0 else "b"
    return {**diff, "better": better}
