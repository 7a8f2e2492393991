"""The command-line convention every mixkit tool follows: bad input is one line on stderr, `PROG: error: ...`,
naming the input and the fix, with exit code 2; numbers are finite and in range; outputs never replace a user's
files.

Argument types (`positive_float`, `float_in`, `int_in`, ...) reject NaN, infinities and out-of-range values while
argparse parses, so a bad number never reaches a tool (OpenSTA spins on an infinite clock period).
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

# Largest tensor dimension (rows, columns, tokens, group size ...) any tool accepts: far above every real model,
# far below what would exhaust memory before a clear message.
MAX_DIM = 1 << 20


class OneLineParser(argparse.ArgumentParser):
    """argparse whose errors are one line, `PROG: error: message`, with exit code 2 and no usage dump."""

    def error(self, message: str) -> None:  # type: ignore[override]
        fail(self.prog, message)
        raise SystemExit(2)


def fail(prog: str, message: object) -> int:
    """Print `PROG: error: MESSAGE` (its first line only) on stderr; return exit code 2 for `return fail(...)`."""
    text = str(message).strip().splitlines()
    print(f"{prog}: error: {text[0] if text else 'bad input'}", file=sys.stderr)
    return 2


def _number(text: str, kind: type) -> float:
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {'an integer' if kind is int else 'a number'}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text} is not a finite number: give a finite value")
    return value


def float_in(low: float, high: float = math.inf, *, low_open: bool = False, high_open: bool = False) -> Callable:
    """An argparse type: a finite float in [low, high] (`low_open`/`high_open` exclude an end)."""

    def parse(text: str) -> float:
        value = _number(text, float)
        if value < low or (low_open and value == low) or value > high or (high_open and value == high):
            if high == math.inf:
                wanted = f"{'>' if low_open else '>='} {low:g}"
            else:
                wanted = f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
            raise argparse.ArgumentTypeError(f"{text} is out of range: give a value {wanted}")
        return value

    parse.__name__ = "number"
    return parse


def int_in(low: int, high: int = MAX_DIM) -> Callable:
    """An argparse type: an integer in [low, high]."""

    def parse(text: str) -> int:
        value = int(_number(text, int))
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{text} is out of range: give an integer in {low}..{high}")
        return value

    parse.__name__ = "integer"
    return parse


positive_float = float_in(0.0, low_open=True)
nonnegative_float = float_in(0.0)
fraction = float_in(0.0, 1.0, low_open=True)  # a share of something, in (0, 1]
positive_int = int_in(1)
nonnegative_int = int_in(0)
seed_int = int_in(0, 2**32 - 1)  # numpy's and torch's seed range


# A clock period in ns: finite, positive, at most 1 ms (OpenSTA spins on an infinite period).
period_ns = float_in(0.0, 1e6, low_open=True)


def add_clock_argument(p: argparse.ArgumentParser, default: float | None, alias: bool = False) -> None:
    """`--clock-ns NS`, the clock period in ns (required when there is no default); alias: the old `--clock` too."""
    note = "required" if default is None else f"default {default:g}"
    group = p.add_mutually_exclusive_group(required=default is None)
    group.add_argument("--clock-ns", type=period_ns, default=default, help=f"clock period in ns (1000 / MHz; {note})")
    if alias:
        group.add_argument("--clock", dest="clock_ns", type=period_ns, default=default, help=argparse.SUPPRESS)


def add_quiet_argument(p: argparse.ArgumentParser) -> None:
    """`--quiet` (alias `--no-progress`): no progress lines or bars on stderr."""
    p.add_argument("--quiet", "--no-progress", dest="quiet", action="store_true", help="no progress on stderr")


def add_tool_arguments(p: argparse.ArgumentParser, clock_ns: float, result_file: str, alias: bool = False) -> None:
    """The flags of a tool-running CLI (hw.synth, hw.power, eda.flow): --clock-ns, --quiet, -o/--out DIR (also
    write `result_file` there) and --force."""
    add_clock_argument(p, clock_ns, alias)
    add_quiet_argument(p)
    add_output_arguments(p, f"also write {result_file} into this folder (new, or an earlier run's)", required=False)


def check_tool_output(args: argparse.Namespace, result_file: str) -> None:
    """OutputError unless the -o folder of add_tool_arguments (if any) is new or holds an earlier result_file."""
    if args.out is not None:
        check_output(args.out, own=result_file, force=args.force)


class OutputError(ValueError):
    """An output path that cannot or must not be written; the message names the path and the fix."""


def add_output_arguments(p: argparse.ArgumentParser, help: str, *, required: bool = True, **kwargs) -> None:
    """`-o/--out PATH` (help says what PATH is) and `--force` (replace whatever is at PATH)."""
    p.add_argument("-o", "--out", type=Path, required=required, help=help, **kwargs)
    p.add_argument("--force", action="store_true", help="replace an existing -o path (default: refuse it)")


def check_output(
    path: Path,
    flag: str = "-o",
    *,
    folder: bool = True,
    own: str | tuple[str, ...] = (),
    reuse: bool = False,
    force: bool | None = None,
) -> None:
    """Raise OutputError unless `path` can be written without touching anything of the user's.

    folder: `path` names a folder (else a file). own: the file(s) a previous run of the same tool leaves in its
    output folder; such a folder may be replaced, any other non-empty folder (or an existing file) is refused.
    reuse: an existing folder is fine (the tool only adds its own named files to it, like hw.build).
    force: the user asked (--force) to replace whatever is at `path` (still not a file for a folder, or the
    reverse); None: the tool has no --force.
    """
    path = Path(path)
    if path.is_symlink() or path.exists():
        if folder and not path.is_dir():
            raise OutputError(f"{flag} {path} is a file: name a new folder")
        if not folder and path.is_dir():
            raise OutputError(f"{flag} {path} is a folder: name a file")
        mine = any((path / name).is_file() for name in ((own,) if isinstance(own, str) else own))
        if not force and (not folder or (not reuse and not mine and any(path.iterdir()))):
            fix = "choose a new path" + (" or pass --force" if force is not None else "")
            raise OutputError(f"{flag} {path} already exists: {fix}")
    parent = path.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise OutputError(f"{flag} {path} lies under the file {parent}: choose a path in a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"{flag} {path}: the folder {parent} is not writable: choose a writable place")


class _ProgressLines(logging.Handler):
    """Prints `PROG: [ELAPSED s] message` on the stderr of the moment (pytest swaps it per test)."""

    def __init__(self, prog: str) -> None:
        super().__init__()
        self.prog, self.start = prog, time.perf_counter()

    def emit(self, record: logging.LogRecord) -> None:
        print(f"{self.prog}: [{time.perf_counter() - self.start:6.1f} s] {record.getMessage()}", file=sys.stderr)


@contextmanager
def sigterm_exits() -> Iterator[None]:
    """Within the block, SIGTERM raises SystemExit(143), so `finally` blocks and staging-folder cleanup run as on
    Ctrl-C; the previous handler comes back after it."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def progress_lines(prog: str, quiet: bool = False) -> Iterator[None]:
    """Within the block, print the tools' progress lines (logger `mixkit.progress`, one per external tool run) on
    stderr as `PROG: [ELAPSED s] step`, unless quiet; SIGTERM exits as Ctrl-C does (sigterm_exits)."""
    log = logging.getLogger("mixkit.progress")
    handler = _ProgressLines(prog)
    if not quiet:
        log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    try:
        with sigterm_exits():
            yield
    finally:
        log.removeHandler(handler)
