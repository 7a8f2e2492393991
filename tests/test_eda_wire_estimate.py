"""eda.wire_estimate: the rectilinear MST, and the three estimates against the routed add8 (real qflow + OpenSTA)."""

import numpy as np
import pytest

from eda.designs import SMALLEST
from eda.flow import ESTIMATE_MODES, LEF, LIBERTY, run_design
from eda.parse.def_file import read_def
from eda.parse.lef import read_lef
from eda.parse.liberty import read_liberty
from eda.parse.netlist import read_netlist
from eda.parse.rc_tree import read_rc
from eda.wire_estimate import estimate, prim_tree


def test_prim_tree_is_the_rectilinear_mst():
    # A plus: the four arm ends lie 5 from the centre and 10 from each other, so all join the centre.
    pts = np.array([[5.0, 5.0], [0.0, 5.0], [10.0, 5.0], [5.0, 0.0], [5.0, 10.0]])
    parent, length = prim_tree(pts)
    assert parent.tolist() == [-1, 0, 0, 0, 0] and length.sum() == pytest.approx(20.0)
    # Points on a line chain up: total length is the span, not the sum of distances from the first point.
    line = np.array([[0.0, 0.0], [3.0, 0.0], [1.0, 0.0], [7.0, 0.0]])
    parent, length = prim_tree(line)
    assert length.sum() == pytest.approx(7.0) and parent[1] == 2 and parent[3] == 1
    assert prim_tree(np.zeros((1, 2)))[0].tolist() == [-1]


@pytest.fixture(scope="module")
def nets(cache):
    flow = run_design(SMALLEST, 2.0)
    design, netlist = read_def(flow.path("placed.def")), read_netlist(flow.path("netlist.v"))
    library, lef = read_liberty(LIBERTY), read_lef(LEF)
    est = {k: {n.name: n for n in estimate(k, design, netlist, library, lef)} for k in ESTIMATE_MODES}
    routed = {n.name: n for n in read_rc(flow.path("routed.rc"))[0]}
    return flow, est, routed


def test_estimates_bracket_each_other(nets):
    _, est, routed = nets
    assert est["rmst"].keys() == est["hpwl_star"].keys() == est["per_sink_star"].keys()
    wire = {k: {n: sum(rc.cap) for n, rc in v.items()} for k, v in est.items()}
    for name in est["rmst"]:
        # HPWL ≤ any rectilinear spanning tree ≤ the per-sink star (itself a spanning tree).
        assert wire["hpwl_star"][name] <= wire["rmst"][name] + 1e-12 <= wire["per_sink_star"][name] + 2e-12
    common = [n for n in est["rmst"] if n in routed]
    assert len(common) > 0.8 * len(routed)
    total = {k: sum(wire[k][n] for n in common) for k in wire} | {"routed": sum(sum(routed[n].cap) for n in common)}
    # Routing detours: the RMST underestimates the routed wire, the per-sink star overestimates it.
    assert total["hpwl_star"] < total["rmst"] < total["routed"] < total["per_sink_star"]


def test_estimated_wires_only_add_delay(nets):
    flow, _, _ = nets
    labels = flow.labels()
    none = labels["none/arrival"]
    for mode in ESTIMATE_MODES:
        ok = ~np.isnan(none) & ~np.isnan(labels[f"{mode}/arrival"])
        assert np.all(labels[f"{mode}/arrival"][ok] >= none[ok] - 1e-6)
