"""Node anomaly detection with SpaceGNN and baselines under the limited-label protocol.

    python -m models.anomaly train --dataset netlist-dequant-trojan --method spacegnn,gcn --seeds 3
    python -m models.anomaly eval  --dataset netlist-dequant-trojan --method spacegnn,gcn --seeds 3
    python -m models.anomaly train --dataset reddit --data-dir ~/gadbench/datasets --method all

train: for each dataset, method and seed, split the nodes (50 training and 50 validation nodes stratified by
the anomaly ratio, the rest test), train, keep the best validation state, save it under
OUT/checkpoints/<dataset>/<method>/seed<k>.pt and score the test nodes. eval: score saved checkpoints again
on the same splits. Both print a table and write OUT/<train|eval>.json, .csv and _auroc.png.

Metrics are on the test nodes, in %: AUROC, AUPRC and macro-F1 (threshold chosen on the validation nodes),
mean ± std over seeds; train s is the mean training time per seed in seconds.
Datasets: netlist-<int8|dequant|mixpe|array2x2>-<trojan|outlier> are built here from the project's own
hardware (yosys + osu018 cells, anomalies injected); weibo, reddit, tolokers, amazon, tfinance, yelp,
questions, dgraphfin and tsocial are read from your data folder (nothing is downloaded); a path to a .pt,
.npz or DGL file works too. Bad input exits with code 2 and one line.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

from models.anomaly import METHODS
from sim.cli import OneLineParser, add_quiet_argument, check_output, fail, positive_float, positive_int

PROG = "python -m models.anomaly"


def _methods(text: str) -> list[str]:
    names = list(METHODS) if text == "all" else [m.strip() for m in text.split(",") if m.strip()]
    unknown = [m for m in names if m not in METHODS]
    if unknown or not names:
        choices = ", ".join(METHODS)
        raise argparse.ArgumentTypeError(f"unknown method {','.join(unknown)!r}: choose from {choices} or all")
    return names


def parse(argv: list[str] | None) -> argparse.Namespace:
    fmt = argparse.RawDescriptionHelpFormatter
    p = OneLineParser(prog=PROG, description=__doc__, formatter_class=fmt)
    sub = p.add_subparsers(dest="cmd", required=True, parser_class=OneLineParser)
    for name, text in (("train", "train, save checkpoints and evaluate"), ("eval", "evaluate saved checkpoints")):
        s = sub.add_parser(name, help=text)
        s.add_argument("--dataset", action="append", required=True, help="dataset name or file (repeatable)")
        s.add_argument("--method", type=_methods, default=["spacegnn"], help="comma-separated methods or 'all'")
        s.add_argument("--seeds", type=positive_int, default=3, help="number of seeds 0..N-1 (default 3)")
        s.add_argument("--data-dir", type=Path, help="paper datasets' folder ($MIXKIT_GAD_DATA or ./datasets)")
        s.add_argument(
            "-o", "--out", type=Path, default=Path("out/anomaly"), help="output folder (default out/anomaly)"
        )
        s.add_argument("--json", action="store_true", help="print the results as JSON instead of a table")
        add_quiet_argument(s)
        if name == "train":
            s.add_argument(
                "--epochs", type=positive_int, default=100, help="training steps, one 50-node batch each (100)"
            )
            s.add_argument("--eval-every", type=positive_int, default=5, help="epochs between validation checks (5)")
            s.add_argument(
                "--lr", type=positive_float, default=1e-3, help="Adam learning rate (1e-3; paper lr on its data)"
            )
            s.add_argument("--hidden", type=positive_int, default=128, help="hidden width (128, the paper's)")
            s.add_argument("--threads", type=positive_int, default=1, help="torch CPU threads (default 1)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    try:  # a results folder: new, or one earlier runs wrote into (their checkpoints are what eval reads)
        check_output(args.out, "--out", reuse=True)
    except ValueError as e:
        return fail(PROG, e)
    import torch  # heavy imports only after the arguments are known to be good
    from tqdm import tqdm

    from models.anomaly.datasets import DatasetError, dataset_label, load_dataset
    from models.anomaly.netlist_graph import NetlistError
    from models.anomaly.protocol import ProtocolError, limited_label_split
    from models.anomaly.report import table, write_results
    from models.anomaly.train import (
        TrainSettings,
        checkpoint_path,
        eval_seed,
        run_seed,
        save_checkpoint,
        summary,
    )  # fmt: skip

    torch.set_num_threads(getattr(args, "threads", 1))
    seeds = list(range(args.seeds))
    try:
        graphs = {dataset_label(d): load_dataset(d, args.data_dir) for d in args.dataset}
        for data in graphs.values():
            limited_label_split(data.y.numpy(), 0)  # every graph must admit the protocol before any work starts
        if args.cmd == "eval":
            missing = [
                checkpoint_path(args.out, d, m, s) for d in graphs for m in args.method for s in seeds
                if not checkpoint_path(args.out, d, m, s).is_file()
            ]  # fmt: skip
            if missing:
                raise DatasetError(f"no checkpoint {missing[0]}: run 'train' with the same options first")
    except (DatasetError, NetlistError, ProtocolError) as e:
        return fail(PROG, e)

    settings = None
    if args.cmd == "train":
        settings = TrainSettings(args.epochs, args.eval_every, args.lr, args.hidden)
    results = []
    jobs = [(d, m) for d in graphs for m in args.method]
    with tqdm(total=len(jobs) * len(seeds), desc=args.cmd, unit="run", disable=args.quiet) as bar:
        for d, m in jobs:
            runs = []
            for s in seeds:
                bar.set_postfix_str(f"{d} {m} seed {s}")
                path = checkpoint_path(args.out, d, m, s)
                if settings is None:
                    runs.append(eval_seed(path, graphs[d], s))
                else:
                    model, metrics = run_seed(m, graphs[d], d, s, settings, progress=not args.quiet)
                    save_checkpoint(model, path, m, d, graphs[d].num_features, settings.hidden)
                    runs.append(metrics)
                bar.update()
            results.append(summary(m, d, runs))
    meta = {"seeds": seeds, **(asdict(settings) if settings else {})}
    paths = write_results(results, args.out, args.cmd, {"settings": meta})
    if args.json:
        print(json.dumps({"settings": meta, "results": results}, indent=1))
    else:
        print(table(results))
        print("wrote " + ", ".join(str(p) for p in paths))
    return 0


if __name__ == "__main__":
    sys.exit(main())
