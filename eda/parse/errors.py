"""The one error every reader in eda.parse raises on malformed input, and the token scanner the readers share."""

from __future__ import annotations

import re
from collections.abc import Iterator


class ParseError(ValueError):
    """Malformed input: names the file, the 1-based line and what was expected there."""

    def __init__(self, path: str, line: int, expected: str, found: str = "") -> None:
        self.path, self.line, self.expected, self.found = path, line, expected, found
        tail = f", found {found!r}" if found else ""
        super().__init__(f"{path}:{line}: expected {expected}{tail}")


def scan(pattern: re.Pattern[str], text: str, path: str, what: str) -> Iterator[tuple[str, str, int]]:
    """(name of the matching group, matched text, 1-based line where it starts) for each match of `pattern`,
    which must cover `text` from start to end; ParseError naming `what` where none of its alternatives matches."""
    line, pos = 1, 0
    while pos < len(text):
        m = pattern.match(text, pos)
        if m is None:
            raise ParseError(path, line, what, text[pos : pos + 10])
        yield m.lastgroup, m.group(), line
        line += m.group().count("\n")
        pos = m.end()
