"""The on-disk cache shared by simulation builds, synthesis and power runs, the zoo, and the tool runner.

Entries live under ~/.cache/mixkit/<kind>/<name>-<hash>/ (MIXKIT_CACHE moves the root). An entry is
produced in a private staging folder `.<name>-<hash>-XXXX` beside it and renamed into place when complete, so
concurrent runs never mix files and a cache folder is either complete or absent. A run that fails keeps its
staging folder for its logs (the error names them) for STALE_HOURS; an interrupted run (Ctrl-C, SIGTERM)
removes its own at once. Staging folders older than STALE_HOURS are swept whenever a new entry starts beside
them, and `python -m hw.cache clean` removes them now (`--older-than 0`: all of them, even those of
runs still going on).

    python -m hw.cache clean [--older-than HOURS (default STALE_HOURS)] [--quiet]
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import importlib.util
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from sim.cli import OneLineParser, nonnegative_float

RESULT = "result.json"
# Hours a failed run's staging folder (and its logs) is kept; far longer than any single run, so a sweep never
# removes the folder of a run still in progress.
STALE_HOURS = 24.0
# One line per external tool run; a CLI shows them with sim.cli.progress_lines, a library caller sees nothing.
progress = logging.getLogger("mixkit.progress")
# Seconds a tool may take to print its version.
TOOL_VERSION_TIMEOUT_S = 30


def cache_root() -> Path:
    return Path(os.environ.get("MIXKIT_CACHE", Path.home() / ".cache" / "mixkit"))


def staging_folders(root: Path, older_than_hours: float = 0.0) -> list[Path]:
    """Staging folders (`.name-XXXX` holding no result) under `root`, one or two levels down (<kind>/ or
    <kind>/<sub>/), last modified more than `older_than_hours` ago."""
    cutoff = time.time() - 3600 * older_than_hours
    return sorted(p for pattern in (".*", "*/.*", "*/*/.*") for p in root.glob(pattern) if _stale(p, cutoff))


def _stale(path: Path, cutoff: float) -> bool:
    try:
        return path.is_dir() and not (path / RESULT).exists() and path.stat().st_mtime <= cutoff
    except OSError:
        return False  # removed by a concurrent sweep or run


def sweep_stale(parent: Path, older_than_hours: float = STALE_HOURS) -> None:
    """Remove the staging folders directly in `parent` older than `older_than_hours`."""
    cutoff = time.time() - 3600 * older_than_hours
    for path in parent.glob(".*"):
        if _stale(path, cutoff):
            shutil.rmtree(path, ignore_errors=True)


@contextmanager
def staged_entry(final: Path) -> Iterator[Path]:
    """A private work folder that becomes `final` once the block has written final's result.json. If the block
    raises an error the folder stays (for its logs) until swept; if it is interrupted the folder goes at once."""
    final.parent.mkdir(parents=True, exist_ok=True)
    sweep_stale(final.parent)
    work = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}-"))
    work.chmod(0o755)
    try:
        yield work
    except BaseException as e:
        if not isinstance(e, Exception):  # interrupted: nothing worth keeping (a failed tool's logs stay)
            shutil.rmtree(work, ignore_errors=True)
        raise
    if final.exists() and not (final / RESULT).exists():
        shutil.rmtree(final)  # a folder without a result is not an entry (deleted by hand)
    try:
        os.rename(work, final)
    except OSError:
        shutil.rmtree(work, ignore_errors=True)  # another run finished the same entry first
        if not (final / RESULT).exists():
            raise


# Without MIXKIT_TOOL_TIMEOUT_S a run on a design of known size may take this long per standard cell (s), and at
# least TOOL_TIMEOUT_FLOOR_S: the slowest run seen here, placing a 2.4k-cell PE on a loaded 2-core machine, took
# 0.7 s per cell, and placement and routing grow faster than linearly. Of unknown size: TOOL_TIMEOUT_S.
TOOL_SECONDS_PER_CELL = 3.0
TOOL_TIMEOUT_FLOOR_S = 1800.0
TOOL_TIMEOUT_S = 4 * 3600.0


def tool_timeout_s(cells: int | None = None) -> float:
    """Wall-clock limit of one external tool run (s): MIXKIT_TOOL_TIMEOUT_S when set; else proportional to the
    design's standard cells when known, TOOL_TIMEOUT_S when not."""
    if "MIXKIT_TOOL_TIMEOUT_S" in os.environ:
        return float(os.environ["MIXKIT_TOOL_TIMEOUT_S"])
    if cells is None:
        return TOOL_TIMEOUT_S
    return max(TOOL_TIMEOUT_FLOOR_S, TOOL_SECONDS_PER_CELL * cells)


def run_logged(
    cmd: list[str],
    log: Path,
    cwd: Path,
    error: type[Exception],
    timeout_s: float | None = None,
    cells: int | None = None,
) -> str:
    """Run a tool with its output in `log`; raise `error` naming the tool and the log if it fails or
    runs longer than timeout_s seconds (default tool_timeout_s(cells), cells: the design's standard cells)."""
    tool = Path(cmd[0]).name
    limit = tool_timeout_s(cells) if timeout_s is None else timeout_s
    progress.info("%s %s", tool, " ".join(cmd[1:]))
    with log.open("w") as f:
        try:
            proc = subprocess.run(
                cmd, cwd=cwd, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, timeout=limit
            )
        except subprocess.TimeoutExpired:
            raise error(f"{tool} timed out after {limit:g} s (MIXKIT_TOOL_TIMEOUT_S raises it): see {log}") from None
    if proc.returncode != 0:
        raise error(f"{tool} failed (exit {proc.returncode}): see {log}")
    return log.read_text()


def find_tools(
    tools: Iterable[str], fix: str, error: type[Exception], files: Iterable[tuple[str, Path, str]] = ()
) -> dict[str, str]:
    """{tool: absolute path} of each tool on PATH, then a check that each (what, path, its fix) of `files` (data the
    tools need, such as a cell library) exists; otherwise `error`, one line naming what is missing and the fix."""
    paths = {}
    for tool in tools:
        path = shutil.which(tool)
        if path is None:
            raise error(f"{tool} not found on PATH: {fix}")
        paths[tool] = path
    for what, path, file_fix in files:
        if not path.exists():
            raise error(f"{what} {path} not found: {file_fix}")
    return paths


def entry_key(*parts: object) -> str:
    """A short hash of JSON-able inputs: the name suffix of a cache entry."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:12]


@functools.cache
def source_hash() -> str:
    """Hash of every hw/*.py file: any change to the RTL, the flows or their parsing rebuilds the caches."""
    h = hashlib.sha256()
    for path in sorted(Path(__file__).parent.glob("*.py")):
        h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:16]


@functools.cache
def tool_version(tool: str, flag: str) -> str:
    """First line of `tool flag` (e.g. yosys -V), or "absent" if the tool is not on PATH; once per process.

    The answer is also remembered on disk by the binary's path, size and mtime, so a warm run starts
    no subprocess (a reinstalled tool has a new mtime and is asked again).
    """
    path = shutil.which(tool)
    if path is None:
        return "absent"
    st = os.stat(path)
    stamp = f"{os.path.realpath(path)}:{st.st_size}:{st.st_mtime_ns}:{flag}"
    memo = cache_root() / "tool_versions.json"
    try:
        known = json.loads(memo.read_text())
    except (OSError, ValueError):
        known = {}
    if stamp in known:
        return known[stamp]
    try:
        proc = subprocess.run([path, flag], capture_output=True, text=True, timeout=TOOL_VERSION_TIMEOUT_S)
        text = (proc.stdout or proc.stderr).strip()
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    version = text.splitlines()[0] if text else "unknown"
    memo.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=memo.parent, prefix=".tool_versions-")
    with os.fdopen(fd, "w") as f:
        json.dump({**known, stamp: version}, f)
    os.replace(tmp, memo)
    return version


@functools.cache
def package_version(name: str) -> str:
    """Installed version of a Python package from its dist-info folder name, without importing it."""
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        return "absent"
    site = Path(spec.origin).parent.parent
    found = sorted(site.glob(f"{name}-*.dist-info"))
    return found[-1].name.removeprefix(f"{name}-").removesuffix(".dist-info") if found else "unknown"


def main(argv: list[str] | None = None) -> int:
    p = OneLineParser(
        prog="python -m hw.cache", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("clean", help="remove staging folders left by failed or killed runs")
    c.add_argument(
        "--older-than",
        type=nonnegative_float,
        default=STALE_HOURS,
        help=f"only those untouched for this long (hours, default {STALE_HOURS:g}: a run in progress is younger; "
        "0 removes every staging folder, so only when no run is going on)",
    )
    c.add_argument("--quiet", "--no-progress", action="store_true", help="print nothing")
    args = p.parse_args(argv)
    root = cache_root()
    removed = staging_folders(root, args.older_than) if root.is_dir() else []
    for path in removed:
        shutil.rmtree(path, ignore_errors=True)
        if not args.quiet:
            print(f"removed {path}")
    if not args.quiet:
        print(f"{len(removed)} staging folders removed from {root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
