"""The skeleton every models tool with subcommands runs: check the arguments and input files (no heavy import),
then import torch, run the subcommand, and print its result as text or JSON; bad input is one line and exit 2."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

from sim.cli import fail, sigterm_exits


def check_models(*names: str | Path | None) -> None:
    """InputFileError unless every local checkpoint folder among `names` is whole (zoo names pass)."""
    from models.files import check_checkpoint

    for name in names:
        if name:
            check_checkpoint(Path(name).expanduser())


def run_command(
    prog: str,
    args: argparse.Namespace,
    commands: dict[str, Callable[[argparse.Namespace], dict]],
    report: Callable[[dict], str],
    check: Callable[[argparse.Namespace], None],
    *,
    needs_torch: Callable[[argparse.Namespace], bool] = lambda args: True,
) -> int:
    """Exit code of `args.command`: `check(args)` first (cheap: arguments, output path, input files), then torch
    with `args.threads` threads (unless needs_torch(args) says the command runs without it), then the command;
    a ValueError or OSError is one line on stderr and exit 2."""
    try:
        check(args)
    except (ValueError, OSError) as e:
        return fail(f"{prog} {args.command}", e)
    if needs_torch(args):
        import torch
        from transformers.utils import logging as hf_logging

        torch.set_num_threads(args.threads)
        hf_logging.disable_progress_bar()  # the tools' own bars show progress; transformers' would clutter stderr
    try:
        with sigterm_exits():  # a killed run removes its cache staging folders (zoo builds) as Ctrl-C does
            result = commands[args.command](args)
    except (ValueError, OSError) as e:  # every models error type is a ValueError
        return fail(f"{prog} {args.command}", e)
    print(json.dumps(result, indent=1) if args.json else report(result))
    return 0
