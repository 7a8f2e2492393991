"""python -m models.kv eval MODEL --config PRESET|FILE: quality of a KV cache precision config vs KV16.
python -m models.kv tune MODEL -o OUT: KVTuner search for per-layer KV precision pairs (see `tune --help`).
python -m models.kv train-predictor MODEL -o OUT: train an AttentionPredictor CNN (see `train-predictor --help`).
python -m models.kv evict MODEL --predictor DIR: KV selection policies at 4x/8x/16x (see `evict --help`).
python -m models.kv workload MODEL --config C -o W.json: the decode phase as a sim workload (see `workload --help`).

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

from __future__ import annotations

import argparse
import csv
import io
import json
from dataclasses import asdict, replace
from pathlib import Path

from sim.cli import OneLineParser, check_output, fail, float_in, int_in, positive_int
from sim.model_shapes import MAX_DECODE_STEPS

PROG = "python -m models.kv"
# The file each command leaves in its -o folder: only a folder holding it (or a new one) is written into.
OWN = {"eval": "kv_eval.json", "tune": "pareto.json", "train-predictor": "train.json", "evict": "kv_evict.json"}

COLUMNS = ("avg_bits", "ppl", "ppl_change_pct", "kl", "top1_agree", "recall", "stored_kbit_per_window")


def parser() -> OneLineParser:
    p = OneLineParser(
        prog="python -m models.kv", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = p.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    e = sub.add_parser(
        "eval",
        help="evaluate a KV precision config against KV16, KV8, KV4 and KIVI-2",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    e.add_argument("model", help="zoo name (base, code, math, english) or a local checkpoint folder")
    e.add_argument("--config", required=True, help="preset (KV16, KV8, KV4, KIVI-2) or JSON config file")
    _quality_arguments(e, seq_len=128, prefill=32, windows=8, out="kv_eval")
    add_tune_parser(sub)
    add_predictor_parser(sub)
    add_evict_parser(sub)
    add_workload_parser(sub)
    return p


def _quality_arguments(
    p: argparse.ArgumentParser, seq_len: int, prefill: int, windows: int, out: str, query_tokens: int = 4
) -> None:
    """The evaluation-data and output options `eval` and `evict` share (their defaults differ)."""
    p.add_argument("--preset", default="default", help="zoo preset for zoo models and evaluation data (tiny, default)")
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
    p.add_argument("-o", "--out", type=Path, default=Path(out), help=f"output folder (default ./{out})")
    p.add_argument("--json", action="store_true", help="print the figures as JSON instead of a table")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")


def _check_lengths(args: argparse.Namespace) -> None:
    if args.seq_len < 2 or not 1 <= args.prefill < args.seq_len:
        raise ValueError(f"--prefill {args.prefill} must be between 1 and --seq-len - 1 ({args.seq_len - 1}) tokens")
    for name in ("windows", "recall_examples", "query_tokens"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be at least 1")


def table(results: dict[str, dict[str, float]]) -> str:
    """A text table, one row per config."""
    head = f"{'config':<16}{'avg bits':>9}{'ppl':>10}{'Δppl %':>9}{'KL mnat':>10}{'top1 %':>8}"
    head += f"{'recall %':>9}{'kbit':>9}"
    rows = [head]
    for name, r in results.items():
        rows.append(
            f"{name:<16}{r['avg_bits']:>9.2f}{r['ppl']:>10.3f}{r['ppl_change_pct']:>9.3f}{1e3 * r['kl']:>10.4f}"
            f"{100 * r['top1_agree']:>8.2f}{100 * r['recall']:>9.1f}{r['stored_kbit_per_window']:>9.1f}"
        )
    return "\n".join(rows)


def _csv(results: dict[str, dict[str, float]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(("config", *COLUMNS))
    for name, r in results.items():
        w.writerow((name, *(r[c] for c in COLUMNS)))
    return buf.getvalue()


def _bits_kl_plot(path: str, title: str, ylabel: str, draw, size: tuple[float, float]) -> None:
    """A PNG of KL (mnat) against average KV bits; draw(ax) adds the points."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=size)
    draw(ax)
    ax.set_xlabel("average KV bits")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=120)
    plt.close(fig)


def _labelled_points(ax, results: dict[str, dict[str, float]], **style) -> None:
    for name, r in results.items():
        ax.scatter(r["avg_bits"], 1e3 * r["kl"], **style)
        ax.annotate(name, (r["avg_bits"], 1e3 * r["kl"]), fontsize=8, xytext=(3, 3), textcoords="offset points")


def _plot(results: dict[str, dict[str, float]], title: str, path: str) -> None:
    _bits_kl_plot(path, title, "KL from KV16 (1e-3 nats/token)", lambda ax: _labelled_points(ax, results), (5, 3.5))


def _load(args: argparse.Namespace):
    """(model, tokenizer) of args.model, with args.threads torch threads and no loading bars."""
    import torch
    from transformers.utils import logging as hf_logging

    from models import zoo
    from models.zoo.presets import get_preset

    torch.set_num_threads(max(1, args.threads))
    hf_logging.disable_progress_bar()
    get_preset(args.preset)
    return zoo.load(args.model, args.preset)


def evaluate_command(args: argparse.Namespace) -> dict:
    from models.kv import PRESETS, KVConfig, evaluate

    _check_lengths(args)
    given = None if args.config in PRESETS else KVConfig.load(args.config)
    model, tokenizer = _load(args)
    layers = model.config.get_text_config(decoder=True).num_hidden_layers
    configs = [KVConfig.preset(name, layers) for name in PRESETS]
    if given is None:
        given = KVConfig.preset(args.config, layers)
    elif any(given.name == c.name for c in configs):
        given = given.with_name(Path(args.config).stem)
    if all(given != c for c in configs):
        configs.append(given)
    results = evaluate(
        model,
        tokenizer,
        configs,
        args.preset,
        args.seq_len,
        args.prefill,
        args.windows,
        args.recall_examples,
        args.query_tokens,
        progress=not args.json,
    )
    ppl16 = results["KV16"]["ppl"]
    for r in results.values():
        r["ppl_change_pct"] = 100 * (r["ppl"] / ppl16 - 1)
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k != "json"}
    return {"settings": settings, "config": given.to_dict(), "results": results}


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


def add_tune_parser(sub: argparse._SubParsersAction) -> None:
    t = sub.add_parser(
        "tune",
        help="search per-layer KV precision pairs (KVTuner) on calibration text",
        description=TUNE_DOC,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    t.add_argument("model", help="zoo name (base, code, math, english) or a local checkpoint folder")
    t.add_argument("--preset", default="default", help="zoo preset for zoo models and calibration data (tiny, default)")
    t.add_argument("--trials", type=int, default=40, help="NSGA-II trials, each one calibration decode (default 40)")
    t.add_argument("--seed", type=int, default=0, help="seed of the search and the calibration text (default 0)")
    t.add_argument("--groups", type=int, default=2, help="layer groups sharing one pair (default 2)")
    t.add_argument("--max-bits", type=float, default=4.0, help="average KV bits budget of config.json (default 4)")
    t.add_argument("--seq-len", type=int, default=96, help="tokens per calibration window (default 96)")
    t.add_argument("--prefill", type=int, default=32, help="tokens prefilled per window; the rest are decoded")
    t.add_argument("--windows", type=int, default=4, help="calibration windows, English and code (default 4)")
    t.add_argument("--group-size", type=int, default=32, help="tokens per key group, channels per value group")
    t.add_argument("--residual-length", type=int, default=0, help="most recent tokens kept exact (default 0)")
    t.add_argument("-o", "--out", type=Path, default=Path("kv_tune"), help="output folder (default ./kv_tune)")
    t.add_argument("--json", action="store_true", help="print pareto.json instead of a table")
    t.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")


def _check_tune(args: argparse.Namespace) -> None:
    if args.seq_len < 2 or not 1 <= args.prefill < args.seq_len:
        raise ValueError(f"--prefill {args.prefill} must be between 1 and --seq-len - 1 ({args.seq_len - 1}) tokens")
    if args.windows < 1:
        raise ValueError("--windows must be at least 1")
    if args.trials < 2:
        raise ValueError(f"--trials {args.trials} must be at least 2 (the two extreme configs are always tried)")
    if args.groups < 1:
        raise ValueError(f"--groups {args.groups} must be at least 1")
    if not args.max_bits >= 2:  # NaN too
        raise ValueError(f"--max-bits {args.max_bits} is below 2, the fewest average KV bits: use 2 or more")
    if args.group_size < 1 or args.residual_length < 0:
        raise ValueError("--group-size must be at least 1 and --residual-length at least 0 tokens")


def _tune_csvs(result, uniform: dict[str, dict]) -> tuple[str, str]:
    sens = io.StringIO()
    w = csv.writer(sens)
    w.writerow(("layer", "group", *(f"K{k}V{v}_mnat" for k, v in result.candidates)))
    for layer, row in enumerate(result.sensitivity):
        w.writerow((layer, result.labels[layer], *(f"{1e3 * x:.6g}" for x in row)))
    front = io.StringIO()
    w = csv.writer(front)
    w.writerow(("config", "avg_bits", "kl_mnat", "pairs"))
    for name, r in uniform.items():
        w.writerow((name, r["avg_bits"], f"{1e3 * r['kl']:.6g}", ""))
    for i, p in enumerate(result.pareto):
        w.writerow((f"pareto{i}", p["avg_bits"], f"{1e3 * p['kl']:.6g}", " ".join(f"K{k}V{v}" for k, v in p["pairs"])))
    return sens.getvalue(), front.getvalue()


def _tune_plot(result, uniform: dict[str, dict], chosen: dict, title: str, path: str) -> None:
    def draw(ax) -> None:
        trials, pareto = result.trials, result.pareto
        ax.scatter([p["avg_bits"] for p in trials], [1e3 * p["kl"] for p in trials], s=10, c="0.75", label="trials")
        ax.plot([p["avg_bits"] for p in pareto], [1e3 * p["kl"] for p in pareto], "o-", ms=4, label="Pareto set")
        ax.scatter(
            chosen["avg_bits"], 1e3 * chosen["kl"], marker="*", s=120, c="tab:red", label="config.json", zorder=3
        )
        _labelled_points(ax, uniform, marker="s", c="k", zorder=3)
        ax.set_yscale("log")
        ax.legend(fontsize=7)

    _bits_kl_plot(path, title, "calibration KL from KV16 (1e-3 nats/token)", draw, (5.5, 3.8))


def tune_command(args: argparse.Namespace) -> int:
    from models.kv import KVConfig
    from models.kv.tune import KLMeter, calibration_ids, choose, tune
    from sim.files import atomic_write

    _check_tune(args)
    model, tokenizer = _load(args)
    text_config = model.config.get_text_config(decoder=True)
    KVConfig.uniform(16, 16, text_config.num_hidden_layers, group_size=args.group_size).check(text_config)
    ids = calibration_ids(tokenizer, args.preset, args.seq_len, args.windows, args.seed)
    meter = KLMeter(model, ids, args.prefill)
    result = tune(
        meter,
        args.groups,
        args.trials,
        args.seed,
        group_size=args.group_size,
        residual_length=args.residual_length,
        progress=not args.json,
    )
    uniform = {}
    for name in ("KV8", "KV4", "KIVI-2"):
        kv = replace(KVConfig.preset(name, text_config.num_hidden_layers), group_size=args.group_size)
        uniform[name] = {"avg_bits": kv.avg_bits, "kl": meter(kv)}
    chosen = choose(result, args.max_bits, name=f"kvtuner-{args.max_bits:g}bit")
    chosen_point = next(p for p in result.pareto if [list(q) for q in chosen.pairs] == p["pairs"])
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k != "json"}
    report = {"settings": settings, "uniform": uniform, "chosen": chosen.to_dict(), **result.to_dict()}
    sens_csv, front_csv = _tune_csvs(result, uniform)
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write(args.out / "config.json", json.dumps(chosen.to_dict(), indent=1) + "\n")
    atomic_write(args.out / "pareto.json", json.dumps(report, indent=1) + "\n")
    atomic_write(args.out / "pareto.csv", front_csv)
    atomic_write(args.out / "sensitivity.csv", sens_csv)
    atomic_write(
        args.out / "pareto.png",
        lambda tmp: _tune_plot(result, uniform, chosen_point, f"{args.model} ({args.preset})", tmp),
    )
    if args.json:
        print(json.dumps(report, indent=1))
    else:
        print(front_csv.replace(",", "\t"), end="")
        print(
            f"config.json: {chosen.name}, {chosen.avg_bits:.2f} avg bits, calibration KL "
            f"{1e3 * chosen_point['kl']:.4f} mnat"
        )
    return 0


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

EVICT_COLUMNS = ("policy", "ratio", "ppl", "kl", "top1_agree", "text_recovery", "recall", "answer_nll")
EVICT_COLUMNS += ("recall_recovery", "mean_kept", "mean_resident", "mean_context")


def add_predictor_parser(sub: argparse._SubParsersAction) -> None:
    t = sub.add_parser(
        "train-predictor",
        help="train the AttentionPredictor CNN on a model's attention histories",
        description=TRAIN_DOC,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    t.add_argument("model", help="zoo name (base, code, math, english) or a local checkpoint folder")
    t.add_argument("--preset", default="default", help="zoo preset for zoo models and training data (tiny, default)")
    t.add_argument("--sequences", type=int, default=16, help="text windows, and as many recall sequences (16)")
    t.add_argument("--seq-len", type=int, default=256, help="tokens per sequence, at most the model's window (256)")
    t.add_argument("--steps", type=int, default=32, help="target decode steps per sequence (default 32)")
    t.add_argument("--epochs", type=int, default=8, help="training epochs (default 8)")
    t.add_argument("--history", type=int, default=8, help="attention steps fed to the CNN (default 8)")
    t.add_argument("--block", type=int, default=4, help="keys per block (default 4)")
    t.add_argument("--sink", type=int, default=4, help="first tokens always kept, never ranked (default 4)")
    t.add_argument("--local", type=int, default=4, help="most recent tokens always kept, never ranked (default 4)")
    t.add_argument("--k", type=int, default=2, help="blocks kept when measuring recovery (default 2)")
    t.add_argument("--seed", type=int, default=0, help="seed of data draws, split and training (default 0)")
    t.add_argument("-o", "--out", type=Path, default=Path("kv_predictor"), help="output folder (./kv_predictor)")
    t.add_argument("--json", action="store_true", help="print train.json instead of a summary")
    t.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")


def add_evict_parser(sub: argparse._SubParsersAction) -> None:
    e = sub.add_parser(
        "evict",
        help="compare KV selection policies (StreamingLLM, H2O, SnapKV, Quest, AttentionPredictor)",
        description=EVICT_DOC,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    e.add_argument("model", help="zoo name (base, code, math, english) or a local checkpoint folder")
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
    e.add_argument("--seed", type=int, default=0, help="seed of the evaluation data (default 0)")


def _positive(args: argparse.Namespace, names: tuple[str, ...]) -> None:
    for name in names:
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be at least 1")


def predictor_command(args: argparse.Namespace) -> int:
    from models.kv.eviction_eval import train_predictor
    from models.kv.predictor import PredictorConfig
    from sim.files import atomic_write

    _positive(args, ("sequences", "seq_len", "steps", "epochs", "history", "block", "k"))
    if args.sink < 0 or args.local < 0:
        raise ValueError("--sink and --local must be at least 0 tokens")
    model, tokenizer = _load(args)
    config = PredictorConfig(args.history, args.block, args.sink, args.local)
    net, result = train_predictor(
        model,
        tokenizer,
        config,
        args.preset,
        args.seq_len,
        args.sequences,
        args.steps,
        args.epochs,
        args.k,
        args.seed,
        progress=not args.json,
    )
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k != "json"}
    report = {"settings": settings, **asdict(result)}
    net.save_pretrained(args.out)
    atomic_write(args.out / "train.json", json.dumps(report, indent=1) + "\n")
    if args.json:
        print(json.dumps(report, indent=1))
    else:
        rates = ", ".join(f"{name} {100 * r:.1f}%" for name, r in result.recovery.items())
        print(f"{result.pairs} pairs; held-out recovery at {result.k} blocks: {rates}; wrote {args.out}")
    return 0


def _numbers(text: str, what: str) -> list[float]:
    try:
        values = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        values = []
    if not values or any(not v >= 1 for v in values):
        raise ValueError(f"--{what} {text!r}: expected comma-separated numbers >= 1, e.g. 4,8,16")
    return values


def evict_table(results: dict[str, dict]) -> str:
    head = f"{'run':<16}{'ppl':>9}{'KL mnat':>10}{'top1 %':>8}{'recov %':>9}{'recall %':>9}{'ans nll':>9}{'recov %':>9}"
    rows = [head + "   (text | recall)"]
    for name, r in results.items():
        rows.append(
            f"{name:<16}{r['ppl']:>9.2f}{1e3 * r['kl']:>10.1f}{100 * r['top1_agree']:>8.1f}"
            f"{100 * r['text_recovery']:>9.1f}{100 * r['recall']:>9.1f}{r['answer_nll']:>9.3f}"
            f"{100 * r['recall_recovery']:>9.1f}"
        )
    return "\n".join(rows)


def evict_plot(results: dict[str, dict], title: str, path: str) -> None:
    """KL from dense, recall and recall-time attention recovery against the compression ratio, per policy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = (("kl", "text KL from dense (nats/token)"), ("recall", "recall (fraction of prompts)"))
    panels += (("recall_recovery", "recall attention recovery"),)
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.5))
    policies = sorted({r["policy"] for r in results.values() if r["policy"] != "dense"})
    for ax, (key, label) in zip(axes, panels, strict=True):
        for policy in policies:
            runs = sorted((r["ratio"], r[key]) for r in results.values() if r["policy"] == policy)
            ax.plot([x for x, _ in runs], [y for _, y in runs], "o-", ms=4, label=policy)
        if "dense" in results:
            ax.axhline(results["dense"][key], c="k", ls=":", lw=1, label="dense")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("compression ratio (x)")
        ax.set_title(label, fontsize=9)
    axes[0].legend(fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=120)
    plt.close(fig)


def evict_command(args: argparse.Namespace) -> int:
    from models.kv.eviction_eval import evaluate_eviction
    from models.kv.predictor import AttentionCNN
    from models.kv.selection import POLICIES
    from sim.files import atomic_write

    _positive(args, ("windows", "recall_examples"))
    if args.query_tokens < 0:
        raise ValueError(f"--query-tokens {args.query_tokens} must be at least 0")
    if args.calibration_step < 0:
        raise ValueError(f"--calibration-step {args.calibration_step} must be at least 0 (0: never calibrate)")
    if args.seq_len < 2 or not 1 <= args.prefill < args.seq_len:
        raise ValueError(f"--prefill {args.prefill} must be between 1 and --seq-len - 1 ({args.seq_len - 1}) tokens")
    ratios = _numbers(args.ratios, "ratios")
    policies = [p.strip() for p in args.policies.split(",") if p.strip()]
    unknown = [p for p in policies if p not in POLICIES]
    if unknown or not policies:
        raise ValueError(f"--policies {args.policies!r}: use names from {', '.join(POLICIES)}")
    if "attnpred" in policies and args.predictor is None:
        raise ValueError("policy attnpred needs --predictor DIR: train one with `python -m models.kv train-predictor`")
    predictor = AttentionCNN.from_pretrained(args.predictor) if args.predictor is not None else None
    model, tokenizer = _load(args)
    results = evaluate_eviction(
        model,
        tokenizer,
        policies,
        ratios,
        predictor,
        args.preset,
        args.seq_len,
        args.prefill,
        args.windows,
        args.recall_examples,
        args.query_tokens,
        args.seed,
        progress=not args.json,
        calibration_step=args.calibration_step,
    )
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k != "json"}
    report = {"settings": settings, "results": results}
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(("run", *EVICT_COLUMNS))
    for name, r in results.items():
        w.writerow((name, *(r[c] for c in EVICT_COLUMNS)))
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write(args.out / "kv_evict.json", json.dumps(report, indent=1) + "\n")
    atomic_write(args.out / "kv_evict.csv", buf.getvalue())
    atomic_write(args.out / "kv_evict.png", lambda tmp: evict_plot(results, f"{args.model} ({args.preset})", tmp))
    print(json.dumps(report, indent=1) if args.json else evict_table(results))
    return 0


WORKLOAD_DOC = """python -m models.kv workload MODEL --config PRESET|FILE -o W.json: the decode phase of MODEL with a
compressed KV cache as a sim workload, for `python -m sim.replay W.json`.

MODEL is a zoo name, a local Llama-family checkpoint folder, or a built-in shape of sim.model_shapes
(llama-2-7b, llama-2-13b, mistral-7b, mixtral-8x7b); only its shape is used. The workload holds T = --decode
steps after an S = --prefill token prompt for B = --batch sequences: the linear ops at --wbits/--group/--act,
and per step the attention GEMMs of every layer over ceil((S + t) / R) kept tokens (R = --ratio; every
selection policy of `evict` keeps exactly this budget), read at the layer's key and value bits from --config,
with the config's exact residual window at 16 bits (models/kv/workload.py documents the counting).
Bad input exits with code 2 and one line; nothing is written.
"""


def add_workload_parser(sub: argparse._SubParsersAction) -> None:
    w = sub.add_parser(
        "workload",
        help="write the decode-phase workload (per-layer KV bits, kept tokens) for sim.replay",
        description=WORKLOAD_DOC,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    w.add_argument("model", help="zoo name, local checkpoint folder, or built-in shape (e.g. llama-2-7b)")
    w.add_argument("--config", required=True, help="KV preset (KV16, KV8, KV4, KIVI-2) or JSON config file")
    w.add_argument("--ratio", type=float_in(1), default=1.0, help="KV compression ratio R >= 1 (default 1: keep all)")
    w.add_argument("--prefill", type=int_in(0), default=512, help="prompt tokens S (default 512)")
    w.add_argument("--decode", type=int_in(0, MAX_DECODE_STEPS), default=32, help="decode steps T (default 32)")
    w.add_argument("--batch", type=positive_int, default=1, help="sequences B (default 1)")
    w.add_argument("--wbits", type=int, default=4, help="weight bits of the linear ops (default 4)")
    w.add_argument("--group", type=int, default=128, help="weights per scale (default 128)")
    w.add_argument("--act", default="int8", help="activations: int8 or fp16 (default int8)")
    w.add_argument("--preset", default="default", help="zoo preset for zoo models (tiny, default)")
    w.add_argument("-o", "--out", type=Path, required=True, help="workload JSON to write")


def workload_command(args: argparse.Namespace) -> int:
    from models.kv import resolve
    from models.kv.workload import decode_workload, kept_table
    from sim.model_shapes import MODELS, ModelShape

    if args.model in MODELS:
        shape = MODELS[args.model]
    else:
        args.threads = 1
        shape = ModelShape.from_hf_config(_load(args)[0].config)
    kv = resolve(args.config, shape.layers)
    kept = kept_table(args.prefill, args.decode, shape.layers, args.ratio)
    name = Path(args.model).name
    w = decode_workload(name, shape, kv, args.prefill, args.decode, kept, args.batch, args.wbits, args.act, args.group)
    w.save(args.out)
    t = w.totals()
    print(
        f"{args.out}: {len(w.ops)} ops, {t.macs / 1e9:.3f} GMAC, KV {t.kv_bytes / 1e6:.2f} MB read, "
        f"weights {t.weight_bytes / 1e6:.2f} MB read ({args.decode} steps, {kv.name} at {kv.avg_bits:g} average "
        f"bits, keep 1/{args.ratio:g}); replay with: python -m sim.replay {args.out}"
    )
    return 0


COMMANDS = {
    "tune": tune_command,
    "train-predictor": predictor_command,
    "evict": evict_command,
    "workload": workload_command,
}


def check(args: argparse.Namespace) -> None:
    """Output path free (or this tool's), a local model folder whole; before torch is imported."""
    from models.cli import check_models

    check_output(args.out, folder=args.command != "workload", own=OWN.get(args.command, ()))
    check_models(args.model)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        check(args)
    except ValueError as err:
        return fail(PROG, err)
    from models.kv import KVConfigError
    from models.zoo import ZooError
    from sim.files import atomic_write

    try:
        if args.command in COMMANDS:
            return COMMANDS[args.command](args)
        report = evaluate_command(args)
    except (KVConfigError, ZooError, ValueError, OSError) as err:  # WorkloadError is a ValueError
        return fail(PROG, err)
    results = report["results"]
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write(args.out / "kv_eval.json", json.dumps(report, indent=1) + "\n")
    atomic_write(args.out / "kv_eval.csv", _csv(results))
    atomic_write(args.out / "kv_eval.png", lambda tmp: _plot(results, f"{args.model} ({args.preset})", tmp))
    print(json.dumps(report, indent=1) if args.json else table(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
