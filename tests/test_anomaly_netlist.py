"""Netlist graphs of the project's own hardware: cell library, simulation, Trojans, outliers, and an
end-to-end CLI run on the smallest design (the int8 PE, ~1,200 cells, synthesized by yosys here)."""

import json

import numpy as np
import pytest

from models.anomaly.__main__ import main
from models.anomaly.netlist_graph import (
    DESIGNS,
    _comb_order,
    _drivers,
    _loads,
    edges,
    feature_names,
    inject_outliers,
    insert_trojans,
    library,
    netlist_graph,
    node_features,
    read_netlist,
    simulate,
    synthesize_netlist,
)

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def netlist(cache):
    return read_netlist(synthesize_netlist(DESIGNS["int8"]))


def _truth(kind, **pins):
    words = {p: np.array([np.uint64(v * (2**64 - 1))]) for p, v in pins.items()}
    out = eval(next(iter(library()[kind].outputs.values())), {}, words)  # noqa: S307
    return int(out[0] & np.uint64(1))


def test_library_functions_and_flops():
    lib = library()
    assert [_truth("NAND2X1", A=a, B=b) for a in (0, 1) for b in (0, 1)] == [1, 1, 1, 0]
    assert [_truth("AOI21X1", A=1, B=1, C=0), _truth("AOI21X1", A=1, B=0, C=0)] == [0, 1]
    assert [_truth("MUX2X1", A=1, B=0, S=s) for s in (0, 1)] == [1, 0]  # inverting mux: S picks A
    assert lib["DFFPOSX1"].sequential and lib["DFFPOSX1"].next_state == "D"
    assert not lib["XOR2X1"].sequential


def test_netlist_parse_and_simulation(netlist):
    assert 500 < len(netlist.types) < 5000 and sum(netlist.labels) == 0
    assert any(library()[t].sequential for t in netlist.types)
    probs = simulate(netlist, seed=0)
    assert all(0.0 <= p <= 1.0 for p in probs.values())
    inverters = [i for i, t in enumerate(netlist.types) if t.startswith("INV")]
    for i in inverters:  # a bit-exact simulation: an inverter's output is 1 exactly when its input is 0
        assert probs[netlist.outs[i]["Y"]] == pytest.approx(1 - probs[netlist.ins[i]["A"]])
    x = node_features(netlist, probs)
    assert x.shape == (len(netlist.types), len(feature_names())) and np.isfinite(x).all()


def test_trojans_are_labelled_and_wired_as_trigger_plus_payload(netlist):
    troj = insert_trojans(netlist, ratio=0.05, seed=3)
    n0 = len(netlist.types)
    labels = np.array(troj.labels)
    assert labels[:n0].sum() == 0 and labels[n0:].all() and labels.sum() >= 0.05 * len(troj.types)
    assert troj.types[:n0] == netlist.types  # host cells keep their types; only victims' loads are rewired
    _comb_order(troj)  # raises if an insertion formed a combinational loop
    xors = [i for i in range(n0, len(troj.types)) if troj.types[i] == "XOR2X1"]
    drivers, loads = _drivers(troj), _loads(troj)
    probs = simulate(troj, seed=1)
    assert len(xors) >= 2
    for i in xors:
        victim, trigger = troj.ins[i]["A"], troj.ins[i]["B"]
        assert drivers[victim] < n0 and drivers[trigger] >= n0  # host victim net, Trojan trigger net
        assert probs[trigger] < 0.01  # the comparator fires rarely
        assert loads[troj.outs[i]["Y"]] and all(j < n0 for j in loads[troj.outs[i]["Y"]])
        assert not any(j < n0 for j in loads[victim])  # every host load of the victim now reads the XOR
    # Every Trojan cell drives only Trojan cells, except the payload XORs (which drive the victims' loads).
    for i in range(n0, len(troj.types)):
        if i not in xors:
            assert all(j >= n0 for j in loads[troj.outs[i]["Y"]])


def test_outliers_are_cliques_and_copied_features(netlist):
    x = node_features(netlist, simulate(netlist, seed=0))
    ei = edges(netlist)
    x2, ei2, y = inject_outliers(x, ei, ratio=0.1, seed=0, clique=10)
    assert y.sum() == pytest.approx(0.1 * len(y), abs=12)
    pairs = set(map(tuple, ei2.T.tolist()))
    assert set(map(tuple, ei.T.tolist())) <= pairs and all((b, a) in pairs for a, b in pairs)
    changed = np.flatnonzero((x2 != x).any(1))
    assert set(changed) <= set(np.flatnonzero(y))  # only contextual outliers change features
    assert len(ei2[0]) > len(ei[0])


def test_graph_dataset(netlist):
    data = netlist_graph("int8", "trojan", seed=0)
    assert data.x.shape[0] == data.y.shape[0] == len(data.cell_types) > len(netlist.types)
    assert data.edge_index.max() < data.num_nodes and 0.04 < data.y.float().mean() < 0.1


def test_cli_train_then_eval_end_to_end(netlist, tmp_path, capsys):
    args = ["--dataset", "netlist-int8-trojan", "--method", "spacegnn,gcn", "--seeds", "1", "--out", str(tmp_path)]
    assert main(["train", *args, "--epochs", "10", "--eval-every", "5", "--no-progress", "--json"]) == 0
    trained = json.loads(capsys.readouterr().out)["results"]
    for name in ("train.json", "train.csv", "train_auroc.png"):
        assert (tmp_path / name).stat().st_size > 0
    assert (tmp_path / "checkpoints" / "netlist-int8-trojan" / "spacegnn" / "seed0.pt").is_file()
    assert [r["method"] for r in trained] == ["spacegnn", "gcn"]
    assert all(0.5 < r["auroc_mean"] <= 1 for r in trained)  # trojans are found better than chance
    assert main(["eval", *args, "--no-progress", "--json"]) == 0
    again = json.loads(capsys.readouterr().out)["results"]
    for a, b in zip(trained, again, strict=True):
        assert a["auroc_mean"] == pytest.approx(b["auroc_mean"]) and a["f1_mean"] == pytest.approx(b["f1_mean"])
