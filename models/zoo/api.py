"""The zoo's convenience functions by preset name (models.zoo exports them): texts, token windows, evaluation."""

from __future__ import annotations

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from models.zoo import data
from models.zoo.data import texts_for
from models.zoo.evaluate import evaluate as _evaluate
from models.zoo.presets import get_preset


def task_texts(task: str, split: str = "test", preset: str = "default", seed: int = 0) -> list[str]:
    """Texts of `task` ("code", "math", "english", "recall") in `split` ("test": held out; "train")."""
    return texts_for(task, split, get_preset(preset), seed)


def evaluate(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    preset: str = "default",
    seed: int = 0,
    items: bool = False,
) -> dict[str, dict]:
    """Held-out scores per task: ppl, top1 (next-token accuracy), and for math/recall answer_top1 and
    exact_match (greedy answer exactly right; for recall, the recall accuracy); with `items` also per-text
    item_nll (and item_exact) lists for paired statistics."""
    return _evaluate(model, tokenizer, get_preset(preset), seed, items)


def token_windows(
    tokenizer: PreTrainedTokenizerBase,
    task: str,
    split: str = "test",
    seq_len: int = 128,
    limit: int = 64,
    preset: str = "default",
    seed: int = 0,
) -> list[torch.Tensor]:
    """Up to `limit` consecutive (seq_len,) token windows of a task's texts, tokenized by `tokenizer`."""
    return data.token_windows(tokenizer, task, split, seq_len, limit, get_preset(preset), seed)


def calibration_windows(
    tokenizer: PreTrainedTokenizerBase, seq_len: int = 128, count: int = 32, preset: str = "default", seed: int = 0
) -> list[torch.Tensor]:
    """`count` (seq_len,) windows of English and code training text, for GPTQ calibration."""
    return data.calibration_windows(tokenizer, seq_len, count, get_preset(preset), seed)


def drawn_windows(
    tokenizer: PreTrainedTokenizerBase,
    split: str,
    seq_len: int,
    count: int,
    preset: str = "default",
    draw: int = 0,
    pool: int = 160,
) -> torch.Tensor:
    """(count, seq_len) code and English windows of `split`, half each, drawn by the seed `draw` from the first
    `pool` windows of each task: the same corpus split whatever the draw."""
    return data.drawn_windows(tokenizer, split, seq_len, count, pool, get_preset(preset), draw)
