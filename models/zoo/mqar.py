"""Multi-query associative recall (MQAR) in distractor text: a fixed synthetic vocabulary and sequence generator.

Every sequence is BOS, then `length - 1 - 4 * queries` tokens of distractor text (a fixed bigram chain over
FILLER words) with `pairs` key-value pairs placed at random among it, then `queries` questions about distinct
keys of the context. A pair is "? k017 v094 v003", a key and a two-token value (the first value tokens of a
sequence are distinct); a question is the same four tokens again, later: the model answers by continuing
"? k017" as it was continued before (the "?" marks keys, as "key:" would in text). In a recall
prompt cut after the last question's key, the question is in the prefill, the first answer token comes from
the (dense) prefill, and the second is predicted by a decode step that attends to the compressed cache.

`copies` makes induction sequences (random tokens, then the same tokens again): mixed into training, they
teach the copy-what-followed-last-time mechanism that recall needs far faster than recall data alone.

The vocabulary is fixed and word-level (one token per key, value and filler word), so the task and the
tokenizer are the same on every machine, whatever text it holds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

SPECIAL = {"pad_token": "<pad>", "bos_token": "<s>", "eos_token": "</s>"}
KEYS = tuple(f"k{i:03d}" for i in range(128))
VALUES = tuple(f"v{i:03d}" for i in range(128))
FILLER = tuple(f"w{i:02d}" for i in range(64))
ASK = "?"
VOCAB = (*SPECIAL.values(), ASK, *KEYS, *VALUES, *FILLER)
BOS, ASK_ID = 1, 3
KEY0, VALUE0, FILLER0 = 4, 4 + len(KEYS), 4 + len(KEYS) + len(VALUES)
ANSWER_TOKENS = 2
FILLER_SUCCESSORS = 4  # each filler word is followed by one of 4 words, so distractor text is partly predictable
_SPLIT_OFFSET = {"train": 11, "test": 22}


def tokenizer() -> PreTrainedTokenizerFast:
    """The fixed word-level tokenizer of VOCAB (whitespace-separated words, one token each)."""
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(VOCAB)}, unk_token=SPECIAL["pad_token"]))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=tok, **SPECIAL)


def _successors() -> np.ndarray:
    # a fixed chain (seed 0 whatever the task seed): part of the vocabulary's definition, the same everywhere
    return np.random.default_rng(0).integers(len(FILLER), size=(len(FILLER), FILLER_SUCCESSORS))


SUCCESSORS = _successors()


@dataclass(frozen=True)
class Shape:
    """One kind of MQAR sequence: `length` tokens, `pairs` key-value pairs in the context, `queries` questions."""

    length: int
    pairs: int
    queries: int

    def __post_init__(self) -> None:
        context = self.length - 1 - 4 * self.queries
        if not 1 <= self.queries <= self.pairs <= len(KEYS) or 4 * self.pairs > context:
            raise ValueError(f"{self}: need 1 <= queries <= pairs <= {len(KEYS)} and 4 context tokens per pair")


def sequences(shape: Shape, count: int, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(ids (count, length) long, answers (count, length) bool: the value tokens of the questions)."""
    ids = np.empty((count, shape.length), dtype=np.int64)
    answers = np.zeros((count, shape.length), dtype=bool)
    context = shape.length - 1 - 4 * shape.queries
    for row in range(count):
        words = np.empty(context, dtype=np.int64)
        words[0] = rng.integers(len(FILLER))
        steps = rng.integers(FILLER_SUCCESSORS, size=context)
        for i in range(1, context):
            words[i] = SUCCESSORS[words[i - 1], steps[i]]
        seq = FILLER0 + words
        keys = KEY0 + rng.choice(len(KEYS), size=shape.pairs, replace=False)
        first = VALUE0 + rng.choice(len(VALUES), size=shape.pairs, replace=False)
        second = VALUE0 + rng.integers(len(VALUES), size=shape.pairs)
        # pair slots: `pairs` non-overlapping 3-token slots among the context
        free = context - 4 * shape.pairs
        starts = np.sort(rng.choice(free + shape.pairs, size=shape.pairs, replace=False)) + 3 * np.arange(shape.pairs)
        seq[starts], seq[starts + 1], seq[starts + 2], seq[starts + 3] = ASK_ID, keys, first, second
        asked = rng.choice(shape.pairs, size=shape.queries, replace=False)
        questions = np.stack([np.full(shape.queries, ASK_ID), keys[asked], first[asked], second[asked]])
        ids[row] = np.concatenate([[BOS], seq, questions.T.reshape(-1)])
        answers[row, 1 + context + 2 :: 4] = True
        answers[row, 1 + context + 3 :: 4] = True
    return torch.from_numpy(ids), torch.from_numpy(answers)


def copies(length: int, count: int, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(ids (count, length), answers (count, length) bool): BOS and random key, value and filler tokens in which
    a run of 3 to (length - 1) / 2 tokens occurs twice, at random places (so only the run's content, never a
    fixed offset, tells where it repeats); the answers are the repeated run's tokens after its first."""
    ids = rng.integers(KEY0, len(VOCAB), size=(count, length))
    ids[:, 0] = BOS
    answers = np.zeros((count, length), dtype=bool)
    for row in range(count):
        run = int(rng.integers(3, (length - 1) // 2 + 1))
        first, second = np.sort(rng.choice(length - 1 - 2 * run + 2, size=2, replace=False)) + [1, run]
        ids[row, second : second + run] = ids[row, first : first + run]
        answers[row, second + 1 : second + run] = True
    return torch.from_numpy(ids), torch.from_numpy(answers)


def prompts(shape: Shape, count: int, split: str = "test", seed: int = 0) -> torch.Tensor:
    """(count, length) recall sequences of `split` ("train" and "test" come from separate random streams); the
    last ANSWER_TOKENS tokens of each are the answer to its last question."""
    if split not in _SPLIT_OFFSET:
        raise ValueError(f"unknown split {split!r}: use train or test")
    rng = np.random.default_rng([seed, _SPLIT_OFFSET[split], shape.length, shape.pairs, shape.queries])
    return sequences(shape, count, rng)[0]
