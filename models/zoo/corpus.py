"""Local text that exists on every machine, split train/held-out deterministically.

Sources: the running Python's standard-library `*.py` (code); English man pages (roff stripped,
near-duplicate gcloud pages dropped) and `/usr/share/doc` README/copyright text (English, de-duplicated).
Files are taken in a seeded random order until a character budget is met; the first files in that
order (up to `test_chars`) are held out, so no file is in both splits.
"""

from __future__ import annotations

import gzip
import hashlib
import re
import sysconfig
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

MAN_ROOT = Path("/usr/share/man")
DOC_ROOT = Path("/usr/share/doc")
CHUNK_CHARS = 800  # held-out texts are cut to this size, so most fit one training window


@dataclass
class Source:
    """One source's texts and what was found on this machine."""

    name: str
    train: list[str] = field(default_factory=list)
    test: list[str] = field(default_factory=list)
    files_found: int = 0
    files_used: int = 0
    chars_used: int = 0


def stdlib_files() -> list[Path]:
    root = Path(sysconfig.get_paths()["stdlib"])
    return sorted(p for p in root.rglob("*.py") if "site-packages" not in p.parts)


def man_files() -> list[Path]:
    # Only the untranslated sections man1..man9; gcloud ships thousands of near-identical pages.
    return sorted(p for p in MAN_ROOT.glob("man*/*") if p.is_file() and not p.name.startswith("gcloud"))


def doc_files() -> list[Path]:
    pat = re.compile(r"^(README|copyright)", re.IGNORECASE)
    return sorted(p for p in DOC_ROOT.glob("*/*") if p.is_file() and pat.match(p.name))


_ROFF_ESCAPES = re.compile(r"\\f[BIRPC(]?\w?|\\\(\w\w|\\\[[^\]]*\]|\\[*n]\(?\w\w?|\\s[+-]?\d|\\[&|^%:]")


def strip_roff(src: str) -> str:
    """Plain text of a man page: macros dropped or reduced to their arguments, font/escape codes removed."""
    out = []
    for line in src.splitlines():
        if line.startswith(('.\\"', "'\\\"", ".\\}", "\\}")):
            continue
        if line.startswith((".", "'")):
            parts = line[1:].split(None, 1)
            if not parts or parts[0] in ("TH", "de", "if", "ie", "el", "ds", "nr", "so", "ig", "..", "ft", "in", "ta"):
                continue
            if len(parts) == 1:
                continue
            line = parts[1].replace('"', "")
        line = _ROFF_ESCAPES.sub("", line).replace("\\-", "-").replace("\\e", "\\").replace("\\ ", " ")
        if line.strip():
            out.append(line.strip())
    return "\n".join(out)


def _read(path: Path) -> str:
    raw = path.read_bytes()
    if path.suffix == ".gz":
        raw = gzip.decompress(raw)
    return raw.decode("utf-8", errors="replace")


def _collect(name: str, files: list[Path], clean, source_chars: int, test_chars: int, max_file_chars: int, seed: int):
    src = Source(name, files_found=len(files))
    order = np.random.default_rng([seed, len(name), sum(map(ord, name))]).permutation(len(files))
    seen: set[str] = set()
    test_used = 0
    for i in order:
        if src.chars_used >= source_chars:
            break
        try:
            text = clean(_read(files[i]))[:max_file_chars]
        except (OSError, EOFError, gzip.BadGzipFile):
            continue  # unreadable or truncated files exist on real systems; skip them
        digest = hashlib.sha1(text.encode()).hexdigest()
        if len(text) < 200 or digest in seen:
            continue  # too short to teach anything, or a duplicate (many copyright files are identical)
        seen.add(digest)
        src.files_used += 1
        src.chars_used += len(text)
        if test_used < test_chars:
            test_used += len(text)
            src.test.extend(text[j : j + CHUNK_CHARS] for j in range(0, len(text), CHUNK_CHARS))
        else:
            src.train.append(text)
    return src


@lru_cache(maxsize=8)
def collect(source_chars: int, test_chars: int, max_file_chars: int, seed: int) -> dict[str, Source]:
    """The natural-text sources {"code", "man", "doc"}, each about `source_chars` characters (fewer if the
    machine has less), with `test_chars` of whole files held out."""
    args = (source_chars, test_chars, max_file_chars, seed)
    return {
        "code": _collect("code", stdlib_files(), lambda s: s, *args),
        "man": _collect("man", man_files(), strip_roff, *args),
        "doc": _collect("doc", doc_files(), lambda s: s, *args),
    }
