"""Calling a CLI's main() in the test process the way the shell sees it."""

from __future__ import annotations

from collections.abc import Callable


def exit_code(main: Callable[[list[str]], int], argv: list[str]) -> int:
    """main(argv)'s exit code, including argparse's own errors, which exit from parse_args."""
    try:
        return main(argv)
    except SystemExit as e:
        return e.code
