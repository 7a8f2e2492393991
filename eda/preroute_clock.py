"""A generated design's clock before routing: synthesized and placed (eda.flow.run_placement, cached), its
critical path predicted by E2ESlack (eda.slack), beside the RMST wire estimate + OpenSTA and, when the routed
flow is already cached, the post-route clock (never routed here: routing a PE takes minutes to an hour).

The demo (`python -m sim.demo`) runs this on its own W4A8 MixPE PE and replays at the predicted clock. A fresh
machine has no trained model (`python -m bench.e2eslack` saves one), so ensure_model trains a quick one first
on the flows of QUICK_DESIGNS: the smallest designs of the adder, multiplier, MAC and GCD families (129-359
cells, about 3 CPU-minutes of flows, ~10 s of training), saved where eda.slack and `sim.replay --clock-from`
find it.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from hw.config import PEConfig

QUICK_DESIGNS = ("add8", "add16", "mul4s0", "mul4s1", "mul6s0", "mac4", "gcd8")
QUICK_EPOCHS = 20
# Period (ns) the RMST estimate and the cached route are timed at: far below any osu018 design's critical path,
# so WNS < 0 and period − WNS is the critical path itself (slacks shift exactly with the period).
ESTIMATE_PERIOD_NS = 0.5


@dataclass(frozen=True)
class PreRouteClock:
    """Clocks (MHz) of one placed design: E2ESlack's, the RMST estimate + OpenSTA's and, when its route is
    cached, the post-route OpenSTA one (None otherwise). Seconds: synthesis + placement (≈0 when cached) and the
    prediction's wall time (parsing, RMST estimate + STA, graph, GNN)."""

    design: str
    cells: int
    placed_dir: str
    predicted_mhz: float
    rmst_mhz: float
    routed_mhz: float | None
    place_seconds: float
    predict_seconds: float


def model_is_current(model_dir: Path) -> bool:
    """Whether model_dir holds a trained E2ESlack model built on today's graph features."""
    from eda.graph import FEATURES

    config = model_dir / "config.json"
    if not (config.is_file() and (model_dir / "model.pt").is_file()):
        return False
    return json.loads(config.read_text()).get("features") == list(FEATURES)


def ensure_model(
    model_dir: Path | None = None,
    designs: tuple[str, ...] = QUICK_DESIGNS,
    epochs: int = QUICK_EPOCHS,
    workers: int = 2,
    progress: bool = True,
) -> dict:
    """The E2ESlack model to use: model_dir's (default: eda.slack's) when current, else a quick one trained on
    the flows of `designs` (Dask, `workers` processes, cached) and saved there. Returns its folder, the designs
    it was trained on (None when unrecorded) and, if trained here, the seconds of flows and of training."""
    import torch

    from eda.dataset import FLOW_CLOCK_NS, run_flows
    from eda.flow import LEF, LIBERTY
    from eda.graph import graph_from_flow
    from eda.slack import default_model_dir, train

    model_dir = model_dir or default_model_dir()
    if model_is_current(model_dir):
        config = json.loads((model_dir / "config.json").read_text())
        return {"model_dir": str(model_dir), "trained_on": config.get("trained_on"), "trained_here": False}
    t0 = time.perf_counter()
    flows, _ = run_flows(list(designs), FLOW_CLOCK_NS, workers=workers, progress=progress)
    flow_seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small graphs: one thread is as fast and leaves the other core free
    try:
        graphs = [graph_from_flow(f.work_dir, LIBERTY, LEF, base="rmst")[0] for f in flows.values()]
        model = train(graphs, epochs=epochs, seed=0, progress=progress)
    finally:
        torch.set_num_threads(threads)
    model.config["trained_on"] = list(designs)
    model.save_pretrained(model_dir)
    return {
        "model_dir": str(model_dir),
        "trained_on": list(designs),
        "trained_here": True,
        "flow_seconds": flow_seconds,
        "train_seconds": time.perf_counter() - t0,
    }


def estimate_clock_mhz(folder: Path, top: str, kind: str = "rmst") -> float:
    """The clock (MHz) OpenSTA gives a placed folder with wire estimate `kind` (eda.wire_estimate)."""
    from eda.flow import FlowError, estimate_spef, run_sta

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for name in ("placed.def", "netlist.v"):
            shutil.copy(folder / name, work / name)
        (work / f"{kind}.spef").write_text(estimate_spef(kind, work)[0])
        wns = run_sta(work, top, ESTIMATE_PERIOD_NS, kind, f"{kind}.spef")[2]
    if wns >= 0:
        raise FlowError(f"{top} meets a {ESTIMATE_PERIOD_NS} ns clock with {kind} wires: no critical path to report")
    return 1000.0 / (ESTIMATE_PERIOD_NS - wns)


def preroute_clock(text: str, top: str, route_layers: int, model_dir: Path) -> PreRouteClock:
    """Place Verilog `text` (cached) and report its clocks; the routed one only if eda.flow already routed it
    starting on route_layers metal layers."""
    from eda.flow import is_routed, run_flow, run_placement
    from eda.parse.def_file import read_def
    from eda.slack import predicted_clock_mhz

    t0 = time.perf_counter()
    folder = run_placement(text, top)
    place_seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    predicted = predicted_clock_mhz(folder, model_dir)
    predict_seconds = time.perf_counter() - t0
    routed = None
    if is_routed(text, top, route_layers):  # re-timing the cached route at the short period takes seconds
        routed = run_flow(text, top, ESTIMATE_PERIOD_NS, route_layers=route_layers).clock_mhz("routed")
    components = read_def(folder / "placed.def").components.values()
    return PreRouteClock(
        design=top,
        cells=sum(1 for c in components if not c.macro.startswith("FILL")),
        placed_dir=str(folder),
        predicted_mhz=predicted,
        rmst_mhz=estimate_clock_mhz(folder, top),
        routed_mhz=routed,
        place_seconds=place_seconds,
        predict_seconds=predict_seconds,
    )


def pe_preroute_clock(cfg: PEConfig, model_dir: Path) -> PreRouteClock:
    """preroute_clock for a PE configuration's hw.build Verilog, with the routed clock of the route
    `sim.routed_cost` (the replay's `--costs routed`) caches for it."""
    from hw.build import design_name, emit
    from sim.routed_cost import START_LAYERS

    return preroute_clock(emit(cfg)[0], design_name(cfg), START_LAYERS[cfg.act], model_dir)
