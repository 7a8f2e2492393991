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
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, preset: str = "default", seed: int = 0
) -> dict[str, dict[str, float]]:
    """Held-out scores per task: ppl, top1 (next-token accuracy), and for math/recall answer_top1 and
    exact_match (greedy answer exactly right; for recall, the recall accuracy)."""
    return _evaluate(model, tokenizer, get_preset(preset), seed)


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
