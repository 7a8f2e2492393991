"""A recall-capable copy of the zoo's base model, for judging KV selection by what it makes the model forget.

The default zoo base recalls about 2% of the long key-value recall prompts (long_recall.py) even with its full
cache, so a policy cannot be told apart by recall. `recall_model` fine-tunes a copy of the base with the zoo's own
training loop (models.zoo.train.train) on the zoo's TRAIN-split streams (models.zoo.data.training_streams) in
RECALL_MIX: 60% recall examples (the zoo's own format and pair count) and 40% natural text (code, man pages,
package docs), so it stays a language model. Budget: `tokens` (default 1.0 M tokens: 488 steps, 476 s on one
thread on this machine) at the base's pretraining peak learning rate (the preset's base_lr, warmup then cosine
decay), since recall is a mechanism the base never learned rather than a domain to adapt to.

Measured on the default preset (seed 0): this budget does NOT make the model recall. Dense long-recall accuracy
stays at 2% (answer NLL 3.99 -> 3.90 nats/token; chance is about 4.5), and 90% recall weight instead of 60%
reaches 3% (3.89) while text perplexity gets worse; 60% improves it (code 182 -> 131, English 302 -> 200).
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

from hw.cache import RESULT, cache_root, staged_entry
from models.zoo.data import training_streams
from models.zoo.presets import get_preset
from models.zoo.train import single_thread, train
from models.zoo.zoo import _available, build, entry_dir, load

# Source weights of the fine-tuning mix: recall-heavy, with natural text kept in.
RECALL_MIX = {"recall": 0.6, "code": 0.2, "man": 0.1, "doc": 0.1}
# Bump when this module changes what an entry holds, so old cache entries are not reused.
VERSION = 1


def entry_dir_for(preset: str, seed: int, tokens: int, mix: dict[str, float]) -> Path:
    """The cache folder of a recall model (it may not exist yet): keyed by the base's zoo entry and the settings."""
    p = get_preset(preset)
    blob = json.dumps(
        {"v": VERSION, "zoo": entry_dir(preset, seed).name, "tokens": tokens, "lr": p.base_lr, "mix": mix},
        sort_keys=True,
    )
    return cache_root() / "zoo-recall" / f"{preset}-s{seed}-{hashlib.sha256(blob.encode()).hexdigest()[:12]}"


def recall_model(
    preset: str = "default",
    seed: int = 0,
    tokens: int = 1_000_000,
    progress: bool = True,
    mix: dict[str, float] | None = None,
) -> Path:
    """The checkpoint folder (model and tokenizer, `save_pretrained`) of the zoo base of `preset` and `seed`
    fine-tuned on `tokens` tokens of `mix` (default RECALL_MIX); built once, then found in the cache. Its
    result.json holds the settings and the training figures (tokens, seconds, final loss in nats/token)."""
    mix = dict(mix or RECALL_MIX)
    final = entry_dir_for(preset, seed, tokens, mix)
    if (final / RESULT).exists():
        return final
    p = get_preset(preset)
    base = build(preset, seed, progress)["base"]
    with staged_entry(final) as work, single_thread():
        model, tokenizer = load(base)
        streams = training_streams(tokenizer, p, seed)
        kept = _available(mix, streams, p.seq_len, "recall")
        start = time.perf_counter()
        # seed + 4: a batch stream of its own, apart from the base's (seed) and the three variants' (seed + 1..3)
        stats = train(model, streams, kept, tokens, p.base_lr, p, seed + 4, "zoo recall", progress)
        model.save_pretrained(work)
        tokenizer.save_pretrained(work)
        result = {
            "preset": p.name,
            "seed": seed,
            "base": str(base),
            "mix": kept,
            "lr": p.base_lr,
            "training": stats,
            "seconds": round(time.perf_counter() - start, 2),
        }
        (work / RESULT).write_text(json.dumps(result, indent=1) + "\n")
    return final
