"""Held-out evaluation: perplexity per task, next-token top-1 accuracy, arithmetic exact match, recall accuracy.

Every text is scored as BOS + text, cut to the model's window (`max_position_embeddings`, at most 1024
tokens). An answer counts as exactly right when every answer token is the model's top-1 prediction given
the prompt and the answer tokens before it: the same as greedy decoding producing the answer.
"""

from __future__ import annotations

import math

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from models.zoo import tasks
from models.zoo.data import TASKS, task_examples, texts_for
from models.zoo.presets import Preset

BATCH = 8


def _window(model: PreTrainedModel) -> int:
    return min(int(getattr(model.config, "max_position_embeddings", 1024) or 1024), 1024)


def _encode(tokenizer: PreTrainedTokenizerBase, text: str) -> list[int]:
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    return ([tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []) + ids


@torch.no_grad()
def score_texts(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    texts: list[str],
    answer_lens: list[int] | None = None,
    max_tokens: int | None = None,
    items: bool = False,
) -> dict:
    """Token-weighted NLL (nats/token), perplexity and top-1 accuracy over `texts`; with `answer_lens` (answer
    tokens at the end of each text) also answer-token top-1 accuracy and exact match (fractions). With `items`,
    also per scored text: "item_nll" (mean NLL, nats/token) and, with `answer_lens`, "item_exact" (0 or 1)."""
    window = _window(model)
    seqs = [_encode(tokenizer, t)[:window] for t in texts]
    if max_tokens is not None:
        kept, total = [], 0
        for s in seqs:
            if total >= max_tokens:
                break
            kept.append(s[: max(2, max_tokens - total + 1)])
            total += len(kept[-1]) - 1
        seqs = kept
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    device = next(model.parameters()).device
    nll = correct = count = 0.0
    ans_correct = ans_count = 0.0
    item_nll, item_exact = [], []
    model.eval()
    for b in range(0, len(seqs), BATCH):
        chunk = seqs[b : b + BATCH]
        width = max(len(s) for s in chunk)
        ids = torch.full((len(chunk), width), pad, dtype=torch.long)
        mask = torch.zeros((len(chunk), width), dtype=torch.long)
        for i, s in enumerate(chunk):
            ids[i, : len(s)] = torch.tensor(s)
            mask[i, : len(s)] = 1
        logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits.float().cpu()
        logp = torch.log_softmax(logits[:, :-1], dim=-1)
        target = ids[:, 1:]
        valid = mask[:, 1:].bool()
        tok_nll = -logp.gather(-1, target.unsqueeze(-1)).squeeze(-1)
        hit = logp.argmax(-1) == target
        nll += tok_nll[valid].sum().item()
        correct += hit[valid].sum().item()
        count += valid.sum().item()
        scored = valid.sum(-1)  # a text of BOS alone predicts nothing and gets no item
        item_nll += ((tok_nll * valid).sum(-1) / scored.clamp(min=1))[scored > 0].tolist()
        if answer_lens is not None:
            for i, s in enumerate(chunk):
                n = answer_lens[b + i]
                h = hit[i, len(s) - 1 - n : len(s) - 1]
                ans_correct += h.sum().item()
                ans_count += n
                item_exact.append(float(bool(h.all())))
    if not count:  # a source this machine lacks has no held-out text
        nan = float("nan")
        return {"nll": nan, "ppl": nan, "top1": nan, "tokens": 0, "answer_top1": nan, "exact_match": nan}
    out = {"nll": nll / count, "ppl": math.exp(nll / count), "top1": correct / count, "tokens": int(count)}
    if answer_lens is not None:
        out["answer_top1"] = ans_correct / ans_count
        out["exact_match"] = sum(item_exact) / len(seqs)
    if items:
        out["item_nll"] = item_nll
        if answer_lens is not None:
            out["item_exact"] = item_exact
    return out


def perplexity(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, texts: list[str], max_tokens: int | None = None
) -> float:
    """Perplexity of `model` on `texts` (token-weighted over all texts, each scored as BOS + text), counting at
    most `max_tokens` predicted tokens."""
    return score_texts(model, tokenizer, texts, max_tokens=max_tokens)["ppl"]


def answer_lengths(tokenizer: PreTrainedTokenizerBase, examples: list[tasks.Example]) -> list[int]:
    """Tokens of each example's answer as they appear at the end of its tokenized text."""
    out = []
    for e in examples:
        full = tokenizer(e.text, add_special_tokens=False)["input_ids"]
        prompt = tokenizer(e.prompt, add_special_tokens=False)["input_ids"]
        prefix = full[: len(prompt)] == prompt
        out.append(
            len(full) - len(prompt) if prefix else len(tokenizer(e.answer, add_special_tokens=False)["input_ids"])
        )
    return out


def evaluate(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, preset: Preset, seed: int = 0, items: bool = False
) -> dict:
    """Per task ("code", "math", "english", "recall") on the held-out split: ppl and top1 for all; for math
    and recall also answer_top1 and exact_match (for recall, the recall accuracy); with `items` also the
    per-text values of `score_texts` (for paired statistics)."""
    result = {}
    for task in TASKS:
        if task in ("math", "recall"):
            examples = task_examples(task, "test", preset, seed)
            result[task] = score_texts(
                model, tokenizer, [e.text for e in examples], answer_lengths(tokenizer, examples), items=items
            )
        else:
            texts = texts_for(task, "test", preset, seed)
            result[task] = score_texts(model, tokenizer, texts, max_tokens=preset.eval_tokens, items=items)
    return result


def table(evaluations: dict[str, dict]) -> str:
    """A text table: one row per model, per task perplexity and accuracy (percent)."""
    head = f"{'model':<10}" + "".join(f"{t + ' ppl':>12}{'top1%':>7}" for t in TASKS)
    head += f"{'math EM%':>10}{'ans-top1%':>10}{'recall%':>9}"
    rows = [head]
    for name, ev in evaluations.items():
        row = f"{name:<10}" + "".join(f"{ev[t]['ppl']:>12.2f}{100 * ev[t]['top1']:>7.1f}" for t in TASKS)
        row += f"{100 * ev['math']['exact_match']:>10.1f}{100 * ev['math']['answer_top1']:>10.1f}"
        row += f"{100 * ev['recall']['exact_match']:>9.1f}"
        rows.append(row)
    return "\n".join(rows)
