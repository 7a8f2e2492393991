"""Calling a CLI's main() in the test process the way the shell sees it."""

from __future__ import annotations

from collections.abc import Callable


def exit_code(main: Callable[[list[str]], int], argv: list[str]) -> int:
    """main(argv)'s exit code, including argparse's own errors, which exit from parse_args."""
    try:
        return main(argv)
    except SystemExit as e:
        return e.code


def one_line_error(main: Callable[[list[str]], int], argv: list[str], capsys) -> str:
    """The error main(argv) prints, after checking the bad-input contract: exit code 2 and one line on stderr."""
    code = exit_code(main, argv)
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, (code, err)
    return err
