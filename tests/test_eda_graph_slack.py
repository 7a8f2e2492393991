"""eda.graph and eda.slack on the smallest design's flow (add8): graph structure, propagation, training, CLI."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from eda.designs import SMALLEST
from eda.flow import LEF, LIBERTY, run_design
from eda.graph import FEATURES, graph_from_flow
from eda.parse.liberty import read_liberty
from eda.slack import (
    SlackPredictor,
    arc_gates,
    fast_rat,
    main,
    predict,
    predicted_clock_mhz,
    propagate,
    teacher_targets,
    train,
)

ROOT = Path(__file__).resolve().parents[1]
CLOCK_NS = 2.0


@pytest.fixture(scope="module")
def graph():
    # The user cache: test_eda_flow runs this design in a fresh cache already, so share one run here.
    flow = run_design(SMALLEST, CLOCK_NS)
    data, names = graph_from_flow(flow.work_dir, LIBERTY, LEF)
    return flow, data, names


def test_graph_structure(graph):
    flow, data, names = graph
    pins = data["pin"]
    assert pins.x.shape == (len(names), len(FEATURES) + len(read_liberty(LIBERTY).cells) + 1)
    assert len(set(names)) == len(names) and set(names) <= set(flow.labels()["pins"].tolist())
    # Every flop D pin and every output port is an endpoint: add8 registers a, b (16) and s (9).
    assert int(pins.endpoint.sum()) == 16 + 9 + 9
    net = data["pin", "net_out", "pin"].edge_index
    cell = data["pin", "cell_out", "pin"].edge_index
    assert torch.equal(data["pin", "net_in", "pin"].edge_index, net.flip(0))
    # Topological levels increase along every edge: the propagated clock reaches the flops through the
    # clock buffers, and CLK→Q arcs continue those paths.
    level = pins.topo_level
    for src, dst in (net, cell):
        assert torch.all(level[dst] > level[src])
    clock = pins.x[:, FEATURES.index("clock_pin")] > 0
    assert int(clock.sum()) == 16 + 9 and torch.all(pins.at_routed[clock] > pins.at_routed[names.index("clk")])
    # Placement features are real: some nets are tens of µm long, loads are positive for drivers.
    assert pins.x[:, FEATURES.index("star_len")].max() > 0.2
    drivers = pins.x[:, FEATURES.index("driver")] > 0
    assert torch.all(pins.x[drivers, FEATURES.index("load")] > 0)


def test_base_modes_differ_only_in_base_timing(graph):
    flow, data, names = graph
    none, names_none = graph_from_flow(flow.work_dir, LIBERTY, LEF, base="none")
    assert names_none == names and data.base == "rmst" and none.base == "none"
    base_cols = [FEATURES.index("at_base"), FEATURES.index("slew_base")]
    other = [k for k in range(data["pin"].x.shape[1]) if k not in base_cols]
    assert torch.equal(data["pin"].x[:, other], none["pin"].x[:, other])
    # RMST wires make the base later than no wires; no feature comes from routing.
    assert float((data["pin"].x[:, base_cols[0]] - none["pin"].x[:, base_cols[0]]).max()) > 0.005
    assert "route_layers" not in FEATURES
    with pytest.raises(ValueError, match="mix base modes"):
        train([data, none], epochs=1, progress=False)


def test_gates_and_teacher_propagation(graph):
    _, data, _ = graph
    gate = arc_gates(data)
    dst = data["pin", "cell_out", "pin"].edge_index[1]
    sums = torch.zeros(data["pin"].num_nodes).index_add(0, dst, gate)
    non_seq = sums[dst] > 0
    assert torch.allclose(sums[dst][non_seq], torch.ones(int(non_seq.sum())), atol=1e-5)
    # Propagating the teacher-forced local deltas with the same gates rebuilds the per-pin ΔAT where the
    # gate is decisive (one critical input); the median error is tiny.
    delta, valid = teacher_targets(data)
    dat = propagate(data, delta[:, 0])
    true = data["pin"].at_routed - data["pin"].at_base
    err = (dat - true)[valid[:, 0]].abs()
    assert float(err.max()) < 1e-4


def test_train_predict_and_rat(graph):
    _, data, names = graph
    model = train([data], epochs=12, progress=False)
    result = predict(model, data, names, CLOCK_NS)
    ep = result.endpoint
    true = data["pin"].slack_routed.numpy()[ep]
    assert np.abs(result.slack[ep] - true).mean() < 0.1
    # Given the routed arrivals and slews, the fast RAT is OpenSTA's required time at every endpoint (the
    # capture clock's arrival and slew, the same setup tables, the output delay).
    pins = data["pin"]
    rat = fast_rat(data, torch.nan_to_num(pins.at_routed), torch.nan_to_num(pins.slew_routed), CLOCK_NS).numpy()
    req = pins.required_routed.numpy()[ep]
    assert np.nanmax(np.abs(rat[ep] - req)) < 0.002
    # The clock is propagated, so required times differ between flops, and the prediction's RAT follows them.
    d_pins = [d for d, _, _ in data.setup_arcs]
    assert np.ptp(pins.required_routed.numpy()[d_pins]) > 0 and np.nanmean(np.abs(result.rat[ep] - req)) < 0.02
    assert result.wns <= 0 and result.tns <= result.wns
    paths = result.paths(data, 2)
    assert len(paths) == 2 and paths[0]["slack_ns"] <= paths[1]["slack_ns"] and len(paths[0]["pins"]) > 3


def test_save_load_and_cli(graph, tmp_path, capsys):
    flow, data, names = graph
    model = train([data], epochs=2, progress=False)
    model.save_pretrained(tmp_path / "m")
    again = SlackPredictor.from_pretrained(tmp_path / "m")
    assert torch.equal(model(data), again(data))
    cmd = [sys.executable, "-m", "eda.slack", "predict", str(flow.path("placed.def")), "--clock", str(CLOCK_NS)]
    png = tmp_path / "slack.png"
    out = subprocess.run(
        [*cmd, "--model", str(tmp_path / "m"), "--json", "--plot", str(png)], capture_output=True, text=True, cwd=ROOT
    )
    assert out.returncode == 0, out.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = json.loads(out.stdout)
    assert summary["endpoints"] == int(data["pin"].endpoint.sum()) and summary["critical_paths"]
    # The wall time covers parsing, the RMST estimate's STA run and graph building, not only the GNN.
    assert summary["wall_seconds"] > float(flow.stage_seconds["sta_rmst"]) / 10
    assert main([*cmd[3:], "--model", str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err
    assert "no trained model" in err and err.count("\n") == 1
    with pytest.raises(SystemExit, match="2"):
        main([*cmd[3:], "--model", str(tmp_path / "m"), "--clock", "0"])
    assert "--clock: 0 is out of range" in capsys.readouterr().err


def test_predicted_clock_for_replay(graph, tmp_path, capsys):
    """sim.replay --clock-from takes the clock E2ESlack predicts for a placed folder: 1000 / critical path."""
    from sim.replay import ReplayError, predicted_clocks
    from sim.replay import main as replay_main

    flow, data, _ = graph
    model = train([data], epochs=2, progress=False)
    model.save_pretrained(tmp_path / "m")
    mhz = predicted_clock_mhz(Path(flow.work_dir), tmp_path / "m")
    ep = data["pin"].endpoint.numpy()
    routed_critical = flow.clock_ns - float(np.nanmin(data["pin"].slack_routed.numpy()[ep]))
    assert mhz == pytest.approx(1000 / routed_critical, rel=0.1)
    with pytest.raises(ReplayError, match="not found"):
        predicted_clocks([f"mixpe={tmp_path}"])
    assert replay_main(["llama-2-7b", "--clock-from", "nope=x"]) == 2
    err = capsys.readouterr().err
    assert "expected PE=PLACED_DIR" in err and err.count("\n") == 1
