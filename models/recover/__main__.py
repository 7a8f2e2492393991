"""python -m models.recover select MODEL --pruned PRUNED --budget 0.1 -o SEL: choose recovery data (PASER).
python -m models.recover train PRUNED --selection SEL -o OUT: LoRA-recover a pruned model on a selection.
python -m models.recover compare MODEL --pruned PRUNED -o DIR: every method at several budgets, trained and scored.

MODEL (the original) and PRUNED are zoo names (base, code, math, english; built for --preset if needed) or local
Llama checkpoint folders (e.g. a `python -m models.prune` output); --drop I[,J] removes those decoder blocks
(0-based, ShortGPT-style) from PRUNED after loading, so `--pruned base --drop 1` is the base model without block 1.

The pool is built from the zoo preset's training data (arithmetic, recall, code, English instruction/response
pairs; --pool-size N per capability, recall N/4) or read from --pool FILE (a JSON list of {instruction, response,
capability}). --budget is a fraction of the pool's tokens (BOS + instruction + response + EOS): 0.1 trains on
10% of the pool's tokens, whatever the method. Methods: paser (manifold + spectral clustering of MiniLM
instruction embeddings, budget by per-cluster degradation JSD(original, pruned), priority JSD / log(tokens^2),
concept-consistency filter; --no-backfill leaves its rejected samples out even if budget is left), random,
stratified (random within each capability, budget by pool-token share), ifd (Cherry-LLM instruction-following
difficulty, highest first), full.

select writes the folder SEL holding selection.json (settings, per-cluster figures, selection time in s, the chosen
samples); train's --selection takes that folder or the selection.json in it. train fine-tunes
LoRA adapters (rank --rank, alpha 2 x rank) for --epochs epochs, merges them, and writes OUT (save_pretrained
model + tokenizer + recover.json with held-out perplexity and top-1 accuracy per task before and after).
compare writes DIR/compare.json and DIR/compare.png (quality vs budget per method). Perplexity is per token;
accuracies are fractions. Bad input exits with code 2 and one line; no output is half-written.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from models.cli import check_models, run_command
from models.device import add_device_arguments, check_device, placement
from models.recover.select import METHODS
from sim.cli import (
    OneLineParser,
    add_output_arguments,
    check_output,
    fraction,
    int_in,
    positive_float,
    positive_int,
)

PROG = "python -m models.recover"
RESULT = "recover.json"
SELECTION = "selection.json"  # what `select -o DIR` writes into DIR


def _budgets(text: str) -> list[float]:
    try:
        budgets = [fraction(x) for x in text.split(",") if x.strip()]
    except argparse.ArgumentTypeError:
        budgets = []
    if not budgets:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a comma-separated list of fractions in (0, 1], e.g. 0.04,0.1"
        )
    return budgets


def parser() -> OneLineParser:
    p = OneLineParser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    s = sub.add_parser("select", help="choose recovery samples for a pruned model")
    s.add_argument("model", help="the original model: zoo name or local Llama checkpoint folder")
    s.add_argument("--pruned", required=True, help="the pruned model: zoo name or checkpoint folder")
    s.add_argument("--budget", type=fraction, required=True, help="fraction of the pool's tokens to select, in (0, 1]")
    s.add_argument("--method", default="paser", choices=METHODS, help="selection method (default paser)")
    add_output_arguments(s, f"folder for {SELECTION} (new, or an earlier select's)")
    _pool(s)
    t = sub.add_parser("train", help="LoRA-recover a pruned model on a selection file")
    t.add_argument("pruned", help="the pruned model: zoo name or checkpoint folder")
    t.add_argument("--selection", type=Path, required=True, help=f"folder written by `select` (or its {SELECTION})")
    add_output_arguments(t, "output folder for the recovered model (new, or an earlier train's)")
    _train(t)
    c = sub.add_parser("compare", help="train every method at every budget and plot quality vs budget")
    c.add_argument("model", help="the original model: zoo name or local Llama checkpoint folder")
    c.add_argument("--pruned", required=True, help="the pruned model: zoo name or checkpoint folder")
    c.add_argument("--budgets", type=_budgets, default=[0.04, 0.1, 0.2], help="fractions (default 0.04,0.1,0.2)")
    c.add_argument("--methods", default="paser,random,ifd,full", help="comma-separated (default all four)")
    add_output_arguments(c, "folder for compare.json and compare.png (new, or an earlier compare's)")
    _pool(c)
    _train(c)
    return p


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--drop", default="", help="decoder blocks to remove from PRUNED after loading, e.g. 1 or 1,2")
    p.add_argument("--preset", default="default", help="zoo preset for zoo models and task data (tiny, default)")
    p.add_argument("--seed", type=int, default=0, help="seed of the pool, clustering, random selection, training")
    p.add_argument("--threads", type=positive_int, default=1, help="torch CPU threads (default 1)")
    add_device_arguments(p)
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def _pool(p: argparse.ArgumentParser) -> None:
    p.add_argument("--pool", type=Path, help="JSON pool file instead of the zoo-built pool")
    p.add_argument(
        "--pool-size",
        type=int_in(4),
        default=300,
        help="zoo pool: samples per capability, recall a quarter (default 300)",
    )
    p.add_argument(
        "--encoder",
        default="minilm",
        choices=("minilm", "model"),
        help="paser embeddings: sentence encoder or the original model's hidden states (default minilm)",
    )
    p.add_argument("--clusters", type=positive_int, default=10, help="paser capability clusters (default 10)")
    p.add_argument("--no-ccg", action="store_true", help="paser without the concept-consistency filter")
    p.add_argument("--no-backfill", action="store_true", help="paser: never select samples the filter rejected")
    _common(p)


def _train(p: argparse.ArgumentParser) -> None:
    p.add_argument("--epochs", type=positive_int, default=2, help="passes over the selection (default 2)")
    p.add_argument("--batch", type=positive_int, default=8, help="samples per step (default 8)")
    p.add_argument("--lr", type=positive_float, default=1e-3, help="peak AdamW learning rate (default 1e-3)")
    p.add_argument("--rank", type=positive_int, default=8, help="LoRA rank r (alpha = 2r; default 8)")
    if not any(a.dest == "drop" for a in p._actions):
        _common(p)


def _train_settings(args: argparse.Namespace) -> dict:
    return {"epochs": args.epochs, "batch": args.batch, "lr": args.lr, "r": args.rank, "alpha": 2.0 * args.rank}


def _settings(args: argparse.Namespace) -> dict:
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}


def _load_pool(args: argparse.Namespace):
    from models.recover.instructions import build_pool, load_pool

    if args.pool is not None:
        if not args.pool.is_file():
            raise ValueError(f"{args.pool} does not exist: pass a JSON pool file or omit --pool")
        return load_pool(args.pool)
    n = args.pool_size
    return build_pool(args.preset, {"arithmetic": n, "recall": n // 4, "code": n, "english": n}, args.seed)


def _models(args: argparse.Namespace):
    from models.recover.pipeline import load_model, parse_drop

    original, tokenizer = load_model(args.model, args.preset, **placement(args))
    pruned, _ = load_model(args.pruned, args.preset, parse_drop(args.drop), **placement(args))
    return original, pruned, tokenizer


def select_command(args: argparse.Namespace) -> dict:
    from models.recover.pipeline import Scored, run_selection, save_selection, score

    original, pruned, tokenizer = _models(args)
    samples = _load_pool(args)
    scored = score(
        Scored(samples),
        [args.method],
        original,
        pruned,
        tokenizer,
        args.encoder,
        args.clusters,
        args.seed,
        progress=True,
    )
    sel = run_selection(args.method, scored, args.budget, args.seed, not args.no_ccg, not args.no_backfill)
    meta = {
        "model": args.model,
        "pruned": args.pruned,
        "drop": args.drop,
        "budget": args.budget,
        "settings": _settings(args),
        "scoring_seconds": scored.seconds,
    }
    from sim.files import staged_folder

    with staged_folder(args.out) as work:
        doc = save_selection(work / SELECTION, sel, scored, meta)
    return {k: v for k, v in doc.items() if k not in ("samples", "indices")}


def train_command(args: argparse.Namespace) -> dict:
    from models.recover.pipeline import load_model, load_selection, parse_drop, quality, train_copy

    settings = _train_settings(args)
    samples, doc = load_selection(_selection_file(args.selection))
    pruned, tokenizer = load_model(args.pruned, args.preset, parse_drop(args.drop), **placement(args))
    before = quality(pruned, tokenizer, args.preset, args.seed)
    model, stats = train_copy(pruned, tokenizer, samples, {**settings, "seed": args.seed}, progress=True)
    result = {
        "pruned": args.pruned,
        "selection": {k: doc.get(k) for k in ("method", "budget", "selected", "selected_tokens", "model")},
        "settings": _settings(args),
        "train": stats,
        "quality": {"pruned": before, "recovered": quality(model, tokenizer, args.preset, args.seed)},
    }
    from models.checkpoint import save_checkpoint

    save_checkpoint(model, tokenizer, args.out, {RESULT: result})
    return result


def compare_command(args: argparse.Namespace) -> dict:
    from models.recover.pipeline import compare, plot
    from sim.files import atomic_write

    methods = [m for m in args.methods.split(",") if m]
    settings = _train_settings(args)
    original, pruned, tokenizer = _models(args)
    samples = _load_pool(args)
    from models.recover.pipeline import Scored, score

    scored = score(Scored(samples), methods, original, pruned, tokenizer, args.encoder, args.clusters, args.seed, True)
    result = compare(scored, original, pruned, tokenizer, args.budgets, methods, settings, args.preset, args.seed)
    result["settings"] = _settings(args)
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write(args.out / "compare.json", json.dumps(result, indent=1) + "\n")
    plot(result, args.out / "compare.png")
    return result


def report(result: dict) -> str:
    """A short text view of a select, train or compare result."""
    from models.recover.pipeline import TASKS

    def row(name: str, q: dict) -> str:
        return (
            f"{name:<22}"
            + "".join(f"{q[t]['ppl']:>13.2f}{100 * q[t]['top1']:>7.1f}" for t in TASKS)
            + f"{q['average']['ppl']:>13.2f}{100 * q['average']['top1']:>7.1f}"
        )

    head = f"{'model':<22}" + "".join(f"{t + ' ppl':>13}{'top1%':>7}" for t in (*TASKS, "avg"))
    if "runs" in result:
        lines = [head, row("original", result["reference"]["original"]), row("pruned", result["reference"]["pruned"])]
        for r in result["runs"]:
            lines.append(
                row(f"{r['method']} {100 * r['budget']:g}%", r["quality"]) + f"  sel {r['selection_seconds']:.1f} s"
            )
        return "\n".join(lines)
    if "quality" in result:
        return "\n".join(
            [
                head,
                *(row(k, q) for k, q in result["quality"].items()),
                f"trained {result['train']['tokens']} tokens in {result['train']['seconds']:.1f} s",
            ]
        )
    return (
        f"{result['method']}: {result['selected']} of {result['pool_samples']} samples, "
        f"{result['selected_tokens']} of {result['pool_tokens']} tokens (budget {result['budget_tokens']}); "
        f"selection time {result['details']['selection_seconds']:.1f} s; capabilities {result['capabilities']}"
    )


def _selection_file(path: Path) -> Path:
    """The selection.json of a `select` folder, or `path` itself if it names a file."""
    return path / SELECTION if path.is_dir() else path


def check(args: argparse.Namespace) -> None:
    """Methods known, the output path free (or this tool's), input files whole, the device here."""
    check_device(args.device)
    if args.command == "compare":
        methods = [m for m in args.methods.split(",") if m]
        bad = [m for m in methods if m not in METHODS]
        if bad or not methods:
            raise ValueError(f"unknown method {bad[0] if bad else '(none)'!r} in --methods: use {', '.join(METHODS)}")
    own = {"select": SELECTION, "train": RESULT, "compare": "compare.json"}[args.command]
    check_output(args.out, own=own, force=args.force)
    if args.command == "train":
        from models.files import read_json

        read_json(_selection_file(args.selection), "write one with `python -m models.recover select`")
    if getattr(args, "pool", None) is not None:
        from models.files import read_json

        read_json(args.pool, "pass a JSON list of {instruction, response, capability}")
    check_models(getattr(args, "model", None), args.pruned)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    commands = {"select": select_command, "train": train_command, "compare": compare_command}
    return run_command(PROG, args, commands, report, check)


if __name__ == "__main__":
    raise SystemExit(main())
