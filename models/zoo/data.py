"""Token streams and training batches for the zoo's task mixes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from transformers import PreTrainedTokenizerBase

from models.zoo import tasks
from models.zoo.corpus import Source, collect
from models.zoo.errors import ZooError
from models.zoo.presets import Preset

TASKS = ("code", "math", "english", "recall")


@dataclass
class Stream:
    """One source as a flat token array (int32); `starts` are the offsets where documents begin."""

    tokens: np.ndarray
    starts: np.ndarray
    aligned: bool  # windows begin at a document start (generated tasks must not be cut mid-example)


def make_stream(tokenizer: PreTrainedTokenizerBase, texts: list[str], aligned: bool) -> Stream:
    """Tokenize `texts` (each as BOS text EOS, as `evaluate` scores them) into one stream."""
    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id
    ids = tokenizer(texts, add_special_tokens=False)["input_ids"]
    lengths = np.array([len(x) + 2 for x in ids], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    tokens = np.fromiter((t for x in ids for t in (bos, *x, eos)), dtype=np.int32, count=int(lengths.sum()))
    return Stream(tokens, starts, aligned)


def sample_batch(
    streams: dict[str, Stream], weights: dict[str, float], batch: int, seq_len: int, rng: np.random.Generator
) -> torch.Tensor:
    """A (batch, seq_len) long tensor of windows, each from a source drawn with probability `weights`."""
    names = list(weights)
    p = np.array([weights[n] for n in names], dtype=np.float64)
    rows = []
    for pick in rng.choice(len(names), size=batch, p=p / p.sum()):
        s = streams[names[pick]]
        limit = len(s.tokens) - seq_len
        if s.aligned:
            valid = s.starts[s.starts <= limit]
            start = int(valid[rng.integers(len(valid))])
        else:
            start = int(rng.integers(limit + 1))
        rows.append(s.tokens[start : start + seq_len])
    return torch.from_numpy(np.stack(rows).astype(np.int64))


def sources(preset: Preset, seed: int) -> dict[str, Source]:
    """The preset's natural-text sources {"code", "man", "doc"} (cached in-process)."""
    return collect(preset.source_chars, preset.test_chars, preset.max_file_chars, seed)


def task_examples(task: str, split: str, preset: Preset, seed: int) -> list[tasks.Example]:
    """Prompt/answer examples of a generated task ("math" or "recall")."""
    n = {"math": (preset.n_math_train, preset.n_math_test), "recall": (preset.n_recall_train, preset.n_recall_test)}
    if task not in n:
        raise ZooError(f"task {task!r} has no examples: use math or recall")
    count = n[task][split == "test"]
    if task == "math":
        return tasks.arithmetic(count, split, seed)
    return tasks.recall(count, preset.recall_pairs, split, seed)


def texts_for(task: str, split: str, preset: Preset, seed: int) -> list[str]:
    """Texts of `task` ("code", "math", "english", "recall") in `split` ("train" or "test")."""
    if task not in TASKS:
        raise ZooError(f"unknown task {task!r}: use one of {', '.join(TASKS)}")
    if split not in ("train", "test"):
        raise ZooError(f"unknown split {split!r}: use train or test")
    if task in ("math", "recall"):
        return [e.text for e in task_examples(task, split, preset, seed)]
    src = sources(preset, seed)
    if task == "code":
        return list(getattr(src["code"], split))
    man, doc = getattr(src["man"], split), getattr(src["doc"], split)
    # interleave, so any prefix of the list mixes man pages and package docs
    mixed = [t for pair in zip(man, doc, strict=False) for t in pair]
    return mixed + man[len(doc) :] + doc[len(man) :]


def training_streams(tokenizer: PreTrainedTokenizerBase, preset: Preset, seed: int) -> dict[str, Stream]:
    """Training streams {"code", "man", "doc", "math", "recall"}."""
    src = sources(preset, seed)
    streams = {name: make_stream(tokenizer, src[name].train, aligned=False) for name in ("code", "man", "doc")}
    for task in ("math", "recall"):
        streams[task] = make_stream(tokenizer, texts_for(task, "train", preset, seed), aligned=True)
    return streams


def token_windows(
    tokenizer: PreTrainedTokenizerBase, task: str, split: str, seq_len: int, limit: int, preset: Preset, seed: int
) -> list[torch.Tensor]:
    """Up to `limit` consecutive, non-overlapping (seq_len,) LongTensor windows of a task's texts.

    The texts are tokenized in order (BOS text EOS each, as make_stream) only as far as needed.
    """
    texts = texts_for(task, split, preset, seed)
    need = seq_len * limit
    # Tokenize a prefix of about 6 characters per needed token (the corpus averages about 4), all if short.
    end, chars = 0, 0
    while end < len(texts) and chars < 6 * need:
        chars += len(texts[end])
        end += 1
    stream = make_stream(tokenizer, texts[:end], aligned=False)
    if len(stream.tokens) < need and end < len(texts):
        stream = make_stream(tokenizer, texts, aligned=False)
    count = min(limit, len(stream.tokens) // seq_len)
    if count == 0:
        raise ZooError(f"the {split} texts of {task!r} have {len(stream.tokens)} tokens, fewer than seq_len={seq_len}")
    tokens = torch.from_numpy(stream.tokens[: count * seq_len].astype(np.int64))
    return list(tokens.reshape(count, seq_len).unbind(0))


def calibration_windows(
    tokenizer: PreTrainedTokenizerBase, seq_len: int, count: int, preset: Preset, seed: int
) -> list[torch.Tensor]:
    """`count` (seq_len,) windows alternating English and code training text (never held-out text)."""
    half = count // 2 + 1
    english = token_windows(tokenizer, "english", "train", seq_len, half, preset, seed)
    code = token_windows(tokenizer, "code", "train", seq_len, half, preset, seed)
    return [w for pair in zip(english, code, strict=False) for w in pair][:count]


def drawn_windows(
    tokenizer: PreTrainedTokenizerBase, split: str, seq_len: int, count: int, pool: int, preset: Preset, draw: int
) -> torch.Tensor:
    """(count, seq_len) windows of code and English text of `split`, half of each (code gets the odd one), drawn
    without replacement by the seed `draw` from the first `pool` windows of each (the zoo's own seed stays 0, so
    every draw comes from the same corpus split): for benches that repeat a measurement over seeds."""
    rng = np.random.default_rng([draw, 16, split == "test"])
    picked = []
    for task, n in (("code", count - count // 2), ("english", count // 2)):
        windows = token_windows(tokenizer, task, split, seq_len, pool, preset, 0)
        if len(windows) < n:
            raise ZooError(f"the {preset.name} preset's {split} {task} text has {len(windows)} windows, fewer than {n}")
        picked += [windows[i] for i in rng.choice(len(windows), size=n, replace=False)]
    return torch.stack(picked)
