"""Long-context key-value recall sequences from the zoo's recall task, for KV selection and its predictor.

Each sequence is one recall example (models/zoo/tasks.py) preceded by other examples of the same split (BOS
text EOS each, back to back, as the zoo trains on them), cut from the left to exactly `length` tokens, so the
pair asked for sits among several times more distractor pairs and hundreds of tokens of context, and all
sequences batch together.
"""

from __future__ import annotations

import torch
from transformers import PreTrainedTokenizerBase

from models.zoo.data import task_examples
from models.zoo.evaluate import answer_lengths
from models.zoo.presets import get_preset


def long_recall(
    tokenizer: PreTrainedTokenizerBase, preset: str, count: int, length: int, split: str = "test", seed: int = 0
) -> tuple[torch.Tensor, list[int]]:
    """(ids (count, length) long, answer tokens at the end of each row): example i of `split` preceded by
    examples i+1, i+2, ... (cyclically), the first of them cut at its start."""
    examples = task_examples("recall", split, get_preset(preset), seed)
    answers = answer_lengths(tokenizer, examples)
    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id
    encoded = tokenizer([e.text for e in examples], add_special_tokens=False)["input_ids"]
    docs = [([bos] if bos is not None else []) + ids for ids in encoded]
    if any(len(d) > length for d in docs):
        raise ValueError(f"recall examples of preset {preset!r} are longer than {length} tokens: use a longer length")
    rows = []
    for i in range(min(count, len(examples))):
        seq, j = docs[i], 1
        while len(seq) < length:
            seq = docs[(i + j) % len(docs)] + ([eos] if eos is not None else []) + seq
            j += 1
        rows.append(seq[-length:])
    return torch.tensor(rows), answers[: len(rows)]
