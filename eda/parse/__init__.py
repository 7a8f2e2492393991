"""TimingParser: readers for DEF (placement), Liberty (cell timing) and SDF (delays), plus qrouter RC trees.

Every reader raises `ParseError` (file, line, what was expected) on malformed input.
"""

from eda.parse.errors import ParseError

__all__ = ["ParseError"]
