"""python -m models.moe carve MODEL --experts E --top-k K --shared S -o OUT: carve a CMoE model from a dense model.
python -m models.moe eval OUT: perplexity and activated parameters of a carved model (optionally its workload).

MODEL is a zoo name (base, code, math, english; built for --preset if needed) or a local Llama, Mistral or Qwen2
checkpoint folder (other model types exit 2).
Each FFN of d_ff neurons becomes a shared FFN of S neurons (the most frequently active on the calibration
tokens) plus E routed experts of (d_ff - S) / E neurons each, K of which run per token; the activated FFN
fraction is (S + K (d_ff - S) / E) / d_ff. Example for the default zoo model (d_ff = 688): --shared 172
--experts 12 --top-k 4 is 50%, --shared 86 --experts 14 --top-k 2 is 25%.

carve prints the carving time (s), perplexity per task (code, english, math held-out windows) of the dense and
the carved model (and after --finetune-steps N steps of fine-tuning, if N > 0), and the activated parameters; it
writes OUT (save_pretrained model + tokenizer + cmoe.json with the figures) atomically. eval prints the same
figures for OUT; --workload FILE also writes the sim workload of a --prefill token prefill with the real routing.
Bad input (missing model, impossible layout, OUT that is not a CMoE folder) exits with code 2 and one line.
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
    nonnegative_int,
    positive_int,
)

PROG = "python -m models.moe"
TASKS = ("code", "english", "math")
RESULT = "cmoe.json"


def parser() -> OneLineParser:
    p = OneLineParser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    c = sub.add_parser("carve", help="carve a dense Llama/Mistral/Qwen2 into a CMoE model")
    c.add_argument("model", help="zoo name (base, code, math, english) or a local Llama/Mistral/Qwen2 folder")
    c.add_argument("--experts", type=positive_int, required=True, help="routed experts E per layer")
    c.add_argument("--top-k", type=positive_int, required=True, help="routed experts K run per token")
    c.add_argument("--shared", type=nonnegative_int, required=True, help="shared (always-on) neurons S per FFN")
    add_output_arguments(c, "output folder for the carved model (new, or an earlier carve's)")
    c.add_argument(
        "--finetune-steps", type=nonnegative_int, default=0, help="fine-tune steps (batch 4 windows; default 0)"
    )
    c.add_argument("--calib-windows", type=positive_int, default=16, help="calibration windows (default 16)")
    c.add_argument("--k-act", type=positive_int, default=10, help="neurons marked active per token (ATopK, default 10)")
    _common(c)
    e = sub.add_parser("eval", help="evaluate a carved model folder")
    e.add_argument("out", type=Path, help="folder written by `carve`")
    e.add_argument("--workload", type=Path, help="also write the routed prefill workload here (JSON)")
    e.add_argument("--prefill", type=positive_int, default=128, help="prefill tokens S of the workload (default 128)")
    _common(e)
    return p


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--preset", default="default", help="zoo preset for zoo models and evaluation data (tiny, default)")
    p.add_argument("--seq-len", type=int_in(2), default=128, help="tokens per window (default 128)")
    p.add_argument("--eval-windows", type=positive_int, default=8, help="held-out windows scored per task (default 8)")
    p.add_argument("--seed", type=int, default=0, help="seed of data order and fine-tune sampling (default 0)")
    p.add_argument("--threads", type=positive_int, default=1, help="torch CPU threads (default 1)")
    add_device_arguments(p)
    p.add_argument("--json", action="store_true", help="print the figures as JSON")


def task_ppl(model, tokenizer, preset: str, seq_len: int, windows: int, seed: int) -> dict[str, float]:
    """Held-out perplexity per task (code, english, math) on `windows` windows of `seq_len` tokens."""
    from models import zoo
    from models.quant import evaluate

    return {
        t: evaluate(model, zoo.token_windows(tokenizer, t, "test", seq_len, windows, preset, seed))["ppl"]
        for t in TASKS
    }


def check(args: argparse.Namespace) -> None:
    """Output paths writable and free (or this tool's), local model folders whole, the device here."""
    check_device(args.device)
    if args.command == "carve":
        check_output(args.out, own=RESULT, force=args.force)
        check_models(args.model)
        config = Path(args.model).expanduser() / "config.json"
        if config.is_file():  # a local folder: its model type is known before torch loads (zoo names are Llamas)
            from models.files import read_json
            from models.moe.errors import CARVABLE, MoeError

            model_type = read_json(config).get("model_type")
            if model_type not in CARVABLE:
                raise MoeError(f"{args.model} is a {model_type!r} model: CMoE carves {', '.join(CARVABLE)} models")
    else:
        if args.workload is not None:
            check_output(args.workload, "--workload", folder=False)
        check_models(args.out)


def carve_command(args: argparse.Namespace) -> dict:
    from models import zoo
    from models.device import place
    from models.moe import activated_parameters, carve, cmoe_config, finetune, training_windows

    dense, tokenizer = zoo.load(args.model, args.preset)
    place(dense, **placement(args))
    cmoe_config(dense.config, args.experts, args.top_k, args.shared)
    calib = zoo.calibration_windows(tokenizer, args.seq_len, args.calib_windows, args.preset, args.seed)
    model, stats = carve(dense, calib, args.experts, args.top_k, args.shared, args.k_act, progress=True)
    place(model, **placement(args))
    ppl = {"dense": task_ppl(dense, tokenizer, args.preset, args.seq_len, args.eval_windows, args.seed)}
    ppl["carved"] = task_ppl(model, tokenizer, args.preset, args.seq_len, args.eval_windows, args.seed)
    result = {
        "model": str(args.model),
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "carve_seconds": round(stats["seconds"], 3),
        "activated": activated_parameters(model),
        "ppl": ppl,
    }
    if args.finetune_steps:
        data = training_windows(tokenizer, args.preset, args.seq_len, 4 * args.finetune_steps, args.seed)
        result["finetune"] = finetune(model, data, args.finetune_steps, seed=args.seed)
        ppl["finetuned"] = task_ppl(model, tokenizer, args.preset, args.seq_len, args.eval_windows, args.seed)
    from models.checkpoint import save_checkpoint

    save_checkpoint(model, tokenizer, args.out, {RESULT: result})
    return result


def load_carved(out: Path):
    """A carved model (eval mode) and its tokenizer from a `carve` output folder; ValueError if it is not one."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from models.moe.modeling import CMOE_TYPES  # (the import registers the CMoE model types)

    config = out / "config.json"
    if not config.is_file():
        raise ValueError(f"{out} has no config.json: pass a folder written by `python -m models.moe carve`")
    if json.loads(config.read_text()).get("model_type") not in CMOE_TYPES:
        raise ValueError(f"{out} is not a CMoE model (model_type is not {'/'.join(CMOE_TYPES)}): carve one first")
    model = AutoModelForCausalLM.from_pretrained(out, local_files_only=True, attn_implementation="eager").eval()
    return model, AutoTokenizer.from_pretrained(out, local_files_only=True)


def eval_command(args: argparse.Namespace) -> dict:
    from models import zoo
    from models.device import place
    from models.moe import activated_parameters, routed_workload

    model, tokenizer = load_carved(args.out)
    place(model, **placement(args))
    result = {
        "model": str(args.out),
        "activated": activated_parameters(model),
        "ppl": {"carved": task_ppl(model, tokenizer, args.preset, args.seq_len, args.eval_windows, args.seed)},
    }
    if args.workload:
        tokens = zoo.token_windows(tokenizer, "code", "test", args.prefill, 1, args.preset, args.seed)[0]
        w = routed_workload(model, tokens, name=args.out.name)
        w.save(args.workload)
        result["workload"] = {
            "path": str(args.workload),
            "ops": len(w.ops),
            "macs": w.totals().macs,
            "routed_counts": w.meta["routed_counts"],
        }
    return result


def report(result: dict) -> str:
    """Carving time, activated parameters and a perplexity table (one row per model)."""
    a = result["activated"]
    lines = []
    if "carve_seconds" in result:
        lines.append(f"carving time: {result['carve_seconds']:.2f} s")
    lines.append(
        f"activated FFN parameters: {100 * a['ffn_ratio']:.1f}%   activated model parameters: "
        f"{a['activated']:,} of {a['total']:,} ({100 * a['ratio']:.1f}%)"
    )
    lines.append(f"{'model':<12}" + "".join(f"{t + ' ppl':>14}" for t in TASKS))
    for name, ppl in result["ppl"].items():
        lines.append(f"{name:<12}" + "".join(f"{ppl[t]:>14.3f}" for t in TASKS))
    if "workload" in result:
        lines.append(f"workload: {result['workload']['path']} ({result['workload']['ops']} ops)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return run_command(PROG, args, {"carve": carve_command, "eval": eval_command}, report, check)


if __name__ == "__main__":
    raise SystemExit(main())
