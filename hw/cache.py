"""The on-disk cache shared by simulation builds, synthesis and power runs, and the tool runner.

Entries live under ~/.cache/mixkit/<kind>/<name>-<hash>/ (MIXKIT_CACHE moves the root). An entry is
produced in a private folder and renamed into place when complete, so concurrent runs never mix
files and a cache folder is either complete or absent; a failed run's folder stays for its logs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

RESULT = "result.json"


def cache_root() -> Path:
    return Path(os.environ.get("MIXKIT_CACHE", Path.home() / ".cache" / "mixkit"))


@contextmanager
def staged_entry(final: Path) -> Iterator[Path]:
    """A private work folder that becomes `final` once the block has written final's result.json."""
    final.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}-"))
    work.chmod(0o755)
    yield work
    if final.exists() and not (final / RESULT).exists():
        shutil.rmtree(final)  # a folder without a result is not an entry (deleted by hand)
    try:
        os.rename(work, final)
    except OSError:
        shutil.rmtree(work, ignore_errors=True)  # another run finished the same entry first
        if not (final / RESULT).exists():
            raise


def run_logged(cmd: list[str], log: Path, cwd: Path, error: type[Exception]) -> str:
    """Run a tool with its output in `log`; raise `error` naming the log if it fails."""
    with log.open("w") as f:
        proc = subprocess.run(cmd, cwd=cwd, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        raise error(f"{Path(cmd[0]).name} failed (exit {proc.returncode}): see {log}")
    return log.read_text()
