"""The one OpenSTA preamble: the osu018 library, the mapped netlist, the link, the clock on `clk` and the
input/output delays against it. hw.synth (post-synthesis timing and power) and eda.flow (per-pin labels,
every parasitic mode) append their own reports to it, so both time a design under the same constraints.
"""

from __future__ import annotations

from pathlib import Path

TECH = Path("/usr/share/qflow/tech/osu018")
LIBERTY = TECH / "osu018_stdcells.lib"
OSU018_FIX = "run 'make setup' or apt-get install qflow-tech-osu018"  # when a file of TECH is missing


def sta_preamble(
    top: str, clock_ns: float, *, io_delay_ns: float = 0.0, propagated_clock: bool = False, netlist: str = "netlist.v"
) -> list[str]:
    """OpenSTA Tcl lines that load `netlist` (relative to the run folder) with module `top` and constrain it:
    a clock of clock_ns (ns) on port clk, every other input arriving and every output required io_delay_ns (ns)
    after/before its edge. propagated_clock times the clock through its buffer tree (after placement) instead
    of as an ideal clock (after synthesis, before any clock tree exists)."""
    lines = [
        f"read_liberty {LIBERTY}",
        f"read_verilog {netlist}",
        f"link_design {top}",
        f"create_clock -name clk -period {clock_ns} [get_ports clk]",
    ]
    if propagated_clock:
        lines.append("set_propagated_clock [all_clocks]")
    return lines + [
        f"set_input_delay {io_delay_ns:g} -clock clk [delete_from_list [all_inputs] [get_ports clk]]",
        f"set_output_delay {io_delay_ns:g} -clock clk [all_outputs]",
    ]


def sta_command(script: str, sta: str = "sta") -> list[str]:
    """The command line that runs a Tcl script with OpenSTA (no ~/.sta init file, no banner)."""
    return [sta, "-no_init", "-no_splash", script]
