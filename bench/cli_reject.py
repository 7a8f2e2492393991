"""How fast every CLI rejects a bad flag: `python -m TOOL --no-such-flag` as a user runs it (bytecode cached).

For each tool, the median wall time and CPU time (s) of --repeats runs after one warm-up run, the exit code and
the number of stderr lines (the contract: exit 2, one line). Target: every rejection under 2 s wall. Wall time on
a shared machine includes waiting for a core, so the CPU time is printed beside it and the load average is
recorded. The mixkit front door (`python -m mixkit_cli TOOL --no-such-flag`) is measured as one more row.
Writes bench/results/cli_reject.json.

    python -m bench.cli_reject [--repeats 5] [--tools hw.build,models.zoo]
"""

from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from mixkit_cli import TOOLS
from sim.cli import OneLineParser, positive_int
from sim.files import atomic_write

RESULTS = Path(__file__).resolve().parent / "results" / "cli_reject.json"
ROOT = Path(__file__).resolve().parents[1]
TARGET_S = 2.0
FRONT_DOOR = "mixkit_cli models.zoo"  # the front door, dispatching to the slowest-importing tool family


def time_rejection(command: list[str], repeats: int) -> dict:
    """Median wall and CPU seconds of `command` (a bad flag) over `repeats` runs after a warm-up run."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = str(ROOT)
    walls, cpus = [], []
    for i in range(repeats + 1):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        proc = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
        wall = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if i:
            walls.append(wall)
            cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return {
        "median_s": statistics.median(walls),
        "median_cpu_s": statistics.median(cpus),
        "exit_code": proc.returncode,
        "stderr_lines": proc.stderr.count("\n"),
    }


def main(argv: list[str] | None = None) -> int:
    p = OneLineParser(prog="python -m bench.cli_reject", description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=positive_int, default=5, help="timed runs per tool (default 5)")
    p.add_argument("--tools", default=",".join(TOOLS), help="comma-separated tools (default: every mixkit tool)")
    args = p.parse_args(argv)
    tools = [t for t in args.tools.split(",") if t]
    unknown = [t for t in tools if t not in TOOLS]
    if unknown:
        p.error(f"--tools: unknown tool {unknown[0]!r}: choose among {', '.join(TOOLS)}")
    load_before = os.getloadavg()
    rows = {}
    for name in [*tools, FRONT_DOOR]:
        command = [sys.executable, "-m", *name.split(), "--no-such-flag"]
        rows[name] = time_rejection(command, args.repeats)
        r = rows[name]
        mark = "ok" if r["median_s"] < TARGET_S and r["exit_code"] == 2 and r["stderr_lines"] == 1 else "MISSED"
        print(
            f"{name:26s} {r['median_s']:6.2f} s wall {r['median_cpu_s']:6.2f} s CPU  exit {r['exit_code']}"
            f"  {r['stderr_lines']} line(s)  {mark}"
        )
    worst = max(rows, key=lambda n: rows[n]["median_s"])
    print(f"slowest: {worst} {rows[worst]['median_s']:.2f} s (target < {TARGET_S:g} s)")
    result = {
        "benchmark": "cli_reject",
        "target_s": TARGET_S,
        "repeats": args.repeats,
        "tools": rows,
        "slowest": worst,
        "met": all(r["median_s"] < TARGET_S for r in rows.values()),
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version()},
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(RESULTS, json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
