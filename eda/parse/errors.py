"""The one error every reader in eda.parse raises on malformed input."""

from __future__ import annotations


class ParseError(ValueError):
    """Malformed input: names the file, the 1-based line and what was expected there."""

    def __init__(self, path: str, line: int, expected: str, found: str = "") -> None:
        self.path, self.line, self.expected, self.found = path, line, expected, found
        tail = f", found {found!r}" if found else ""
        super().__init__(f"{path}:{line}: expected {expected}{tail}")
