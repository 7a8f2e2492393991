"""The models.kv command line: each subcommand's usage text and options, and the checks of every argument and
input file that run before torch is imported (a bad flag is answered in well under a second)."""

from __future__ import annotations

import argparse
from pathlib import Path

from models.cli import check_models
from models.kv.config import PRESETS, KVConfig
from sim.cli import OneLineParser, add_output_arguments, check_output, float_in, int_in, positive_int, seed_int
from sim.model_shapes import MAX_DECODE_STEPS
from sim.workload_format import WORKLOAD_FILE

PROG = "python -m models.kv"
# The file each command leaves in its -o folder: only a folder holding it (or a new one) is written into.
OWN = {
    "eval": "kv_eval.json",
    "tune": "pareto.json",
    "train-predictor": "train.json",
    "evict": "kv_evict.json",
    "workload": WORKLOAD_FILE,
}
# models.kv.selection.POLICIES by name, here without importing torch (a test keeps the two equal).
POLICY_NAMES = ("dense", "streaming", "h2o", "snapkv", "quest", "attnpred")

EVAL_DOC = """python -m models.kv eval MODEL --config PRESET|FILE: quality of a KV cache precision config vs KV16.
python -m models.kv tune MODEL -o OUT: KVTuner search for per-layer KV precision pairs (see `tune --help`).
python -m models.kv train-predictor MODEL -o OUT: train an AttentionPredictor CNN (see `train-predictor --help`).
python -m models.kv evict MODEL --predictor DIR: KV selection policies at 4x/8x/16x (see `evict --help`).
python -m models.kv workload MODEL --config C -o OUT: the decode phase as a sim workload (see `workload --help`).

MODEL is a zoo name (base, code, math, english; built for --preset if needed) or a local Llama-family
checkpoint folder. --config is a preset (KV16, KV8, KV4, KIVI-2) or a JSON file of one [key_bits, value_bits]
pair per layer (bits 16, 8, 4 or 2; 16 = unquantized), with optional group_size (tokens per key group, channels
per value group, default 32) and residual_length (most recent tokens kept exact, default 0).

The table shows KV16, KV8, KV4, KIVI-2 and the given config side by side: average KV bits (KVTuner's
sum of key and value bits over 2 x layers), perplexity and its change vs KV16 (%), KL divergence from KV16's
next-token distribution (mnat: 1e-3 nats/token), top-1 agreement with KV16 (%), key-value recall accuracy (%), and
the KV storage after one --seq-len window (kbit, codes + 16-bit scales/zero points + 16-bit exact tokens).
Text windows are prefilled for --prefill tokens and the rest decoded token by token through the cache.

Writes OUT/kv_eval.json (settings and figures), OUT/kv_eval.csv and OUT/kv_eval.png (KL vs average bits),
atomically. Bad input (unknown preset, missing or malformed config, a config that does not fit the model,
impossible lengths) exits with code 2 and one line naming the problem; nothing is written.
"""

TUNE_DOC = """python -m models.kv tune MODEL -o OUT: KVTuner offline search for per-layer (key bits, value bits) pairs.

Calibration text: --windows windows of --seq-len tokens of the zoo's English and code TRAINING text (never the
held-out text `eval` scores), each prefilled for --prefill tokens and decoded token by token through the cache.
Steps: (1) sensitivity: KL from KV16 (nats/token) with one layer at one candidate pair (K8V8, K4V8, K8V4, K4V4,
K2V4, K4V2, K2V2) and every other layer at 16 bits; (2) clustering of layers with similar log-sensitivity
profiles into --groups groups sharing one pair; (3) per group, pruning of pairs dominated in (key + value bits,
summed sensitivity); (4) optuna NSGA-II (seeded by --seed) over the groups' pairs for --trials trials,
minimizing (average KV bits, calibration KL measured with the real mixed-precision cache).

Writes, atomically: OUT/config.json (the lowest-KL Pareto config within --max-bits average KV bits; loads with
`python -m models.kv eval MODEL --config OUT/config.json`), OUT/pareto.json (settings, uniform presets, every
trial and the Pareto set), OUT/pareto.csv, OUT/sensitivity.csv (mnat = 1e-3 nats/token, one row per layer) and
OUT/pareto.png (average bits vs KL, with KV8, KV4 and KIVI-2 marked). Same seed, same numbers. Bad input exits
with code 2 and one line; nothing is written.
"""

TRAIN_DOC = """python -m models.kv train-predictor MODEL -o OUT: AttentionPredictor's CNN for MODEL's attention.

Captures MODEL's attention (eager) on --sequences windows of the zoo's English and code TRAINING text and as many
long key-value recall sequences of the train split (--seq-len tokens), pools it over --block keys, and trains the
CNN (paper sizes: conv 1->16->32 3x3, time mean, 1x1 head; one net for every layer and KV head) to predict the
next step's block attention from the previous --history steps (--steps target steps per sequence, --epochs
epochs, Adam, seeded). Reports the held-out attention recovery rate (share of the next step's attention outside
the --sink first and --local last tokens that falls on the top --k predicted blocks, 0..1) beside random
blocks, the last step's attention and the accumulated attention.

Writes OUT/config.json and OUT/model.safetensors (load with `evict --predictor OUT`) and OUT/train.json,
atomically. Bad input exits with code 2 and one line; nothing is written.
"""

EVICT_DOC = """python -m models.kv evict MODEL --predictor DIR: KV selection policies at several compression ratios.

At every decode step each layer's KV heads attend to exactly ceil(context / R) cached tokens (R: --ratios);
prefill is dense. Policies (--policies): streaming (StreamingLLM, 4 sinks + recent), h2o (heavy hitters + recent
half), snapkv (prefill observation-window votes + recent), quest (4-token pages by q.k upper bound), attnpred
(the trained CNN of --predictor over the attention history; 4 sink and 4 local tokens). Scores against the dense
cache: perplexity, KL (mnat = 1e-3 nats/token) and top-1 agreement (%) on --windows held-out code and English
windows of --seq-len tokens (--prefill prefilled, the rest decoded); on long key-value recall (held-out examples
after distractors, --seq-len tokens, the last --query-tokens (default 1: only the "=" the answer follows, so the
question is in the prefill) and the answer decoded): exact recall (%) and the
answer's negative log-likelihood (nats/token); and the attention recovery rate (% of the full attention on the
kept tokens) on both.

Writes OUT/kv_evict.json (settings, figures), OUT/kv_evict.csv and OUT/kv_evict.png atomically. Bad input exits
with code 2 and one line; nothing is written.
"""

WORKLOAD_DOC = """python -m models.kv workload MODEL --config PRESET|FILE -o OUT: the decode phase of MODEL with a
compressed KV cache as a sim workload, written as OUT/workload.json for `python -m sim.replay OUT/workload.json`.

MODEL is a zoo name, a local Llama-family checkpoint folder, or a built-in shape of sim.model_shapes
(llama-2-7b, llama-2-13b, mistral-7b, mixtral-8x7b); only its shape is used. The workload holds T = --decode
steps after an S = --prefill token prompt for B = --batch sequences: the linear ops at --wbits/--group/--act,
and per step the attention GEMMs of every layer over ceil((S + t) / R) kept tokens (R = --ratio; every
selection policy of `evict` keeps exactly this budget), read at the layer's key and value bits from --config,
with the config's exact residual window at 16 bits (models/kv/workload.py documents the counting).
OUT is a new folder, or one an earlier workload run wrote (holding workload.json); --force replaces any
folder. The folder is built beside OUT and renamed into place, so it appears whole or not at all. Bad input exits with
code 2 and one line; nothing is written.
"""


MODEL_HELP = "zoo name (base, code, math, english) or a local checkpoint folder"


def parser() -> OneLineParser:
    p = OneLineParser(prog=PROG, description=EVAL_DOC, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    e = _subparser(sub, "eval", "evaluate a KV precision config against KV16, KV8, KV4 and KIVI-2", EVAL_DOC)
    e.add_argument("--config", required=True, help="preset (KV16, KV8, KV4, KIVI-2) or JSON config file")
    _quality_arguments(e, seq_len=128, prefill=32, windows=8, out="kv_eval")
    add_tune_parser(sub)
    add_predictor_parser(sub)
    add_evict_parser(sub)
    add_workload_parser(sub)
    return p


def _subparser(
    sub: argparse._SubParsersAction, name: str, help: str, doc: str, model_help: str = MODEL_HELP
) -> argparse.ArgumentParser:
    """Subcommand `name` (its --help shows `doc` as written) with the MODEL argument."""
    p = sub.add_parser(name, help=help, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help=model_help)
    return p


def _preset_option(p: argparse.ArgumentParser, data: str) -> None:
    p.add_argument("--preset", default="default", help=f"zoo preset for zoo models and {data} (tiny, default)")


def _run_options(p: argparse.ArgumentParser, out: str, json_help: str) -> None:
    """-o (default ./out), --json and --threads: the options of every subcommand that runs a model."""
    p.add_argument("-o", "--out", type=Path, default=Path(out), help=f"output folder (default ./{out})")
    p.add_argument("--json", action="store_true", help=json_help)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")


def _quality_arguments(
    p: argparse.ArgumentParser, seq_len: int, prefill: int, windows: int, out: str, query_tokens: int = 4
) -> None:
    """The evaluation-data and output options `eval` and `evict` share (their defaults differ)."""
    _preset_option(p, "evaluation data")
    p.add_argument("--seq-len", type=int, default=seq_len, help=f"tokens per text window (default {seq_len})")
    p.add_argument("--prefill", type=int, default=prefill, help=f"tokens prefilled per window (default {prefill})")
    p.add_argument("--windows", type=int, default=windows, help=f"windows per text task (code, english; {windows})")
    p.add_argument("--recall-examples", type=int, default=100, help="recall examples scored (default 100)")
    p.add_argument(
        "--query-tokens",
        type=int,
        default=query_tokens,
        help=f"recall prompt tokens decoded, not prefilled (default {query_tokens})",
    )
    _run_options(p, out, "print the figures as JSON instead of a table")


def add_tune_parser(sub: argparse._SubParsersAction) -> None:
    t = _subparser(sub, "tune", "search per-layer KV precision pairs (KVTuner) on calibration text", TUNE_DOC)
    _preset_option(t, "calibration data")
    t.add_argument("--trials", type=int, default=40, help="NSGA-II trials, each one calibration decode (default 40)")
    t.add_argument("--seed", type=seed_int, default=0, help="seed of the search and the calibration text (default 0)")
    t.add_argument("--groups", type=int, default=2, help="layer groups sharing one pair (default 2)")
    t.add_argument("--max-bits", type=float, default=4.0, help="average KV bits budget of config.json (default 4)")
    t.add_argument("--seq-len", type=int, default=96, help="tokens per calibration window (default 96)")
    t.add_argument("--prefill", type=int, default=32, help="tokens prefilled per window; the rest are decoded")
    t.add_argument("--windows", type=int, default=4, help="calibration windows, English and code (default 4)")
    t.add_argument("--group-size", type=int, default=32, help="tokens per key group, channels per value group")
    t.add_argument("--residual-length", type=int, default=0, help="most recent tokens kept exact (default 0)")
    _run_options(t, "kv_tune", "print pareto.json instead of a table")


def add_predictor_parser(sub: argparse._SubParsersAction) -> None:
    help = "train the AttentionPredictor CNN on a model's attention histories"
    t = _subparser(sub, "train-predictor", help, TRAIN_DOC)
    _preset_option(t, "training data")
    t.add_argument("--sequences", type=int, default=16, help="text windows, and as many recall sequences (16)")
    t.add_argument("--seq-len", type=int, default=256, help="tokens per sequence, at most the model's window (256)")
    t.add_argument("--steps", type=int, default=32, help="target decode steps per sequence (default 32)")
    t.add_argument("--epochs", type=int, default=8, help="training epochs (default 8)")
    t.add_argument("--history", type=int, default=8, help="attention steps fed to the CNN (default 8)")
    t.add_argument("--block", type=int, default=4, help="keys per block (default 4)")
    t.add_argument("--sink", type=int, default=4, help="first tokens always kept, never ranked (default 4)")
    t.add_argument("--local", type=int, default=4, help="most recent tokens always kept, never ranked (default 4)")
    t.add_argument("--k", type=int, default=2, help="blocks kept when measuring recovery (default 2)")
    t.add_argument("--seed", type=seed_int, default=0, help="seed of data draws, split and training (default 0)")
    _run_options(t, "kv_predictor", "print train.json instead of a summary")


def add_evict_parser(sub: argparse._SubParsersAction) -> None:
    help = "compare KV selection policies (StreamingLLM, H2O, SnapKV, Quest, AttentionPredictor)"
    e = _subparser(sub, "evict", help, EVICT_DOC)
    e.add_argument("--predictor", type=Path, help="folder from train-predictor (needed by attnpred)")
    e.add_argument("--policies", default="streaming,h2o,snapkv,quest,attnpred", help="comma-separated policies")
    e.add_argument("--ratios", default="4,8,16", help="comma-separated compression ratios (>= 1; default 4,8,16)")
    _quality_arguments(e, seq_len=256, prefill=128, windows=4, out="kv_evict", query_tokens=1)
    e.add_argument(
        "--calibration-step",
        type=int,
        default=5,
        help="attnpred: every N decode steps its history gets the full attention row, else the attention over the"
        " kept tokens (default 5, the paper's; 1: always full; 0: never)",
    )
    e.add_argument("--seed", type=seed_int, default=0, help="seed of the evaluation data (default 0)")


def add_workload_parser(sub: argparse._SubParsersAction) -> None:
    help = "write the decode-phase workload (per-layer KV bits, kept tokens) for sim.replay"
    model_help = "zoo name, local checkpoint folder, or built-in shape (e.g. llama-2-7b)"
    w = _subparser(sub, "workload", help, WORKLOAD_DOC, model_help)
    w.add_argument("--config", required=True, help="KV preset (KV16, KV8, KV4, KIVI-2) or JSON config file")
    w.add_argument("--ratio", type=float_in(1), default=1.0, help="KV compression ratio R >= 1 (default 1: keep all)")
    w.add_argument("--prefill", type=int_in(0), default=512, help="prompt tokens S (default 512)")
    w.add_argument("--decode", type=int_in(0, MAX_DECODE_STEPS), default=32, help="decode steps T (default 32)")
    w.add_argument("--batch", type=positive_int, default=1, help="sequences B (default 1)")
    w.add_argument("--wbits", type=int, default=4, help="weight bits of the linear ops (default 4)")
    w.add_argument("--group", type=int, default=128, help="weights per scale (default 128)")
    w.add_argument("--act", default="int8", help="activations: int8 or fp16 (default int8)")
    w.add_argument("--preset", default="default", help="zoo preset for zoo models (tiny, default)")
    w.add_argument("--json", action="store_true", help="print the workload's summary as JSON")
    w.add_argument("--threads", type=int, default=1, help="torch CPU threads when MODEL must be loaded (default 1)")
    add_output_arguments(w, f"output folder for {WORKLOAD_FILE} (new, or an earlier workload run's)")


def _check_window(args: argparse.Namespace) -> None:
    if args.seq_len < 2 or not 1 <= args.prefill < args.seq_len:
        raise ValueError(f"--prefill {args.prefill} must be between 1 and --seq-len - 1 ({args.seq_len - 1}) tokens")


def _at_least(args: argparse.Namespace, low: int, *names: str) -> None:
    for name in names:
        if getattr(args, name) < low:
            raise ValueError(f"--{name.replace('_', '-')} {getattr(args, name)} must be at least {low}")


def _check_config(args: argparse.Namespace) -> None:
    """A --config that is not a preset must be a readable KV config file (its fit to the model is checked later)."""
    if args.config not in PRESETS:
        KVConfig.load(args.config)


def _check_eval(args: argparse.Namespace) -> None:
    _check_window(args)
    _at_least(args, 1, "windows", "recall_examples", "query_tokens")
    _check_config(args)


def _check_tune(args: argparse.Namespace) -> None:
    _check_window(args)
    _at_least(args, 1, "windows")
    if args.trials < 2:
        raise ValueError(f"--trials {args.trials} must be at least 2 (the two extreme configs are always tried)")
    if args.groups < 1:
        raise ValueError(f"--groups {args.groups} must be at least 1")
    if not args.max_bits >= 2:  # NaN too
        raise ValueError(f"--max-bits {args.max_bits} is below 2, the fewest average KV bits: use 2 or more")
    if args.group_size < 1 or args.residual_length < 0:
        raise ValueError("--group-size must be at least 1 and --residual-length at least 0 tokens")


def _check_predictor(args: argparse.Namespace) -> None:
    _at_least(args, 1, "sequences", "seq_len", "steps", "epochs", "history", "block", "k")
    if args.sink < 0 or args.local < 0:
        raise ValueError("--sink and --local must be at least 0 tokens")


def ratios(text: str) -> list[float]:
    """The compression ratios of --ratios ("4,8,16"), each >= 1."""
    try:
        values = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        values = []
    if not values or any(not v >= 1 for v in values):
        raise ValueError(f"--ratios {text!r}: expected comma-separated numbers >= 1, e.g. 4,8,16")
    return values


def policies(text: str) -> list[str]:
    """The selection policies of --policies ("streaming,h2o"), each one of POLICY_NAMES."""
    names = [p.strip() for p in text.split(",") if p.strip()]
    if not names or any(p not in POLICY_NAMES for p in names):
        raise ValueError(f"--policies {text!r}: use names from {', '.join(POLICY_NAMES)}")
    return names


def _check_evict(args: argparse.Namespace) -> None:
    _at_least(args, 1, "windows", "recall_examples")
    _at_least(args, 0, "query_tokens", "calibration_step")
    _check_window(args)
    ratios(args.ratios)
    if "attnpred" in policies(args.policies) and args.predictor is None:
        raise ValueError(f"policy attnpred needs --predictor DIR: train one with `{PROG} train-predictor`")
    if args.predictor is not None and not args.predictor.is_dir():
        raise ValueError(f"--predictor {args.predictor} is not a folder: train one with `{PROG} train-predictor`")


CHECKS = {
    "eval": _check_eval,
    "tune": _check_tune,
    "train-predictor": _check_predictor,
    "evict": _check_evict,
    "workload": _check_config,
}


def check(args: argparse.Namespace) -> None:
    """ValueError (one line) unless every argument is in range, the output folder is free (or this command's
    own; any with --force), and every local model or predictor folder is whole. Imports nothing heavy."""
    CHECKS[args.command](args)
    _at_least(args, 1, "threads")
    check_output(args.out, own=OWN[args.command], force=getattr(args, "force", None))
    check_models(args.model, getattr(args, "predictor", None))
