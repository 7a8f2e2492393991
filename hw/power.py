"""Power of one PE from real toggle activity: gate-level simulation of the synthesized netlist.

    python -m hw.power --pe mixpe --wbits 4 --wformat unsigned --act int8 --group 128 [--cycles 2000] [--json]

hw.synth charges every net the same activity (0.1 toggles per cycle) in OpenSTA. Here the mapped
osu018 netlist from `hw.synth.synthesize` runs on Icarus Verilog (cell models osu018_stdcells.v) under
an operand stream, every net of the PE is dumped to a VCD (streamed through a pipe), each net's
toggles per cycle are counted (hw.toggles), and the energy per cycle is computed from the liberty
(hw.cell_energy: switching ½·C·VDD², internal energy tables, leakage). Power (mW) = energy per
cycle (pJ) / clock period (ns).

Three stimuli (hw.power_stimulus.STREAM_MODES): "active" (an operand every cycle), "idle" (valid low
with the operands held at zero, what a gated PE of hw/array.py sees) and "padded" (act 0 with valid
high: a padded row of an ungated array). clock_energy_pj_per_cycle is the clock's own share of each figure, which
clock gating would save; clock_gate_energy_pj() is the modeled clock gate's (sim/energy.py).

Why not OpenSTA: 2.0.17 has no VCD/SAIF reader, its `set_power_activity -pins` calls a missing
`get_pins_error`, and per-pin activities set with `sta::set_power_pin_activity` are ignored on driver
pins (it re-propagates activity from the input ports through the cell functions), so measured
internal activity cannot be fed to it. The same liberty model evaluated with every net at hw.synth's
uniform activity gives global_energy_pj_per_cycle, the like-for-like comparison; hw.synth's OpenSTA
figure (synth_energy_pj_per_cycle) differs from it by its own internal-power accounting and slews.

Assumptions: pre-layout (no wire capacitance, no load on output ports), ideal clock (its net toggles
twice per cycle into the flops' CLK pins, no clock tree), typical corner. By default the simulation is
zero-delay (Icarus ignores the cells' specify blocks without -gspecify): functional toggles only, no
glitches, so deep combinational logic (multipliers, adder trees) is underestimated: a lower bound.

delays=True (`--delays`) compiles with -gspecify instead, so the cells' specify path delays apply and
glitches count. Icarus applies them inertially (a pulse shorter than the cell delay is swallowed), the
usual gate-level rule, but without SDF they are the cell models' fixed typical delays, independent of
load and slew, so glitch counts are indicative, not sign-off. The testbench clock is then stretched to
DELAY_PERIOD_FACTOR times the critical path when that is longer than clock_ns, so all paths settle;
the toggles per cycle, and so the energy per cycle, do not depend on that period.

Results are cached under ~/.cache/mixkit/power/ (set MIXKIT_CACHE to move it), keyed by the synthesis
entry (configuration, hw/ sources, clock, tool versions), the stimulus (cycles, seed, stream mode and
how the scales are drawn, or a hash of a given one), the delay mode and the Icarus version, so a second
call runs no tool and builds nothing.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from eda.sta import OSU018_FIX
from hw.build import design_name
from hw.cache import (
    cache_root,
    entry_key,
    find_tools,
    progress,
    run_logged,
    staged_entry,
    tool_timeout_s,
    tool_version,
)
from hw.cell_energy import clock_gate_energy_pj, energy_per_cycle
from hw.cli import add_pe_arguments, pe_config_from
from hw.config import PEConfig
from hw.power_stimulus import (
    RESET_CYCLES,
    STREAM_MODES,
    check_stream,
    operand_stream,
    scale_draw,
    stimulus_hex,
    testbench,
)
from hw.synth import ACTIVITY, SynthError, synthesize
from hw.synth import entry_dir as synth_entry_dir
from hw.toggles import VCDError, count_toggles
from sim.cli import OneLineParser, add_tool_arguments, check_tool_output, fail, int_in, progress_lines, seed_int
from sim.files import write_json

PROG = "python -m hw.power"
RESULT_FILE = "power.json"  # what -o DIR receives
MAX_CYCLES = 1_000_000  # simulated cycles per run: icarus runs ~10-25k cycles/s, so a million is minutes

CELL_MODELS = Path("/usr/share/qflow/tech/osu018/osu018_stdcells.v")
# Bump when the testbench, the energy model or the parsing change, so cached results are rebuilt.
SCRIPT_VERSION = 4
TOOL_FIX = "run 'make setup' or apt-get install iverilog"
METHOD = "icarus {} gate-level VCD -> per-net toggles -> liberty internal energy + 1/2 C V^2"
# With cell delays the testbench clock is stretched to this multiple of the critical path (inputs change
# half a period before the sampling edge), so every path settles and the toggles stay those of a
# correctly working PE; toggles per cycle do not depend on the period.
DELAY_PERIOD_FACTOR = 2.2


class PowerError(RuntimeError):
    """A simulator or power tool is missing or failed; the message is one line (with the log path on failure)."""


@dataclass(frozen=True)
class PowerResult:
    """Power of one PE from simulated toggle activity.

    mode: the operand stream (STREAM_MODES), "custom" for a caller's stimulus.
    energy_pj_per_cycle = power_mw · clock_ns (pJ). clock_energy_pj_per_cycle: the part of it the
    clock causes alone (the clock net's switching and the flops' clock-pin internal energy, pJ): what
    gating the PE's clock saves. power_breakdown_mw: internal, switching, leakage
    and total (mW). toggles_per_net_per_cycle: mean over the PE's nets, clock excluded; max_toggles:
    the busiest net's toggles per cycle. global_energy_pj_per_cycle: the same liberty model with
    every net toggling hw.synth.ACTIVITY times per cycle (pJ); synth_energy_pj_per_cycle: hw.synth's
    OpenSTA figure at that activity (pJ). seconds: wall time of the simulation and energy model (s).
    """

    design: str
    config: dict
    clock_ns: float
    cycles: int
    seed: int
    mode: str
    delays: bool
    energy_pj_per_cycle: float
    clock_energy_pj_per_cycle: float
    power_mw: float
    power_breakdown_mw: dict[str, float]
    nets: int
    toggles_per_net_per_cycle: float
    max_toggles_per_cycle: float
    busiest_net: str
    global_energy_pj_per_cycle: float
    synth_energy_pj_per_cycle: float
    method: str
    seconds: float
    work_dir: str = field(default="")

    def as_dict(self) -> dict:
        return asdict(self)


def _require_tools() -> dict[str, str]:
    """Absolute paths of iverilog and vvp; one-line PowerError naming the fix if one or the cell models are missing."""
    return find_tools(("iverilog", "vvp"), TOOL_FIX, PowerError, [("cell models", CELL_MODELS, OSU018_FIX)])


def _load(path: Path) -> PowerResult:
    return PowerResult(**json.loads(path.read_text()))


def _simulate(
    vvp: str, work: Path, start_ns: float, end_ns: float, cells: int | None = None
) -> dict[str, tuple[int, float]]:
    """Run sim.vvp in `work` and count toggles from its VCD while it is written (see count_toggles); vvp is
    killed past tool_timeout_s(cells), cells: the netlist's standard cells."""
    # The testbench dumps to activity.vcd, a link to the write end of a pipe that vvp inherits (a link
    # because Icarus appends ".vcd" to /dev/fd/N): parsing overlaps the simulation on a second core and
    # no VCD of tens of MB touches the disk. If vvp dies, the pipe closes and the parse ends.
    progress.info("vvp -n sim.vvp (gate-level simulation, toggles counted while it runs)")
    read_fd, write_fd = os.pipe()
    link = work / "activity.vcd"
    link.unlink(missing_ok=True)
    link.symlink_to(f"/dev/fd/{write_fd}")
    with (work / "vvp.log").open("w") as log:
        proc = subprocess.Popen(
            [vvp, "-n", "sim.vvp"],
            cwd=work,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            pass_fds=(write_fd,),
        )
        os.close(write_fd)
        limit = tool_timeout_s(cells)
        expired = threading.Event()
        watchdog = threading.Timer(limit, lambda: (expired.set(), proc.kill()))
        watchdog.start()
        try:
            with os.fdopen(read_fd, "r", buffering=1 << 20) as vcd:
                try:
                    nets = count_toggles(vcd, start_ns, end_ns)
                except VCDError:
                    nets = None
            code = proc.wait()
        finally:
            watchdog.cancel()
    link.unlink()
    if expired.is_set():
        raise PowerError(f"vvp timed out after {limit:g} s (MIXKIT_TOOL_TIMEOUT_S raises it): see {work / 'vvp.log'}")
    if nets is None:
        raise PowerError(f"vvp wrote no usable VCD: see {work / 'vvp.log'}")
    if code != 0:
        raise PowerError(f"vvp failed (exit {code}): see {work / 'vvp.log'}")
    return nets


def measure_power(
    cfg: PEConfig,
    clock_ns: float = 10.0,
    cycles: int = 2000,
    seed: int = 0,
    mode: str = "active",
    stimulus: dict[str, np.ndarray] | None = None,
    delays: bool = False,
) -> PowerResult:
    """Energy per cycle (pJ) and power (mW) of one PE at clock_ns (ns) under a simulated operand stream.

    The stream is operand_stream(cfg, cycles, seed, mode) unless `stimulus` gives the per-cycle port
    values itself (keys valid first last act q scale zero, equal lengths; `cycles` and `mode` are then
    ignored). delays=True simulates with the cells' specify delays, so glitches count (see the module
    docstring for the method).
    """
    if not 0 < clock_ns < math.inf:
        raise ValueError(f"clock period {clock_ns} ns must be finite and positive")
    if stimulus is None:
        check_stream(cycles, mode)
        hexes, stimulus_key = None, {"cycles": cycles, "seed": seed, "mode": mode, "scales": scale_draw(cfg)}
    else:
        hexes = stimulus_hex(stimulus)
        stimulus_key = {"stimulus_sha256": hashlib.sha256(hexes.encode()).hexdigest()}
    top = design_name(cfg)
    versions = {tool: tool_version(tool, "-V") for tool in ("iverilog", "vvp")}
    key = entry_key(synth_entry_dir(cfg, clock_ns).name, stimulus_key, delays, versions, SCRIPT_VERSION)
    final = cache_root() / "power" / f"{top}-{key}"
    if (final / "result.json").exists():
        return _load(final / "result.json")
    tools = _require_tools()
    stream = operand_stream(cfg, cycles, seed, mode) if stimulus is None else stimulus
    hexes = hexes or stimulus_hex(stream)
    cycles = len(stream["valid"])
    synth = synthesize(cfg, clock_ns)
    netlist = (Path(synth.work_dir) / "netlist.v").read_text()
    sim_ns = max(clock_ns, round(DELAY_PERIOD_FACTOR * synth.critical_path_ns, 2)) if delays else clock_ns
    bench = testbench(top, cfg.acc_bits, cycles, sim_ns)
    with staged_entry(final) as work:
        t0 = time.perf_counter()
        (work / "netlist.v").write_text(netlist)
        (work / "tb.v").write_text(bench)
        (work / "stimulus.hex").write_text(hexes)
        run_logged(
            [
                tools["iverilog"],
                "-g2005",
                *(["-gspecify"] if delays else []),
                *("-o", "sim.vvp", "-s", "tb", "tb.v", "netlist.v", str(CELL_MODELS)),
            ],
            work / "iverilog.log",
            work,
            PowerError,
            cells=synth.cells,
        )
        nets = _simulate(tools["vvp"], work, RESET_CYCLES * sim_ns, (RESET_CYCLES + cycles) * sim_ns, synth.cells)
        # The clock net counts like any other: it toggles twice per cycle into every flop's CLK pin.
        rates = {name: toggles / cycles for name, (toggles, _) in nets.items()}
        # The compiled simulation is large and rebuilt in a second from the files kept beside it.
        (work / "sim.vvp").unlink()
        (work / "activity.json").write_text(
            json.dumps({n: {"toggles": v[0], "duty": v[1]} for n, v in sorted(nets.items())})
        )
        energy = energy_per_cycle(netlist, rates)
        clock = energy_per_cycle(netlist, {"clk": rates.get("clk", 0.0)})
        uniform_energy = energy_per_cycle(netlist, {name: ACTIVITY for name in nets} | {"clk": 2.0})
        data = {n: r for n, r in rates.items() if n != "clk"}
        busiest = max(data, key=data.get)
        power = {
            "internal": energy["internal"] / clock_ns,
            "switching": energy["switching"] / clock_ns,
            "leakage": energy["leakage_nw"] * 1e-6,
        }
        power["total"] = sum(power.values())
        energy_pj = power["total"] * clock_ns
        result = PowerResult(
            design=top,
            config=cfg.as_dict(),
            clock_ns=clock_ns,
            cycles=cycles,
            seed=seed,
            mode=mode if stimulus is None else "custom",
            delays=delays,
            energy_pj_per_cycle=energy_pj,
            clock_energy_pj_per_cycle=clock["internal"] + clock["switching"],
            power_mw=power["total"],
            power_breakdown_mw=power,
            nets=len(data),
            toggles_per_net_per_cycle=sum(data.values()) / len(data),
            max_toggles_per_cycle=data[busiest],
            busiest_net=busiest,
            global_energy_pj_per_cycle=uniform_energy["internal"]
            + uniform_energy["switching"]
            + uniform_energy["leakage_nw"] * 1e-6 * clock_ns,
            synth_energy_pj_per_cycle=synth.energy_pj_per_cycle,
            method=METHOD.format(f"specify-delay (clock {sim_ns:g} ns)" if delays else "zero-delay"),
            seconds=round(time.perf_counter() - t0, 3),
            work_dir=str(final),
        )
        (work / "result.json").write_text(json.dumps(result.as_dict(), indent=2) + "\n")
    return _load(final / "result.json")


def format_table(rows: list[dict[str, PowerResult]]) -> str:
    """Per design: energy per cycle (pJ) in each measured stream mode, the clock's share when idle, the
    clock-gated idle energy (idle - clock + one clock gate), and the uniform-activity figures."""
    gate = clock_gate_energy_pj()
    table = [("design", *(f"{m} pJ/cyc" for m in STREAM_MODES), "idle clock pJ/cyc", "gated pJ/cyc", "global pJ/cyc")]
    table[0] += ("synth pJ/cyc", "toggles/net/cyc", "sim s")
    for r in rows:
        active, idle = r["active"], r["idle"]
        table.append(
            (
                active.design,
                *(f"{r[m].energy_pj_per_cycle:.2f}" for m in STREAM_MODES),
                f"{idle.clock_energy_pj_per_cycle:.2f}",
                f"{idle.energy_pj_per_cycle - idle.clock_energy_pj_per_cycle + gate:.2f}",
                f"{active.global_energy_pj_per_cycle:.2f}",
                f"{active.synth_energy_pj_per_cycle:.2f}",
                f"{active.toggles_per_net_per_cycle:.3f}",
                f"{sum(x.seconds for x in r.values()):.1f}",
            )
        )
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    return "\n".join(
        "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True)))
        for row in table
    )


def main(argv: list[str] | None = None) -> int:
    p = OneLineParser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_pe_arguments(p)
    add_tool_arguments(p, 10.0, RESULT_FILE)
    p.add_argument("--cycles", type=int_in(1, MAX_CYCLES), default=2000, help="simulated cycles (default 2000)")
    p.add_argument("--seed", type=seed_int, default=0, help="seed of the operand stream")
    p.add_argument("--delays", action="store_true", help="simulate with cell delays, counting glitches")
    p.add_argument("--json", action="store_true", help="print the results of every stream mode as JSON")
    args = p.parse_args(argv)
    try:
        cfg = pe_config_from(args)
        check_tool_output(args, RESULT_FILE)
    except ValueError as e:  # ConfigError, OutputError
        return fail(PROG, e)
    try:
        with progress_lines(PROG, args.quiet):
            results = {
                mode: measure_power(cfg, args.clock_ns, args.cycles, args.seed, mode=mode, delays=args.delays)
                for mode in STREAM_MODES
            }
    except (PowerError, SynthError) as e:
        fail(PROG, e)
        return 1
    if args.out is not None:
        write_json(args.out, RESULT_FILE, {mode: r.as_dict() for mode, r in results.items()})
    if args.json:
        print(json.dumps({mode: r.as_dict() for mode, r in results.items()}, indent=2))
    else:
        active = results["active"]
        print(format_table([results]))
        print(f"{active.cycles} cycles at {active.clock_ns:g} ns; {active.method}; {active.work_dir}")
        print(
            "modes: active = operands every cycle; idle = valid low, operands held at zero (a gated lane);"
            " padded = act 0 with valid high (an ungated padded row); gated = idle - its clock energy +"
            f" one clock gate (LATCH + AND2X1, {clock_gate_energy_pj():.3f} pJ/cycle)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
