"""Quality of KV selection policies at a compression ratio, through a real prefill and decode (selection.py).

Text: held-out windows (zoo code and English text, or the recall model's own held-out MQAR sequences). The
first `prefill` tokens are one dense forward call; every later token is decoded with the policy's budget, so
at 16x a decode step over a 512-token cache attends to 32 tokens per KV head. Scored per window: perplexity,
KL from the dense cache (nats/token), top-1 agreement.

Recall: prompts that end in a question and its answer (the recall model's MQAR prompts, models/zoo/mqar.py, or
the zoo's long recall sequences, long_recall.py). The question is in the prefill for every policy: only the
cue token the answer follows (and any further answer token) is decoded, so SnapKV's observation window and
H2O's accumulated attention have seen the question before they evict. A prompt counts as recalled when every
answer token is the top-1 prediction; the answer's negative log-likelihood is reported beside it.
"""

from __future__ import annotations

import math

import torch
from tqdm import tqdm
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from models.kv.attention_history import collect_pairs
from models.kv.evaluate import TEXT_TASKS, window_scores
from models.kv.long_recall import long_recall
from models.kv.predictor import AttentionCNN, PredictorConfig, TrainResult, train
from models.kv.selection import Budget, Dense, Selector, decode_logits, make_policy
from models.zoo import calibration_windows, token_windows


def _mean(rows: list[list[float]]) -> float:
    flat = [x for row in rows for x in row]
    return sum(flat) / len(flat)


def recall_scores(
    model: PreTrainedModel, ids: torch.Tensor, answers: list[int], selector: Selector, query_tokens: int = 1
) -> dict:
    """On recall prompts ids (N, T) ending in `answers` answer tokens each (at most max(answers)), `selector`
    choosing the KV tokens: everything but the last `query_tokens` prompt tokens and the answer is prefilled
    (1: the question is in the prefill and only the cue token the answer follows is decoded). Per prompt:
    recalled (1.0 when every answer token is the top-1 prediction) and answer_nll (nats/token); means of the
    attention recovery (0..1), tokens attended per KV head, layer and decode step, and cached tokens then."""
    split = max(1, ids.shape[1] - max(answers) - query_tokens)
    logp = torch.log_softmax(decode_logits(model, ids, selector, split), -1)
    hits, nll = [], []
    for row, n in enumerate(answers):
        target, pred = ids[row, -n:], logp[row, -n:]
        hits.append(float((pred.argmax(-1) == target).all()))
        nll.append(-pred.gather(-1, target[:, None]).mean().item())
    context = [split + s + 1 for s, step in enumerate(selector.kept) for _ in step]
    return {
        "recalled": hits,
        "answer_nll": nll,
        "recall_recovery": _mean(selector.recovery),
        "mean_kept": _mean(selector.kept),
        "mean_context": sum(context) / len(context),
    }


def evaluate_on(
    model: PreTrainedModel,
    text_ids: torch.Tensor,
    prefill: int,
    recall_ids: torch.Tensor,
    answers: list[int],
    policies: list[str],
    ratios: list[float],
    predictor: AttentionCNN | None = None,
    query_tokens: int = 1,
    progress: bool = True,
    calibration_step: int = 5,
) -> dict[str, dict]:
    """{"dense": figures, "<policy>@<ratio>x": figures} on text windows text_ids (N, T) (the first `prefill`
    tokens prefilled, the rest decoded) and recall prompts (`recall_scores`). Figures: ppl, kl (nats/token),
    top1_agree, text_recovery, recall (fraction), answer_nll, recall_recovery, and the two budgets in tokens
    per KV head and layer at the recall decode steps: attended (`mean_kept`) and kept in memory
    (`mean_resident`: the attended tokens for policies that evict for good, the whole cache for Quest and
    AttentionPredictor, which reselect from it every step). `per_item` holds the per-window kl and nll and the
    per-prompt recalled and answer_nll, for paired statistics."""
    if not 1 <= prefill < text_ids.shape[1]:
        raise ValueError(f"prefill {prefill} must be between 1 and {text_ids.shape[1] - 1} tokens")
    targets = text_ids[:, prefill:]
    runs = [("dense", Selector(Dense(), Budget(ratio=1)))]
    runs += [
        (f"{p}@{r:g}x", Selector(make_policy(p, predictor, calibration_step), Budget(ratio=r)))
        for r in ratios
        for p in policies
    ]
    results, reference = {}, None
    for name, selector in tqdm(runs, desc="kv eviction", unit="run", disable=not progress):
        logits = decode_logits(model, text_ids, selector, prefill)
        reference = logits if reference is None else reference
        text = window_scores(reference, logits, targets)
        text_recovery = _mean(selector.recovery)
        recall = recall_scores(model, recall_ids, answers, selector, query_tokens)
        evicts = selector.policy.evicts or selector.policy.name == Dense.name
        results[name] = {
            "policy": selector.policy.name,
            "ratio": selector.budget.ratio,
            "ppl": math.exp(text["nll"].mean().item()),
            "kl": text["kl"].mean().item(),
            "top1_agree": text["top1_agree"].mean().item(),
            "text_recovery": text_recovery,
            "recall": sum(recall["recalled"]) / len(recall["recalled"]),
            "answer_nll": sum(recall["answer_nll"]) / len(recall["answer_nll"]),
            "recall_recovery": recall["recall_recovery"],
            "mean_kept": recall["mean_kept"],
            "mean_resident": recall["mean_kept"] if evicts else recall["mean_context"],
            "mean_context": recall["mean_context"],
            "per_item": {
                "kl": text["kl"].tolist(),
                "nll": text["nll"].tolist(),
                "recalled": recall["recalled"],
                "answer_nll": recall["answer_nll"],
            },
        }
    return results


def evaluate_eviction(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    policies: list[str],
    ratios: list[float],
    predictor: AttentionCNN | None = None,
    preset: str = "default",
    seq_len: int = 256,
    prefill: int = 64,
    windows: int = 8,
    recall_examples: int = 100,
    query_tokens: int = 1,
    seed: int = 0,
    progress: bool = True,
    calibration_step: int = 5,
) -> dict[str, dict]:
    """`evaluate_on` a zoo model with the zoo's held-out data of `preset`: `windows` code and as many English
    windows of `seq_len` tokens, and `recall_examples` long recall sequences of seq_len tokens (at most the
    model's window). `calibration_step`: attnpred's (selection.AttentionPredictor)."""
    ids = torch.stack(
        [w for task in TEXT_TASKS for w in token_windows(tokenizer, task, "test", seq_len, windows, preset, seed)]
    )
    window = min(seq_len, int(getattr(model.config, "max_position_embeddings", seq_len)))
    recall_ids, answers = long_recall(tokenizer, preset, recall_examples, window, seed=seed)
    return evaluate_on(
        model, ids, prefill, recall_ids, answers, policies, ratios, predictor, query_tokens, progress, calibration_step
    )


def train_predictor(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    config: PredictorConfig | None = None,
    preset: str = "default",
    seq_len: int = 256,
    sequences: int = 16,
    steps_per_sequence: int = 32,
    epochs: int = 8,
    k: int = 2,
    seed: int = 0,
    progress: bool = True,
) -> tuple[AttentionCNN, TrainResult]:
    """An AttentionPredictor CNN trained on `model`'s own attention histories over TRAINING data only:
    `sequences` windows of English and code training text and as many long recall sequences of the train split
    (seq_len tokens, at most the model's window), `steps_per_sequence` target steps each, every layer and KV
    head (`train_predictor_on`)."""
    window = min(seq_len, int(getattr(model.config, "max_position_embeddings", seq_len)))
    texts = calibration_windows(tokenizer, window, sequences, preset, seed)
    recalls, _ = long_recall(tokenizer, preset, sequences, window, split="train", seed=seed)
    return train_predictor_on(model, [*texts, *recalls], config, steps_per_sequence, epochs, k, seed, progress)


def train_predictor_on(
    model: PreTrainedModel,
    sequences: list[torch.Tensor],
    config: PredictorConfig | None = None,
    steps_per_sequence: int = 32,
    epochs: int = 8,
    k: int = 2,
    seed: int = 0,
    progress: bool = True,
) -> tuple[AttentionCNN, TrainResult]:
    """An AttentionPredictor CNN trained on `model`'s attention histories over `sequences` (each (T,), training
    data only); the held-out tenth used for its recovery figures is whole sequences (predictor.train)."""
    config = config or PredictorConfig()
    pairs = collect_pairs(
        model, sequences, config.block, config.history, config.sink, config.local, steps_per_sequence, seed
    )
    return train(pairs, config, epochs=epochs, k=k, seed=seed, progress=progress)
