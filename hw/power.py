"""Power of one PE from real toggle activity: gate-level simulation of the synthesized netlist.

    python -m hw.power --pe mixpe --wbits 4 --wformat unsigned --act int8 --group 128 [--cycles 2000] [--json]

hw.synth charges every net the same activity (0.1 toggles per cycle). Here the mapped osu018 netlist
from `hw.synth.synthesize` runs on Icarus Verilog (cell models from osu018_stdcells.v) under an
operand stream, every net of the PE is dumped to a VCD, and each net's toggles per cycle and duty
(fraction of time at 1) are annotated on all of its pins in OpenSTA, which then runs `report_power`:

    switching  = Σ_nets  toggles/cycle · ½ · C_load · VDD² / clock period
    internal   = Σ_pins  toggles/cycle · E_internal(liberty table, slew, load) / clock period
    leakage    = Σ_cells liberty leakage (state-weighted by duty where the library has `when` groups)

Method and assumptions: OpenSTA 2.0.17 has no VCD/SAIF reader, and its `set_power_activity -pins`
is broken (it calls a missing `get_pins_error`), so the per-pin command `sta::set_power_pin_activity`
is called directly, before the first `report_power`. The simulation is zero-delay (Icarus ignores
the cells' specify blocks without -gspecify): functional toggles only, no glitches, so the deep
combinational logic (multipliers, adder trees) is underestimated. C_load is the liberty input-pin
capacitance of the loads only (pre-layout: no wires); the clock is ideal (its net toggles twice per
cycle, no clock tree); VDD and the energy tables come from the liberty (osu018, 1.8 V, typical).
Energy per cycle = total power (mW) · clock period (ns) = pJ.

Results are cached under ~/.cache/mixkit/power/ (set MIXKIT_CACHE to move it), keyed by the netlist,
the stimulus, the clock and SCRIPT_VERSION, so a second call runs no tool.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from hw.build import design_name
from hw.config import ACT_KINDS, PE_KINDS, WEIGHT_BITS, WEIGHT_FORMATS, ConfigError, PEConfig
from hw.synth import LIBERTY, SynthError, cache_root, synthesize

CELL_MODELS = Path("/usr/share/qflow/tech/osu018/osu018_stdcells.v")
# Bump when the testbench, the OpenSTA script or the parsing change, so cached results are rebuilt.
SCRIPT_VERSION = 1
# Reset cycles before the measured window; the inputs already hold the first operand, so the window
# starts without an artificial input transition.
RESET_CYCLES = 2
# Operands per dot product at least (a whole number of groups): long enough that `first`/`last`
# and the output register matter as little as in a real GEMM.
MIN_DOT_LENGTH = 256
PORTS = ("valid", "first", "last", "act", "q", "scale", "zero")
PORT_BITS = {"valid": 1, "first": 1, "last": 1, "act": 16, "q": 8, "scale": 16, "zero": 8}
TOOL_FIX = "run 'make setup' or apt-get install iverilog"
METHOD = "icarus zero-delay gate-level VCD -> per-net toggles and duty -> OpenSTA report_power"


class PowerError(RuntimeError):
    """A simulator or power tool is missing or failed; the message is one line (with the log path on failure)."""


@dataclass(frozen=True)
class PowerResult:
    """Power of one PE from simulated toggle activity.

    energy_pj_per_cycle = power_mw · clock_ns (pJ). power_breakdown_mw: internal, switching, leakage
    and total (mW). toggles_per_net_per_cycle: mean over the PE's nets, clock excluded; max_toggles:
    the busiest net's toggles per cycle. global_energy_pj_per_cycle: hw.synth's estimate with every
    net toggling 0.1 times per cycle, for comparison (pJ). seconds: wall time of the simulation and
    OpenSTA (s).
    """

    design: str
    config: dict
    clock_ns: float
    cycles: int
    seed: int
    idle: bool
    energy_pj_per_cycle: float
    power_mw: float
    power_breakdown_mw: dict[str, float]
    nets: int
    unannotated_nets: int
    toggles_per_net_per_cycle: float
    max_toggles_per_cycle: float
    busiest_net: str
    global_energy_pj_per_cycle: float
    method: str
    seconds: float
    work_dir: str = field(default="")

    def as_dict(self) -> dict:
        return asdict(self)


def operand_stream(cfg: PEConfig, cycles: int, seed: int = 0, idle: bool = False) -> dict[str, np.ndarray]:
    """Per-cycle port values for `cycles` cycles of a realistic operand stream.

    Dot products of a whole number of groups (at least MIN_DOT_LENGTH operands) back to back, valid
    always high; INT8 activations uniform over -128..127, FP16 activations N(0, 1); weights uniform
    over wbits; scale (16-bit) and zero point constant per group. idle=True: valid low every cycle
    with the operands frozen at their first value (clock running, nothing changes).
    """
    if cycles < 1:
        raise ValueError(f"cycles {cycles} must be positive")
    rng = np.random.default_rng(seed)
    if cfg.act == "int8":
        act = rng.integers(-128, 128, cycles) & 0xFF
    else:
        act = rng.standard_normal(cycles).astype(np.float16).view(np.uint16).astype(np.int64)
    q = rng.integers(0, 1 << cfg.wbits, cycles)
    k = -(-MIN_DOT_LENGTH // cfg.group) * cfg.group
    pos = np.arange(cycles)
    groups = -(-cycles // cfg.group)
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
    if idle:
        stream = {name: np.full(cycles, 0 if name == "valid" else v[0], np.int64) for name, v in stream.items()}
    return stream


def _require_tools() -> dict[str, str]:
    paths = {}
    for tool in ("iverilog", "vvp", "sta"):
        path = shutil.which(tool)
        if path is None:
            fix = TOOL_FIX if tool != "sta" else "run 'make setup' or apt-get install opensta"
            raise PowerError(f"{tool} not found on PATH: {fix}")
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


def _count_toggles(vcd: Path, start: int, end: int) -> dict[str, tuple[int, float]]:
    """Per net bit: (value changes with start < t < end, fraction of [start, end) spent at 1).

    Times are in VCD units. X/Z count as 0 for the duty; changes into or out of X/Z count as toggles.
    """
    names: dict[str, list[str]] = {}
    value: dict[str, str] = {}
    last_t: dict[str, int] = {}
    toggles: dict[str, list[int]] = {}
    ones: dict[str, list[int]] = {}
    t = 0

    def settle(code: str, until: int) -> None:
        # Credit the time since the last change to the bits that were 1.
        since, stop = max(last_t[code], start), min(until, end)
        if stop > since:
            acc = ones[code]
            for i, b in enumerate(value[code]):
                if b == "1":
                    acc[i] += stop - since

    def change(code: str, new: str) -> None:
        old = value[code]
        if len(new) < len(old):
            new = new.rjust(len(old), "0" if new[0] in "01" else new[0])
        if t >= start:
            settle(code, t)
            # The window is open at start: rst falls there, and the inputs already hold mem[0].
            if start < t < end:
                counts = toggles[code]
                for i, (a, b) in enumerate(zip(old, new, strict=True)):
                    if a != b:
                        counts[i] += 1
        last_t[code] = t
        value[code] = new

    with vcd.open() as f:
        for line in f:
            c = line[:1]
            if c == "#":
                t = int(line[1:])
                if t >= end:
                    break
            elif c in "01xzXZ":
                code = line[1:].strip()
                if code in value:
                    change(code, c.lower())
            elif c in "bB":
                bits, code = line[1:].split()
                if code in value:
                    change(code, bits.lower())
            elif line.startswith("$var"):
                _, _, size, code, ref, *rest = line.split()
                n = int(size)
                if rest[0].startswith("["):
                    hi, lo = (int(x) for x in rest[0].strip("[]").split(":"))
                    step = -1 if hi >= lo else 1
                    bits = [f"{ref}[{b}]" for b in range(hi, lo + step, step)]
                else:
                    bits = [ref]
                if code not in value:
                    names[code], value[code], last_t[code] = [], "x" * n, 0
                    toggles[code], ones[code] = [0] * n, [0] * n
                names[code].extend(bits)
    out = {}
    for code, bitnames in names.items():
        settle(code, end)
        width = len(value[code])
        for i, net in enumerate(bitnames):
            out[net] = (toggles[code][i % width], ones[code][i % width] / (end - start))
    return out


def _timescale_ns(vcd: Path) -> float:
    with vcd.open() as f:
        head = f.read(4096)
    m = re.search(r"\$timescale\s+(\d+)\s*(s|ms|us|ns|ps|fs)\s+\$end", head)
    if not m:
        raise PowerError(f"no $timescale in {vcd}")
    unit = {"s": 1e9, "ms": 1e6, "us": 1e3, "ns": 1.0, "ps": 1e-3, "fs": 1e-6}[m.group(2)]
    return int(m.group(1)) * unit


def _sta_script(top: str, clock_ns: float) -> str:
    # sta::set_power_pin_activity directly: the Tcl `set_power_activity -pins` of OpenSTA 2.0.17 calls a
    # missing `get_pins_error`. Annotations must precede the first report_power, which caches activities.
    return f"""read_liberty {LIBERTY}
read_verilog netlist.v
link_design {top}
create_clock -name clk -period {clock_ns} [get_ports clk]
source activity.tcl
set annotated 0
set missing 0
foreach net [get_nets *] {{
  set name [get_full_name $net]
  if {{$name == "clk"}} continue
  if {{[info exists A($name)]}} {{
    lassign $A($name) activity duty
    foreach pin [get_pins -of_objects $net] {{ sta::set_power_pin_activity $pin $activity $duty }}
    incr annotated
  }} else {{
    incr missing
  }}
}}
foreach port [all_inputs] {{
  set name [get_full_name $port]
  if {{$name != "clk" && [info exists A($name)]}} {{
    lassign $A($name) activity duty
    sta::set_power_input_port_activity $port $activity $duty
  }}
}}
puts "annotated_nets $annotated missing_nets $missing"
report_power -digits 6
exit
"""


def _run(cmd: list[str], log: Path, cwd: Path) -> str:
    with log.open("w") as f:
        proc = subprocess.run(cmd, cwd=cwd, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    text = log.read_text()
    if proc.returncode != 0:
        raise PowerError(f"{Path(cmd[0]).name} failed (exit {proc.returncode}): see {log}")
    return text


def _parse_power(log: str, log_path: Path) -> tuple[dict[str, float], int, int]:
    """(power by group in mW, annotated nets, unannotated nets) from the OpenSTA log."""
    errors = re.findall(r"^Error: .*$", log, re.M)
    if errors:
        raise PowerError(f"OpenSTA reported {errors[0]!r}: see {log_path}")
    power = re.search(r"^Total\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)", log, re.M)
    counts = re.search(r"^annotated_nets (\d+) missing_nets (\d+)", log, re.M)
    if not (power and counts):
        raise PowerError(f"no power report in the OpenSTA log: see {log_path}")
    watts = [float(v) for v in power.groups()]
    breakdown = {k: w * 1e3 for k, w in zip(("internal", "switching", "leakage", "total"), watts, strict=True)}
    return breakdown, int(counts.group(1)), int(counts.group(2))


def _load(path: Path) -> PowerResult:
    return PowerResult(**json.loads(path.read_text()))


def measure_power(
    cfg: PEConfig,
    clock_ns: float = 10.0,
    cycles: int = 2000,
    seed: int = 0,
    idle: bool = False,
    stimulus: dict[str, np.ndarray] | None = None,
) -> PowerResult:
    """Energy per cycle (pJ) and power (mW) of one PE at clock_ns (ns) under a simulated operand stream.

    The stream is operand_stream(cfg, cycles, seed, idle) unless `stimulus` gives the per-cycle port
    values itself (keys valid first last act q scale zero, equal lengths; `cycles` and `idle` are then
    ignored). See the module docstring for the method.
    """
    if not clock_ns > 0:
        raise ValueError(f"clock period {clock_ns} ns must be positive")
    stream = operand_stream(cfg, cycles, seed, idle) if stimulus is None else stimulus
    hexes = _stimulus_hex(stream)
    cycles = len(stream["valid"])
    synth = synthesize(cfg, clock_ns)
    top = design_name(cfg)
    netlist = (Path(synth.work_dir) / "netlist.v").read_text()
    bench = _testbench(top, cfg.acc_bits, cycles, clock_ns)
    key = hashlib.sha256(f"{netlist}\0{bench}\0{hexes}\0{SCRIPT_VERSION}".encode()).hexdigest()[:12]
    final = cache_root() / "power" / f"{top}-{key}"
    if (final / "result.json").exists():
        return _load(final / "result.json")
    tools = _require_tools()
    final.parent.mkdir(parents=True, exist_ok=True)
    # Private folder renamed into place at the end, as in hw.synth: a cache folder is complete or absent.
    work = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}-"))
    work.chmod(0o755)
    t0 = time.perf_counter()
    (work / "netlist.v").write_text(netlist)
    (work / "tb.v").write_text(bench)
    (work / "stimulus.hex").write_text(hexes)
    _run(
        [tools["iverilog"], "-g2005", "-o", "sim.vvp", "-s", "tb", "tb.v", "netlist.v", str(CELL_MODELS)],
        work / "iverilog.log",
        work,
    )
    _run([tools["vvp"], "-n", "sim.vvp"], work / "vvp.log", work)
    vcd = work / "activity.vcd"
    unit = _timescale_ns(vcd)
    start, end = round(RESET_CYCLES * clock_ns / unit), round((RESET_CYCLES + cycles) * clock_ns / unit)
    nets = {n: v for n, v in _count_toggles(vcd, start, end).items() if n != "clk"}
    # The VCD is large and fully summarized by activity.tcl.
    vcd.unlink()
    lines = [f"  {{{name}}} {{{toggles / cycles:.6g} {duty:.6g}}}" for name, (toggles, duty) in sorted(nets.items())]
    (work / "activity.tcl").write_text("array set A {\n" + "\n".join(lines) + "\n}\n")
    (work / "sta.tcl").write_text(_sta_script(top, clock_ns))
    log = _run([tools["sta"], "-no_init", "-no_splash", "sta.tcl"], work / "sta.log", work)
    power, annotated, missing = _parse_power(log, work / "sta.log")
    rates = {name: toggles / cycles for name, (toggles, _) in nets.items()}
    busiest = max(rates, key=rates.get)
    result = PowerResult(
        design=top,
        config=cfg.as_dict(),
        clock_ns=clock_ns,
        cycles=cycles,
        seed=seed,
        idle=bool(stimulus is None and idle),
        energy_pj_per_cycle=power["total"] * clock_ns,
        power_mw=power["total"],
        power_breakdown_mw=power,
        nets=annotated,
        unannotated_nets=missing,
        toggles_per_net_per_cycle=sum(rates.values()) / len(rates),
        max_toggles_per_cycle=rates[busiest],
        busiest_net=busiest,
        global_energy_pj_per_cycle=synth.energy_pj_per_cycle,
        method=METHOD,
        seconds=round(time.perf_counter() - t0, 3),
        work_dir=str(final),
    )
    (work / "result.json").write_text(json.dumps(result.as_dict(), indent=2) + "\n")
    if final.exists() and not (final / "result.json").exists():
        shutil.rmtree(final)
    try:
        os.rename(work, final)
    except OSError:
        # Another run finished the same measurement first; its result is equivalent.
        shutil.rmtree(work, ignore_errors=True)
        if not (final / "result.json").exists():
            raise
    return _load(final / "result.json")


def format_table(pairs: list[tuple[PowerResult, PowerResult]]) -> str:
    """One row per design: active and idle energy from simulated activity beside hw.synth's global estimate."""
    rows = [("design", "active pJ/cyc", "idle pJ/cyc", "global pJ/cyc", "toggles/net/cyc", "int/sw/leak mW", "sim s")]
    for active, idle in pairs:
        b = active.power_breakdown_mw
        rows.append(
            (
                active.design,
                f"{active.energy_pj_per_cycle:.2f}",
                f"{idle.energy_pj_per_cycle:.2f}",
                f"{active.global_energy_pj_per_cycle:.2f}",
                f"{active.toggles_per_net_per_cycle:.3f}",
                f"{b['internal']:.3f}/{b['switching']:.3f}/{b['leakage']:.1e}",
                f"{active.seconds + idle.seconds:.1f}",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True)))
        for row in rows
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m hw.power", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--pe", choices=PE_KINDS, default="mixpe", help="PE type (default mixpe)")
    p.add_argument("--wbits", type=int, default=None, help=f"weight bits, one of {WEIGHT_BITS} (default 4; int8 PE: 8)")
    p.add_argument(
        "--wformat", choices=WEIGHT_FORMATS, default=None, help="unsigned with zero point (default) or signed"
    )
    p.add_argument("--act", choices=ACT_KINDS, default="int8", help="activation type")
    p.add_argument("--group", type=int, default=128, help="quantization group size G")
    p.add_argument("--acc-bits", type=int, default=0, help="accumulator width in bits (default: per configuration)")
    p.add_argument("--clock-ns", type=float, default=10.0, help="clock period (ns, default 10)")
    p.add_argument("--cycles", type=int, default=2000, help="simulated cycles (default 2000)")
    p.add_argument("--seed", type=int, default=0, help="seed of the operand stream")
    p.add_argument("--json", action="store_true", help="print the active and idle results as JSON")
    args = p.parse_args(argv)
    wformat = args.wformat or ("signed" if args.pe == "int8" else "unsigned")
    wbits = args.wbits if args.wbits is not None else (8 if args.pe == "int8" else 4)
    try:
        cfg = PEConfig(args.pe, wbits, wformat, args.act, args.group, args.acc_bits)
        if not args.clock_ns > 0:
            raise ConfigError(f"clock period {args.clock_ns} ns must be positive")
        if args.cycles < 1:
            raise ConfigError(f"--cycles {args.cycles} must be positive")
    except ConfigError as e:
        print(f"hw.power: error: {e}", file=sys.stderr)
        return 2
    try:
        active = measure_power(cfg, args.clock_ns, args.cycles, args.seed)
        idle = measure_power(cfg, args.clock_ns, args.cycles, args.seed, idle=True)
    except (PowerError, SynthError) as e:
        print(f"hw.power: error: {e}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps({"active": active.as_dict(), "idle": idle.as_dict()}, indent=2))
    else:
        print(format_table([(active, idle)]))
        print(f"{active.cycles} cycles at {active.clock_ns:g} ns; {active.method}; {active.work_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
