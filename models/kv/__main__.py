"""python -m models.kv {eval,tune,train-predictor,evict,workload}: KV cache compression from the command line.

models/kv/arguments.py holds the usage text of each subcommand and checks every argument before torch is
imported; this module runs the subcommands (through models.cli.run_command, the models tools' one skeleton);
models/kv/report.py writes their tables, CSV files and plots.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict, replace
from pathlib import Path

from models.cli import run_command
from models.kv.arguments import PROG, check, parser, policies, ratios
from models.kv.report import (
    EVAL_COLUMNS,
    EVICT_COLUMNS,
    TUNE_FRONT_HEAD,
    eval_plot,
    eval_table,
    evict_plot,
    evict_table,
    json_text,
    tune_csvs,
    tune_front,
    tune_plot,
    write_folder,
    write_results,
)
from sim.files import atomic_write, staged_folder
from sim.model_shapes import MODELS, ModelShape
from sim.workload_format import save_workload_folder


def _load(args: argparse.Namespace):
    """(model, tokenizer) of args.model (a zoo model is built for args.preset if needed)."""
    from models import zoo
    from models.zoo.presets import get_preset

    get_preset(args.preset)
    return zoo.load(args.model, args.preset)


def _settings(args: argparse.Namespace) -> dict:
    """The command's arguments as JSON values (its output files record them)."""
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k != "json"}


def _data_options(args: argparse.Namespace) -> dict:
    """The evaluation-data options `eval` and `evict` share, as keyword arguments of evaluate and
    evaluate_eviction."""
    names = ("preset", "seq_len", "prefill", "windows", "recall_examples", "query_tokens")
    return {name: getattr(args, name) for name in names} | {"progress": not args.json}


def _title(args: argparse.Namespace) -> str:
    return f"{args.model} ({args.preset})"


def eval_command(args: argparse.Namespace) -> dict:
    from models.kv import PRESETS, KVConfig, evaluate

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
    results = evaluate(model, tokenizer, configs, **_data_options(args))
    ppl16 = results["KV16"]["ppl"]
    for r in results.values():
        r["ppl_change_pct"] = 100 * (r["ppl"] / ppl16 - 1)
    report = {"settings": _settings(args), "config": given.to_dict(), "results": results}
    write_results(args.out, "kv_eval", report, "config", EVAL_COLUMNS, eval_plot, _title(args))
    return report


def tune_command(args: argparse.Namespace) -> dict:
    from models.kv import KVConfig
    from models.kv.tune import KLMeter, calibration_ids, choose, tune

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
    report = {"settings": _settings(args), "uniform": uniform, "chosen": chosen.to_dict(), **result.to_dict()}
    sens_csv, front_csv = tune_csvs(report)
    files = {
        "config.json": json_text(chosen.to_dict()),
        "pareto.json": json_text(report),
        "pareto.csv": front_csv,
        "sensitivity.csv": sens_csv,
        "pareto.png": lambda tmp: tune_plot(report, _title(args), tmp),
    }
    write_folder(args.out, files)
    return report


def predictor_command(args: argparse.Namespace) -> dict:
    from models.kv.eviction_eval import train_predictor
    from models.kv.predictor import PredictorConfig

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
    report = {"settings": _settings(args), **asdict(result)}

    with staged_folder(args.out) as folder:
        net.save_pretrained(folder)
        atomic_write(folder / "train.json", json_text(report))
    return report


def evict_command(args: argparse.Namespace) -> dict:
    from models.kv.eviction_eval import evaluate_eviction
    from models.kv.predictor import AttentionCNN

    predictor = AttentionCNN.from_pretrained(args.predictor) if args.predictor is not None else None
    model, tokenizer = _load(args)
    selection = dict(seed=args.seed, calibration_step=args.calibration_step)
    results = evaluate_eviction(
        model, tokenizer, policies(args.policies), ratios(args.ratios), predictor, **selection, **_data_options(args)
    )
    report = {"settings": _settings(args), "results": results}
    write_results(args.out, "kv_evict", report, "run", EVICT_COLUMNS, evict_plot, _title(args))
    return report


def workload_command(args: argparse.Namespace) -> dict:
    from models.kv.config import resolve
    from models.kv.workload import decode_workload, kept_table

    if args.model in MODELS:
        shape = MODELS[args.model]
    else:
        shape = ModelShape.from_hf_config(_load(args)[0].config)
    kv = resolve(args.config, shape.layers)
    kept = kept_table(args.prefill, args.decode, shape.layers, args.ratio)
    name = Path(args.model).name
    w = decode_workload(name, shape, kv, args.prefill, args.decode, kept, args.batch, args.wbits, args.act, args.group)
    manifest = save_workload_folder(w, args.out)
    t = w.totals()
    return {
        "settings": _settings(args),
        "workload": str(manifest),
        "ops": len(w.ops),
        "gmac": t.macs / 1e9,
        "kv_mb_read": t.kv_bytes / 1e6,
        "weight_mb_read": t.weight_bytes / 1e6,
        "kv_config": kv.name,
        "avg_bits": kv.avg_bits,
    }


def _text(report: dict) -> str:
    """The text a command prints (its report as JSON with --json)."""
    settings = report["settings"]
    command = settings["command"]
    if command == "eval":
        return eval_table(report["results"])
    if command == "evict":
        return evict_table(report["results"])
    if command == "tune":
        rows, chosen = tune_front(report)
        table = "\n".join("\t".join(str(x) for x in row) for row in [TUNE_FRONT_HEAD, *rows])
        return (
            f"{table}\nconfig.json: {report['chosen']['name']}, {chosen['avg_bits']:.2f} avg bits, "
            f"calibration KL {1e3 * chosen['kl']:.4f} mnat"
        )
    if command == "train-predictor":
        rates = ", ".join(f"{name} {100 * r:.1f}%" for name, r in report["recovery"].items())
        return f"{report['pairs']} pairs; held-out recovery at {report['k']} blocks: {rates}; wrote {settings['out']}"
    return (
        f"{report['workload']}: {report['ops']} ops, {report['gmac']:.3f} GMAC, KV {report['kv_mb_read']:.2f} MB read, "
        f"weights {report['weight_mb_read']:.2f} MB read ({settings['decode']} steps, {report['kv_config']} at "
        f"{report['avg_bits']:g} average bits, keep 1/{settings['ratio']:g}); replay with: python -m sim.replay "
        f"{report['workload']}"
    )


COMMANDS = {
    "eval": eval_command,
    "tune": tune_command,
    "train-predictor": predictor_command,
    "evict": evict_command,
    "workload": workload_command,
}


def _needs_torch(args: argparse.Namespace) -> bool:
    """A workload of a built-in shape is computed from the shape alone."""
    return not (args.command == "workload" and args.model in MODELS)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return run_command(PROG, args, COMMANDS, _text, check, needs_torch=_needs_torch)


if __name__ == "__main__":
    raise SystemExit(main())
