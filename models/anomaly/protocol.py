"""The limited-label protocol of SpaceGNN: a tiny stratified labelled set, the rest is test.

`limited_label_split` draws 50 training and 50 validation nodes, each holding the graph's anomaly ratio
(at least one anomaly each), and leaves every other node for testing. `evaluate` scores anomaly
probabilities with AUROC, AUPRC and macro-F1, where F1's threshold is the one that maximizes macro-F1 on
the validation nodes (SpaceGNN's grid 0.05, 0.10, …, 0.95) and is then applied unchanged to the test
nodes. `summarize` gives mean ± std over seeds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

TRAIN_SIZE = 50
VAL_SIZE = 50
THRESHOLDS = np.linspace(0.05, 0.95, 19)


class ProtocolError(ValueError):
    """The graph cannot be split as the protocol asks (too few nodes or anomalies); one line."""


@dataclass(frozen=True)
class Split:
    """Node indices (int64 arrays, disjoint, sorted) of the labelled training and validation sets and the test set."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray


def _stratified_counts(n: int, ratio: float) -> tuple[int, int]:
    """(anomalies, normals) in a labelled set of n nodes at anomaly ratio `ratio`, at least one anomaly.

    SpaceGNN's code takes int(n·(1−r)) + 1 anomalies and int(n·r_normal) normals, which gives n or n + 1
    nodes depending on rounding; we round instead, so every set has exactly n nodes."""
    anomalies = min(n - 1, max(1, round(n * ratio)))
    return anomalies, n - anomalies


def limited_label_split(y: np.ndarray, seed: int, train_size: int = TRAIN_SIZE, val_size: int = VAL_SIZE) -> Split:
    """Stratified train/validation node sets of train_size and val_size nodes; all other nodes are test.

    y: (N,) 0 normal / 1 anomaly. The same seed always gives the same split."""
    y = np.asarray(y).astype(np.int64)
    anomalous = np.flatnonzero(y == 1)
    normal = np.flatnonzero(y == 0)
    if len(anomalous) + len(normal) != len(y):
        raise ProtocolError("labels must be 0 (normal) or 1 (anomaly)")
    ratio = len(anomalous) / max(1, len(y))
    a_tr, n_tr = _stratified_counts(train_size, ratio)
    a_va, n_va = _stratified_counts(val_size, ratio)
    if len(anomalous) < a_tr + a_va + 1 or len(normal) < n_tr + n_va + 1:
        raise ProtocolError(
            f"{len(anomalous)} anomalies and {len(normal)} normal nodes are too few for {train_size} training and "
            f"{val_size} validation nodes plus a test set: use a larger graph"
        )
    rng = np.random.default_rng(seed)
    a = rng.permutation(anomalous)
    n = rng.permutation(normal)
    train = np.sort(np.concatenate([a[:a_tr], n[:n_tr]]))
    val = np.sort(np.concatenate([a[a_tr : a_tr + a_va], n[n_tr : n_tr + n_va]]))
    test = np.sort(np.concatenate([a[a_tr + a_va :], n[n_tr + n_va :]]))
    return Split(train, val, test)


def macro_f1(y: np.ndarray, scores: np.ndarray, threshold: float) -> float:
    """Macro-averaged F1 of the prediction `scores > threshold` (scores are anomaly probabilities); a class
    with no true and no predicted members scores 0, as scikit-learn's f1_score(zero_division=0) does."""
    y = np.asarray(y).astype(bool)
    pred = np.asarray(scores) > threshold
    f1s = []
    for truth, guess in ((y, pred), (~y, ~pred)):
        tp = np.count_nonzero(truth & guess)
        denom = np.count_nonzero(truth) + np.count_nonzero(guess)
        f1s.append(2 * tp / denom if denom else 0.0)
    return float(np.mean(f1s))


def best_threshold(y_val: np.ndarray, s_val: np.ndarray) -> float:
    """The grid threshold with the highest validation macro-F1 (the lowest one on ties)."""
    f1s = [macro_f1(y_val, s_val, t) for t in THRESHOLDS]
    return float(THRESHOLDS[int(np.argmax(f1s))])


def evaluate(y: np.ndarray, scores: np.ndarray, split: Split) -> dict[str, float]:
    """Test AUROC, AUPRC and macro-F1 (threshold chosen on validation), plus the validation AUROC and F1."""
    y = np.asarray(y)
    scores = np.asarray(scores, dtype=np.float64)
    t = best_threshold(y[split.val], scores[split.val])
    yt, st = y[split.test], scores[split.test]
    return {
        "auroc": float(roc_auc_score(yt, st)),
        "auprc": float(average_precision_score(yt, st)),
        "f1": macro_f1(yt, st, t),
        "threshold": t,
        "val_auroc": float(roc_auc_score(y[split.val], scores[split.val])),
        "val_f1": macro_f1(y[split.val], scores[split.val], t),
    }


def summarize(runs: list[dict[str, float]], keys: tuple[str, ...] = ("auroc", "auprc", "f1")) -> dict[str, float]:
    """Mean and (population) standard deviation over seeds: {key_mean, key_std} for each key."""
    out = {}
    for k in keys:
        v = np.array([r[k] for r in runs], dtype=np.float64)
        out[f"{k}_mean"] = float(v.mean())
        out[f"{k}_std"] = float(v.std())
    return out
