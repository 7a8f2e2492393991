"""Training and scoring of every detector under the limited-label protocol.

`build_detector` makes a method by name; `fit` trains it on the 50 labelled training nodes (one full batch
per epoch, Adam, NLL) and keeps the state with the best validation AUROC + macro-F1, checked every
`eval_every` epochs; `score` gives anomaly probabilities of all nodes; `run_seed` splits, trains and
evaluates one seed and `summary` gives mean ± std over seeds. Only training and validation labels are
ever read before the final evaluation.
"""

from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import roc_auc_score
from torch import nn
from torch_geometric.data import Data
from tqdm import tqdm

from models.anomaly import METHODS
from models.anomaly.baselines import BWGNN, H2GCN, MLP, gat, gcn, graphsage
from models.anomaly.protocol import Split, best_threshold, evaluate, limited_label_split, macro_f1, summarize
from models.anomaly.spacegnn import PAPER_SETTINGS, SpaceGNN, SpaceGNNSettings
from sim.files import atomic_write

SCORE_CHUNK = 4096  # nodes per SpaceGNN scoring block, bounding memory on large graphs


@dataclass(frozen=True)
class TrainSettings:
    """epochs: optimizer steps (one batch of the 50 training nodes each); eval_every: epochs between
    validation checks; lr: Adam learning rate (SpaceGNN takes the paper's per-dataset lr where it has one);
    hidden: width of every model."""

    epochs: int = 100
    eval_every: int = 5
    lr: float = 1e-3
    hidden: int = 128


def spacegnn_settings(dataset: str, hidden: int) -> SpaceGNNSettings:
    """The paper's settings for its datasets, the defaults (3 layers, equal branch weights) otherwise."""
    base = PAPER_SETTINGS.get(dataset, SpaceGNNSettings())
    return SpaceGNNSettings(**{**asdict(base), "hidden": hidden})


def build_detector(method: str, in_dim: int, dataset: str, hidden: int = 128) -> nn.Module:
    """A fresh, randomly initialized detector (seed torch first for a deterministic init)."""
    if method == "spacegnn":
        return SpaceGNN(in_dim, spacegnn_settings(dataset, hidden))
    builders = {"mlp": MLP, "gcn": gcn, "gat": gat, "graphsage": graphsage, "bwgnn": BWGNN, "h2gcn": H2GCN}
    if method not in builders:
        raise ValueError(f"unknown method '{method}': choose from {', '.join(METHODS)}")
    return builders[method](in_dim, hidden)


def learning_rate(method: str, dataset: str, settings: TrainSettings) -> float:
    if method == "spacegnn" and dataset in PAPER_SETTINGS:
        return PAPER_SETTINGS[dataset].lr
    return settings.lr


@torch.no_grad()
def score(model: nn.Module, data: Data, nodes: torch.Tensor | None = None) -> np.ndarray:
    """Anomaly probabilities (len(nodes),) in eval mode; all nodes when nodes is None."""
    model.eval()
    nodes = torch.arange(data.num_nodes) if nodes is None else nodes
    if isinstance(model, SpaceGNN):
        parts = [model.anomaly_probability(data, c) for c in torch.split(nodes, SCORE_CHUNK)]
        return torch.cat(parts).numpy()
    return model.anomaly_probability(data, nodes).numpy()


def fit(model: nn.Module, data: Data, split: Split, lr: float, settings: TrainSettings, progress: bool = False) -> dict:
    """Train in place on split.train, restore the best validation state; return the training history.

    `data` must come from model.preprocess(). Returns {"best_epoch", "val_selection", "seconds"}."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    train = torch.as_tensor(split.train)
    val = torch.as_tensor(split.val)
    y_train = data.y[train]
    y_val = data.y[val].numpy()
    best = (-np.inf, 0, copy.deepcopy(model.state_dict()))
    t0 = time.perf_counter()
    for epoch in tqdm(range(1, settings.epochs + 1), desc="train", unit="epoch", leave=False, disable=not progress):
        model.train()
        opt.zero_grad()
        loss = F.nll_loss(model(data, train), y_train)
        loss.backward()
        opt.step()
        if epoch % settings.eval_every == 0 or epoch == settings.epochs:
            s = score(model, data, val)
            selection = _auc_or_half(y_val, s) + macro_f1(y_val, s, best_threshold(y_val, s))
            if selection > best[0]:
                best = (selection, epoch, copy.deepcopy(model.state_dict()))
    model.load_state_dict(best[2])
    return {"best_epoch": best[1], "val_selection": float(best[0]), "seconds": time.perf_counter() - t0}


def _auc_or_half(y: np.ndarray, s: np.ndarray) -> float:
    """Validation AUROC, or 0.5 (chance) when training diverged to non-finite scores."""
    return float(roc_auc_score(y, s)) if np.isfinite(s).all() else 0.5


def run_seed(
    method: str, data: Data, dataset: str, seed: int, settings: TrainSettings, progress: bool = False
) -> tuple[nn.Module, dict]:
    """Split, build, train and evaluate one method at one seed: (model, metrics dict)."""
    split = limited_label_split(data.y.numpy(), seed)
    torch.manual_seed(seed)
    model = build_detector(method, data.num_features, dataset, settings.hidden)
    prepared = model.preprocess(data)
    history = fit(model, prepared, split, learning_rate(method, dataset, settings), settings, progress)
    t0 = time.perf_counter()
    scores = score(model, prepared)
    metrics = evaluate(data.y.numpy(), scores, split)
    metrics.update(seed=seed, train_seconds=history["seconds"], score_seconds=time.perf_counter() - t0,
                   best_epoch=history["best_epoch"])  # fmt: skip
    return model, metrics


def summary(method: str, dataset: str, runs: list[dict]) -> dict:
    """{"method", "dataset", "runs": per-seed metrics, and mean/std of auroc, auprc, f1}."""
    return {"method": method, "dataset": dataset, "runs": runs, **summarize(runs)}


def checkpoint_path(out_dir: Path, dataset: str, method: str, seed: int) -> Path:
    return out_dir / "checkpoints" / dataset / method / f"seed{seed}.pt"


def save_checkpoint(model: nn.Module, path: Path, method: str, dataset: str, in_dim: int, hidden: int) -> None:
    """The trained weights and what is needed to rebuild the model, written atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {"method": method, "dataset": dataset, "in_dim": in_dim, "hidden": hidden, "state_dict": model.state_dict()}
    atomic_write(path, lambda tmp: torch.save(state, tmp))


def load_checkpoint(path: Path) -> nn.Module:
    """A detector rebuilt from save_checkpoint's file, in eval mode."""
    state = torch.load(path, weights_only=True)
    model = build_detector(state["method"], state["in_dim"], state["dataset"], state["hidden"])
    model.load_state_dict(state["state_dict"])
    return model.eval()


def eval_seed(path: Path, data: Data, seed: int) -> dict:
    """Test metrics of a saved detector on `data` under the split of `seed` (the one it was trained with)."""
    model = load_checkpoint(path)
    t0 = time.perf_counter()
    scores = score(model, model.preprocess(data))
    metrics = evaluate(data.y.numpy(), scores, limited_label_split(data.y.numpy(), seed))
    metrics.update(seed=seed, train_seconds=0.0, score_seconds=time.perf_counter() - t0)
    return metrics
