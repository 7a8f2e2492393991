"""E2ESlack-style pre-routing slack prediction: a GNN for wire-induced delay, propagated in topological order.
The command line is eda/slack.py (`python -m eda.slack predict ...`).

Model (TimingGCN-like, residual on a base STA run: the RMST wire estimate's by default, or no wires): NetConv
layers (torch-geometric MessagePassing over net_out, net_in and cell_out edges) predict each pin's local
wire-induced delay δ (ns) beyond the base run's: the wire delay into a sink pin, or the extra cell delay an
output pin sees from its wire load. `propagate` then accumulates δ level by level in topological order:
ΔAT(sink) = ΔAT(driver) + δ, ΔAT(output) = Σ gate·ΔAT(input) + δ, where the gate is a softmax over the cell's
inputs of their base arrival plus the LUT arc delay (the critical input).
Predicted arrival = base STA arrival + ΔAT. Training uses teacher forcing (true predecessor ΔAT), as
TimingGCN does; prediction runs the full propagation.
Fast RAT: at a flop D pin, clock period + the predicted clock arrival at the flop's CLK pin − the Liberty
setup_rising constraint (of the D transition that is critical in the base timing) at the predicted D and CLK
slews (base slew + the model's predicted slew change); at an output port, the clock period − the output delay.
The clock is propagated (eda.flow), so the clock tree's wire delays move both launch and capture.
Slack = RAT − arrival; WNS = min(0, min slack), TNS = Σ min(0, slack) over endpoints (ns).
The reported wall_seconds cover everything after the placement: parsing, the base wire estimate and its STA run,
graph building, the GNN and the RAT.
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch_geometric.nn import MessagePassing

from eda.graph import FEATURES, GATE_TAU_NS

# ΔAT and δ are ~0.01–0.3 ns; the network works on them ×TARGET_SCALE.
TARGET_SCALE = 10.0
# Normalized features are clipped to ±FEATURE_CLIP standard deviations.
FEATURE_CLIP = 8.0


def _mlp(*sizes: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, b in zip(sizes[:-1], sizes[1:], strict=True):
        layers += [nn.Linear(a, b), nn.LeakyReLU(0.2)]
    return nn.Sequential(*layers[:-1])


class NetConv(MessagePassing):
    """One message-passing step along one edge type: messages MLP([x_dst, x_src, edge_attr]), sum- and
    max-aggregated, then MLP([x, sum, max]) → out_dim."""

    def __init__(self, in_dim: int, edge_dim: int, out_dim: int, hidden: int = 32) -> None:
        super().__init__(aggr=["sum", "max"])
        self.msg = _mlp(2 * in_dim + edge_dim, hidden, hidden)
        self.update_mlp = _mlp(in_dim + 2 * hidden, hidden, out_dim)

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor, edge_attr: torch.Tensor) -> torch.Tensor:
        agg = self.propagate(edge_index, x=x, edge_attr=edge_attr)
        return self.update_mlp(torch.cat([x, agg], dim=-1))

    def message(self, x_i: torch.Tensor, x_j: torch.Tensor, edge_attr: torch.Tensor) -> torch.Tensor:
        return self.msg(torch.cat([x_i, x_j, edge_attr], dim=-1))


EDGE_TYPES = (("pin", "net_out", "pin"), ("pin", "net_in", "pin"), ("pin", "cell_out", "pin"))


class SlackPredictor(nn.Module):
    """(n, 2) per pin: local wire-induced delay δ (ns; see the module docstring) and the wire-induced slew
    change (ns, local: a pin's slew follows from its driver's load and its wire, not from a path)."""

    def __init__(self, in_dim: int, hidden: int = 32, layers: int = 3, base: str = "rmst") -> None:
        super().__init__()
        self.config = {"in_dim": in_dim, "hidden": hidden, "layers": layers, "base": base}
        self.register_buffer("x_mean", torch.zeros(in_dim))
        self.register_buffer("x_std", torch.ones(in_dim))
        self.encode = nn.Linear(in_dim, hidden)
        self.convs = nn.ModuleList(
            nn.ModuleDict({et[1]: NetConv(hidden, 4, hidden, hidden) for et in EDGE_TYPES}) for _ in range(layers)
        )
        self.head = _mlp(hidden + in_dim, hidden, 2)
        # Start from δ = 0, the base run's own timing: with the RMST base that is the RMST estimate itself.
        nn.init.zeros_(self.head[-1].weight)
        nn.init.zeros_(self.head[-1].bias)

    def forward(self, data) -> torch.Tensor:
        # Clipped so a pin far outside the training designs' range cannot blow up its prediction.
        x = ((data["pin"].x - self.x_mean) / self.x_std).clamp(-FEATURE_CLIP, FEATURE_CLIP)
        h = self.encode(x)
        for conv in self.convs:
            h = h + sum(
                conv[et[1]](h, data[et].edge_index, data[et].edge_attr) for et in EDGE_TYPES
            )  # residual: each layer adds context from drivers, sinks and cell neighbours
        return self.head(torch.cat([h, x], dim=-1)) / TARGET_SCALE

    def save_pretrained(self, folder: str | Path) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "config.json").write_text(json.dumps({**self.config, "features": list(FEATURES)}, indent=2))
        torch.save(self.state_dict(), folder / "model.pt")

    @classmethod
    def from_pretrained(cls, folder: str | Path) -> SlackPredictor:
        folder = Path(folder)
        cfg = json.loads((folder / "config.json").read_text())
        model = cls(cfg["in_dim"], cfg["hidden"], cfg["layers"], cfg["base"])
        model.load_state_dict(torch.load(folder / "model.pt", weights_only=True))
        return model.eval()


def arc_gates(data) -> torch.Tensor:
    """Softmax weight of each cell_out edge among its output pin's incoming arcs (critical input in base timing).
    CLK→Q arcs count like any arc: a propagated clock launches data when its edge reaches the flop."""
    src, dst = data["pin", "cell_out", "pin"].edge_index
    at = torch.nan_to_num(data["pin"].x[:, FEATURES.index("at_base")])
    arc_delay = data["pin", "cell_out", "pin"].edge_attr[:, 0]
    score = (at[src] + arc_delay) / GATE_TAU_NS
    from torch_geometric.utils import softmax

    return softmax(score, dst, num_nodes=data["pin"].num_nodes)


def _incoming(data) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(src, dst, weight) over net_out (weight 1) and cell_out (gate) edges."""
    ns, nd = data["pin", "net_out", "pin"].edge_index
    cs, cd = data["pin", "cell_out", "pin"].edge_index
    w = torch.cat([torch.ones(ns.numel()), arc_gates(data)])
    return torch.cat([ns, cs]), torch.cat([nd, cd]), w


def propagate(data, delta: torch.Tensor) -> torch.Tensor:
    """ΔAT per pin (ns): δ accumulated in topological order along the gated incoming edges."""
    src, dst, w = _incoming(data)
    level = data["pin"].topo_level
    out = torch.zeros_like(delta)
    for lv in range(int(level.max()) + 1 if level.numel() else 0):
        nodes = (level == lv).nonzero().squeeze(-1)
        mask = level[dst] == lv
        acc = torch.zeros_like(delta).index_add(0, dst[mask], w[mask] * out[src[mask]])
        out = out.index_copy(0, nodes, acc[nodes] + delta[nodes])
    return out


def teacher_targets(data) -> tuple[torch.Tensor, torch.Tensor]:
    """((n, 2) targets in ns, (n, 2) valid mask): δ(p) = ΔAT(p) − Σ gate·ΔAT(pred) with the true
    routed-minus-base ΔAT, and the routed-minus-base slew."""
    dat = data["pin"].at_routed - data["pin"].at_base
    dslew = data["pin"].slew_routed - data["pin"].slew_base
    dat0 = torch.nan_to_num(dat)
    src, dst, w = _incoming(data)
    pred = torch.zeros_like(dat0).index_add(0, dst, w * dat0[src])
    targets = torch.stack([dat0 - pred, torch.nan_to_num(dslew)], dim=1)
    return targets, torch.stack([~torch.isnan(dat), ~torch.isnan(dslew)], dim=1)


def fast_rat(data, at: torch.Tensor, slew: torch.Tensor, clock_ns: float) -> torch.Tensor:
    """Required arrival time (ns) at each endpoint (NaN elsewhere) given each pin's arrival and slew (ns); see
    the module docstring."""
    from eda.flow import IO_DELAY_NS

    rat = torch.full((data["pin"].num_nodes,), float("nan"))
    at, slew = at.tolist(), slew.tolist()
    rat[data["pin"].endpoint] = clock_ns - IO_DELAY_NS  # output ports; flop D pins are overwritten below
    fall = data["pin"].fall_critical.tolist()
    for d_pin, clk_pin, arc in data.setup_arcs:
        point = {"related_pin_transition": slew[clk_pin], "constrained_pin_transition": slew[d_pin]}
        table = arc.tables["fall_constraint" if fall[d_pin] else "rise_constraint"]
        rat[d_pin] = clock_ns + at[clk_pin] - table.lookup(**point)
    return rat


@dataclass
class Prediction:
    """Per-endpoint predicted slack (ns) and the totals; paths are the top critical paths as pin lists."""

    names: list[str]
    endpoint: np.ndarray
    arrival: np.ndarray
    rat: np.ndarray
    slack: np.ndarray
    wns: float
    tns: float
    seconds: float

    def paths(self, data, count: int) -> list[dict]:
        src, dst, w = _incoming(data)
        best_in: dict[int, int] = {}
        order = torch.argsort(w)  # later writes win: keep the highest-weight predecessor
        for e in order.tolist():
            if w[e] > 0:
                best_in[int(dst[e])] = int(src[e])
        eps = np.flatnonzero(self.endpoint)
        worst = eps[np.argsort(self.slack[eps])][:count]
        out = []
        for ep in worst:
            path, p = [int(ep)], int(ep)
            while p in best_in and len(path) < 10_000:
                p = best_in[p]
                path.append(p)
            out.append(
                {
                    "endpoint": self.names[ep],
                    "slack_ns": float(self.slack[ep]),
                    "pins": [(self.names[q], float(self.arrival[q])) for q in reversed(path)],
                }
            )
        return out


@torch.no_grad()
def predict(model: SlackPredictor, data, names: list[str], clock_ns: float) -> Prediction:
    t0 = time.perf_counter()
    delta = model(data)
    at = torch.nan_to_num(data["pin"].x[:, FEATURES.index("at_base")]) + propagate(data, delta[:, 0])
    slew = torch.nan_to_num(data["pin"].x[:, FEATURES.index("slew_base")]) + delta[:, 1]
    rat = fast_rat(data, at, slew, clock_ns)
    slack = (rat - at).numpy()
    ep = data["pin"].endpoint.numpy() & ~np.isnan(slack)
    s = slack[ep]
    return Prediction(
        names, ep, at.numpy(), rat.numpy(), slack, float(min(0.0, s.min())), float(np.minimum(s, 0).sum()),
        time.perf_counter() - t0,
    )  # fmt: skip


def fit_normalization(model: SlackPredictor, graphs: list) -> None:
    xs = torch.cat([g["pin"].x for g in graphs])
    model.x_mean.copy_(xs.mean(0))
    std = xs.std(0)
    # A feature constant in training (a cell type no training design uses) keeps its raw scale.
    model.x_std.copy_(torch.where(std < 1e-6, torch.ones_like(std), std))


def train(graphs: list, epochs: int = 150, lr: float = 3e-3, seed: int = 0, progress: bool = True) -> SlackPredictor:
    """Train on graphs from eda.graph.graph_from_flow (one base mode) with teacher forcing (MSE on δ,
    ns × TARGET_SCALE)."""
    from tqdm import tqdm

    bases = {g.base for g in graphs}
    if len(bases) != 1:
        raise ValueError(f"training graphs mix base modes {sorted(bases)}: build them with one base")
    torch.manual_seed(seed)
    model = SlackPredictor(graphs[0]["pin"].x.shape[1], base=bases.pop())
    fit_normalization(model, graphs)
    targets = [teacher_targets(g) for g in graphs]
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
    gen = torch.Generator().manual_seed(seed)
    for _ in tqdm(range(epochs), desc="train", unit="epoch", disable=not progress):
        for k in torch.randperm(len(graphs), generator=gen).tolist():
            target, valid = targets[k]
            pred = model(graphs[k])
            loss = ((pred - target)[valid] * TARGET_SCALE).pow(2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        sched.step()
    return model.eval()


def default_model_dir() -> Path:
    from hw.cache import cache_root

    return cache_root() / "eda" / "e2eslack-model"


def predict_placed(def_path: Path, netlist_path: Path, clock_ns: float, model: SlackPredictor):
    """(Prediction, graph, pin names, wall seconds) for a placed DEF and its post-placement netlist: parsing,
    the model's base STA run (with the RMST estimate's SPEF unless the base is 'none'), graph building,
    GNN and RAT, all inside the wall time."""
    from eda.flow import LEF, LIBERTY, estimate_spef, run_sta
    from eda.graph import build_graph, pin_table
    from eda.parse.def_file import read_def
    from eda.parse.lef import read_lef
    from eda.parse.liberty import read_liberty
    from eda.parse.netlist import read_netlist

    t0 = time.perf_counter()
    base = model.config["base"]
    design, netlist = read_def(def_path), read_netlist(netlist_path)
    library, lef = read_liberty(LIBERTY), read_lef(LEF)
    _, names = build_graph(design, netlist, library, lef)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "netlist.v").write_text(netlist_path.read_text())
        spef = None
        if base != "none":
            (work / "placed.def").write_text(def_path.read_text())
            (work / "base.spef").write_text(estimate_spef(base, work)[0])
            spef = "base.spef"
        sta_names, arr, _, _, _ = run_sta(work, netlist.top, clock_ns, base, spef)
    labels = {"pins": np.array(sta_names)}
    for k, what in enumerate(("arrival", "required", "slack", "slew")):
        labels[f"{base}/{what}"] = arr[:, 2 * k : 2 * k + 2]
    data, names = build_graph(design, netlist, library, lef, pin_table(labels, base, names), names)
    result = predict(model, data, names, clock_ns)
    return result, data, names, time.perf_counter() - t0


def placed_folder(path: Path) -> Path:
    """`path` itself for a placed design folder (placed.def and netlist.v); for a Verilog file, such as
    `python -m hw.build` writes, the folder eda.flow.run_placement synthesizes and places it into (cached), with
    the top module the hw.build manifest beside it (<stem>.json) names, or else the file's stem."""
    from eda.flow import FlowError, run_placement

    if path.suffix.lower() not in (".v", ".sv"):
        return path
    if not path.is_file():
        raise FlowError(f"{path} not found: pass a placed eda.flow folder or a Verilog file (hw.build output)")
    manifest = path.with_suffix(".json")
    top = json.loads(manifest.read_text()).get("top", path.stem) if manifest.is_file() else path.stem
    return run_placement(path.read_text(), top)


def predicted_clock_mhz(folder: Path, model_dir: Path | None = None) -> float:
    """The clock (MHz) E2ESlack predicts before routing for a placed design folder (placed.def and netlist.v:
    an eda.flow entry or eda.flow.run_placement's) or a Verilog file (placed first: placed_folder): 1000 /
    (period − worst endpoint slack), which does not depend on the period timed at, since endpoint slacks shift
    exactly with it. FlowError if a file is missing."""
    from eda.flow import FlowError

    model_dir = model_dir or default_model_dir()
    if not (model_dir / "model.pt").is_file():
        raise FlowError(f"{model_dir / 'model.pt'} not found: train one with python -m bench.e2eslack")
    folder = placed_folder(folder)
    for need in (folder / "placed.def", folder / "netlist.v"):
        if not need.is_file():
            raise FlowError(f"{need} not found: pass a placed eda.flow folder or a Verilog file (hw.build output)")
    period = 10.0
    result = predict_placed(
        folder / "placed.def", folder / "netlist.v", period, SlackPredictor.from_pretrained(model_dir)
    )[0]
    return 1000.0 / (period - float(np.nanmin(result.slack[result.endpoint])))
