"""The timing graph of a placed design as torch-geometric `HeteroData` (TimingGCN / E2ESlack layout).

Nodes: pins (instance pins `INST/PIN` and ports), one node type 'pin'. Edges:
  ('pin', 'net_out', 'pin')  driver → sink,   ('pin', 'net_in', 'pin')  sink → driver,
  ('pin', 'cell_out', 'pin') cell input → output along each Liberty delay arc.
Node features `x` (FEATURES, then a one-hot of the pin's cell type over the library, ports last):
placement-derived wire estimates (star Manhattan length, HPWL, fanout, Elmore delay, load; the net's rectilinear
MST length and, at a sink, its driver-to-sink path length along that tree), distances to the die edges, pin
capacitance and LUT-derived delay/slew increments (the library's NLDM tables evaluated at the estimated load
versus the pins-only load), and the arrival and slew of a base STA run (no wires, or the RMST estimate's wires;
eda.slack predicts the change from it). Nothing comes from routing. Lengths in 100 µm, times in ns, capacitances
in pF. `topo_level` orders pins for propagation; `fall_critical` marks pins whose falling transition is the
critical one in the base timing.
Labels (when flow labels are given): y_at (ns, late arrival, max of rise/fall) per mode, endpoint masks.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from eda.parse.def_file import Design, read_def
from eda.parse.lef import Lef, read_lef
from eda.parse.liberty import Library, Table, read_liberty
from eda.parse.netlist import Netlist, read_netlist
from eda.spef import ESTIMATE_LAYER, pin_xy
from eda.wire_estimate import is_driver, prim_tree

FEATURES = (
    "in_port", "out_port", "driver", "endpoint", "clock_pin",
    "d_left", "d_right", "d_bottom", "d_top", "pin_cap",
    "fanout", "hpwl", "star_len", "elmore", "load", "wire_cap",
    "lut_delay_inc", "lut_slew_inc", "at_base", "slew_base", "rmst_len", "rmst_path",
)  # fmt: skip
# Softmax temperature (ns) of the cell-arc gate: inputs within ~this of the latest input share the gate.
GATE_TAU_NS = 0.02
DELAY_ARCS = ("combinational", "rising_edge", "falling_edge", "")


@dataclass
class PinTable:
    """Per-pin timing from one OpenSTA run: late arrival, slack, required and slew (ns); NaN where unset.
    fall_critical: the falling transition has the worse slack at the pin."""

    at: np.ndarray
    slack: np.ndarray
    required: np.ndarray
    slew: np.ndarray
    fall_critical: np.ndarray


def pin_table(labels: dict[str, np.ndarray], mode: str, names: list[str]) -> PinTable:
    """Align a flow's labels (eda.flow.FlowResult.labels) for `mode` to the pin order `names`."""
    index = {n: i for i, n in enumerate(labels["pins"].tolist())}
    rows = np.array([index.get(n, -1) for n in names])
    known, at_row = rows >= 0, np.maximum(rows, 0)

    def align(per_row: np.ndarray) -> np.ndarray:
        return np.where(known, per_row[at_row], np.nan)

    # Unconstrained pins are all-NaN rows: numpy warns about them, they stay NaN.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        slack_all = labels[f"{mode}/slack"]
        worst = np.nanargmin(np.where(np.isnan(slack_all), np.inf, slack_all), axis=1)
        return PinTable(
            at=align(np.nanmax(labels[f"{mode}/arrival"], axis=1)),
            slack=align(np.nanmin(slack_all, axis=1)),
            required=align(labels[f"{mode}/required"][np.arange(len(worst)), worst]),
            slew=align(np.nanmax(labels[f"{mode}/slew"], axis=1)),
            fall_critical=(worst == 1)[at_row] & known,
        )


def _lut(table: Table | None, load: float, slew: float) -> float:
    if table is None:
        return 0.0
    return table.lookup(total_output_net_capacitance=load, input_net_transition=slew)


def _arc_delay(arc, load: float, slew: float) -> tuple[float, float]:
    """(max of cell_rise/cell_fall, max of rise/fall_transition) of a Liberty arc at a load (pF) and slew (ns)."""
    t = arc.tables
    delay = max(_lut(t.get("cell_rise"), load, slew), _lut(t.get("cell_fall"), load, slew))
    tran = max(_lut(t.get("rise_transition"), load, slew), _lut(t.get("fall_transition"), load, slew))
    return delay, tran


def build_graph(
    design: Design,
    netlist: Netlist,
    library: Library,
    lef: Lef,
    base: PinTable | None = None,
    names_hint: list[str] | None = None,
):
    """(HeteroData, pin names). `base` is the base STA timing aligned to the returned names (see pin_table);
    if None, the at_base/slew_base features are zero (call again with it once the names are known)."""
    from torch_geometric.data import HeteroData

    layer = lef.layers[ESTIMATE_LAYER]
    r_um, c_um = layer.ohm_per_um(), layer.pf_per_um()
    cell_types = sorted(library.cells)
    names: list[str] = list(names_hint) if names_hint else []
    index: dict[str, int] = {n: i for i, n in enumerate(names)}
    owner: dict[str, str] = {}  # pin name → cell type ('' for ports)
    xy: dict[str, tuple[float, float]] = {}

    def node(inst: str, pin: str) -> int | None:
        if inst == "PIN":
            if pin not in netlist.ports:
                return None
            name, cell = pin, ""
        else:
            comp = design.components.get(inst)
            lib_cell = library.cells.get(comp.macro) if comp else None
            if lib_cell is None or pin not in lib_cell.pins:
                return None
            name, cell = f"{inst}/{pin}", comp.macro
        if name not in index:
            index[name] = len(names)
            names.append(name)
        owner[name] = cell
        xy[name] = pin_xy(design, lef, inst, pin)
        return index[name]

    net_src, net_dst, net_attr = [], [], []
    per_pin: dict[int, dict[str, float]] = {}
    for conns in design.nets.values():
        ids = [(node(i, p), i, p) for i, p in conns]
        ids = [t for t in ids if t[0] is not None]
        drivers = [t for t in ids if is_driver((t[1], t[2]), design, netlist, library)]
        if len(drivers) != 1 or len(ids) < 2:
            continue
        d, di, dp = drivers[0]
        sinks = [t for t in ids if t[0] != d]
        pts = np.array([xy[names[t[0]]] for t in ids])
        hpwl = float(np.ptp(pts[:, 0]) + np.ptp(pts[:, 1]))
        dx, dy = xy[names[d]]
        pin_caps = sum(_pin_cap(names[s], owner, library) for s, _, _ in sinks)
        lens = [abs(xy[names[s]][0] - dx) + abs(xy[names[s]][1] - dy) for s, _, _ in sinks]
        wire_cap = c_um * sum(lens)
        parent, seg = prim_tree(np.array([xy[names[d]]] + [xy[names[s]] for s, _, _ in sinks]))
        path = tree_paths(parent, seg)
        rmst = float(seg.sum())
        for k, ((s, _, _), length) in enumerate(zip(sinks, lens, strict=True), 1):
            elmore = r_um * length * (c_um * length / 2 + _pin_cap(names[s], owner, library)) * 1e-3  # ohm·pF → ns
            net_src.append(d)
            net_dst.append(s)
            net_attr.append([(xy[names[s]][0] - dx) / 100, (xy[names[s]][1] - dy) / 100, length / 100, elmore])
            per_pin[s] = {
                "star_len": length / 100, "elmore": elmore, "hpwl": hpwl / 100, "fanout": len(sinks),
                "rmst_len": rmst / 100, "rmst_path": path[k] / 100,
            }  # fmt: skip
        per_pin[d] = {
            "hpwl": hpwl / 100, "fanout": len(sinks), "load": pin_caps + wire_cap, "wire_cap": wire_cap,
            "pins_load": pin_caps, "star_len": sum(lens) / 100, "rmst_len": rmst / 100,
        }  # fmt: skip

    n = len(names)
    x = np.zeros((n, len(FEATURES) + len(cell_types) + 1), dtype=np.float32)
    f = {name: k for k, name in enumerate(FEATURES)}
    x0, y0, x1, y1 = design.die
    cell_src, cell_dst, cell_attr = [], [], []
    endpoint = np.zeros(n, dtype=bool)
    setup_tables: list[tuple[int, int, object]] = []  # (D pin, CLK pin, setup arc)
    nominal_slew = 0.1
    for name, k in index.items():
        cell = owner.get(name, "")
        px, py = xy.get(name, (0.0, 0.0))
        x[k, [f["d_left"], f["d_right"], f["d_bottom"], f["d_top"]]] = [
            (px - x0) / 100, (x1 - px) / 100, (py - y0) / 100, (y1 - py) / 100,
        ]  # fmt: skip
        x[k, len(FEATURES) + (cell_types.index(cell) if cell else len(cell_types))] = 1.0
        for key, val in per_pin.get(k, {}).items():
            if key in f:
                x[k, f[key]] = val
        if not cell:
            is_in = netlist.ports.get(name) == "input"
            x[k, f["in_port"] if is_in else f["out_port"]] = 1.0
            endpoint[k] = not is_in
            continue
        inst, pin = name.rsplit("/", 1)
        lib_pin = library.cells[cell].pins[pin]
        x[k, f["pin_cap"]] = lib_pin.capacitance * 100
        x[k, f["clock_pin"]] = float(lib_pin.is_clock)
        if lib_pin.direction != "output":
            continue
        x[k, f["driver"]] = 1.0
        load = per_pin.get(k, {}).get("load", 0.0)
        pins_load = per_pin.get(k, {}).get("pins_load", 0.0)
        for arc in lib_pin.arcs:
            src = index.get(f"{inst}/{arc.related_pin}")
            if src is None or arc.kind not in DELAY_ARCS:
                continue
            d_est, s_est = _arc_delay(arc, load, nominal_slew)
            d_pin, s_pin = _arc_delay(arc, pins_load, nominal_slew)
            x[k, f["lut_delay_inc"]] = max(x[k, f["lut_delay_inc"]], d_est - d_pin)
            x[k, f["lut_slew_inc"]] = max(x[k, f["lut_slew_inc"]], s_est - s_pin)
            cell_src.append(src)
            cell_dst.append(k)
            cell_attr.append([d_pin, d_est, s_pin, s_est])
    for name, k in index.items():
        cell = owner.get(name, "")
        if not cell:
            continue
        inst, pin = name.rsplit("/", 1)
        for arc in library.cells[cell].pins[pin].arcs:
            if arc.kind == "setup_rising" and f"{inst}/{arc.related_pin}" in index:
                endpoint[k] = True
                setup_tables.append((k, index[f"{inst}/{arc.related_pin}"], arc))
    if base is not None:
        x[:, f["at_base"]] = np.nan_to_num(base.at)
        x[:, f["slew_base"]] = np.nan_to_num(base.slew)
    fall_critical = base.fall_critical if base is not None else np.zeros(n, dtype=bool)

    data = HeteroData()
    data["pin"].x = torch.from_numpy(x)
    data["pin"].endpoint = torch.from_numpy(endpoint)
    data["pin"].fall_critical = torch.from_numpy(fall_critical)
    data["pin"].xy = torch.tensor([xy.get(nm, (0.0, 0.0)) for nm in names], dtype=torch.float32)
    ns, nd = torch.tensor(net_src, dtype=torch.long), torch.tensor(net_dst, dtype=torch.long)
    data["pin", "net_out", "pin"].edge_index = torch.stack([ns, nd]) if net_src else torch.zeros(2, 0, dtype=torch.long)
    data["pin", "net_out", "pin"].edge_attr = torch.tensor(net_attr, dtype=torch.float32).reshape(-1, 4)
    data["pin", "net_in", "pin"].edge_index = data["pin", "net_out", "pin"].edge_index.flip(0)
    data["pin", "net_in", "pin"].edge_attr = data["pin", "net_out", "pin"].edge_attr
    cs, cd = torch.tensor(cell_src, dtype=torch.long), torch.tensor(cell_dst, dtype=torch.long)
    data["pin", "cell_out", "pin"].edge_index = (
        torch.stack([cs, cd]) if cell_src else torch.zeros(2, 0, dtype=torch.long)
    )
    data["pin", "cell_out", "pin"].edge_attr = torch.tensor(cell_attr, dtype=torch.float32).reshape(-1, 4)
    data["pin"].topo_level = torch.from_numpy(topo_levels(n, net_src + cell_src, net_dst + cell_dst))
    data.setup_arcs = setup_tables
    return data, names


def _pin_cap(name: str, owner: dict[str, str], library: Library) -> float:
    cell = owner.get(name, "")
    if not cell:
        return 0.0
    return library.cells[cell].pins[name.rsplit("/", 1)[1]].capacitance


def tree_paths(parent: np.ndarray, length: np.ndarray) -> np.ndarray:
    """Distance from the root to every node of a tree given each node's parent and edge length (same units)."""
    path = np.zeros(len(parent))
    done = parent < 0
    while not done.all():  # at most the tree's depth rounds
        ready = ~done & done[np.maximum(parent, 0)]
        path[ready] = path[parent[ready]] + length[ready]
        done |= ready
    return path


def topo_levels(n: int, src: list[int], dst: list[int]) -> np.ndarray:
    """Longest-path level of each pin over the given edges (Kahn's algorithm). The clock is propagated, so
    paths run from the clock port through the clock buffers and CLK→Q arcs to the D pins; a D pin drives
    nothing, so registers break every cycle."""
    src_a, dst_a = np.asarray(src, dtype=np.int64), np.asarray(dst, dtype=np.int64)
    indeg = np.bincount(dst_a, minlength=n)
    order = np.argsort(src_a, kind="stable")
    starts = np.searchsorted(src_a[order], np.arange(n + 1))
    level = np.zeros(n, dtype=np.int64)
    frontier = list(np.flatnonzero(indeg == 0))
    seen = 0
    while frontier:
        nxt = []
        for u in frontier:
            seen += 1
            for e in order[starts[u] : starts[u + 1]]:
                v = dst_a[e]
                level[v] = max(level[v], level[u] + 1)
                indeg[v] -= 1
                if indeg[v] == 0:
                    nxt.append(v)
        frontier = nxt
    if seen != n:
        raise ValueError(f"the timing graph has a combinational loop through {n - seen} pins")
    return level


def graph_from_flow(work_dir: str | Path, liberty: str | Path, lef_path: str | Path, base: str = "rmst"):
    """(HeteroData with labels, pin names) for one eda.flow run folder, on base STA mode `base` ('none' or
    'rmst'). data['pin'] holds at_/slack_/required_/slew_ of every mode of eda.flow.MODES and of 'base'."""
    from eda.flow import MODES, load_result

    work = Path(work_dir)
    result = load_result(work)
    labels = result.labels()
    design, netlist = read_def(work / "placed.def"), read_netlist(work / "netlist.v")
    library, lef = read_liberty(liberty), read_lef(lef_path)
    _, names = build_graph(design, netlist, library, lef)
    tables = {m: pin_table(labels, m, names) for m in MODES}
    tables["base"] = tables[base]
    data, names = build_graph(design, netlist, library, lef, tables[base], names)
    for mode, t in tables.items():
        data["pin"][f"at_{mode}"] = torch.from_numpy(t.at.astype(np.float32))
        data["pin"][f"slack_{mode}"] = torch.from_numpy(t.slack.astype(np.float32))
        data["pin"][f"required_{mode}"] = torch.from_numpy(t.required.astype(np.float32))
        data["pin"][f"slew_{mode}"] = torch.from_numpy(t.slew.astype(np.float32))
    data.clock_ns = result.clock_ns
    data.design = result.design
    data.base = base
    return data, names
