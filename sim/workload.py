"""python -m sim.workload {show,builtin}: print a workload, or write a built-in one, from the shell.

The workload format (ops, Workload, load_workload, ...) lives in sim/workload_format.py and is re-exported here,
so `from sim.workload import Workload, load_workload` is the one way in; this module adds the CLI, which uses
sim.model_shapes for the built-in models.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

from sim.cli import OneLineParser, OutputError, add_output_arguments, check_output
from sim.model_shapes import MODELS, add_builtin_arguments, builtin_from_args
from sim.workload_format import (
    ACT_DTYPES,
    FORMAT_VERSION,
    KV_BITS,
    OP_CLASSES,
    OP_KINDS,
    SCALE_BYTES,
    TENSOR_PARTS,
    UNEVEN_POLICIES,
    WORKLOAD_FILE,
    Attention,
    AttnPV,
    AttnQK,
    Linear,
    MoeExpert,
    Op,
    Totals,
    Workload,
    WorkloadError,
    fit_group,
    load_workload,
    save_tensors,
    save_workload_folder,
)

__all__ = [
    "ACT_DTYPES",
    "FORMAT_VERSION",
    "KV_BITS",
    "OP_CLASSES",
    "OP_KINDS",
    "SCALE_BYTES",
    "TENSOR_PARTS",
    "UNEVEN_POLICIES",
    "WORKLOAD_FILE",
    "Attention",
    "AttnPV",
    "AttnQK",
    "Linear",
    "MoeExpert",
    "Op",
    "Totals",
    "Workload",
    "WorkloadError",
    "fit_group",
    "load_workload",
    "main",
    "save_tensors",
    "save_workload_folder",
]


def _format_table(workload: Workload) -> str:
    header = ("#", "kind", "name", "m", "n", "k", "precision", "heads", "repeat", "MACs")
    rows = [header]
    for index, op in enumerate(workload.ops):
        heads = str(op.heads) if isinstance(op, Attention) else "-"
        rows.append(
            (
                str(index),
                op.kind,
                op.name,
                str(op.m),
                str(op.n),
                str(op.k),
                op.precision(),
                heads,
                str(op.repeat),
                f"{op.macs:.3e}",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = [
        "  ".join(
            c.ljust(w) if i in (1, 2, 6) else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in rows
    ]
    t = workload.totals()
    lines.append(
        f"total: {len(workload.ops)} ops, {t.gemms} GEMMs, {t.macs:.4e} MACs, {t.weight_params:.4e} weight elements, "
        f"{t.weight_bytes / 2**30:.3f} GiB weights, {t.kv_bytes / 2**30:.3f} GiB KV cache read"
        + (f", exact operands for {len(workload.tensors)} ops" if workload.tensors else "")
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """`show FILE|DIR [--json]` prints a workload; `builtin MODEL ... -o DIR` writes a built-in one."""
    parser = OneLineParser(prog="python -m sim.workload", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    show = sub.add_parser("show", help="print a workload's ops and totals")
    show.add_argument("file", help="a workload manifest, or a folder holding workload.json")
    show.add_argument("--json", action="store_true", help="print the manifest plus totals as JSON")
    builtin = sub.add_parser("builtin", help="write a shape-only workload of a known model")
    builtin.add_argument("model", help="one of " + ", ".join(MODELS))
    add_builtin_arguments(builtin)
    add_output_arguments(builtin, "workload folder to write (new, or an earlier workload's)", required=False)
    builtin.add_argument("--output", dest="out", type=Path, help=argparse.SUPPRESS)  # the old spelling
    args = parser.parse_args(argv)
    if args.command == "builtin" and args.out is None:
        builtin.error("the following arguments are required: -o/--out")
    try:
        if args.command == "show":
            workload = load_workload(args.file)
            if args.json:
                print(json.dumps({**workload.as_dict(), "totals": asdict(workload.totals())}, indent=1))
            else:
                print(_format_table(workload))
        else:
            check_output(args.out, own=WORKLOAD_FILE, force=args.force)
            workload = builtin_from_args(args.model, args)
            manifest = save_workload_folder(workload, args.out)
            t = workload.totals()
            print(f"{manifest}: {workload.model}, {len(workload.ops)} ops, {t.macs:.4e} MACs")
    except (WorkloadError, OutputError) as e:
        parser.error(str(e))
    except OSError as e:
        parser.error(f"{e.filename or args.out}: {e.strerror or e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
