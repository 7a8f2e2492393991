"""Zoo presets: model size, token budgets and data sizes. Budgets are in tokens, never wall-clock time."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass

from models.zoo.errors import ZooError

# Bump when training or data code changes what a preset produces, so old cache entries are not reused.
ZOO_VERSION = 2


@dataclass(frozen=True)
class Preset:
    """Everything that decides what `build` trains; the cache key is a hash of these fields."""

    name: str
    # model (Llama architecture)
    vocab_size: int
    hidden_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    intermediate_size: int
    seq_len: int  # training window, tokens
    # data, characters per natural-text source (stdlib code, man pages, /usr/share/doc)
    source_chars: int
    test_chars: int  # held-out characters per natural-text source
    max_file_chars: int  # longer files are cut, so one huge file cannot fill a source
    tokenizer_chars: int  # characters per source used to train the BPE tokenizer
    n_math_train: int
    n_math_test: int
    n_recall_train: int
    n_recall_test: int
    recall_pairs: int  # key-value pairs per recall sequence
    # training
    batch_size: int
    base_tokens: int
    base_lr: float
    finetune_tokens: int  # per variant
    finetune_lr: float
    eval_tokens: int  # cap on held-out tokens scored per natural-text task

    def key(self, seed: int) -> str:
        """Cache key: preset name, seed and a hash of every field (hex)."""
        blob = json.dumps({"v": ZOO_VERSION, "seed": seed, **dataclasses.asdict(self)}, sort_keys=True)
        return f"{self.name}-s{seed}-{hashlib.sha256(blob.encode()).hexdigest()[:12]}"


PRESETS: dict[str, Preset] = {
    # seconds on 2 cores: for tests
    "tiny": Preset(
        name="tiny",
        vocab_size=384,
        hidden_size=64,
        num_layers=2,
        num_heads=4,
        num_kv_heads=2,
        intermediate_size=160,
        seq_len=96,
        source_chars=120_000,
        test_chars=12_000,
        max_file_chars=8_000,
        tokenizer_chars=60_000,
        n_math_train=3_000,
        n_math_test=100,
        n_recall_train=600,
        n_recall_test=50,
        recall_pairs=6,
        batch_size=8,
        base_tokens=60_000,
        base_lr=3e-3,
        finetune_tokens=20_000,
        finetune_lr=2e-3,
        eval_tokens=4_000,
    ),
    # a few minutes on 2 cores: for the demo (about 4.6 M parameters)
    "default": Preset(
        name="default",
        vocab_size=4096,
        hidden_size=256,
        num_layers=4,
        num_heads=4,
        num_kv_heads=2,
        intermediate_size=688,
        seq_len=256,
        source_chars=3_000_000,
        test_chars=150_000,
        max_file_chars=30_000,
        tokenizer_chars=1_000_000,
        n_math_train=40_000,
        n_math_test=300,
        n_recall_train=4_000,
        n_recall_test=200,
        recall_pairs=20,
        batch_size=8,
        base_tokens=800_000,
        base_lr=2e-3,
        finetune_tokens=150_000,
        finetune_lr=5e-4,
        eval_tokens=20_000,
    ),
    # the model benches' default: 12 layers, half the default's width, the default's pretraining tokens (about 2.9 M
    # parameters; wall and CPU time of its build in bench/results/zoo_train.json)
    "deep": Preset(
        name="deep",
        vocab_size=4096,
        hidden_size=128,
        num_layers=12,
        num_heads=4,
        num_kv_heads=2,
        intermediate_size=384,
        seq_len=256,
        source_chars=5_000_000,
        test_chars=200_000,
        max_file_chars=30_000,
        tokenizer_chars=1_000_000,
        n_math_train=60_000,
        n_math_test=300,
        n_recall_train=6_000,
        n_recall_test=200,
        recall_pairs=20,
        batch_size=8,
        base_tokens=800_000,
        base_lr=2e-3,
        finetune_tokens=50_000,
        finetune_lr=5e-4,
        eval_tokens=20_000,
    ),
}
# for tests: the deep preset's depth, heads and window shape at the tiny preset's width, data and half its budgets,
# so the deep preset's machinery (twelve layers, grouped-query heads, cache entry) builds in seconds
PRESETS["deep-mini"] = dataclasses.replace(
    PRESETS["tiny"],
    name="deep-mini",
    num_layers=PRESETS["deep"].num_layers,
    num_heads=PRESETS["deep"].num_heads,
    num_kv_heads=PRESETS["deep"].num_kv_heads,
    base_tokens=30_000,
    finetune_tokens=10_000,
)


def get_preset(name: str) -> Preset:
    """The preset called `name`; ZooError naming the choices otherwise."""
    if name not in PRESETS:
        raise ZooError(f"unknown zoo preset {name!r}: use one of {', '.join(PRESETS)}")
    return PRESETS[name]
