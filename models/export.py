"""python -m models.export: the accelerator workload of serving a model (a zoo name or a local checkpoint).

    python -m models.export base --wbits 4 --group 128 --act int8 --prefill 256 --decode 16 -o out/w
    python -m models.export base --preset tiny --group 32 --prefill 64 --decode 4 --tensors -o out/wt
    python -m sim.replay out/wt --compare [--exact]

Shape-only (default): every GEMM of prefilling S prompt tokens and decoding T tokens for B sequences,
counted from the model's config by sim.model_shapes (its docstring states the rules); no weights are
read, so it works for any Llama / Mistral / Qwen2 / Mixtral checkpoint folder.

--tensors: the model is quantized (models.quant; GPTQ calibrates on the zoo's training text), a real
prompt of S tokens (the zoo's held-out English text, or --text FILE) is prefilled and T tokens are
decoded greedily with the KV cache, and every quantized linear call of that run becomes an op with
its exact port-level operands: one op per forward, layer and projection ("prefill.model.layers.0.
self_attn.q_proj", "decode.t3.model.layers.1.mlp.down_proj", ...), so `sim.replay --exact`
reproduces the model's integers on the cycle model. The tensor file holds every forward's weights,
about (1 + T) x the quantized model size. Attention GEMMs are shape-only in both modes.

lm_head runs on the accelerator, quantized like every linear; --fp-lm-head keeps it in FP32 on the
host, out of the workload. With --uneven divisor (the default) a layer whose in_features the group
does not divide gets the largest divisor below it (e.g. 86 for 688 at group 128). -o DIR receives
workload.json (and workload.safetensors with --tensors), built in a staging folder and renamed into place.
Bad input exits with code 2 and one line; nothing is written.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

from models.cli import check_models
from models.device import add_device_arguments, check_device
from models.zoo.presets import PRESETS
from sim.cli import OneLineParser, add_output_arguments, add_quiet_argument, check_output, fail, positive_int
from sim.model_shapes import ModelShape, add_builtin_arguments, shape_workload
from sim.workload import KV_BITS, UNEVEN_POLICIES, WORKLOAD_FILE, Attention, Linear, Workload, save_workload_folder

if TYPE_CHECKING:  # torch, transformers and models.quant load in the functions, after the CLI checked its input
    import torch
    from transformers import PretrainedConfig

    from models.quant import QuantConfig

PROG = "python -m models.export"


class ExportError(ValueError):
    """An export that cannot run as asked; the message is one line naming the fix."""


def checkpoint(model: str, preset: str = "default", progress: bool = True) -> Path:
    """The checkpoint folder of a zoo name (built if needed) or a local path, checked for a supported config."""
    from models import zoo
    from models.zoo.zoo import checkpoint_type

    path = zoo.build(preset, progress=progress)[model] if model in zoo.NAMES else Path(model)
    checkpoint_type(path)
    return path


def _without_lm_head(workload: Workload, fp_lm_head: bool) -> Workload:
    if not fp_lm_head:
        return workload
    ops = [op for op in workload.ops if not op.name.endswith("lm_head")]
    return Workload(workload.model, ops, {**workload.meta, "host_ops": ["lm_head"]}, dict(workload.tensors))


def shape_export(
    name: str,
    config: PretrainedConfig,
    prefill: int,
    decode: int,
    batch: int,
    qcfg: QuantConfig,
    kv_bits: int,
    fp_lm_head: bool,
) -> Workload:
    """The shape-only workload of a model with this transformers config."""
    shape = ModelShape.from_hf_config(config)
    workload = shape_workload(
        name, shape, prefill, decode, batch, qcfg.wbits, qcfg.act, qcfg.group, qcfg.wformat, kv_bits, qcfg.uneven
    )
    return _without_lm_head(workload, fp_lm_head)


def prompt_ids(tokenizer, prefill: int, text: Path | None, preset: str) -> torch.Tensor:
    """(1, prefill) token ids: the start of `text` or of the zoo's held-out English text."""
    import torch

    from models import zoo

    if text is None:
        return zoo.token_windows(tokenizer, "english", "test", seq_len=prefill, limit=1, preset=preset)[0][None]
    try:
        ids = tokenizer(text.read_text(errors="replace"))["input_ids"]
    except OSError as e:
        raise ExportError(f"cannot read --text {text}: {e.strerror or e}") from None
    if len(ids) < prefill:
        raise ExportError(f"--text {text} has {len(ids)} tokens, fewer than --prefill {prefill}: pass a longer text")
    return torch.tensor(ids[:prefill])[None]


def run_recorded(model: torch.nn.Module, prompt: torch.Tensor, decode: int) -> list[list]:
    """Prefill `prompt` (1, S), then decode `decode` tokens greedily with the KV cache, recording each
    forward's QuantLinear calls: [[(module name, GemmOperands), ...] per forward], prefill first."""
    import torch
    from tqdm import tqdm

    from models.quant import recording

    forwards = []
    with torch.no_grad(), recording(model) as calls:
        out = model(input_ids=prompt, use_cache=True)
        forwards.append(list(calls))
        for _ in tqdm(range(decode), desc="decode", unit="token", disable=decode < 8):
            calls.clear()
            out = model(input_ids=out.logits[:, -1:].argmax(-1), cache=out.cache, use_cache=True)
            forwards.append(list(calls))
    return forwards


def tensor_export(
    name: str,
    path: Path,
    config: PretrainedConfig,
    prefill: int,
    decode: int,
    qcfg: QuantConfig,
    kv_bits: int,
    preset: str,
    text: Path | None,
    device: str = "cpu",
    dtype: str = "float32",
) -> Workload:
    """The workload of one real prefill + greedy decode of the quantized model, with exact operands; the model's
    unquantized parts (embeddings, norms, attention) run on `device` in `dtype`, its QuantLinears on the CPU."""
    from models import zoo
    from models.device import place
    from models.quant import operand_op, quantize_model

    shape = shape_export(name, config, prefill, decode, 1, qcfg, kv_bits, fp_lm_head=False)
    if shape.meta["config"]["experts"]:
        raise ExportError(
            f"{path} is a mixture of experts, whose fused expert weights models.quant does not quantize:"
            " export it shape-only (without --tensors)"
        )
    if prefill + decode > config.max_position_embeddings:
        raise ExportError(
            f"--prefill {prefill} + --decode {decode} exceeds the model's {config.max_position_embeddings}"
            " positions: shorten them"
        )
    model, tokenizer = zoo.load(path)
    place(model, device, dtype)
    calib = zoo.calibration_windows(tokenizer, 128, qcfg.calib_samples, preset) if qcfg.method == "gptq" else None
    quantize_model(model, qcfg, calib)
    forwards = run_recorded(model, prompt_ids(tokenizer, prefill, text, preset), decode)
    modules = dict(model.named_modules())
    phases = ["prefill"] + [f"decode.t{t}" for t in range(1, decode + 1)]
    linears, tensors, frac_bits = {}, {}, {}
    for phase, calls in zip(phases, forwards, strict=True):
        ops = []
        for module, operands in calls:
            op_name = f"{phase}.{module}"
            ops.append(operand_op(op_name, modules[module], operands))
            tensors[op_name], frac_bits[op_name] = operands, modules[module].frac_bits
        linears[phase] = ops
    attention = {phase: [] for phase in phases}
    for op in shape.ops:
        if isinstance(op, Attention):
            attention[op.name.rsplit(".layers.", 1)[0]].append(op)
    ops = [op for phase in phases for op in linears[phase] + attention[phase]]
    meta = {**shape.meta, "source": "models.export", "quant": qcfg.as_dict(), "frac_bits": frac_bits}
    workload = Workload(name, ops, meta, tensors)
    return _without_lm_head(workload, not qcfg.quantize_lm_head)


def export(
    model: str,
    prefill: int = 512,
    decode: int = 128,
    batch: int = 1,
    qcfg: QuantConfig | None = None,
    kv_bits: int = 16,
    tensors: bool = False,
    preset: str = "default",
    text: Path | None = None,
    device: str = "cpu",
    dtype: str = "float32",
    progress: bool = True,
) -> Workload:
    """The workload of `model` (a zoo name or checkpoint folder); see the module docstring. device and dtype:
    where and how --tensors runs the model (see tensor_export).

    qcfg: weight/activation precision (wbits, group, wformat, act, method, uneven) and, through
    quantize_lm_head, whether lm_head runs on the accelerator.
    """
    from transformers import AutoConfig

    from models.quant import QuantConfig
    from models.zoo import NAMES

    qcfg = qcfg or QuantConfig(uneven="divisor", quantize_lm_head=True)
    path = checkpoint(model, preset, progress)
    name = model if model in NAMES else path.name
    config = AutoConfig.from_pretrained(path, local_files_only=True)
    if not tensors:
        return shape_export(name, config, prefill, decode, batch, qcfg, kv_bits, not qcfg.quantize_lm_head)
    if batch != 1:
        raise ExportError(f"--tensors records one real sequence: use --batch 1 (got {batch})")
    return tensor_export(name, path, config, prefill, decode, qcfg, kv_bits, preset, text, device, dtype)


def main(argv: Sequence[str] | None = None) -> int:
    p = OneLineParser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="base, code, math, english (the zoo), or a local Hugging Face checkpoint folder")
    add_output_arguments(p, "workload folder to write (workload.json; new, or an earlier export's)", required=False)
    p.add_argument("--output", dest="out", type=Path, help=argparse.SUPPRESS)  # the old spelling
    add_builtin_arguments(p, prefill=512)
    p.add_argument("--method", default="rtn", help="weight quantization for --tensors: rtn or gptq (default rtn)")
    p.add_argument(
        "--uneven", default="divisor", help=f"layers the group does not divide: {' or '.join(UNEVEN_POLICIES)}"
    )
    p.add_argument("--fp-lm-head", action="store_true", help="keep lm_head in FP32 on the host, out of the workload")
    p.add_argument("--tensors", action="store_true", help="quantize, run the model and store every op's operands")
    p.add_argument("--text", type=Path, help="prompt text file for --tensors (default: the zoo's held-out English)")
    p.add_argument("--preset", choices=list(PRESETS), default="default", help="zoo preset for zoo names and texts")
    p.add_argument("--threads", type=positive_int, default=None, help="torch CPU threads (default: torch's)")
    add_device_arguments(p)
    p.add_argument("--json", action="store_true", help="print the workload's totals as JSON")
    add_quiet_argument(p)
    args = p.parse_args(argv)
    if args.out is None:
        p.error("the following arguments are required: -o/--out")
    try:
        check_output(args.out, own=WORKLOAD_FILE, force=args.force)
        check_models(args.model)
        check_device(args.device)
        if args.kv_bits not in KV_BITS:
            raise ExportError(f"--kv-bits {args.kv_bits} unsupported: choose one of {', '.join(map(str, KV_BITS))}")
        if args.text is not None and not args.text.is_file():
            raise ExportError(f"--text {args.text} not found: pass a text file or omit --text")
        from models.quant import QuantConfig

        if args.threads is not None:
            import torch

            torch.set_num_threads(args.threads)

        qcfg = QuantConfig(
            wbits=args.wbits,
            group=args.group,
            wformat=args.wformat,
            act=args.act,
            method=args.method,
            uneven=args.uneven,
            quantize_lm_head=not args.fp_lm_head,
        )
        workload = export(
            args.model,
            args.prefill,
            args.decode,
            args.batch,
            qcfg,
            args.kv_bits,
            args.tensors,
            args.preset,
            args.text,
            args.device,
            args.dtype,
            progress=not args.quiet,
        )
        manifest = save_workload_folder(workload, args.out)
    except (ValueError, OSError) as e:  # ExportError, QuantError, WorkloadError, ZooError, OutputError ...
        return fail(PROG, e)
    totals = workload.totals()
    if args.json:
        print(json.dumps({"output": str(manifest), "ops": len(workload.ops), **asdict(totals)}))
    else:
        linear = sum(isinstance(op, Linear) for op in workload.ops)
        print(
            f"{manifest}: {len(workload.ops)} ops ({linear} linear, {len(workload.tensors)} with tensors),"
            f" {totals.gemms:,} GEMMs, {totals.macs:.3e} MACs, {totals.weight_bytes / 1e6:.2f} MB of weights"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
