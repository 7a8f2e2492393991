"""Power of one PE from real toggle activity: gate-level simulation of the synthesized netlist.

    python -m hw.power --pe mixpe --wbits 4 --wformat unsigned --act int8 --group 128 [--cycles 2000] [--json]

hw.synth charges every net the same activity (0.1 toggles per cycle) in OpenSTA. Here the mapped
osu018 netlist from `hw.synth.synthesize` runs on Icarus Verilog (cell models osu018_stdcells.v) under
an operand stream, every net of the PE is dumped to a VCD (streamed through a pipe), each net's
toggles per cycle are counted, and the energy per cycle is computed from the liberty:

    switching = Σ_nets  toggles/cycle · ½ · C_load · VDD²                        (pJ/cycle)
    internal  = Σ_cells Σ_internal_power groups  toggles/cycle(pin) · ½ (E_rise + E_fall)
    leakage   = Σ_cells cell_leakage_power                                       (state-independent)

Three stimuli (STREAM_MODES): "active" (an operand every cycle), "idle" (valid low with the operands
held at zero, what a gated PE of hw/array.py sees) and "padded" (act 0 with valid high: a padded row
of an ungated array). clock_energy_pj_per_cycle is the clock's own share of each figure, which
clock gating would save; clock_gate_energy_pj() is the modeled clock gate's (sim/energy.py).

C_load is the sum of the liberty input capacitances the net drives (pF); E_rise/E_fall are the
liberty internal energies (pJ) at the pin's C_load and an input transition of SLEW_NS; an output
toggle's energy is split over its related inputs in proportion to their toggle rates; VDD is the
liberty's nom_voltage (1.8 V). Power (mW) = energy per cycle (pJ) / clock period (ns).

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
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from eda.parse.liberty import Cell, Library, Table, read_liberty
from hw.build import design_name
from hw.cache import cache_root, entry_key, progress, run_logged, staged_entry, tool_version
from hw.cli import add_pe_arguments, pe_config_from
from hw.config import PEConfig
from hw.synth import ACTIVITY, LIBERTY, SynthError, synthesize
from hw.synth import entry_dir as synth_entry_dir
from sim.cli import OneLineParser, add_tool_arguments, check_tool_output, fail, int_in, progress_lines
from sim.files import write_json

PROG = "python -m hw.power"
RESULT_FILE = "power.json"  # what -o DIR receives
MAX_CYCLES = 1_000_000  # simulated cycles per run: icarus runs ~10-25k cycles/s, so a million is minutes

CELL_MODELS = Path("/usr/share/qflow/tech/osu018/osu018_stdcells.v")
# Bump when the testbench, the energy model or the parsing change, so cached results are rebuilt.
SCRIPT_VERSION = 4
# Reset cycles before the measured window; the inputs already hold the first operand, so the window
# starts without an artificial input transition.
RESET_CYCLES = 2
# Operands per dot product at least (a whole number of groups): long enough that `first`/`last`
# and the output register matter as little as in a real GEMM.
MIN_DOT_LENGTH = 256
PORTS = ("valid", "first", "last", "act", "q", "scale", "zero")
PORT_BITS = {"valid": 1, "first": 1, "last": 1, "act": 16, "q": 8, "scale": 16, "zero": 8}
TOOL_FIX = "run 'make setup' or apt-get install iverilog"
METHOD = "icarus {} gate-level VCD -> per-net toggles -> liberty internal energy + 1/2 C V^2"
# Operand streams hw.power measures (operand_stream): a computing PE, a PE whose lane the array gates
# (valid low; the array forces a gated PE's operand inputs to zero), and a padded row of an array
# without gating (act = 0 with valid high: it computes zeros and switches like an active PE).
STREAM_MODES = ("active", "idle", "padded")
# The clock-gating cell osu018 lacks, modeled as the usual integrated clock gate (an enable latch and
# an AND on the clock) built from the library's LATCH and AND2X1: its energy per cycle comes from the
# same liberty model as the PE's, with the clock toggling twice per cycle and the enable still.
CLOCK_GATE_NETLIST = """
  LATCH icg_latch (.CLK(clk), .D(enable), .Q(enable_latched));
  AND2X1 icg_and (.A(clk), .B(enable_latched), .Y(gated_clk));
"""
# Input transition at which the liberty internal-energy tables are read (ns); pre-layout slews are unknown.
SLEW_NS = 0.1
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


def operand_stream(cfg: PEConfig, cycles: int, seed: int = 0, mode: str = "active") -> dict[str, np.ndarray]:
    """Per-cycle port values for `cycles` cycles of the stimulus a PE sees in the array.

    mode "active": dot products of a whole number of groups (at least MIN_DOT_LENGTH operands) back
    to back, valid always high; INT8 activations uniform over -128..127, FP16 activations N(0, 1);
    weights uniform over wbits; scale (16-bit; FP16 2**-10..2**4 for the FP32 PEs) and zero point
    constant per group.
    mode "idle": what a gated PE sees (hw/array.py): valid low, every operand input held at zero.
    mode "padded": a padded row of an ungated array (e.g. 31 of 32 rows in a batch-1 GEMV): the
    active stream with act = 0, so the PE computes zeros while weights and scales stream past.
    """
    _check_stream(cycles, mode)
    rng = np.random.default_rng(seed)
    if cfg.act == "int8":
        act = rng.integers(-128, 128, cycles) & 0xFF
    else:
        act = rng.standard_normal(cycles).astype(np.float16).view(np.uint16).astype(np.int64)
    q = rng.integers(0, 1 << cfg.wbits, cycles)
    k = -(-MIN_DOT_LENGTH // cfg.group) * cfg.group
    pos = np.arange(cycles)
    groups = -(-cycles // cfg.group)
    if cfg.fp32:  # the scale port holds FP16 bits: finite scales of realistic size
        from sim.float_model import random_fp16_scales

        scale = np.repeat(random_fp16_scales(rng, groups, corner_prob=0.0), cfg.group)[:cycles]
    else:
        scale = np.repeat(rng.integers(0, 1 << 16, groups), cfg.group)[:cycles]
    zero = np.zeros(cycles, np.int64)
    if not cfg.signed_weights:
        zero = np.repeat(rng.integers(0, 1 << cfg.wbits, groups), cfg.group)[:cycles]
    stream = {
        "valid": np.ones(cycles, np.int64),
        "first": (pos % k == 0).astype(np.int64),
        "last": (pos % k == k - 1).astype(np.int64),
        "act": act.astype(np.int64),
        "q": q.astype(np.int64),
        "scale": scale.astype(np.int64),
        "zero": zero.astype(np.int64),
    }
    if mode == "idle":
        stream = {name: np.zeros(cycles, np.int64) for name in stream}
    elif mode == "padded":
        stream["act"][:] = 0
    return stream


def _check_stream(cycles: int, mode: str) -> None:
    if cycles < 1:
        raise ValueError(f"cycles {cycles} must be positive")
    if mode not in STREAM_MODES:
        raise ValueError(f"stream mode '{mode}' unknown: choose one of {', '.join(STREAM_MODES)}")


def _scale_draw(cfg: PEConfig) -> str:
    """How operand_stream draws the scales, for the cache key: the FP32 PEs' FP16 draw lives in
    sim/float_model.py, outside the hw/ sources the synthesis key hashes, so its file's hash counts."""
    if not cfg.fp32:
        return "uniform 16-bit"
    source = Path(__file__).resolve().parent.parent / "sim" / "float_model.py"
    return "random_fp16_scales " + hashlib.sha256(source.read_bytes()).hexdigest()[:12]


def _require_tools() -> dict[str, str]:
    paths = {}
    for tool in ("iverilog", "vvp"):
        path = shutil.which(tool)
        if path is None:
            raise PowerError(f"{tool} not found on PATH: {TOOL_FIX}")
        paths[tool] = path
    if not CELL_MODELS.exists():
        raise PowerError(f"cell models {CELL_MODELS} not found: run 'make setup' or apt-get install qflow-tech-osu018")
    return paths


def _stimulus_hex(stream: dict[str, np.ndarray]) -> str:
    """One hex word per cycle, ports packed MSB-first in PORTS order."""
    n = len(stream["valid"])
    for name in PORTS:
        v = np.asarray(stream[name])
        if v.shape != (n,) or v.min(initial=0) < 0 or v.max(initial=0) >= 1 << PORT_BITS[name]:
            raise ValueError(f"stimulus '{name}' must be {n} values in 0..{(1 << PORT_BITS[name]) - 1}")
    words = np.zeros(n, dtype=object)
    for name in PORTS:
        words = (words << PORT_BITS[name]) | np.asarray(stream[name]).astype(object)
    return "".join(f"{int(w):013x}\n" for w in words)


def _testbench(top: str, acc_bits: int, cycles: int, clock_ns: float) -> str:
    half = clock_ns / 2
    width = sum(PORT_BITS.values())
    ports = ", ".join(f".{p}({p})" for p in ("clk", "rst", *PORTS, "out_valid", "out_y"))
    # Inputs change on the falling edge, half a period away from the sampling edge, so a zero-delay
    # simulation has no races; the window [t0, t0 + cycles·period) holds exactly `cycles` rising edges.
    return f"""`timescale 1ns/10ps
module tb;
  reg clk = 1'b0, rst = 1'b1;
  reg valid, first, last;
  reg [15:0] act, scale;
  reg [7:0] q, zero;
  wire out_valid;
  wire [{acc_bits - 1}:0] out_y;
  reg [{width - 1}:0] mem [0:{cycles - 1}];
  integer i;
  {top} dut({ports});
  always #({half}) clk = ~clk;
  initial begin
    $readmemh("stimulus.hex", mem);
    {{{", ".join(PORTS)}}} = mem[0];
    $dumpfile("activity.vcd");
    $dumpvars(1, dut);
    #({clock_ns * RESET_CYCLES});
    rst = 1'b0;
    $display("window_start_ps %0d", $realtime * 1000);
    for (i = 0; i < {cycles}; i = i + 1) begin
      {{{", ".join(PORTS)}}} = mem[i];
      #({clock_ns});
    end
    $display("window_end_ps %0d", $realtime * 1000);
    $finish;
  end
endmodule
"""


def _count_toggles(lines: Iterable[str], start_ns: float, end_ns: float) -> dict[str, tuple[int, float]]:
    """Per net bit of a VCD: (value changes with start < t < end, fraction of [start, end) spent at 1).

    Times in ns. X/Z count as 0 for the duty; changes into or out of X/Z count as toggles. The whole
    input is consumed, so a simulator writing into a pipe never blocks.
    """
    names: dict[str, list[str]] = {}
    # Scalars (nearly every net of a mapped netlist) take a fast path: value, time of last change,
    # toggles and time at 1 as plain dict entries. Vectors (ports, named registers) keep per-bit lists.
    sval: dict[str, str] = {}
    slast: dict[str, int] = {}
    stog: dict[str, int] = {}
    sones: dict[str, int] = {}
    vval: dict[str, str] = {}
    vlast: dict[str, int] = {}
    vtog: dict[str, list[int]] = {}
    vones: dict[str, list[int]] = {}
    start = end = None
    t = 0
    it = iter(lines)
    for line in it:
        c = line[:1]
        if c in "01xz":
            code = line[1:-1]
            old = sval.get(code)
            if old is None or old == c:
                continue
            if start < t < end:
                stog[code] += 1
            if old == "1":
                since, stop = max(slast[code], start), min(t, end)
                if stop > since:
                    sones[code] += stop - since
            slast[code], sval[code] = t, c
        elif c == "#":
            t = int(line[1:])
            if t >= end:
                break
        elif c == "b":
            bits, code = line[1:].split()
            old = vval.get(code)
            if old is None:
                continue
            if len(bits) < len(old):
                bits = bits.rjust(len(old), "0" if bits[0] in "01" else bits[0])
            since, stop = max(vlast[code], start), min(t, end)
            counts, ones = vtog[code], vones[code]
            for i, (x, y) in enumerate(zip(old, bits, strict=True)):
                if x != y and start < t < end:
                    counts[i] += 1
                if x == "1" and stop > since:
                    ones[i] += stop - since
            vlast[code], vval[code] = t, bits
        elif line.startswith("$timescale"):
            head = line
            while "$end" not in head:
                head += next(it)
            m = re.search(r"(\d+)\s*(s|ms|us|ns|ps|fs)", head[len("$timescale") :])
            if not m:
                raise PowerError(f"unreadable VCD timescale {head!r}")
            unit = int(m.group(1)) * {"s": 1e9, "ms": 1e6, "us": 1e3, "ns": 1.0, "ps": 1e-3, "fs": 1e-6}[m.group(2)]
            start, end = round(start_ns / unit), round(end_ns / unit)
        elif line.startswith("$var"):
            _, _, size, code, ref, *rest = line.split()
            # Escaped identifiers (yosys' `\$signal`) keep their backslash in the VCD, not in OpenSTA.
            ref = ref.removeprefix("\\")
            n = int(size)
            if rest[0].startswith("["):
                hi, lo = (int(x) for x in rest[0].strip("[]").split(":"))
                step = -1 if hi >= lo else 1
                bits = [f"{ref}[{b}]" for b in range(hi, lo + step, step)]
            else:
                bits = [ref]
            if code not in names:
                names[code] = []
                if n == 1:
                    sval[code], slast[code], stog[code], sones[code] = "x", 0, 0, 0
                else:
                    vval[code], vlast[code], vtog[code], vones[code] = "x" * n, 0, [0] * n, [0] * n
            names[code].extend(bits)
    for _ in it:
        pass
    if start is None:
        raise PowerError("the VCD has no $timescale")
    out = {}
    for code, bitnames in names.items():
        if code in sval:
            since = max(slast[code], start)
            ones = sones[code] + (end - since if sval[code] == "1" and end > since else 0)
            for net in bitnames:
                out[net] = (stog[code], ones / (end - start))
            continue
        since, width = max(vlast[code], start), len(vval[code])
        for i, net in enumerate(bitnames):
            ones = vones[code][i % width] + (end - since if vval[code][i % width] == "1" and end > since else 0)
            out[net] = (vtog[code][i % width], ones / (end - start))
    return out


def _energy_at(table: Table, load_pf: float, slew_ns: float) -> float:
    """An internal-energy table (pJ) read at an output load (pF) and input transition (ns), held at its edges."""
    return table.lookup(
        clamp=True, total_output_net_capacitance=load_pf, input_transition_time=slew_ns, input_net_transition=slew_ns
    )


def _library(path: Path) -> Library:
    """The liberty at path, with the supply voltage the energy model needs."""
    lib = read_liberty(path)
    if not lib.nom_voltage > 0:
        raise PowerError(f"{path} states no nom_voltage: give a liberty with its supply voltage")
    return lib


def _instances(netlist: str, cells: dict[str, Cell]) -> list[tuple[str, dict[str, str]]]:
    """(cell type, {pin: net}) for every library cell instance of a flat yosys netlist."""
    out = []
    for cell, conns in re.findall(r"^\s*(\w+)\s+\\?\S+\s*\((.*?)\);", netlist, re.M | re.S):
        if cell in cells:
            pins = re.findall(r"\.(\w+)\(\s*\\?([^()]*?)\s*\)", conns)
            out.append((cell, {pin: net for pin, net in pins if net and "'" not in net}))
    return out


def _energy(netlist: str, rates: dict[str, float], liberty: Path = LIBERTY) -> dict[str, float]:
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
    instances = _instances(netlist, cells)
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
            e = 0.5 * (_energy_at(arc.rise, c, SLEW_NS) + _energy_at(arc.fall, c, SLEW_NS))
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
    e = _energy(CLOCK_GATE_NETLIST, {"clk": 2.0})
    return e["internal"] + e["switching"]


def _load(path: Path) -> PowerResult:
    return PowerResult(**json.loads(path.read_text()))


def _simulate(vvp: str, work: Path, start_ns: float, end_ns: float) -> dict[str, tuple[int, float]]:
    """Run sim.vvp in `work` and count toggles from its VCD while it is written (see _count_toggles)."""
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
        with os.fdopen(read_fd, "r", buffering=1 << 20) as vcd:
            try:
                nets = _count_toggles(vcd, start_ns, end_ns)
            except PowerError:
                proc.wait()
                raise PowerError(f"vvp wrote no usable VCD: see {work / 'vvp.log'}") from None
        code = proc.wait()
    link.unlink()
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
        _check_stream(cycles, mode)
        hexes, stimulus_key = None, {"cycles": cycles, "seed": seed, "mode": mode, "scales": _scale_draw(cfg)}
    else:
        hexes = _stimulus_hex(stimulus)
        stimulus_key = {"stimulus_sha256": hashlib.sha256(hexes.encode()).hexdigest()}
    top = design_name(cfg)
    versions = {tool: tool_version(tool, "-V") for tool in ("iverilog", "vvp")}
    key = entry_key(synth_entry_dir(cfg, clock_ns).name, stimulus_key, delays, versions, SCRIPT_VERSION)
    final = cache_root() / "power" / f"{top}-{key}"
    if (final / "result.json").exists():
        return _load(final / "result.json")
    tools = _require_tools()
    stream = operand_stream(cfg, cycles, seed, mode) if stimulus is None else stimulus
    hexes = hexes or _stimulus_hex(stream)
    cycles = len(stream["valid"])
    synth = synthesize(cfg, clock_ns)
    netlist = (Path(synth.work_dir) / "netlist.v").read_text()
    sim_ns = max(clock_ns, round(DELAY_PERIOD_FACTOR * synth.critical_path_ns, 2)) if delays else clock_ns
    bench = _testbench(top, cfg.acc_bits, cycles, sim_ns)
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
        )
        nets = _simulate(tools["vvp"], work, RESET_CYCLES * sim_ns, (RESET_CYCLES + cycles) * sim_ns)
        # The clock net counts like any other: it toggles twice per cycle into every flop's CLK pin.
        rates = {name: toggles / cycles for name, (toggles, _) in nets.items()}
        # The compiled simulation is large and rebuilt in a second from the files kept beside it.
        (work / "sim.vvp").unlink()
        (work / "activity.json").write_text(
            json.dumps({n: {"toggles": v[0], "duty": v[1]} for n, v in sorted(nets.items())})
        )
        energy = _energy(netlist, rates)
        clock = _energy(netlist, {"clk": rates.get("clk", 0.0)})
        uniform_energy = _energy(netlist, {name: ACTIVITY for name in nets} | {"clk": 2.0})
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
    p.add_argument("--seed", type=int, default=0, help="seed of the operand stream")
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
