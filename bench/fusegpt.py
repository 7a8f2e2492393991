"""FuseGPT on the default zoo base model: quality vs removed blocks, fusion vs plain removal (per metric).

The default zoo model has 4 decoder blocks, so 1 and 2 removed blocks are 25% and 50% depth sparsity. Methods
(models.prune.compare): remove/cosine (ShortGPT: one Block Influence ranking, no training), remove/macro (Macro
Influence, rescored after each removal, no training), tune/macro (the blocks fusion picks, removed, with the same
group-level fine-tune budget but without the removed block's weights: the fair baseline) and fuse/macro
(FuseGPT). Each fusion tunes for --epochs passes over --calib windows of 128 tokens of zoo training text (code,
English, math; batch 8); importance uses the first 16. Every model is scored by the zoo's held-out evaluation
(perplexity and top-1 per task, math answer-token accuracy and exact match). The pruned depth's workload
(W4A8, group 128, prefill 128 + decode 16 tokens, shape-only from the pruned model's config) is replayed on a
16 x 16 MixPE array (sim.replay): cycles and energy vs the dense model.

    python -m bench.fusegpt [--preset default] [--max-remove 2] [--epochs 12]

Prints a table and writes bench/results/fusegpt.json and bench/results/fusegpt.png; one torch thread.
"""

from __future__ import annotations

import argparse
import copy
import platform
import time

import torch

from bench import save_results
from models import zoo
from models.export import shape_export
from models.moe import training_windows
from models.prune import remove_blocks
from models.prune.compare import compare, plot, table
from models.quant import QuantConfig
from sim.perf_model import MemoryConfig
from sim.replay import replay

SEQ = 128


def depth_replay(model, removed: dict[int, list[int]]) -> dict[str, dict]:
    """MixPE (16 x 16) replay of the W4A8 prefill-128 + decode-16 workload at each pruned depth."""
    q = QuantConfig(wbits=4, group=128, act="int8", uneven="divisor", quantize_lm_head=True)
    rows = {}
    for n, blocks in {0: [], **removed}.items():
        config = remove_blocks(copy.deepcopy(model), blocks).config
        report = replay(shape_export(f"base-{n}", config, SEQ, 16, 1, q, 16, False), "mixpe", 16, 16, MemoryConfig())
        totals = report.totals
        rows[str(n)] = {"blocks": config.num_hidden_layers, "cycles": totals["cycles"], "energy_j": totals["energy_j"]}
    for r in rows.values():
        r["cycles_vs_dense"] = r["cycles"] / rows["0"]["cycles"]
        r["energy_vs_dense"] = r["energy_j"] / rows["0"]["energy_j"]
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench.fusegpt", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--preset", default="default", help="zoo preset (default: default)")
    p.add_argument("--max-remove", type=int, default=2, help="score 1..N removed blocks (default 2)")
    p.add_argument("--calib", type=int, default=64, help=f"fine-tune windows of {SEQ} tokens (default 64)")
    p.add_argument("--epochs", type=int, default=12, help="passes over the windows per fusion (default 12)")
    p.add_argument("--rank", type=int, default=16, help="rank of the coefficient matrices (default 16)")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    t_all = time.time()
    model, tokenizer = zoo.load("base", args.preset)
    data = training_windows(tokenizer, args.preset, SEQ, args.calib)
    result = compare(model, tokenizer, data, args.max_remove, args.preset, epochs=args.epochs, rank=args.rank)
    dense = result["dense"]["scores"]
    for rows in result["methods"].values():
        for r in rows.values():
            r["ppl_increase_pct"] = {t: 100 * (r["scores"][t]["ppl"] / dense[t]["ppl"] - 1) for t in dense}
    print(f"\nzoo base ({args.preset}), {result['dense']['blocks']} blocks; zoo held-out evaluation")
    print(table(result))
    fused = {int(n): r["removed"] for n, r in result["methods"]["fuse/macro"].items()}
    result["replay"] = depth_replay(model, fused)
    print("\nMixPE 16x16, W4A8 g128, prefill 128 + decode 16 tokens:")
    for n, r in result["replay"].items():
        print(
            f"  {n} removed ({r['blocks']} blocks): {r['cycles']:,} cycles ({100 * r['cycles_vs_dense']:.1f}%), "
            f"{1e3 * r['energy_j']:.1f} mJ ({100 * r['energy_vs_dense']:.1f}%)"
        )
    result = {
        "settings": {**vars(args), "seq_len": SEQ, "threads": 1, "batch": 8, "importance_windows": 16},
        **result,
        "total_seconds": round(time.time() - t_all, 1),
        "machine": {"python": platform.python_version(), "torch": torch.__version__},
    }
    path = save_results("fusegpt", result, lambda png: plot(result, png))
    print(f"total {result['total_seconds']} s; wrote {path} and fusegpt.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
