"""sim.routed_cost: the routed clock is a critical path, not a bound, and the area counts placed cells only."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import sim.routed_cost as rc
from eda.designs import SMALLEST, design_verilog


@pytest.fixture(scope="module")
def routed(cache):
    text, top = design_verilog(SMALLEST)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(rc, "START_CLOCK_NS", 8.0)  # add8 meets 8 ns: the period must shrink until it fails
        return rc.route_and_time(text, top, route_layers=3)


def test_clock_is_timed_where_the_design_fails(routed):
    assert routed["timed_at_ns"] < 8.0
    critical_ns = 1000 / routed["clock_mhz"]
    # timed at a period it misses, and the period before (4/3 of it) still met
    assert routed["timed_at_ns"] < critical_ns <= routed["timed_at_ns"] / 0.75 + 1e-9
    assert routed["clock_mhz_no_wires"] >= routed["clock_mhz"]


def test_area_sums_the_netlists_cells_without_fill(routed, cache):
    work = next(Path(cache, "eda").glob(f"routed-{routed['design']}-*"))
    netlist = (work / "netlist.v").read_text()
    areas = rc.liberty_area_um2()
    instances = [m for m in re.findall(r"^\s*(\w+)\s+\w+\s*\(", netlist, re.M) if m in areas]
    assert routed["cells"] == len(instances) > 50
    assert routed["area_um2"] == pytest.approx(sum(areas[m] for m in instances))


def test_unknown_cell_names_the_def(tmp_path):
    bad = tmp_path / "bad.def"
    bad.write_text(
        "VERSION 5.6 ;\nDESIGN d ;\nUNITS DISTANCE MICRONS 100 ;\nDIEAREA ( 0 0 ) ( 100 100 ) ;\n"
        "COMPONENTS 1 ;\n- u1 NOT_A_CELL + PLACED ( 0 0 ) N ;\nEND COMPONENTS\nEND DESIGN\n"
    )
    with pytest.raises(ValueError, match="bad.def: cells NOT_A_CELL"):
        rc.def_cells_area_um2(str(bad))
