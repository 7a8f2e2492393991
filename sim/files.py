"""Atomic outputs: a reader sees the old file (or folder) or the whole new one, never half of it."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


def atomic_write(path: str | os.PathLike, data: bytes | str | Callable[[str], object]) -> None:
    """Write `data` (bytes, text, or a function that writes a given file name) to `path` atomically."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes it private; outputs get the usual permissions
        if callable(data):
            os.close(fd)
            data(tmp)
        else:
            with os.fdopen(fd, "wb") as f:
                f.write(data.encode() if isinstance(data, str) else data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def staged_folder(out: str | os.PathLike) -> Iterator[Path]:
    """A private staging folder `.NAME-XXXX` beside `out` for the block to fill; when the block ends normally it
    takes `out`'s place in one rename (an existing `out`, which the caller's check_output allowed, is removed only
    after that). On an error, Ctrl-C or SIGTERM (sim.cli.sigterm_exits) the staging folder is removed and `out` is
    untouched."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}-"))
    old = None
    try:
        work.chmod(0o777 & ~_umask())  # mkdtemp makes it private; outputs get the usual permissions
        yield work
        if out.exists() or out.is_symlink():
            old = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}-old-"))
            os.replace(out, old / "previous")
        os.replace(work, out)
    except BaseException:
        if old is not None and (old / "previous").exists() and not out.exists():
            os.replace(old / "previous", out)  # the swap failed half-way: the user's folder comes back
        shutil.rmtree(work, ignore_errors=True)
        raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_json(folder: Path, name: str, data: object) -> Path:
    """`folder/name` (created with its folder) holding `data` as indented JSON, written atomically."""
    import json

    folder.mkdir(parents=True, exist_ok=True)
    atomic_write(folder / name, json.dumps(data, indent=2) + "\n")
    return folder / name
