"""Graphs for node anomaly detection: the paper's datasets from the user's own folder, and netlists built here.

Nothing is downloaded. A dataset argument is one of
* a netlist graph built from this project's hardware: netlist-<design>-<trojan|outlier> (see netlist_graph);
* a paper dataset name (PAPER_DATASETS), looked up in the data folder (--data-dir, else $MIXKIT_GAD_DATA,
  else ./datasets) as <name>.pt, <name>.npz or <name> (GADBench's DGL file);
* a path to such a file.

Formats: `.pt` holds a torch_geometric `Data` (or a dict) with x (N, F), edge_index (2, E) and y (N,) or a
one-hot (N, 2); `.npz` holds arrays x, edge_index, y; anything else is read as a DGL graph file
(`dgl.save_graphs`, node data "feature" and "label" as GADBench writes them), which needs the dgl package.
Graphs are made undirected; labels must be 0/1 (one-hot labels, as in T-Finance, are arg-maxed).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch_geometric.data import Data
from torch_geometric.utils import coalesce, remove_self_loops, to_undirected

from models.anomaly.netlist_graph import ANOMALIES, DESIGNS, dataset_names, netlist_graph

# GADBench file names of the paper's nine datasets.
PAPER_DATASETS = ("weibo", "reddit", "tolokers", "amazon", "tfinance", "yelp", "questions", "dgraphfin", "tsocial")
SUFFIXES = (".pt", ".npz", "")


class DatasetError(ValueError):
    """A dataset that is absent or malformed; the message is one line naming the fix."""


def default_data_dir() -> Path:
    return Path(os.environ.get("MIXKIT_GAD_DATA", "datasets"))


def dataset_label(spec: str) -> str:
    """A short name for results tables: the dataset name, or a file's stem."""
    return Path(spec).stem if os.sep in spec or Path(spec).suffix in (".pt", ".npz") else spec


def load_dataset(spec: str, data_dir: Path | None = None, netlist_seed: int = 0) -> Data:
    """The graph named or pointed to by `spec` as Data(x float32 (N, F), edge_index (2, E) undirected, y int64)."""
    if spec.startswith("netlist-"):
        parts = spec.split("-")
        if len(parts) != 3 or parts[1] not in DESIGNS or parts[2] not in ANOMALIES:
            raise DatasetError(f"unknown netlist dataset '{spec}': choose one of {', '.join(dataset_names())}")
        return netlist_graph(parts[1], parts[2], seed=netlist_seed)
    path = Path(spec)
    if not path.is_file():
        if spec.lower() not in PAPER_DATASETS:
            raise DatasetError(
                f"'{spec}' is neither a file nor a known dataset: give a path, one of {', '.join(PAPER_DATASETS)}"
                f" (from your own folder) or one of {', '.join(dataset_names())}"
            )
        folder = data_dir or default_data_dir()
        found = [folder / f"{spec.lower()}{s}" for s in SUFFIXES if (folder / f"{spec.lower()}{s}").is_file()]
        if not found:
            raise DatasetError(
                f"dataset '{spec}' not found in {folder.resolve()}: put GADBench's DGL file '{spec.lower()}' (or"
                f" {spec.lower()}.pt / {spec.lower()}.npz) there, or pass --data-dir / set MIXKIT_GAD_DATA"
            )
        path = found[0]
    return _validated(_read(path), path)


def _read(path: Path) -> dict:
    if path.suffix == ".pt":
        from torch_geometric.data.data import DataEdgeAttr, DataTensorAttr
        from torch_geometric.data.storage import GlobalStorage

        try:  # weights_only: a data file must not run code; PyG's Data classes are allowed explicitly
            with torch.serialization.safe_globals([Data, DataEdgeAttr, DataTensorAttr, GlobalStorage]):
                obj = torch.load(path, weights_only=True)
        except Exception as e:  # noqa: BLE001 (any unpickling failure means the same to the user)
            raise DatasetError(f"{path} is not a readable torch file ({type(e).__name__}): save a Data or dict") from e
        return dict(obj) if isinstance(obj, dict) else {k: getattr(obj, k, None) for k in ("x", "edge_index", "y")}
    if path.suffix == ".npz":
        try:
            with np.load(path) as z:
                return {k: torch.from_numpy(z[k]) for k in ("x", "edge_index", "y") if k in z}
        except (OSError, ValueError) as e:
            raise DatasetError(f"{path} is not a readable .npz file ({e}): save arrays x, edge_index, y") from e
    with path.open("rb") as f:
        head = f.read(64).lstrip()
    if path.suffix.lower() == ".json" or head[:1] in (b"{", b"["):
        raise DatasetError(
            f"{path} is JSON text, not a graph file: save the graph as .pt (Data or dict of x, edge_index, y) or .npz"
        )
    return _read_dgl(path)


def _read_dgl(path: Path) -> dict:
    try:
        import dgl
    except ImportError:
        raise DatasetError(
            f"{path} looks like a DGL graph file, and reading it needs dgl: pip install dgl, or convert it to .pt/.npz"
        ) from None
    try:
        graph = dgl.load_graphs(str(path))[0][0]
    except Exception as e:  # noqa: BLE001
        raise DatasetError(f"{path} is not a readable DGL graph file ({type(e).__name__}): check the file") from e
    graph = dgl.to_homogeneous(graph, ndata=["feature", "label"]) if graph.is_heterograph else graph
    src, dst = graph.edges()
    return {"x": graph.ndata["feature"], "edge_index": torch.stack([src, dst]), "y": graph.ndata["label"]}


def _validated(raw: dict, path: Path) -> Data:
    x, edge_index, y = (raw.get(k) for k in ("x", "edge_index", "y"))
    if x is None or edge_index is None or y is None:
        missing = [k for k in ("x", "edge_index", "y") if raw.get(k) is None]
        raise DatasetError(f"{path} has no {', '.join(missing)}: store node features x, edge_index and labels y")
    x = torch.as_tensor(x).float()
    y = torch.as_tensor(y)
    edge_index = torch.as_tensor(edge_index).long()
    if y.dim() == 2:
        y = y.argmax(dim=1)
    n = x.size(0)
    if x.dim() != 2 or edge_index.dim() != 2 or edge_index.size(0) != 2 or y.numel() != n:
        raise DatasetError(
            f"{path}: expected x (N, F), edge_index (2, E) and y (N,), got {tuple(x.shape)}, "
            f"{tuple(edge_index.shape)}, {tuple(y.shape)}"
        )
    if edge_index.numel() and (edge_index.min() < 0 or edge_index.max() >= n):
        raise DatasetError(f"{path}: edge_index refers to nodes outside 0..{n - 1}")
    if not torch.isin(y.unique(), torch.tensor([0, 1])).all():
        raise DatasetError(f"{path}: labels must be 0 (normal) or 1 (anomaly), found {y.unique().tolist()[:5]}")
    edge_index = coalesce(to_undirected(remove_self_loops(edge_index)[0], num_nodes=n), num_nodes=n)
    return Data(x=x, edge_index=edge_index, y=y.long(), name=path.stem)
