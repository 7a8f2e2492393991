"""python -m models.prune rank MODEL: importance of every decoder block, per metric (higher: keep).
python -m models.prune remove MODEL --remove N -o OUT: plain removal of the N least important blocks (ShortGPT).
python -m models.prune fuse MODEL --remove N -o OUT: FuseGPT, N blocks fused into their neighbours, one by one.
python -m models.prune compare MODEL --max-remove N -o DIR: quality vs removed blocks, fusion vs plain removal.

MODEL is a zoo name (base, code, math, english; built for --preset if needed) or a local Llama checkpoint folder.
Metrics: macro (FuseGPT Macro Influence: 1 - cosine of the whole model's final hidden state with and without
the block) and cosine (ShortGPT Block Influence: 1 - cosine of the block's own input and output); both are
averaged over the tokens of --importance-windows calibration windows (zoo training text: code, English, math).

remove and fuse print the removed blocks (original numbering), the time taken (s) and the held-out perplexity
per task (code, english, math; --eval-windows windows of --seq-len tokens) before and after, and write OUT:
an ordinary, shallower Llama checkpoint (save_pretrained model + tokenizer + prune.json with the figures),
atomically, so `python -m models.export OUT --wbits 4 ...` and from_pretrained work on it. fuse tunes each
fusion for --epochs passes over --calib-windows windows (batch 8). compare writes DIR/compare.json and
DIR/compare.png (zoo evaluation: perplexity, top-1 and math answer accuracy per task) for every method at
1..N removed blocks. Bad input exits with code 2 and one line; nothing is written.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from models.cli import check_models, run_command
from models.device import add_device_arguments, check_device, placement
from sim.cli import (
    OneLineParser,
    add_output_arguments,
    check_output,
    int_in,
    positive_float,
    positive_int,
)

PROG = "python -m models.prune"
RESULT = "prune.json"


def parser() -> OneLineParser:
    p = OneLineParser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    r = sub.add_parser("rank", help="print every block's importance per metric")
    _model(r)
    _common(r)
    rm = sub.add_parser("remove", help="plain removal of the least important blocks (ShortGPT)")
    _model(rm)
    _removal(rm, default_metric="cosine")
    rm.add_argument("--iterative", action="store_true", help="rescore after each removal (default: rank once)")
    _common(rm)
    f = sub.add_parser("fuse", help="FuseGPT: fuse the least important blocks into their neighbours")
    _model(f)
    _removal(f, default_metric="macro")
    _tuning(f)
    f.add_argument("--one-shot", action="store_true", help="rank blocks once instead of after every fusion")
    _common(f)
    c = sub.add_parser("compare", help="quality vs removed blocks: fusion, removal + tuning, plain removal")
    _model(c)
    c.add_argument("--max-remove", type=positive_int, required=True, help="score 1..N removed blocks")
    add_output_arguments(c, "folder for compare.json and compare.png (new, or an earlier compare's)")
    _tuning(c)
    _common(c)
    return p


def _model(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="zoo name (base, code, math, english) or a local Llama checkpoint folder")


def _removal(p: argparse.ArgumentParser, default_metric: str) -> None:
    p.add_argument("--remove", type=positive_int, required=True, help="decoder blocks to remove")
    add_output_arguments(p, "output folder for the pruned model (new, or an earlier run's)")
    p.add_argument("--metric", choices=("macro", "cosine"), default=default_metric, help=f"(default {default_metric})")


def _tuning(p: argparse.ArgumentParser) -> None:
    p.add_argument("--calib-windows", type=positive_int, default=64, help="fine-tune windows per fusion (default 64)")
    p.add_argument("--epochs", type=positive_int, default=12, help="passes over the windows per fusion (default 12)")
    p.add_argument(
        "--rank", type=positive_int, default=16, help="rank of the learnable coefficient matrices (default 16)"
    )
    p.add_argument(
        "--group-size", type=positive_int, default=8, help="blocks per fusion group, removed one included (8)"
    )
    p.add_argument(
        "--lr", type=positive_float, default=1e-3, help="learning rate of host LoRA and norms (default 1e-3)"
    )
    p.add_argument(
        "--coef-lr", type=positive_float, default=1e-2, help="learning rate of the coefficients (default 1e-2)"
    )


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--preset", default="default", help="zoo preset for zoo models and evaluation data (tiny, default)")
    p.add_argument("--seq-len", type=int_in(2), default=128, help="tokens per window (default 128)")
    p.add_argument(
        "--importance-windows", type=positive_int, default=16, help="windows that score importance (default 16)"
    )
    p.add_argument("--eval-windows", type=positive_int, default=8, help="held-out windows scored per task (default 8)")
    p.add_argument("--seed", type=int, default=0, help="seed of data order and initialisation (default 0)")
    p.add_argument("--threads", type=positive_int, default=1, help="torch CPU threads (default 1)")
    add_device_arguments(p)
    p.add_argument("--json", action="store_true", help="print the figures as JSON")


def check(args: argparse.Namespace) -> None:
    """Output folder free (or this tool's), the model folder whole, the device here."""
    check_device(args.device)
    if args.command != "rank":
        check_output(args.out, own=RESULT if args.command != "compare" else "compare.json", force=args.force)
    check_models(args.model)


def _windows(tokenizer, args: argparse.Namespace, count: int):
    from models.moe import training_windows

    return training_windows(tokenizer, args.preset, args.seq_len, count, args.seed)


def _load(args: argparse.Namespace):
    from models import zoo
    from models.device import place
    from models.prune import PruneError
    from models.prune.importance import decoder_blocks

    model, tokenizer = zoo.load(args.model, args.preset)
    place(model, **placement(args))
    depth = len(decoder_blocks(model))
    n = getattr(args, "remove", None) or getattr(args, "max_remove", None)
    if n is not None and not 0 < n < depth:
        raise PruneError(f"cannot remove {n} of the model's {depth} blocks: choose 1..{depth - 1}")
    return model, tokenizer


def _ppl(model, tokenizer, args: argparse.Namespace) -> dict[str, float]:
    from models.moe.__main__ import task_ppl

    return task_ppl(model, tokenizer, args.preset, args.seq_len, args.eval_windows, args.seed)


def _settings(args: argparse.Namespace) -> dict:
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}


def _tuning_settings(args: argparse.Namespace) -> dict:
    """The fusion tuning keywords fuse() and compare() share."""
    names = ("group_size", "rank", "epochs", "lr", "coef_lr", "importance_windows", "seed")
    return {name: getattr(args, name) for name in names}


def rank_command(args: argparse.Namespace) -> dict:
    from models.prune import block_importance
    from models.prune.importance import METRICS

    model, tokenizer = _load(args)
    probe = _windows(tokenizer, args, args.importance_windows)
    return {"model": str(args.model), "importance": {m: block_importance(model, probe, m) for m in METRICS}}


def prune_command(args: argparse.Namespace) -> dict:
    import time

    from models.prune import fuse, remove_blocks, select_blocks

    model, tokenizer = _load(args)
    result = {"model": str(args.model), "settings": _settings(args), "ppl": {"dense": _ppl(model, tokenizer, args)}}
    t0 = time.time()
    if args.command == "remove":
        probe = _windows(tokenizer, args, args.importance_windows)
        result["removed"] = select_blocks(model, probe, args.remove, args.metric, args.iterative)
        remove_blocks(model, result["removed"])
    else:
        data = _windows(tokenizer, args, max(args.calib_windows, args.importance_windows))
        _, stats = fuse(
            model,
            data,
            args.remove,
            args.metric,
            iterative=not args.one_shot,
            **_tuning_settings(args),
        )
        result["removed"], result["fusions"] = stats["removed"], stats["steps"]
    result["seconds"] = round(time.time() - t0, 3)
    result["blocks"] = model.config.num_hidden_layers
    result["ppl"]["pruned"] = _ppl(model, tokenizer, args)
    from models.checkpoint import save_checkpoint

    save_checkpoint(model, tokenizer, args.out, {RESULT: result})
    return result


def compare_command(args: argparse.Namespace) -> dict:
    from models.prune.compare import compare, plot

    model, tokenizer = _load(args)
    data = _windows(tokenizer, args, max(args.calib_windows, args.importance_windows))
    result = compare(
        model,
        tokenizer,
        data,
        args.max_remove,
        args.preset,
        **_tuning_settings(args),
    )
    result = {"model": str(args.model), "settings": _settings(args), **result}
    from sim.files import atomic_write

    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write(args.out / "compare.json", json.dumps(result, indent=1) + "\n")
    plot(result, args.out / "compare.png")
    return result


def report(result: dict) -> str:
    """A short text report of a command's result."""
    from models.prune.compare import table

    if "importance" in result:
        metrics = list(result["importance"])
        lines = [f"{'block':>5}" + "".join(f"{m:>12}" for m in metrics)]
        for i in range(len(result["importance"][metrics[0]])):
            lines.append(f"{i:>5}" + "".join(f"{result['importance'][m][i]:>12.5f}" for m in metrics))
        return "\n".join(lines)
    if "methods" in result:
        return table(result)
    tasks = list(result["ppl"]["dense"])
    lines = [f"removed blocks {result['removed']} in {result['seconds']:.2f} s; {result['blocks']} blocks remain"]
    lines.append(f"{'model':<8}" + "".join(f"{t + ' ppl':>14}" for t in tasks))
    for name, ppl in result["ppl"].items():
        lines.append(f"{name:<8}" + "".join(f"{ppl[t]:>14.3f}" for t in tasks))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    commands = {"rank": rank_command, "remove": prune_command, "fuse": prune_command, "compare": compare_command}
    return run_command(PROG, args, commands, report, check)


if __name__ == "__main__":
    raise SystemExit(main())
