"""python -m models.merge CONFIG.yml -o OUT: merge models as a mergekit-style YAML config says.

    merge_method: ties            # linear | task_arithmetic | ties | dare_linear | dare_ties
    base_model: base              # zoo name (base, code, math, english) or a local checkpoint folder
    models:
      - model: code
        parameters: {weight: 1.0, density: 0.5}     # density: kept fraction of the task vector, (0, 1]
      - model: math
      - model: english
    parameters: {lambda: 0.7}     # global defaults (weight, density, lambda, normalize)
    sens_merging: {temperature: 0.05, samples: 16, seq_len: 128}   # omit for the plain method
    dtype: float32
    zoo_preset: default

Units: lambda scales the merged task vector; weight is relative; density is the kept fraction of each task
vector (TIES keeps the largest |delta|, DARE keeps a random fraction and rescales by 1/density); temperature
is Sens-Merging's softmax temperature over models (smaller: sharper; very large: the plain method); samples
are calibration windows of seq_len tokens per model (zoo task training text, or `calibration: FILE`).

OUT becomes a save_pretrained folder (model, tokenizer, merge_config.yml, merge_report.json with the Sens-Merging
coefficients), written atomically. --eval prints the merged model's held-out perplexity (per token) and accuracy
on the zoo tasks. Bad input (missing file or model, malformed YAML, mismatched architectures) exits with code 2
and one line naming the offending entry; nothing is written.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from dataclasses import asdict, replace
from pathlib import Path

from models.device import add_device_arguments, check_device
from sim.cli import OneLineParser, add_output_arguments, check_output, fail, positive_int

PROG = "python -m models.merge"
REPORT = "merge_report.json"  # marks a folder this tool wrote: only such a folder is replaced by a new merge


def parser() -> OneLineParser:
    p = OneLineParser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config", type=Path, help="YAML merge config (mergekit-style, see above)")
    add_output_arguments(p, "output folder: new, or one an earlier merge wrote (replaced)")
    sens = p.add_mutually_exclusive_group()
    sens.add_argument("--sens", action="store_true", help="use Sens-Merging (default settings if the config has none)")
    sens.add_argument("--no-sens", action="store_true", help="ignore the config's sens_merging block")
    p.add_argument("--eval", action="store_true", help="evaluate the merged model on the zoo's held-out tasks")
    p.add_argument("--json", action="store_true", help="print the merge report (and evaluation) as JSON")
    p.add_argument("--threads", type=positive_int, default=1, help="torch CPU threads (default 1)")
    add_device_arguments(p, dtype_default=None)
    return p


def check_inputs(args: argparse.Namespace):
    """The parsed config, once the output path is safe and every local model folder it names is whole (no heavy
    import yet). Raises ValueError (MergeError, OutputError, InputFileError) with a one-line message."""
    from models.files import check_checkpoint
    from models.merge.config import load_config

    check_output(args.out, own=REPORT, force=args.force)
    check_device(args.device)
    cfg = load_config(args.config)
    if args.dtype is not None:  # the merged model's dtype: the flag wins over the config's `dtype:`
        cfg = replace(cfg, dtype=args.dtype, source={**cfg.source, "dtype": args.dtype})
    for name in [cfg.base_model, cfg.tokenizer_source, *(e.model for e in cfg.models)]:
        if name is not None:
            check_checkpoint(Path(name).expanduser())
    return cfg


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        cfg = check_inputs(args)
    except ValueError as err:
        return fail(PROG, err)
    import torch
    from transformers.utils import logging as hf_logging

    from models.merge import MergeError, SensConfig, merge, save, with_sens

    torch.set_num_threads(args.threads)
    hf_logging.disable_progress_bar()  # our own bars show the merge; transformers' would clutter stderr
    try:
        if args.sens and cfg.sens is None:
            cfg = with_sens(cfg, SensConfig())
        if args.no_sens:
            cfg = with_sens(cfg, None)
        model, tokenizer, report = merge(cfg, progress=not args.json, device=args.device)
        evaluation = None
        if args.eval:
            from models.zoo import ZooError, evaluate

            try:
                evaluation = evaluate(copy.deepcopy(model).float(), tokenizer, cfg.zoo_preset, cfg.zoo_seed)
            except ZooError as err:
                raise MergeError(f"--eval: {err}") from None
        save(model, tokenizer, report, cfg, args.out)
    except (MergeError, OSError) as err:
        return fail(PROG, err)
    if args.json:
        print(json.dumps({"report": asdict(report), "evaluation": evaluation, "out": str(args.out)}, indent=1))
        return 0
    sens = "" if cfg.sens is None else f" + Sens-Merging (T={cfg.sens.temperature})"
    print(f"merged {len(cfg.models)} models with {cfg.merge_method}{sens}, lambda {cfg.lam} -> {args.out}")
    if report.coefficients is not None:
        sigma = report.coefficients["sigma"]
        for e, row in zip(cfg.models, sigma, strict=True):
            print(f"  sigma {e.model:>12}: " + " ".join(f"{v:.3f}" for v in row))
    if evaluation is not None:
        from models.zoo.evaluate import table

        print(table({"merged": evaluation}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
