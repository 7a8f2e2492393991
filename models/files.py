"""Checks that a checkpoint folder or JSON input is complete and readable, before any heavy import or loading.

A truncated `model.safetensors` or a corrupted `config.json` otherwise surfaces as a deep traceback from
transformers or as "Unterminated string ... line 17" with no file name; these checks name the broken file.
Only the standard library is used, so a CLI can run them in milliseconds.
"""

from __future__ import annotations

import json
from pathlib import Path

RESAVE = "re-save the checkpoint (save_pretrained)"


class InputFileError(ValueError):
    """A broken input file; the one-line message names the file and the fix."""


def read_json(path: Path, fix: str = RESAVE) -> object:
    """The parsed JSON of `path`; InputFileError naming the file (and the line) if it is unreadable or not JSON."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InputFileError(f"{path} is not valid JSON (not UTF-8 text): {fix}") from None
    except FileNotFoundError:
        raise InputFileError(f"{path} does not exist: {fix}") from None
    except OSError as e:
        raise InputFileError(f"{path} cannot be read ({e.strerror}): {fix}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise InputFileError(f"{path} is not valid JSON (line {e.lineno}): {fix}") from None


def check_safetensors(path: Path, fix: str = RESAVE) -> None:
    """InputFileError unless `path` is a whole safetensors file: 8-byte header length, JSON header, and exactly
    the tensor bytes the header's data_offsets promise."""
    path = Path(path)
    try:
        size = path.stat().st_size
        with path.open("rb") as f:
            head = f.read(8)
            length = int.from_bytes(head, "little") if len(head) == 8 else -1
            if not 0 < length <= size - 8:
                raise InputFileError(f"{path} is truncated or not a safetensors file ({size} bytes): {fix}")
            header = json.loads(f.read(length))
    except OSError as e:
        raise InputFileError(f"{path} cannot be read ({e.strerror}): {fix}") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise InputFileError(f"{path} has a corrupted safetensors header: {fix}") from None
    try:
        end = max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"), default=0)
    except (AttributeError, KeyError, IndexError, TypeError):
        raise InputFileError(f"{path} has a malformed safetensors header: {fix}") from None
    if 8 + length + end != size:
        raise InputFileError(f"{path} is truncated: {size} of {8 + length + end} bytes: {fix}")


def check_checkpoint(path: str | Path, fix: str = RESAVE) -> None:
    """If `path` is a local folder, check that its JSON files parse and its safetensors files are whole; zoo names
    and missing paths are left to the loader, which names them."""
    path = Path(path)
    if not path.is_dir():
        return
    for f in sorted(path.glob("*.json")):
        read_json(f, fix)
    for f in sorted(path.glob("*.safetensors")):
        check_safetensors(f, fix)
