"""Synthesis → placement → routing → static timing of one Verilog design on osu018, with per-pin labels.

    python -m eda.flow VERILOG --top TOP --clock-ns NS [--json] [--quiet]
    python -m eda.flow --design add8 --clock-ns 5

qflow drives yosys (synthesis and osu018 mapping), graywolf (placement: `<top>_unroute.def`) and qrouter
(routing: `<top>.def` and RC trees `<top>.rc`). Routing starts on ROUTE_LAYERS metal layers (or --layers);
when qrouter leaves nets unrouted, placement and routing are redone with one more layer, up to all
MAX_ROUTE_LAYERS of osu018, so every label comes from a fully routed design (a failed net has no parasitics
and would time as an ideal wire); the result records the layers used and the failures. Every timing label comes
from OpenSTA on the post-placement netlist with the design set's constraints: a propagated clock on `clk`
through the clock buffers qflow's fanout step inserts (CLKBUF1 trees), so each flop's clock arrives with its
buffer and wire delays, and input and output delays of IO_DELAY_NS against that clock. Parasitic modes:
  none            no wires at all (pre-route STA),
  rmst, hpwl_star, per_sink_star
                  placement-stage wire estimates from the placed DEF (eda.wire_estimate; rmst is the fair one),
  routed          the routed RC trees as SPEF: the post-route ground truth (also written as routed.sdf).
Per pin: arrival, required, slack (ns, setup/max analysis, [rise, fall]) and slew (ns). Stage times (s):
`route` sums every routing attempt, failed ones included, and `replace` the placements redone after them.
Routed designs are cached under ~/.cache/mixkit/eda/routed-* keyed by the Verilog, top, starting layers and
ROUTE_VERSION; timing labels under ~/.cache/mixkit/eda/<top>-* keyed by those, the clock and FLOW_VERSION, so
a new estimate or constraint re-times the cached routes without routing again.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import re
import shutil
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from eda.designs import DESIGN_ROUTE_LAYERS, DESIGNS, design_verilog
from eda.sta import LIBERTY, OSU018_FIX, TECH, sta_command, sta_preamble
from hw.cache import cache_root, find_tools, run_logged, staged_entry
from sim.cli import OneLineParser, add_tool_arguments, check_tool_output, fail, int_in, progress_lines
from sim.files import write_json

PROG = "python -m eda.flow"
RESULT_FILE = "flow.json"  # what -o DIR receives

LEF = TECH / "osu018_stdcells.lef"
# Three routing layers make routes detour more than a placement estimate expects (see DESIGN.md).
ROUTE_LAYERS = 3
MAX_ROUTE_LAYERS = 6  # osu018 has metal1..metal6
ESTIMATE_MODES = ("rmst", "hpwl_star", "per_sink_star")
MODES = ("none", *ESTIMATE_MODES, "routed")
# Bump when the synthesis, placement or routing scripts change, so cached routes are rebuilt.
ROUTE_VERSION = 1
# GrayWolf tries about 25 * (cells / 500)^(1/3) moves per cell at each annealing temperature, so a 40k-cell
# array takes hours to place on one core. Past this many cells the moves per cell are divided (TimberWolfSC's
# `fast` parameter) to keep the work at that of a design this size: a quicker, somewhat worse placement.
FULL_EFFORT_PLACE_CELLS = 10_000
# Bump when the STA constraints, wire estimates or label format change, so cached labels are rebuilt.
FLOW_VERSION = 4
TOOLS = ("qflow", "sta")
TOOL_FIX = "run 'make setup' or apt-get install qflow opensta"
# The design set's SDC: every input arrives and every output is required this long after/before the clock edge (ns).
IO_DELAY_NS = 0.2
# OpenSTA marks unconstrained or unreached values with ±1e30.
_UNSET = 1e20


class FlowError(RuntimeError):
    """A tool is missing or failed, or the input is unusable; the message is one line naming the fix or the log."""


@dataclass(frozen=True)
class FlowResult:
    """Summary of one flow run. wns_ns/tns_ns by mode (ns, ≤ 0); stage_seconds by stage (s); work_dir holds
    the placed DEF (placed.def), routed DEF (routed.def), netlist.v, routed.sdf and labels.npz."""

    design: str
    top: str
    clock_ns: float
    cells: int
    wns_ns: dict[str, float]
    tns_ns: dict[str, float]
    stage_seconds: dict[str, float]
    route_layers: int  # metal layers the final, fully routed attempt used
    route_failures: dict[str, int]  # unrouted nets of each failed attempt, by its layer count
    rc_nets_malformed: int
    spef_nets_skipped: dict[str, int]
    work_dir: str

    def path(self, name: str) -> Path:
        return Path(self.work_dir) / name

    def clock_mhz(self, mode: str = "routed") -> float:
        """The clock the design achieves under `mode`'s timing: 1000 / (clock_ns - WNS) MHz.

        Exact when WNS < 0 (the critical path is clock_ns - WNS); with WNS = 0 the design meets
        clock_ns and this is a lower bound. `python -m sim.replay --clock PE=MHZ` takes it.
        """
        return 1000.0 / (self.clock_ns - self.wns_ns[mode])

    def labels(self) -> dict[str, np.ndarray]:
        """pins (n,) names; for each mode m: m/arrival, m/required, m/slack, m/slew, each (n, 2) ns [rise, fall]."""
        with np.load(self.path("labels.npz")) as z:
            return {k: z[k] for k in z.files}


def require_tools() -> None:
    """FlowError naming the fix unless qflow, sta and the osu018 liberty are installed."""
    find_tools(TOOLS, TOOL_FIX, FlowError, [("liberty", LIBERTY, OSU018_FIX)])


def sta_script(top: str, clock_ns: float, spef: str | None, sdf: str | None) -> str:
    """OpenSTA Tcl that times the design and writes pins.tsv (one row per pin) and the TNS/WNS lines."""
    lines = sta_preamble(top, clock_ns, io_delay_ns=IO_DELAY_NS, propagated_clock=True)
    if spef:
        lines.append(f"read_spef {spef}")
    lines += [
        "report_checks -path_delay max -digits 4",
        "report_tns -digits 6",
        "report_wns -digits 6",
        "set clk [sta::find_clock clk]",
        "set f [open pins.tsv w]",
        # lindex end: the max (setup) analysis point of OpenSTA's [min max] lists.
        "proc dump {f clk pin} {",
        "  set v [lindex [$pin vertices] 0]",
        "  set row [list [get_full_name $pin]]",
        "  foreach q {arrivals_clk requireds_clk slacks_clk} {",
        "    foreach rf {rise fall} { lappend row [lindex [$v $q $rf $clk rise] end] } }",
        "  foreach rf {rise fall} { lappend row [$v slew $rf max] }",
        '  puts $f [join $row "\\t"] }',
        "foreach pin [get_pins -hierarchical *] { dump $f $clk $pin }",
        "set it [[sta::top_instance] pin_iterator]",
        "while {[$it has_next]} { dump $f $clk [$it next] }",
        "$it finish",
        "close $f",
    ]
    if sdf:
        lines.append(f"write_sdf -digits 6 {sdf}")
    lines += ["exit", ""]
    return "\n".join(lines)


def _parse_tns_wns(log: str, log_path: Path) -> tuple[float, float]:
    errors = re.findall(r"^Error: .*$", log, re.M)
    if errors:
        raise FlowError(f"OpenSTA reported {errors[0]!r}: see {log_path}")
    tns = re.search(r"^tns\s+(-?[\d.]+)", log, re.M)
    wns = re.search(r"^wns\s+(-?[\d.]+)", log, re.M)
    if not (tns and wns):
        raise FlowError(f"no TNS/WNS in the OpenSTA log: see {log_path}")
    return float(wns.group(1)), float(tns.group(1))


def _read_pins(path: Path) -> tuple[list[str], np.ndarray]:
    """Pin names and a (n, 8) array in ns: arrival, required, slack, slew × [rise, fall]; unset values are NaN."""
    names, rows = [], []
    for line in path.read_text().splitlines():
        parts = line.split("\t")
        if len(parts) != 9:
            raise FlowError(f"OpenSTA wrote a malformed row {line[:60]!r} in {path}")
        names.append(parts[0])
        rows.append([float(v) if v not in ("", "INF", "-INF") else np.nan for v in parts[1:]])
    arr = np.array(rows, dtype=np.float64)
    arr[np.abs(arr) > _UNSET] = np.nan
    arr[:, :6] *= 1e9  # OpenSTA's Tcl API speaks seconds
    arr[:, 6:] *= 1e9
    return names, arr


def _digest(*parts: object) -> str:
    return hashlib.sha256("\0".join(map(str, parts)).encode()).hexdigest()[:12]


def _route_dir(top: str, text: str, route_layers: int) -> Path:
    return cache_root() / "eda" / f"routed-{top}-{_digest(text, top, ROUTE_VERSION, route_layers)}"


def _cache_dir(top: str, text: str, clock_ns: float, route_layers: int) -> Path:
    key = _digest(text, top, repr(clock_ns), FLOW_VERSION, route_layers, ROUTE_VERSION)
    return cache_root() / "eda" / f"{top}-{key}"


def _project_vars(route_layers: int) -> str:
    return f"set route_layers = {route_layers}\n"


def failed_routes(route_log: Path) -> int:
    """Nets qrouter left unrouted, from its final summary in qflow's route log (0 when all routed)."""
    found = re.findall(r"^Final: Failed net routes: (\d+)", route_log.read_text(errors="replace"), re.M)
    return int(found[-1]) if found else 0


def _run_stage(stage: str, top: str, work: Path, outputs: list[str], seconds: dict[str, float], key: str = "") -> None:
    """Run one qflow stage; its seconds are added to seconds[key or stage] (repeated stages accumulate)."""
    t0 = time.perf_counter()
    cells = _gates(work, top) if (work / f"{top}.blif").exists() else None  # known once synthesized
    run_logged(["qflow", stage, "-T", "osu018", top], work / f"qflow_{stage}.log", work, FlowError, cells=cells)
    key = key or stage
    seconds[key] = round(seconds.get(key, 0.0) + time.perf_counter() - t0, 3)
    missing = [o for o in outputs if not (work / o).exists()]
    if missing:
        raise FlowError(f"qflow {stage} left no {missing[0]}: see {work / f'qflow_{stage}.log'} and {work / 'log'}")


def run_sta(work: Path, top: str, clock_ns: float, mode: str, spef: str | None, sdf: str | None = None):
    """Time netlist.v in `work` with OpenSTA: (pin names, (n, 8) array as in _read_pins, WNS ns, TNS ns, seconds)."""
    (work / f"sta_{mode}.tcl").write_text(sta_script(top, clock_ns, spef, sdf))
    t0 = time.perf_counter()
    log = run_logged(sta_command(f"sta_{mode}.tcl"), work / f"sta_{mode}.log", work, FlowError)
    seconds = time.perf_counter() - t0
    wns, tns = _parse_tns_wns(log, work / f"sta_{mode}.log")
    names, arr = _read_pins(work / "pins.tsv")
    return names, arr, wns, tns, seconds


def _synthesize(text: str, top: str, work: Path, seconds: dict[str, float], route_layers: int) -> None:
    (work / "source").mkdir()
    (work / "source" / f"{top}.v").write_text(text)
    (work / "project_vars.sh").write_text(_project_vars(route_layers))
    _run_stage("synthesize", top, work, [f"{top}.rtlnopwr.v"], seconds)


def _gates(work: Path, top: str) -> int:
    """Standard cells of the synthesized netlist (<top>.blif's .gate lines)."""
    return sum(line.startswith(".gate") for line in (work / f"{top}.blif").read_text().splitlines())


def placement_speedup(cells: int) -> int:
    """GrayWolf's `fast` divisor for a design of `cells` cells: 1 up to FULL_EFFORT_PLACE_CELLS, then the factor
    that keeps cells^(4/3) moves per temperature at that size's."""
    return max(1, round((cells / FULL_EFFORT_PLACE_CELLS) ** (4 / 3)))


def _place(top: str, work: Path, seconds: dict[str, float], route_layers: int, key: str = "place") -> None:
    # The layer count shapes placement too (pin access, track grid), so a new count means a new placement.
    (work / "project_vars.sh").write_text(_project_vars(route_layers))
    fast = placement_speedup(_gates(work, top))
    if fast > 1:  # qflow keeps a <top>.par newer than the technology's
        (work / f"{top}.par").write_text((TECH / "osu018.par").read_text() + f"\nTWSC*fast : {fast}\n")
    _run_stage("place", top, work, [f"{top}_unroute.def", f"{top}.rtlnopwr.v"], seconds, key)
    # Placement rewrites <top>.rtlnopwr.v (buffer trees); STA must read this post-placement netlist.
    shutil.copy(work / f"{top}.rtlnopwr.v", work / "netlist.v")
    shutil.copy(work / f"{top}_unroute.def", work / "placed.def")


def _place_and_route(top: str, work: Path, seconds: dict[str, float], route_layers: int) -> tuple[int, dict]:
    """Place and route on route_layers, adding a layer while nets stay unrouted: (layers used, failures)."""
    failures: dict[str, int] = {}
    for layers in range(route_layers, MAX_ROUTE_LAYERS + 1):
        # Placements redone after a failed route are routing's cost ("replace"), not the predictor's.
        _place(top, work, seconds, layers, "place" if layers == route_layers else "replace")
        before = seconds.get("route", 0.0)
        _run_stage("route", top, work, [f"{top}.def", f"{top}.rc"], seconds)
        seconds["route_final"] = round(seconds["route"] - before, 3)
        failed = failed_routes(work / "qflow_route.log")
        if not failed:
            return layers, failures
        failures[str(layers)] = failed
        shutil.copy(work / "qflow_route.log", work / f"qflow_route_{layers}layers.log")
    raise FlowError(
        f"qrouter left {failed} nets unrouted even on all {MAX_ROUTE_LAYERS} metal layers "
        f"(see {work / f'qflow_route_{MAX_ROUTE_LAYERS}layers.log'}): the design is too dense to route; shrink it"
    )


def route_design(text: str, top: str, route_layers: int) -> Path:
    """Synthesize, place and route (cached): the folder holding placed.def, netlist.v, routed.def, routed.rc
    and result.json (stage_seconds, route_layers used, route_failures by layer count)."""
    final = _route_dir(top, text, route_layers)
    if not (final / "result.json").exists():
        require_tools()
        with staged_entry(final) as work:
            seconds: dict[str, float] = {}
            _synthesize(text, top, work, seconds, route_layers)
            layers, failures = _place_and_route(top, work, seconds, route_layers)
            shutil.copy(work / f"{top}.def", work / "routed.def")
            shutil.copy(work / f"{top}.rc", work / "routed.rc")
            summary = {"top": top, "stage_seconds": seconds, "route_layers": layers, "route_failures": failures}
            (work / "result.json").write_text(json.dumps(summary, indent=2) + "\n")
    return final


def is_routed(text: str, top: str, route_layers: int) -> bool:
    """Whether route_design(text, top, route_layers) is cached, i.e. would return without routing."""
    return (_route_dir(top, text, route_layers) / "result.json").exists()


def estimate_spef(kind: str, work: Path) -> tuple[str, int]:
    """(SPEF text, nets skipped) of wire estimate `kind` (eda.wire_estimate) for placed.def + netlist.v in work."""
    from eda.parse.def_file import read_def
    from eda.parse.lef import read_lef
    from eda.parse.liberty import read_liberty
    from eda.parse.netlist import read_netlist
    from eda.spef import write_spef
    from eda.wire_estimate import estimate

    library, netlist = read_liberty(LIBERTY), read_netlist(work / "netlist.v")
    return write_spef(estimate(kind, read_def(work / "placed.def"), netlist, library, read_lef(LEF)), netlist, library)


def _run_flow(text: str, top: str, design: str, clock_ns: float, route_layers: int, work: Path, final: Path) -> None:
    from eda.parse.liberty import read_liberty
    from eda.parse.netlist import read_netlist
    from eda.parse.rc_tree import read_rc
    from eda.spef import write_spef

    routed_dir = route_design(text, top, route_layers)
    route = json.loads((routed_dir / "result.json").read_text())
    for name in ("placed.def", "netlist.v", "routed.def", "routed.rc", *(p.name for p in routed_dir.glob("*.log"))):
        shutil.copy(routed_dir / name, work / name)
    seconds = dict(route["stage_seconds"])

    t0 = time.perf_counter()
    library, netlist = read_liberty(LIBERTY), read_netlist(work / "netlist.v")
    rc_nets, malformed = read_rc(work / "routed.rc")
    routed_spef, skipped = write_spef(rc_nets, netlist, library)
    (work / "routed.spef").write_text(routed_spef)
    seconds["spef_routed"] = round(time.perf_counter() - t0, 3)
    skipped = {"routed": skipped}
    for kind in ESTIMATE_MODES:
        t0 = time.perf_counter()
        spef, skipped[kind] = estimate_spef(kind, work)
        (work / f"{kind}.spef").write_text(spef)
        seconds[f"spef_{kind}"] = round(time.perf_counter() - t0, 3)

    wns, tns, arrays, names0 = {}, {}, {}, None
    for mode in MODES:
        spef = None if mode == "none" else f"{mode}.spef"
        names, arr, wns[mode], tns[mode], sec = run_sta(
            work, top, clock_ns, mode, spef, "routed.sdf" if mode == "routed" else None
        )
        seconds[f"sta_{mode}"] = round(sec, 3)
        if names0 is not None and names != names0:
            raise FlowError(f"OpenSTA listed different pins in mode {mode}: see {work}")
        names0 = names
        for k, what in enumerate(("arrival", "required", "slack", "slew")):
            arrays[f"{mode}/{what}"] = arr[:, 2 * k : 2 * k + 2]
    np.savez_compressed(work / "labels.npz", pins=np.array(names0), **arrays)
    cells = sum(1 for cell, _ in netlist.instances.values() if cell in library.cells and not cell.startswith("FILL"))
    result = FlowResult(
        design=design,
        top=top,
        clock_ns=clock_ns,
        cells=cells,
        wns_ns=wns,
        tns_ns=tns,
        stage_seconds=seconds,
        route_layers=route["route_layers"],
        route_failures=route["route_failures"],
        rc_nets_malformed=len(malformed),
        spef_nets_skipped=skipped,
        work_dir=str(final),
    )
    (work / "result.json").write_text(json.dumps(asdict(result), indent=2) + "\n")


def run_placement(text: str, top: str) -> Path:
    """Synthesize and place only (cached): the folder holding placed.def and netlist.v."""
    if not re.search(rf"^\s*module\s+{re.escape(top)}\b", text, re.M):
        raise FlowError(f"the Verilog has no module {top!r}: pass its top module with --top")
    final = cache_root() / "eda" / f"placed-{top}-{_digest(text, top, ROUTE_VERSION)}"
    if not (final / "result.json").exists():
        require_tools()
        with staged_entry(final) as work:
            seconds: dict[str, float] = {}
            _synthesize(text, top, work, seconds, ROUTE_LAYERS)
            _place(top, work, seconds, ROUTE_LAYERS)
            (work / "result.json").write_text(json.dumps({"top": top, "stage_seconds": seconds}) + "\n")
    return final


def run_flow(text: str, top: str, clock_ns: float, design: str = "", route_layers: int = ROUTE_LAYERS) -> FlowResult:
    """Run (or load from the cache) the flow for Verilog `text` with top module `top` at clock_ns (ns),
    routing on route_layers metal layers or, where nets stay unrouted, on the fewest more that route them all."""
    if not 2 <= route_layers <= MAX_ROUTE_LAYERS:
        raise FlowError(f"{route_layers} routing layers: pass --layers between 2 and {MAX_ROUTE_LAYERS} (osu018)")
    if not 0 < clock_ns < math.inf:
        raise FlowError(f"clock period {clock_ns} ns must be finite and positive: pass --clock-ns with a value > 0")
    if not re.search(rf"^\s*module\s+{re.escape(top)}\b", text, re.M):
        raise FlowError(f"the Verilog has no module {top!r}: pass its top module with --top")
    final = _cache_dir(top, text, clock_ns, route_layers)
    if not (final / "result.json").exists():
        require_tools()
        with staged_entry(final) as work:
            _run_flow(text, top, design or top, clock_ns, route_layers, work, final)
    return load_result(final)


def load_result(folder: Path) -> FlowResult:
    """The FlowResult of a cache entry, with work_dir set to where the entry is now (caches may move)."""
    return FlowResult(**{**json.loads((folder / "result.json").read_text()), "work_dir": str(folder)})


def run_design(name: str, clock_ns: float, route_layers: int | None = None) -> FlowResult:
    """run_flow for a named design of eda.designs, starting at route_layers or the design's own layer count
    (DESIGN_ROUTE_LAYERS, else ROUTE_LAYERS)."""
    text, top = design_verilog(name)
    route_layers = route_layers or DESIGN_ROUTE_LAYERS.get(name, ROUTE_LAYERS)
    return run_flow(text, top, clock_ns, design=name, route_layers=route_layers)


def main(argv: list[str] | None = None) -> int:
    p = OneLineParser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("verilog", nargs="?", type=Path, help="Verilog file of the design (or use --design)")
    p.add_argument("--top", help="top module name (default: the file's stem)")
    p.add_argument("--design", choices=sorted(DESIGNS), help="a built-in design instead of a file")
    add_tool_arguments(p, 5.0, RESULT_FILE, alias=True)
    p.add_argument(
        "--layers",
        type=int_in(1, MAX_ROUTE_LAYERS),
        help=f"metal layers to start routing on (default {ROUTE_LAYERS}, or the built-in design's own); one more "
        f"is added while nets stay unrouted, up to {MAX_ROUTE_LAYERS}",
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    args = p.parse_args(argv)
    if args.design is None and args.verilog is None:
        p.error("no design given: pass a Verilog file or --design NAME")
    if args.design is not None and args.verilog is not None:
        p.error(f"{args.verilog} and --design {args.design}: pass a Verilog file or --design NAME, not both")
    if args.design is None and args.verilog.is_dir():
        p.error(f"{args.verilog} is a folder: pass a Verilog file")
    if args.design is None and not args.verilog.is_file():
        p.error(f"{args.verilog} not found: pass an existing Verilog file")
    try:
        check_tool_output(args, RESULT_FILE)
    except ValueError as e:  # OutputError
        p.error(str(e))
    try:
        with progress_lines(PROG, args.quiet):
            if args.design:
                result = run_design(args.design, args.clock_ns, args.layers)
            else:
                result = run_flow(
                    args.verilog.read_text(), args.top or args.verilog.stem, args.clock_ns,
                    route_layers=args.layers or ROUTE_LAYERS,
                )  # fmt: skip
    except (FlowError, UnicodeDecodeError) as e:
        return fail(PROG, e)
    summary = asdict(result) | {"clock_mhz": {m: result.clock_mhz(m) for m in MODES}}
    if args.out is not None:
        write_json(args.out, RESULT_FILE, summary)
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        failed = ", ".join(f"{n} nets unrouted on {k}" for k, n in result.route_failures.items())
        print(
            f"{result.design}: {result.cells} cells, clock {result.clock_ns:g} ns, routed on {result.route_layers} "
            f"metal layers" + (f" ({failed})" if failed else "")
        )
        for mode in MODES:
            print(
                f"  {mode:13s} WNS {result.wns_ns[mode]:8.4f} ns  TNS {result.tns_ns[mode]:9.4f} ns"
                f"  achieves {result.clock_mhz(mode):7.1f} MHz"
            )
        print("  stages (s): " + ", ".join(f"{k} {v:.2f}" for k, v in result.stage_seconds.items()))
        print(f"  {result.work_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
