"""Energy per cycle of a gate-level netlist from per-net toggle rates and the osu018 liberty.

    switching = Σ_nets  toggles/cycle · ½ · C_load · VDD²                        (pJ/cycle)
    internal  = Σ_cells Σ_internal_power groups  toggles/cycle(pin) · ½ (E_rise + E_fall)
    leakage   = Σ_cells cell_leakage_power                                       (nW, state-independent)

C_load is the sum of the liberty input capacitances the net drives (pF); E_rise/E_fall are the
liberty internal energies (pJ) at the pin's C_load and an input transition of SLEW_NS; an output
toggle's energy is split over its related inputs in proportion to their toggle rates; VDD is the
liberty's nom_voltage (1.8 V). The liberty is read through eda.parse.liberty.
"""

from __future__ import annotations

import re
from pathlib import Path

from eda.parse.errors import ParseError
from eda.parse.liberty import Cell, Library, Table, read_liberty
from eda.sta import LIBERTY

# The clock-gating cell osu018 lacks, modeled as the usual integrated clock gate (an enable latch and
# an AND on the clock) built from the library's LATCH and AND2X1: its energy per cycle comes from the
# same liberty model as the PE's, with the clock toggling twice per cycle and the enable still.
CLOCK_GATE_NETLIST = """
  LATCH icg_latch (.CLK(clk), .D(enable), .Q(enable_latched));
  AND2X1 icg_and (.A(clk), .B(enable_latched), .Y(gated_clk));
"""
# Input transition at which the liberty internal-energy tables are read (ns); pre-layout slews are unknown.
SLEW_NS = 0.1


def energy_at(table: Table, load_pf: float, slew_ns: float) -> float:
    """An internal-energy table (pJ) read at an output load (pF) and input transition (ns), held at its edges."""
    return table.lookup(
        clamp=True, total_output_net_capacitance=load_pf, input_transition_time=slew_ns, input_net_transition=slew_ns
    )


def _library(path: Path) -> Library:
    """The liberty at path, with the supply voltage the energy model needs."""
    lib = read_liberty(path)
    if not lib.nom_voltage > 0:
        raise ParseError(str(path), 1, "a nom_voltage attribute (the supply voltage, V) in the library group")
    return lib


def cell_instances(netlist: str, cells: dict[str, Cell]) -> list[tuple[str, dict[str, str]]]:
    """(cell type, {pin: net}) for every library cell instance of a flat yosys netlist."""
    out = []
    for cell, conns in re.findall(r"^\s*(\w+)\s+\\?\S+\s*\((.*?)\);", netlist, re.M | re.S):
        if cell in cells:
            pins = re.findall(r"\.(\w+)\(\s*\\?([^()]*?)\s*\)", conns)
            out.append((cell, {pin: net for pin, net in pins if net and "'" not in net}))
    return out


def energy_per_cycle(netlist: str, rates: dict[str, float], liberty: Path = LIBERTY) -> dict[str, float]:
    """Energy per cycle (pJ) by kind (internal, switching) and leakage power (nW) for per-net toggle rates.

    rates: toggles per cycle of each net (the clock included); a net not in rates does not toggle.
    switching = Σ_net rate · ½ · C_load · VDD² with C_load the liberty capacitance of the input pins
    it drives (no wire, no external load on output ports). internal = Σ over the liberty
    internal_power groups of each instance of rate(pin) · ½ (E_rise + E_fall), looked up at the
    pin's load and an input transition of SLEW_NS; an output's energy is split over its related
    inputs in proportion to their toggle rates. leakage = Σ cell_leakage_power (state-independent).
    """
    library = _library(liberty)
    vdd, cells = library.nom_voltage, library.cells
    instances = cell_instances(netlist, cells)
    load: dict[str, float] = {}
    for cell, pins in instances:
        for pin, net in pins.items():
            lib_pin = cells[cell].pins.get(pin)
            if lib_pin is not None and lib_pin.direction == "input":
                load[net] = load.get(net, 0.0) + lib_pin.capacitance
    switching = sum(rates.get(net, 0.0) * 0.5 * c * vdd * vdd for net, c in load.items())
    internal = leakage = 0.0
    for cell, pins in instances:
        lib = cells[cell]
        leakage += lib.leakage_power
        arcs = [(pin.name, arc) for pin in lib.pins.values() for arc in pin.power]
        related_total: dict[str, float] = {}
        for pin, arc in arcs:
            if arc.related_pin:
                related_total[pin] = related_total.get(pin, 0.0) + rates.get(pins.get(arc.related_pin, ""), 0.0)
        shares: dict[str, int] = {}
        for pin, _ in arcs:
            shares[pin] = shares.get(pin, 0) + 1
        for pin, arc in arcs:
            rate = rates.get(pins.get(pin, ""), 0.0)
            if rate == 0.0:
                continue
            c = load.get(pins.get(pin, ""), 0.0) if lib.pins[pin].direction != "input" else 0.0
            e = 0.5 * (energy_at(arc.rise, c, SLEW_NS) + energy_at(arc.fall, c, SLEW_NS))
            total = related_total.get(pin, 0.0)
            # Which input caused an output toggle is unknown: charge each related arc in proportion to
            # how often that input toggles (evenly if none of them does).
            related = arc.related_pin
            share = rates.get(pins.get(related, ""), 0.0) / total if related and total else 1.0 / shares[pin]
            internal += rate * e * share
    return {"internal": internal, "switching": switching, "leakage_nw": leakage}


def clock_gate_energy_pj() -> float:
    """Energy per cycle (pJ) of one clock gate (CLOCK_GATE_NETLIST), clock toggling, enable still.

    Leakage is left out (nW-scale against pJ per cycle at any clock this library reaches).
    """
    e = energy_per_cycle(CLOCK_GATE_NETLIST, {"clk": 2.0})
    return e["internal"] + e["switching"]
