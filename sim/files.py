"""Atomic outputs: a reader sees the old file (or folder) or the whole new one, never half of it."""

from __future__ import annotations

import errno
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
    takes `out`'s place by rename (an existing `out`, which the caller's check_output allowed, is moved aside first
    and removed only after that). Two runs finishing at once both succeed, the later one's folder staying. On an
    error, Ctrl-C or SIGTERM (sim.cli.sigterm_exits) the staging folder is removed and `out` is untouched."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}-"))
    olds: list[Path] = []
    try:
        work.chmod(0o777 & ~_umask())  # mkdtemp makes it private; outputs get the usual permissions
        yield work
        for attempt in range(_SWAP_TRIES):
            if out.exists() or out.is_symlink():
                olds.append(Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}-old-")))
                try:
                    os.replace(out, olds[-1] / "previous")
                except FileNotFoundError:
                    pass  # another run moved it aside first
            try:
                os.replace(work, out)
                break
            except OSError as e:  # another run put its folder in place between the two renames: try again
                if e.errno not in (errno.ENOTEMPTY, errno.EEXIST) or attempt == _SWAP_TRIES - 1:
                    raise
    except BaseException:
        if olds and (olds[-1] / "previous").exists() and not out.exists():
            os.replace(olds[-1] / "previous", out)  # the swap failed half-way: the earlier folder comes back
        shutil.rmtree(work, ignore_errors=True)
        raise
    finally:
        for old in olds:
            shutil.rmtree(old, ignore_errors=True)


# Renames staged_folder tries when concurrent runs of the same output keep replacing each other.
_SWAP_TRIES = 5


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
