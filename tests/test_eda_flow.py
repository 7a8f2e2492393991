"""eda.flow on the smallest design (add8, ~130 cells, a few seconds): real qflow + OpenSTA, labels, cache, CLI."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from eda.designs import SMALLEST, design_verilog
from eda.flow import LIBERTY, MODES, FlowError, failed_routes, load_result, run_design, run_flow
from eda.parse.def_file import read_def
from eda.parse.liberty import read_liberty
from eda.parse.netlist import read_netlist
from eda.parse.sdf import read_sdf

ROOT = Path(__file__).resolve().parents[1]
CLOCK_NS = 2.0


@pytest.fixture(scope="module")
def flow(cache):
    return run_design(SMALLEST, CLOCK_NS)


def test_flow_runs_every_stage_and_records_times(flow):
    assert flow.design == SMALLEST and flow.top == "add8" and 50 < flow.cells < 500
    stages = ("synthesize", "place", "route", "route_final", *(f"spef_{m}" for m in MODES[1:]))
    for stage in stages + tuple(f"sta_{m}" for m in MODES):
        assert flow.stage_seconds[stage] > 0
    assert flow.stage_seconds["route"] == flow.stage_seconds["route_final"] and "replace" not in flow.stage_seconds
    assert flow.rc_nets_malformed == 0 and flow.spef_nets_skipped == dict.fromkeys(MODES[1:], 0)
    assert flow.route_layers == 3 and flow.route_failures == {}
    for mode in MODES:
        assert flow.wns_ns[mode] <= 0 and flow.tns_ns[mode] <= flow.wns_ns[mode] + 1e-9


def test_labels_are_consistent_per_pin(flow):
    labels = flow.labels()
    pins = labels["pins"].tolist()
    netlist = read_netlist(flow.path("netlist.v"))
    assert "s[8]" in pins and "clk" in pins and any(p.endswith("/D") for p in pins)
    for mode in MODES:
        at, req, slack = labels[f"{mode}/arrival"], labels[f"{mode}/required"], labels[f"{mode}/slack"]
        assert at.shape == (len(pins), 2)
        both = ~np.isnan(slack) & ~np.isnan(req) & ~np.isnan(at)
        assert both.sum() > len(netlist.instances)
        np.testing.assert_allclose(slack[both], (req - at)[both], atol=1e-6)
    # Wires only add delay: every data pin arrives no earlier after routing than with no wires.
    none, routed = labels["none/arrival"], labels["routed/arrival"]
    ok = ~np.isnan(none) & ~np.isnan(routed)
    assert np.all(routed[ok] >= none[ok] - 1e-6) and np.nanmax(routed - none) > 0.005
    # OpenSTA's worst slack at the endpoints is the reported WNS (clamped at 0 when met).
    worst = min(np.nanmin(labels["routed/slack"]), 0.0)
    assert worst == pytest.approx(flow.wns_ns["routed"], abs=1e-4)


def test_real_def_and_sdf_parse(flow):
    placed, routed = read_def(flow.path("placed.def")), read_def(flow.path("routed.def"))
    assert placed.components.keys() == routed.components.keys() and placed.name == "add8"
    assert {c.macro for c in placed.components.values()} - set(read_liberty(LIBERTY).cells) <= {"FILL"}
    x0, y0, x1, y1 = placed.die
    assert all(x0 <= c.x <= x1 and y0 <= c.y <= y1 for c in placed.components.values())
    sdf = read_sdf(flow.path("routed.sdf"))
    assert sdf.design == "add8" and len(sdf.iopaths) > flow.cells // 2 and sdf.interconnects
    assert all(d.rise is not None and d.rise >= 0 for _, _, d in sdf.iopaths)


def test_cache_hit_and_changed_input(flow):
    text, top = design_verilog(SMALLEST)
    again = run_flow(text, top, CLOCK_NS, design=SMALLEST)
    assert again == flow
    with pytest.raises(FlowError, match="no module 'nope'"):
        run_flow(text, "nope", CLOCK_NS)
    for bad in (0.0, float("inf"), float("nan")):
        with pytest.raises(FlowError, match="must be finite and positive"):
            run_flow(text, top, bad)


def test_unrouted_nets_add_a_layer(flow, tmp_path):
    """On 2 metal layers qrouter leaves add8 nets unrouted; the flow places and routes again on 3."""
    log = tmp_path / "route.log"
    log.write_text("Final: Failed net routes: 12\nList of failed nets follows:\n")
    assert failed_routes(log) == 12
    log.write_text("Final: No failed routes!\n")
    assert failed_routes(log) == 0
    two = run_design(SMALLEST, CLOCK_NS, route_layers=2)
    assert two.route_failures["2"] > 0 and two.route_layers == 3 and two.cells == flow.cells
    # Routing's time counts the failed attempt too, and the placement redone after it.
    seconds = two.stage_seconds
    assert seconds["route"] > seconds["route_final"] > 0 and seconds["replace"] > 0
    assert Path(two.work_dir, "qflow_route_2layers.log").is_file()
    with pytest.raises(FlowError, match="pass --layers between 2 and 6"):
        run_design(SMALLEST, CLOCK_NS, route_layers=7)


def _cli(*args, env_cache):
    env = {"PATH": "/usr/bin:/bin", "MIXKIT_CACHE": str(env_cache), "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "eda.flow", *args], capture_output=True, text=True, env=env, cwd=ROOT)


def test_cli(flow, cache, tmp_path):
    ok = _cli("--design", SMALLEST, "--clock", str(CLOCK_NS), "--json", env_cache=cache)
    assert ok.returncode == 0 and json.loads(ok.stdout)["work_dir"] == flow.work_dir
    # The achieved clock that sim.replay --clock takes: the critical path is the period minus WNS.
    assert json.loads(ok.stdout)["clock_mhz"]["routed"] == pytest.approx(1000 / (CLOCK_NS - flow.wns_ns["routed"]))
    missing = _cli(str(tmp_path / "none.v"), env_cache=cache)
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1 and "not found" in missing.stderr
    src = tmp_path / "x.v"
    src.write_text("module y(input clk); endmodule\n")
    wrong = _cli(str(src), "--clock", "-1", env_cache=cache)
    assert wrong.returncode == 2 and "--clock: -1 is out of range" in wrong.stderr and not list(tmp_path.glob("*.tmp"))


def test_moved_entry_points_at_its_new_folder(flow, tmp_path):
    moved = tmp_path / "moved"
    shutil.copytree(flow.work_dir, moved)
    result = load_result(moved)
    assert result.work_dir == str(moved) and result.wns_ns == flow.wns_ns
    np.testing.assert_array_equal(result.labels()["pins"], flow.labels()["pins"])


def test_placement_effort_is_full_below_the_threshold_and_bounded_above():
    from eda.flow import FULL_EFFORT_PLACE_CELLS, placement_speedup

    assert placement_speedup(100) == placement_speedup(FULL_EFFORT_PLACE_CELLS) == 1
    sizes = [FULL_EFFORT_PLACE_CELLS * f for f in (2, 4, 8)]
    fast = [placement_speedup(n) for n in sizes]
    assert fast == sorted(fast) and fast[0] > 1
    # moves per temperature, cells * cells^(1/3) / fast, stay within 2x of the full-effort size's
    for n, f in zip(sizes, fast, strict=True):
        assert 0.5 < (n ** (4 / 3) / f) / FULL_EFFORT_PLACE_CELLS ** (4 / 3) < 2
