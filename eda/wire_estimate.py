"""Placement-stage wire estimates per net, as RC trees for OpenSTA (eda.spef.write_spef).

All use the placed DEF's pin positions (cell centres; eda.spef.pin_xy), Manhattan distances and the
ESTIMATE_LAYER's per-µm R and C from the LEF, with no fitted factor:
  rmst           a rectilinear minimum spanning tree over the net's pins (Prim from the driver); each
                 tree edge is a π segment (half its C at each end). Routing adds detours and vias but
                 shares wire like a Steiner tree, so this is the fair pre-route estimate.
  hpwl_star      the net's half-perimeter wire length as capacitance, split evenly over its sinks, each
                 sink on its own branch from the driver (R from the driver-sink Manhattan distance).
  per_sink_star  every sink wired separately from the driver: the sum of driver-to-sink distances
                 (no sharing at all; 1.7-2.1x the routed capacitance on these designs, a strawman).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from eda.parse.def_file import Design
from eda.parse.lef import Lef
from eda.parse.liberty import Library
from eda.parse.netlist import Netlist
from eda.parse.rc_tree import RcNet
from eda.spef import ESTIMATE_LAYER, pin_xy


def prim_tree(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rectilinear minimum spanning tree over (n, 2) points (µm), grown from point 0 (Prim, O(n²)):
    (parent (n,) with parent[0] = -1, length (n,) µm of the edge to the parent, 0 for the root)."""
    n = len(points)
    parent = np.full(n, -1, dtype=np.int64)
    length = np.zeros(n)
    if n < 2:
        return parent, length
    best = np.abs(points - points[0]).sum(1)
    best_from = np.zeros(n, dtype=np.int64)
    done = np.zeros(n, dtype=bool)
    done[0] = True
    best[0] = np.inf
    for _ in range(n - 1):
        k = int(np.argmin(np.where(done, np.inf, best)))
        done[k] = True
        parent[k], length[k] = best_from[k], best[k]
        dist = np.abs(points - points[k]).sum(1)
        closer = ~done & (dist < best)
        best[closer], best_from[closer] = dist[closer], k
    return parent, length


def _signal_nets(design: Design, netlist: Netlist, library: Library):
    """(net name, driver (inst, pin), sinks [(inst, pin)]) for every net with one known driver and ≥ 1 sink."""
    for name, conns in design.nets.items():
        pins = [(inst, pin) for inst, pin in conns if inst == "PIN" or inst in design.components]
        driver = next((ip for ip in pins if is_driver(ip, design, netlist, library)), None)
        if driver is None or len(pins) < 2:
            continue
        yield name, driver, [ip for ip in pins if ip != driver]


def _rmst_net(name, driver, sinks, xy, r_um, c_um) -> RcNet:
    parent, length = prim_tree(np.array([xy(*driver)] + [xy(*s) for s in sinks]))
    cap = np.zeros(len(parent))
    for k in range(1, len(parent)):  # π segment: half of each edge's C at either end
        cap[k] += c_um * length[k] / 2
        cap[parent[k]] += c_um * length[k] / 2
    pins = tuple((k, "/".join(ip)) for k, ip in enumerate([driver, *sinks]))
    return RcNet(name, pins[0][1], tuple(int(p) for p in parent), tuple(r_um * length), tuple(cap), pins)


def _star_net(name, driver, sinks, xy, r_um, c_um, hpwl_split: bool) -> RcNet:
    dx, dy = xy(*driver)
    pts = np.array([(dx, dy)] + [xy(*s) for s in sinks])
    dist = np.abs(pts[1:] - pts[0]).sum(1)
    caps = np.full(len(sinks), c_um * float(np.ptp(pts[:, 0]) + np.ptp(pts[:, 1])) / len(sinks))
    if not hpwl_split:
        caps = c_um * dist
    pins = tuple((k, "/".join(ip)) for k, ip in enumerate([driver, *sinks]))
    return RcNet(name, pins[0][1], (-1,) + (0,) * len(sinks), (0.0, *(r_um * dist)), (0.0, *caps.tolist()), pins)


def estimate(kind: str, design: Design, netlist: Netlist, library: Library, lef: Lef) -> list[RcNet]:
    """One RC tree per signal net of the placed design under estimate `kind` (a key of ESTIMATES)."""
    layer = lef.layers[ESTIMATE_LAYER]
    r_um, c_um = layer.ohm_per_um(), layer.pf_per_um()

    def xy(inst: str, pin: str) -> tuple[float, float]:
        return pin_xy(design, lef, inst, pin)

    build: Callable = ESTIMATES[kind]
    return [build(n, d, s, xy, r_um, c_um) for n, d, s in _signal_nets(design, netlist, library)]


ESTIMATES: dict[str, Callable] = {
    "rmst": _rmst_net,
    "hpwl_star": lambda *a: _star_net(*a, hpwl_split=True),
    "per_sink_star": lambda *a: _star_net(*a, hpwl_split=False),
}


def is_driver(inst_pin: tuple[str, str], design: Design, netlist: Netlist, library: Library) -> bool:
    """Whether (inst, pin) drives its net: an input port, or a cell's output pin."""
    inst, pin = inst_pin
    if inst == "PIN":
        return netlist.ports.get(pin) == "input"
    cell = library.cells.get(design.components[inst].macro)
    return bool(cell and pin in cell.pins and cell.pins[pin].direction == "output")
