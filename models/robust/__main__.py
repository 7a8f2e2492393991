"""python -m models.robust train-backdoor|certify|attack: backdoored MiniLM classifiers and their certification.

  train-backdoor  fine-tune (and cache) the victim and FRS's BMPS classifier under an attack; prints clean
                  accuracy (CA) and attack success rate (ASR) in percent; --out saves both as
                  save_pretrained folders OUT/victim and OUT/frs, and the scores as OUT/train.json.
  certify         every defense's smoothed CA, ASR and certificates (Cohen's CERTIFY with a Clopper-Pearson
                  bound; radii in word edits, each method's own threat model); --out writes result.json,
                  result.csv and certified.png (certified accuracy vs radius, CA and ASR per method).
  attack          smoothed CA and ASR per defense only (no certificates; faster); --out writes attack.json.

Task: which local source a snippet of --words words comes from (code, man page, doc, arithmetic). Attacks:
word (rare-word trigger), sentence (fixed sentence), ripple (RIPPLe-like weight poisoning), all to label
--target. Randomization budget --omega: the probability a word is wiped (uniform, RanMASK, FRS's omega_m).
Trained classifiers are cached under ~/.cache/mixkit/robust (MIXKIT_CACHE moves it). Bad settings exit 2
with one line on stderr and write nothing.
"""

from __future__ import annotations

import argparse
import json
import shutil

from models.robust.data import LABELS
from sim.cli import (
    OneLineParser,
    add_output_arguments,
    add_quiet_argument,
    check_output,
    fail,
    float_in,
    int_in,
    nonnegative_float,
    positive_int,
)

PROG = "python -m models.robust"
OUTPUTS = ("train.json", "result.json", "attack.json")  # the files that mark a folder this tool wrote


def _parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    for name in ("train-backdoor", "certify", "attack"):
        s = sub.add_parser(name, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
        s.add_argument("--attack", default="word", choices=("word", "sentence", "ripple"), help="backdoor attack")
        s.add_argument(
            "--target", type=int_in(0, len(LABELS) - 1), default=0, help=f"target label index ({', '.join(LABELS)})"
        )
        s.add_argument(
            "--rate", type=float_in(0, 1), default=0.2, help="poisoned fraction of non-target training samples"
        )
        s.add_argument("--layers", type=int_in(1, 6), default=6, help="MiniLM encoder layers kept (1..6)")
        s.add_argument("--per-class", type=int_in(2), default=60, help="training snippets per label")
        s.add_argument("--test-per-class", type=positive_int, default=10, help="test snippets per label")
        s.add_argument("--words", type=int_in(2), default=16, help="words per snippet")
        s.add_argument("--steps", type=positive_int, default=40, help="fine-tuning steps of 16 samples")
        s.add_argument("--copies", type=positive_int, default=20, help="FRS phase 2: K noisy model copies")
        s.add_argument("--sigma", type=nonnegative_float, default=0.01, help="FRS phase 2: parameter noise std")
        s.add_argument("--seed", type=int, default=0)
        s.add_argument("--threads", type=positive_int, default=2, help="torch CPU threads")
        add_output_arguments(s, "output folder (new, or one this tool wrote; files written atomically)", required=False)
        s.add_argument("--json", action="store_true", help="print the result as JSON")
        add_quiet_argument(s)
        if name != "train-backdoor":
            s.add_argument(
                "--methods",
                default="frs,uniform,ranmask,safer,textcrs,textcrs-del,textcrs-order",
                help="comma-separated defenses",
            )
            unit, alpha = float_in(0, 1, low_open=True, high_open=True), float_in(0, 0.5, low_open=True, high_open=True)
            s.add_argument("--omega", type=unit, default=0.7, help="wipe probability per word (see above)")
            s.add_argument("--n", type=int_in(4), default=32, help="Monte Carlo draws per text (selection n/4)")
            s.add_argument("--alpha", type=alpha, default=0.05, help="certification failure probability")
            s.add_argument("--fuzz-budget", type=positive_int, default=24, help="FRS MCTS iterations per text")
        if name == "certify":
            s.add_argument("--quant", default="", help="also certify FRS/uniform at these weight bits, e.g. 8,4")
    return p


def _setup(args):
    from models.robust.pipeline import Setup
    from models.robust.smoothing import ParameterSmoothing
    from models.robust.train import TrainConfig

    train = TrainConfig(steps=args.steps, batch=16, lr=2e-4, seed=args.seed)
    bmps = TrainConfig(steps=args.steps, batch=16, lr=2e-4, clip=1.0, param_noise=1e-3, seed=args.seed)
    return Setup(
        attack=args.attack,
        target=args.target,
        rate=args.rate,
        per_class=args.per_class,
        test_per_class=args.test_per_class,
        words=args.words,
        layers=None if args.layers == 6 else args.layers,
        train=train,
        bmps=bmps,
        smoothing=ParameterSmoothing(copies=args.copies, sigma=args.sigma, seed=args.seed),
        seed=args.seed,
    )


def _methods(args) -> tuple[str, ...]:
    from models.robust.pipeline import METHODS

    names = tuple(m.strip() for m in args.methods.split(",") if m.strip())
    bad = [m for m in names if m not in METHODS]
    if bad or not names:
        raise ValueError(f"unknown method {bad[0] if bad else '(none)'}: choose from {', '.join(METHODS)}")
    return names


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.out is not None:
            check_output(args.out, "--out", own=OUTPUTS, force=args.force)
        bits = tuple(b.strip() for b in getattr(args, "quant", "").split(",") if b.strip())
        if any(b not in ("2", "3", "4", "8") for b in bits):
            raise ValueError(f"--quant {args.quant}: weight bits must be among 2, 3, 4, 8 (e.g. --quant 8,4)")
        bits = tuple(int(b) for b in bits)
        methods = _methods(args) if args.command != "train-backdoor" else ()
        setup = _setup(args)
    except ValueError as e:
        return fail(PROG, e)

    import torch

    from models.robust import pipeline, report
    from models.robust.harness import MonteCarlo
    from sim.files import atomic_write

    torch.set_num_threads(args.threads)
    progress = not args.quiet
    if args.command == "train-backdoor":
        clean, trig = pipeline.test_sets(setup)
        result = {"setup": setup.as_dict()}
        for role in pipeline.ROLES:
            clf = pipeline.classifier(setup, role, progress)
            result[role] = pipeline.plain_scores(clf, clean, trig, setup.target)
            if args.out is not None:
                args.out.mkdir(parents=True, exist_ok=True)
                tmp = args.out / f".{role}.tmp"
                shutil.rmtree(tmp, ignore_errors=True)
                clf.save_pretrained(tmp)
                shutil.rmtree(args.out / role, ignore_errors=True)
                tmp.rename(args.out / role)
        if args.out is not None:
            atomic_write(args.out / "train.json", json.dumps(result, indent=1))
        lines = [
            f"{r:<8} CA {100 * result[r]['clean_accuracy']:5.1f}%  ASR {100 * result[r]['asr']:5.1f}%"
            for r in pipeline.ROLES
        ]
    else:
        mc = MonteCarlo(
            n0=max(2, args.n // 4), n=args.n, alpha=args.alpha, n_attack=max(4, args.n // 2), seed=args.seed
        )
        kw = {"methods": methods, "mc": mc, "omega": args.omega, "fuzz_budget": args.fuzz_budget, "progress": progress}
        if args.command == "certify":
            result = pipeline.run_defenses(setup, quant_bits=bits, **kw)
            lines = [report.table(result)]
        else:
            result = pipeline.attack_rates(setup, **kw)
            lines = [
                f"{n:<10} CA {100 * m['clean_accuracy']:5.1f}%  ASR {100 * m['asr']:5.1f}%"
                for n, m in result["methods"].items()
            ]
        if args.out is not None:
            args.out.mkdir(parents=True, exist_ok=True)
            name = "result" if args.command == "certify" else "attack"
            atomic_write(args.out / f"{name}.json", json.dumps(result, indent=1))
            if args.command == "certify":
                atomic_write(args.out / "result.csv", report.csv_text(result))
                report.plot(result, args.out / "certified.png", f"{args.attack} trigger")
    print(json.dumps(result, indent=1) if args.json else "\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
