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


def write_json(folder: Path, name: str, data: object) -> Path:
    """`folder/name` (created with its folder) holding `data` as indented JSON, written atomically."""
    import json

    folder.mkdir(parents=True, exist_ok=True)
    atomic_write(folder / name, json.dumps(data, indent=2) + "\n")
    return folder / name
