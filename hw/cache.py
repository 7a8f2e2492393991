"""The on-disk cache shared by simulation builds, synthesis and power runs, and the tool runner.

Entries live under ~/.cache/mixkit/<kind>/<name>-<hash>/ (MIXKIT_CACHE moves the root). An entry is
produced in a private folder and renamed into place when complete, so concurrent runs never mix
files and a cache folder is either complete or absent; a failed run's folder stays for its logs.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

RESULT = "result.json"
# Seconds a tool may take to print its version.
TOOL_VERSION_TIMEOUT_S = 30


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
