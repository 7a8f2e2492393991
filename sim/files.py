"""Atomic output files: a reader sees the old file or the whole new one, never half of it."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
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


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def check_output_dir(out: Path, names: list[str], force: bool) -> None:
    """Refuse an output folder that is a file, or that already holds one of `names` unless `force`.

    Raises ValueError with one line naming the path and the fix; nothing is created or removed.
    """
    if out.exists() and not out.is_dir():
        raise ValueError(f"-o {out} is a file, not a folder: choose another output folder")
    parent = next((p for p in (out, *out.parents) if p.exists()), Path("."))
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise ValueError(f"-o {out}: {parent} is not a writable folder: choose another output folder")
    taken = [name for name in names if (out / name).exists()]
    if taken and not force:
        raise ValueError(f"-o {out} already holds {', '.join(taken)}: choose another folder or pass --force")
