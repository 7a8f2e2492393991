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
