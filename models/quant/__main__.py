"""python -m models.quant save MODEL --wbits 4 --group 128 -o OUT: quantize a model and save it as a checkpoint.
python -m models.quant eval OUT: held-out perplexity of a saved quantized checkpoint.

MODEL is a zoo name (base, code, math, english; built for --preset if needed) or a local Llama, Mistral or Qwen2
checkpoint folder. save quantizes every linear of the decoder (and lm_head with --lm-head) group-wise (RTN, or
GPTQ calibrated on --calib-windows windows of the zoo's training text) and writes OUT: config.json, tokenizer,
quant.json and model.safetensors with each quantized layer's integers packed to --wbits bits plus its 16-bit
scales and packed zero points (models/quant/checkpoint.py documents the layout), atomically. It prints the
perplexity per task (code, english, math; --eval-windows windows of --seq-len tokens) of the model before and
after quantization and the weight bytes stored. eval loads OUT, which rebuilds exactly the saved integers, and
prints the same perplexity. Bad input (a missing or corrupt file, an impossible setting) exits with code 2 and one
line; nothing is written.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from models.cli import check_models, run_command
from models.device import add_device_arguments, check_device, placement
from sim.cli import OneLineParser, add_output_arguments, check_output, int_in, positive_int

PROG = "python -m models.quant"
MANIFEST = "quant.json"  # marks a folder this tool wrote (models.quant.checkpoint.MANIFEST, without its imports)


def parser() -> OneLineParser:
    p = OneLineParser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    s = sub.add_parser("save", help="quantize a model and save it as a checkpoint folder")
    s.add_argument("model", help="zoo name (base, code, math, english) or a local Llama/Mistral/Qwen2 folder")
    add_output_arguments(s, "output folder (new, or one this tool wrote)")
    s.add_argument("--wbits", type=int, default=4, help="weight bits: 2, 3, 4 or 8 (default 4)")
    s.add_argument("--group", type=int, default=128, help="weights per scale along in_features (default 128)")
    s.add_argument("--wformat", default="unsigned", help="unsigned (zero point) or signed (default unsigned)")
    s.add_argument("--act", default="int8", help="activations: int8 or fp16 (default int8)")
    s.add_argument("--method", default="rtn", help="rtn or gptq (default rtn)")
    s.add_argument("--uneven", default="divisor", help="a layer the group does not divide: divisor or error")
    s.add_argument("--lm-head", action="store_true", help="quantize lm_head too (default: it stays as loaded)")
    s.add_argument("--calib-windows", type=positive_int, default=32, help="GPTQ calibration windows (default 32)")
    _common(s)
    e = sub.add_parser("eval", help="perplexity of a saved quantized checkpoint")
    e.add_argument("out", type=Path, help="folder written by `save`")
    _common(e)
    return p


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--preset", default="default", help="zoo preset for zoo models and evaluation data (tiny, default)")
    p.add_argument("--seq-len", type=int_in(2), default=128, help="tokens per window (default 128)")
    p.add_argument("--eval-windows", type=positive_int, default=8, help="held-out windows scored per task (default 8)")
    p.add_argument("--seed", type=int, default=0, help="seed of the evaluation windows (default 0)")
    p.add_argument("--threads", type=positive_int, default=1, help="torch CPU threads (default 1)")
    add_device_arguments(p, dtype_default="float32" if p.prog.endswith("save") else None)
    p.add_argument("--json", action="store_true", help="print the figures as JSON")


def check(args: argparse.Namespace) -> None:
    """Settings possible, the output folder free (or this tool's), input files whole, the device here."""
    check_device(args.device)
    if args.command == "save":
        _quant_config(args)
        check_output(args.out, own=MANIFEST, force=args.force)
        check_models(args.model)
    else:
        from models.quant.checkpoint import check_quantized

        check_quantized(args.out)


def _quant_config(args: argparse.Namespace):
    from models.quant.config import QuantConfig

    return QuantConfig(
        wbits=args.wbits,
        group=args.group,
        wformat=args.wformat,
        act=args.act,
        method=args.method,
        calib_samples=args.calib_windows,
        uneven=args.uneven,
        quantize_lm_head=args.lm_head,
    )


def _ppl(model, tokenizer, args: argparse.Namespace) -> dict[str, float]:
    from models.moe.__main__ import task_ppl

    return task_ppl(model, tokenizer, args.preset, args.seq_len, args.eval_windows, args.seed)


def save_command(args: argparse.Namespace) -> dict:
    from models import zoo
    from models.device import place
    from models.quant import quantize_model
    from models.quant.checkpoint import WEIGHTS, save_quantized

    qcfg = _quant_config(args)
    model, tokenizer = zoo.load(args.model, args.preset)
    place(model, **placement(args))
    result = {"model": str(args.model), "quant": qcfg.as_dict(), "ppl": {"dense": _ppl(model, tokenizer, args)}}
    calib = zoo.calibration_windows(tokenizer, args.seq_len, args.calib_windows, args.preset, args.seed)
    quantize_model(model, qcfg, calib if qcfg.method == "gptq" else None)
    result["ppl"]["quantized"] = _ppl(model, tokenizer, args)
    save_quantized(model, tokenizer, qcfg, args.out, extra={"ppl": result["ppl"]})
    result["out"], result["bytes"] = str(args.out), (args.out / WEIGHTS).stat().st_size
    return result


def eval_command(args: argparse.Namespace) -> dict:
    from models.device import place
    from models.quant.checkpoint import load_quantized

    model, tokenizer = load_quantized(args.out)
    place(model, **placement(args))
    return {"model": str(args.out), "ppl": {"quantized": _ppl(model, tokenizer, args)}}


def report(result: dict) -> str:
    """A perplexity table (one row per model) and the file size."""
    tasks = list(next(iter(result["ppl"].values())))
    lines = [f"{'model':<10}" + "".join(f"{t + ' ppl':>14}" for t in tasks)]
    for name, ppl in result["ppl"].items():
        lines.append(f"{name:<10}" + "".join(f"{ppl[t]:>14.3f}" for t in tasks))
    if "bytes" in result:
        lines.append(f"wrote {result['out']} ({result['bytes'] / 1e6:.2f} MB of tensors)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return run_command(PROG, args, {"save": save_command, "eval": eval_command}, report, check)


if __name__ == "__main__":
    raise SystemExit(main())
