"""The limited-label split, the metrics and threshold choice, and that test labels never reach training."""

import numpy as np
import pytest
import torch
from sklearn.metrics import f1_score
from torch_geometric.data import Data

from models.anomaly.protocol import (
    ProtocolError,
    Split,
    best_threshold,
    evaluate,
    limited_label_split,
    macro_f1,
    summarize,
)
from models.anomaly.train import TrainSettings, build_detector, fit

pytestmark = pytest.mark.usefixtures("one_thread")


def labels(n=2000, ratio=0.04, seed=0):
    y = np.zeros(n, dtype=np.int64)
    y[np.random.default_rng(seed).choice(n, int(n * ratio), replace=False)] = 1
    return y


def test_split_sizes_and_disjointness():
    y = labels()
    s = limited_label_split(y, seed=0)
    assert len(s.train) == 50 and len(s.val) == 50 and len(s.test) == len(y) - 100
    everything = np.concatenate([s.train, s.val, s.test])
    assert len(np.unique(everything)) == len(y)


@pytest.mark.parametrize("ratio,expected", [(0.04, 2), (0.1, 5), (0.005, 1), (0.2, 10)])
def test_split_is_stratified_by_anomaly_ratio(ratio, expected):
    y = labels(4000, ratio)
    s = limited_label_split(y, seed=3)
    assert y[s.train].sum() == expected and y[s.val].sum() == expected
    assert y[s.test].sum() == y.sum() - 2 * expected


def test_split_is_deterministic_per_seed():
    y = labels()
    a, b, c = (limited_label_split(y, seed=s) for s in (7, 7, 8))
    assert all(np.array_equal(getattr(a, f), getattr(b, f)) for f in ("train", "val", "test"))
    assert not np.array_equal(a.train, c.train)


def test_split_refuses_too_few_anomalies():
    y = np.zeros(500, dtype=np.int64)
    y[:2] = 1
    with pytest.raises(ProtocolError, match="too few"):
        limited_label_split(y, seed=0)


def test_macro_f1_matches_scikit_learn():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    s = rng.random(300)
    for t in (0.05, 0.3, 0.5, 0.95, 1.0):
        assert macro_f1(y, s, t) == pytest.approx(f1_score(y, s > t, average="macro", zero_division=0))


def test_threshold_is_chosen_on_validation_and_applied_to_test():
    y = np.array([0] * 8 + [1] * 2 + [0] * 8 + [1] * 2)
    # Validation anomalies score 0.62/0.64 and normals ≤ 0.58: the best grid threshold is 0.60.
    s_val = np.array([0.1] * 6 + [0.55, 0.58] + [0.62, 0.64])
    # On test, one anomaly scores 0.59: below the validation threshold, so it is missed.
    s_test = np.array([0.1] * 8 + [0.59, 0.9])
    split = Split(train=np.array([], dtype=np.int64), val=np.arange(10), test=np.arange(10, 20))
    assert best_threshold(y[:10], s_val) == pytest.approx(0.60)
    m = evaluate(y, np.concatenate([s_val, s_test]), split)
    assert m["threshold"] == pytest.approx(0.60)
    assert m["f1"] == pytest.approx(f1_score(y[10:], s_test > 0.60, average="macro"))
    assert m["auroc"] == 1.0 and m["val_f1"] == 1.0


def test_summary_is_mean_and_std():
    out = summarize([{"auroc": 0.9, "auprc": 0.5, "f1": 0.7}, {"auroc": 0.7, "auprc": 0.3, "f1": 0.5}])
    assert out["auroc_mean"] == pytest.approx(0.8) and out["auroc_std"] == pytest.approx(0.1)


@pytest.mark.parametrize("method", ["spacegnn", "mlp", "gcn"])
def test_test_labels_never_reach_training(method):
    n = 400
    y = torch.from_numpy(labels(n, 0.1, seed=1))
    torch.manual_seed(0)
    x = torch.randn(n, 6) + y[:, None].float()
    edge_index = torch.randint(0, n, (2, 1600))
    split = limited_label_split(y.numpy(), seed=0)
    scrambled = y.clone()
    scrambled[split.test] = torch.from_numpy(np.random.default_rng(5).permutation(y[split.test].numpy()))
    settings = TrainSettings(epochs=6, eval_every=2, hidden=16)
    states = []
    for labels_seen in (y, scrambled):
        torch.manual_seed(0)
        model = build_detector(method, 6, "toy", hidden=16)
        fit(model, model.preprocess(Data(x=x, edge_index=edge_index, y=labels_seen)), split, 1e-2, settings)
        states.append(model.state_dict())
    for (k, a), b in zip(states[0].items(), states[1].values(), strict=True):
        assert torch.equal(a, b), k
