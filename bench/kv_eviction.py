"""AttentionPredictor vs StreamingLLM, H2O, SnapKV and Quest at 4x, 8x and 16x KV compression on the zoo's base
model (or, with --model recall, its recall-trained copy: models.kv.recall_model), and the share of the predictor's
cost that cross-token prefetch hides on the simulator's array model.

1. The predictor CNN (paper sizes, history --history steps, 4-token blocks, 4 sink + 4 local tokens) is trained
   on the model's attention over TRAINING text and train-split recall sequences (models.kv.eviction_eval
   .train_predictor); cached under MIXKIT_CACHE by a hash of the model's weights and the settings.
2. Every policy keeps exactly ceil(context / R) tokens per KV head and layer at each decode step (models.kv
   .selection). Text: --windows (default 4) code and as many English held-out windows of 256 tokens, 128
   prefilled, 128 decoded; recall: --recall-examples held-out key-value recall examples behind distractor
   examples, 256 tokens each, the last 4 prompt tokens and the answer decoded. Figures: text KL from the dense
   cache (nats/token), perplexity, exact recall, the answer's NLL (nats/token) and the attention recovery rate
   (share of the full attention on the kept tokens).
3. Prefetch (models.kv.prefetch): cycles per decode step on a 32x32 MixPE array (W4A8, group 128, FP16 KV) with
   the predictor on a 16x16, 8x8 or 4x4 side engine, for the zoo model (256 tokens, 16x) and a Llama-3.1-8B-like shape
   (mistral-7b: 32 layers, 8 KV heads; 4096 tokens, 16x, the paper's predictor: history 64, 16-token blocks).

Target: AttentionPredictor at 16x recalls more than H2O and StreamingLLM at the same budget. The base model
recalls about 2% of the prompts even with the full cache, so --model recall runs everything (predictor trained on
its own attention histories included) on the recall-trained copy; with its default 1 M-token budget that copy
still recalls only 2% densely, so the target cannot be judged on either yet.

    python -m bench.kv_eviction [--model base|recall] [--recall-examples 100] [--windows 4] [--seed 0]

Prints tables and writes bench/results/kv_eviction.json and .png (--model recall: kv_eviction_recall.json
and .png).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import time
from dataclasses import asdict
from pathlib import Path

import torch

from hw.cache import cache_root
from models import zoo
from models.kv.__main__ import evict_plot, evict_table
from models.kv.eviction_eval import evaluate_eviction, train_predictor
from models.kv.predictor import AttentionCNN, PredictorConfig
from models.kv.prefetch import hidden_cost, step_costs
from models.kv.recall_model import recall_model
from sim.files import atomic_write
from sim.model_shapes import MODELS, ModelShape

RESULTS = Path(__file__).resolve().parent / "results"
POLICIES = ["streaming", "h2o", "snapkv", "quest", "attnpred"]
RATIOS = [4.0, 8.0, 16.0]
SIDE_ENGINES = (16, 8, 4)  # side-engine sizes (PEs per side) for the predictor
# --model: (output name, plot title)
MODELS_RUN = {
    "base": ("kv_eviction", "zoo base (default preset)"),
    "recall": ("kv_eviction_recall", "zoo base fine-tuned for recall (default preset)"),
}


def _predictor(model, tokenizer, config: PredictorConfig, settings: dict) -> tuple[AttentionCNN, dict]:
    """The trained predictor and its training report, from the cache when the weights and settings match."""
    digest = hashlib.sha256(json.dumps({**settings, **asdict(config)}, sort_keys=True).encode())
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().float().numpy().tobytes())
    folder = cache_root() / "kv-predictor" / digest.hexdigest()[:16]
    if (folder / "train.json").is_file():
        return AttentionCNN.from_pretrained(folder), json.loads((folder / "train.json").read_text())
    start = time.perf_counter()
    net, result = train_predictor(model, tokenizer, config, **settings)
    report = {**asdict(result), "seconds": time.perf_counter() - start}
    net.save_pretrained(folder)
    atomic_write(folder / "train.json", json.dumps(report, indent=1) + "\n")
    return net, report


def _prefetch() -> dict:
    zoo_shape = ModelShape.from_hf_config(zoo.load("base", "default")[0].config)
    cases = {
        "zoo-default@16x": (zoo_shape, 256, PredictorConfig()),
        "llama3.1-8b-like@16x": (MODELS["mistral-7b"], 4096, PredictorConfig(history=64, block=16, sink=64, local=64)),
    }
    out = {}
    for name, (shape, context, config) in cases.items():
        for side in SIDE_ENGINES:
            costs = step_costs(shape, context, context // 16, config, side_rows=side, side_cols=side)
            out[f"{name} side {side}x{side}"] = {
                "context": context,
                "kept": context // 16,
                "side_engine": [side, side],
                "predictor": asdict(config),
                **hidden_cost(costs),
            }
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench.kv_eviction", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--model", choices=sorted(MODELS_RUN), default="base", help="the zoo base, or its recall-trained copy"
    )
    p.add_argument("--recall-examples", type=int, default=100, help="held-out recall sequences (default 100)")
    p.add_argument("--windows", type=int, default=4, help="held-out text windows of 256 tokens per task (default 4)")
    p.add_argument("--history", type=int, default=8, help="predictor history steps (default 8)")
    p.add_argument("--seed", type=int, default=0, help="seed of data and training (default 0)")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    args = p.parse_args(argv)
    if args.recall_examples < 1 or args.windows < 1:
        p.error("--recall-examples and --windows must be at least 1")
    torch.set_num_threads(args.threads)
    stem, title = MODELS_RUN[args.model]
    # the zoo's seed-0 models, whatever --seed (which seeds the predictor and the data)
    checkpoint = recall_model("default") if args.model == "recall" else zoo.build("default")["base"]
    model, tokenizer = zoo.load(checkpoint, "default")
    config = PredictorConfig(history=args.history)
    train_settings = dict(preset="default", seq_len=256, sequences=24, steps_per_sequence=32, epochs=8, seed=args.seed)
    net, training = _predictor(model, tokenizer, config, train_settings)
    print(f"predictor: {training['pairs']} pairs, held-out recovery at {training['k']} blocks:")
    print("  " + ", ".join(f"{name} {100 * r:.1f}%" for name, r in training["recovery"].items()))

    start = time.perf_counter()
    results = evaluate_eviction(
        model, tokenizer, POLICIES, RATIOS, net, "default", 256, 128, args.windows, args.recall_examples, 4, args.seed
    )
    eval_seconds = time.perf_counter() - start
    print(evict_table(results))

    prefetch = _prefetch()
    for name, r in prefetch.items():
        c = r["cycles_per_step"]
        print(
            f"prefetch {name}: cycles/step dense {c['dense']:.0f}, sparse {c['sparse']:.0f}, sync {c['sync']:.0f}, "
            f"sync on side engine {c['sync_side']:.0f}, prefetch {c['prefetch']:.0f}; hidden "
            f"{100 * r['hidden_fraction']:.1f}% of the serial prediction cost"
        )
    at16 = {policy: results[f"{policy}@16x"]["recall"] for policy in POLICIES}
    target = at16["attnpred"] > max(at16["h2o"], at16["streaming"])
    print(
        f"target (attnpred recall at 16x > H2O and StreamingLLM): {'met' if target else 'NOT met'} "
        f"({100 * at16['attnpred']:.1f}% vs {100 * at16['h2o']:.1f}% / {100 * at16['streaming']:.1f}%; "
        f"dense {100 * results['dense']['recall']:.1f}%)"
    )
    report = {
        "settings": {
            **vars(args),
            "policies": POLICIES,
            "ratios": RATIOS,
            "predictor": asdict(config),
            **train_settings,
        },
        "machine": {"platform": platform.platform(), "python": platform.python_version(), "torch": torch.__version__},
        "checkpoint": str(checkpoint),
        "training": training,
        "eval_seconds": eval_seconds,
        "results": results,
        "prefetch": prefetch,
        "target_met": target,
        "paper_claim": "16x KV compression with comparable quality (LongBench, Llama-3.1-8B / LongChat-7B)",
    }
    RESULTS.mkdir(exist_ok=True)
    atomic_write(RESULTS / f"{stem}.json", json.dumps(report, indent=1) + "\n")
    atomic_write(RESULTS / f"{stem}.png", lambda tmp: evict_plot(results, title, tmp))
    print(f"wrote {RESULTS / stem}.json and {stem}.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
