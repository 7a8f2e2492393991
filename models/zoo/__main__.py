"""Command line for the zoo.

    python -m models.zoo build [--preset tiny|default] [--seed N] [--json]   train (or find cached) and evaluate
    python -m models.zoo eval PATH_OR_NAME [--preset P] [--seed N] [--json]  evaluate one model on held-out tasks

Perplexity is per token (exp of mean NLL in nats); top1% is next-token accuracy; math EM% is exact match of
arithmetic answers (greedy); ans-top1% is top-1 accuracy on answer tokens; recall% is key-value recall accuracy.
Bad input exits with code 2 and one line.
"""

from __future__ import annotations

import argparse
import json
import sys

from models.zoo.errors import ZooError
from models.zoo.presets import PRESETS
from sim.cli import OneLineParser, fail, positive_int, seed_int

PROG = "python -m models.zoo"


def main(argv: list[str] | None = None) -> int:
    p = OneLineParser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True, parser_class=OneLineParser)
    b = sub.add_parser("build", help="train (or find cached) base and variants, print their evaluation")
    e = sub.add_parser("eval", help="evaluate a zoo model (base, code, math, english) or a local checkpoint folder")
    e.add_argument("model", help="base, code, math, english, or a local Hugging Face checkpoint folder")
    for s in (b, e):
        s.add_argument("--preset", choices=list(PRESETS), default="default", help="zoo size (default: default)")
        s.add_argument("--seed", type=seed_int, default=0, help="random seed (default: 0)")
        s.add_argument("--threads", type=positive_int, default=None, help="torch CPU threads (default: torch's)")
        s.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = p.parse_args(argv)
    if args.cmd == "eval":
        from models.cli import check_models

        try:
            check_models(args.model)
        except ValueError as err:
            return fail(PROG, err)

    import torch  # heavy imports only after the arguments are known to be good

    from models.zoo import zoo
    from models.zoo.evaluate import evaluate, table
    from models.zoo.presets import get_preset

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    try:
        if args.cmd == "build":
            zoo.build(args.preset, args.seed, progress=True)
            result = zoo.build_result(args.preset, args.seed)
            if args.json:
                print(json.dumps(result, indent=1))
                return 0
            print(table(result["evaluation"]))
            tr = result["training"]
            print(
                f"parameters {result['parameters']:,}; training {result['train_seconds']:.0f} s; tokens/s "
                + ", ".join(f"{k} {v['tokens_per_s']:.0f}" for k, v in tr.items())
            )
            print(f"checkpoints: {zoo.entry_dir(args.preset, args.seed)}")
            return 0
        model, tokenizer = zoo.load(args.model, args.preset)
        ev = evaluate(model, tokenizer, get_preset(args.preset), args.seed)
        print(json.dumps(ev, indent=1) if args.json else table({str(args.model)[-10:]: ev}))
        return 0
    except (ZooError, OSError) as err:
        return fail(PROG, err)


if __name__ == "__main__":
    sys.exit(main())
