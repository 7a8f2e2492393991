"""E2ESlack-style pre-routing slack prediction of a placed design (the model: eda/slack_model.py).

    python -m eda.slack predict PLACED_DEF --netlist NETLIST.v --clock-ns NS [--model DIR] [--paths 5] [--json]
    python -m eda.slack predict DESIGN.v --top TOP --clock-ns NS      (synthesizes and places first)

Prints the predicted WNS and TNS (ns) over the endpoints and the most critical paths (pin arrivals in ns). With
--plot, a DEF inside an eda.flow folder is also plotted against that folder's post-route slack (a new PNG file).
Bad input exits with code 2 and one line, checked before torch loads; `from eda.slack import NAME` still gives
the model's names (SlackPredictor, predict_placed, ...), loaded on first use.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from sim.cli import OneLineParser, add_clock_argument, check_output, fail, nonnegative_int

if TYPE_CHECKING:
    from eda.slack_model import Prediction

PROG = "python -m eda.slack"


def __getattr__(name: str) -> object:
    """The model's names (eda.slack_model), imported with torch on first use."""
    if name.startswith("__"):  # the import system probing (__path__ ...): not a model name
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module("eda.slack_model"), name)


def _plot_against_routed(path: Path, flow_dir: Path, result: Prediction, clock_ns: float) -> None:
    """Scatter of predicted vs post-route OpenSTA endpoint slack (ns), the flow's labels shifted to clock_ns."""
    import matplotlib
    import numpy as np

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from eda.flow import load_result
    from eda.graph import pin_table
    from sim.files import atomic_write

    flow = load_result(flow_dir)
    routed = pin_table(flow.labels(), "routed", result.names).slack + (clock_ns - flow.clock_ns)
    ep = result.endpoint & ~np.isnan(routed)
    true, pred = routed[ep], result.slack[ep]
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.scatter(true, pred, s=6, alpha=0.6)
    lo, hi = float(min(true.min(), pred.min())), float(max(true.max(), pred.max()))
    ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
    ax.set_xlabel("post-route OpenSTA endpoint slack (ns)")
    ax.set_ylabel("predicted slack (ns)")
    ax.set_title(f"{flow.design} at {clock_ns:g} ns")
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=120))
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = OneLineParser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    q = sub.add_parser("predict", help="predict endpoint slack, WNS/TNS and critical paths of a placed design")
    q.add_argument("design", type=Path, help="placed DEF (with --netlist) or a Verilog file (with --top)")
    q.add_argument("--netlist", type=Path, help="post-placement gate netlist of the DEF (default: netlist.v beside it)")
    q.add_argument("--top", help="top module of a Verilog input (default: the file's stem)")
    add_clock_argument(q, None, alias=True)
    q.add_argument("--model", type=Path, default=None, help="trained model folder (default: bench.e2eslack's)")
    q.add_argument("--paths", type=nonnegative_int, default=3, help="number of critical paths to print (default 3)")
    q.add_argument("--json", action="store_true", help="print the result as JSON")
    q.add_argument("--plot", type=Path, help="PNG of predicted vs post-route slack (DEF inside an eda.flow folder)")
    args = p.parse_args(argv)
    from eda.flow import FlowError, run_placement
    from eda.parse import ParseError
    from eda.slack_model import default_model_dir

    model_dir = args.model or default_model_dir()
    try:
        if args.plot is not None:
            check_output(args.plot, "--plot", folder=False)
        if not args.design.is_file():
            raise FlowError(f"{args.design} not found: pass a placed DEF or a Verilog file")
        placed = args.design if args.design.suffix.lower() == ".def" else None
        if placed is not None:
            netlist = args.netlist or args.design.parent / "netlist.v"
            if not netlist.is_file():
                raise FlowError(f"netlist {netlist} not found: pass the post-placement netlist with --netlist")
            if args.plot and not (placed.parent / "labels.npz").is_file():
                raise FlowError(f"--plot needs post-route labels: {placed.parent} is not an eda.flow folder")
        elif args.plot:
            raise FlowError("--plot needs a placed DEF inside an eda.flow folder, not a Verilog file")
        if not (model_dir / "model.pt").exists():
            raise FlowError(f"no trained model in {model_dir}: run 'python -m bench.e2eslack' or pass --model")
        if placed is None:  # a Verilog file: place it first (cached)
            folder = run_placement(args.design.read_text(), args.top or args.design.stem)
            placed, netlist = folder / "placed.def", folder / "netlist.v"
        from eda.slack_model import SlackPredictor, predict_placed

        model = SlackPredictor.from_pretrained(model_dir)
        result, data, names, wall = predict_placed(placed, netlist, args.clock_ns, model)
    except (FlowError, ParseError, ValueError, UnicodeDecodeError) as e:
        return fail(PROG, e)
    paths = result.paths(data, args.paths)
    if args.plot:
        _plot_against_routed(args.plot, placed.parent, result, args.clock_ns)
    summary = {
        "wns_ns": result.wns,
        "tns_ns": result.tns,
        "endpoints": int(result.endpoint.sum()),
        "wall_seconds": wall,
        "critical_paths": paths,
    }
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    print(f"predicted WNS {result.wns:.4f} ns, TNS {result.tns:.4f} ns over {summary['endpoints']} endpoints")
    for k, path in enumerate(paths, 1):
        print(f"path {k}: slack {path['slack_ns']:.4f} ns at {path['endpoint']} ({len(path['pins'])} pins)")
        for name, at in path["pins"][-6:]:
            print(f"    {at:8.4f} ns  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
