"""eda.preroute_clock and the demo's E2ESlack step on the two smallest designs, in a fresh cache: the quick model
trained where none exists, a design placed and its clock predicted (also through `sim.replay --clock-from` with a
Verilog file), the post-route clock only once the route is cached, and the replay at each clock."""

import json

import numpy as np
import pytest

from eda.designs import design_verilog
from eda.flow import ROUTE_LAYERS, run_design, run_placement
from eda.preroute_clock import ensure_model, model_is_current, preroute_clock
from eda.slack import default_model_dir, predicted_clock_mhz

SMALL = ("add8", "mul4s0")


@pytest.fixture(scope="module")
def model(cache):
    """A fresh machine: no model yet, so ensure_model trains a quick one on SMALL's flows."""
    assert not model_is_current(default_model_dir())
    return ensure_model(designs=SMALL, epochs=3, progress=False)


def test_fresh_machine_trains_a_quick_model_then_reuses_it(model):
    assert model["trained_here"] and model["trained_on"] == list(SMALL) and model["flow_seconds"] > 0
    again = ensure_model(progress=False)
    assert not again["trained_here"] and again["trained_on"] == list(SMALL)
    # A model built on other graph features than today's is stale: the demo would train a new one.
    config = default_model_dir() / "config.json"
    saved = config.read_text()
    config.write_text(json.dumps(json.loads(saved) | {"features": ["in_port"]}))
    try:
        assert not model_is_current(default_model_dir())
    finally:
        config.write_text(saved)


def test_clock_before_routing_and_after_once_routed(model, tmp_path):
    text, top = design_verilog("add8")
    # Starting on 4 layers is a route nobody ran: no post-route clock, and the demo does not route.
    unrouted = preroute_clock(text, top, 4, default_model_dir())
    assert unrouted.routed_mhz is None
    clock = preroute_clock(text, top, ROUTE_LAYERS, default_model_dir())  # the quick model's flow routed this
    flow = run_design("add8", 5.0)
    assert clock.cells == flow.cells and clock.placed_dir == unrouted.placed_dir
    # The routed clock is the critical path of the cached route: 1000 / (period − worst slack) at any period.
    worst = float(np.nanmin(flow.labels()["routed/slack"]))
    assert clock.routed_mhz == pytest.approx(1000 / (flow.clock_ns - worst), rel=1e-3)
    assert clock.rmst_mhz == pytest.approx(1000 / (flow.clock_ns - float(np.nanmin(flow.labels()["rmst/slack"]))), 1e-3)
    assert 0.5 < clock.predicted_mhz / clock.routed_mhz < 2 and clock.predict_seconds > 0


def test_clock_from_a_verilog_file(model, tmp_path):
    """sim.replay --clock-from PE=VERILOG places an hw.build output (top from its manifest) and predicts."""
    from sim.replay import ReplayError, predicted_clocks

    text, top = design_verilog("mul4s0")
    verilog = tmp_path / "design.v"
    verilog.write_text(text)
    (tmp_path / "design.json").write_text(json.dumps({"top": top}))
    clocks = predicted_clocks([f"mixpe={verilog}"])
    assert clocks["mixpe"] == pytest.approx(predicted_clock_mhz(run_placement(text, top)))
    with pytest.raises(ReplayError, match="not found"):
        predicted_clocks([f"int8={tmp_path / 'missing.v'}"])


def test_demo_replays_at_each_clock(model, capsys):
    from hw.config import PEConfig
    from sim.demo import replay_at_clocks
    from sim.energy import PECost

    text, top = design_verilog("add8")
    clock = preroute_clock(text, top, ROUTE_LAYERS, default_model_dir())
    cost = PECost(area_um2=1e4, fmax_mhz=clock.routed_mhz * 2, energy_pj_active=1.0, energy_pj_idle=0.1, source="t")
    out = replay_at_clocks(PEConfig("mixpe", 4, "unsigned", "int8", 128), cost, clock)
    seconds = out["replay_seconds"]
    assert list(out["clock_mhz"])[-1].startswith("post-route") and len(seconds) == 4
    # Twice the clock runs faster (not twice: DRAM is fixed in GB/s, so memory-bound phases take the same time).
    assert seconds["synthesized (yosys + OpenSTA, no wires)"] < seconds["post-route OpenSTA (cached route)"]
    assert "E2ESlack vs post-route" in capsys.readouterr().out
