"""PE costs from the physical flow: the routed clock and the placed cells' area.

`sim.replay.synthesized_cost` takes area and clock from yosys + OpenSTA on an unbuffered netlist, where
high-fanout nets set the clock and no buffer is paid for. A chip buffers those nets. `routed_cost` takes
the configuration through `eda.flow` instead (qflow synthesis with its fanout buffering, graywolf
placement, qrouter routing, OpenSTA on the routed parasitics with a clock propagated through the clock
buffers, input and output delays of eda.flow.IO_DELAY_NS) and reads:

- clock (MHz): 1000 / (period - WNS) of the routed timing. Timing is redone at a shorter period while
  WNS >= 0 (re-timing a cached route costs seconds), so the figure is the critical path, not a bound;
- area (µm²): the standard cells of the routed DEF, clock and fanout buffers included, fill cells not,
  each at its osu018 Liberty area.

Energy per cycle stays hw.power's (gate-level toggles of the hw.synth netlist: no buffers, a lower
bound). Routing a PE takes 1-30 minutes on one core, a 4x4 array hours; eda.flow caches every route.
"""

from __future__ import annotations

import functools
from dataclasses import replace

from hw.config import ArrayConfig, PEConfig
from sim.energy import PECost

# Period the first timing uses (ns): every PE here routes slower than 250 MHz, so WNS < 0 at once.
START_CLOCK_NS = 4.0
# Metal layers routing starts on. The W4A8 PEs route on 3 (the dequant one needs 5, after two failed
# attempts); the FP16 PEs have about twice the cells, so they start on 5 rather than pay those attempts.
START_LAYERS = {"int8": 3, "fp16": 5}
# Whole arrays start on 5: their operand buses cross every PE, and a failed attempt on one costs hours.
ARRAY_START_LAYERS = 5
FILL_CELLS = ("FILL",)


@functools.cache
def liberty_area_um2() -> dict[str, float]:
    """{cell name: area µm²} of the osu018 library eda.flow maps to."""
    from eda.flow import LIBERTY
    from eda.parse.liberty import read_liberty

    return {name: cell.area for name, cell in read_liberty(LIBERTY).cells.items()}


def def_cells_area_um2(def_path: str) -> tuple[int, float]:
    """(cells, µm²) of the standard cells a placed or routed DEF holds, fill cells excluded."""
    from eda.parse.def_file import read_def

    areas = liberty_area_um2()
    macros = [c.macro for c in read_def(def_path).components.values() if c.macro not in FILL_CELLS]
    unknown = sorted({m for m in macros if m not in areas})
    if unknown:
        raise ValueError(f"{def_path}: cells {', '.join(unknown)} are not in the osu018 Liberty")
    return len(macros), sum(areas[m] for m in macros)


def route_and_time(text: str, top: str, route_layers: int) -> dict:
    """Route Verilog `text` (cached by eda.flow) and time it at START_CLOCK_NS, then at 3/4 of the period while
    it still meets timing. Returns the routed clock (MHz; and with no wires), the period it was timed at (ns),
    cells, cell area (µm²), metal layers used and the flow's stage times (s)."""
    from eda.flow import run_flow

    clock_ns = START_CLOCK_NS
    result = run_flow(text, top, clock_ns, route_layers=route_layers)
    while result.wns_ns["routed"] >= 0:  # met: time again at a shorter period to find the critical path
        clock_ns *= 0.75
        result = run_flow(text, top, clock_ns, route_layers=route_layers)
    cells, area = def_cells_area_um2(str(result.path("routed.def")))
    return {
        "design": top,
        "clock_mhz": result.clock_mhz("routed"),
        "clock_mhz_no_wires": result.clock_mhz("none"),
        "timed_at_ns": clock_ns,
        "cells": cells,
        "area_um2": area,
        "route_layers": result.route_layers,
        "stage_seconds": result.stage_seconds,
    }


@functools.cache
def routed_timing(cfg: PEConfig | ArrayConfig) -> dict:
    """route_and_time for a PE (starting on START_LAYERS for its activation type) or a whole array."""
    from hw.build import design_name, emit

    layers = ARRAY_START_LAYERS if isinstance(cfg, ArrayConfig) else START_LAYERS[cfg.act]
    return route_and_time(emit(cfg)[0], design_name(cfg), layers)


def routed_cost(cfg: PEConfig, measured: PECost) -> PECost:
    """`measured` (hw.synth area and clock, hw.power energy) with the routed PE's clock and cell area."""
    t = routed_timing(cfg)
    return replace(
        measured,
        area_um2=t["area_um2"],
        fmax_mhz=t["clock_mhz"],
        source=f"routed: qflow+graywolf+qrouter, OpenSTA propagated clock ({t['design']}, {t['cells']} cells); "
        f"energy as measured: {measured.source.split('energy: ', 1)[-1]}",
    )
