"""Quality of KV selection policies at a compression ratio, through a real prefill and decode (selection.py).

Text: held-out zoo windows of `seq_len` tokens (code and English, as models/kv/evaluate.py). The first `prefill`
tokens are one dense forward call; every later token is decoded with the policy's budget, so at 16x a decode
step over a 256-token cache attends to 16 tokens per KV head. Scored as evaluate.py scores KV quantization (its
`compare`): perplexity, KL from the dense cache (nats/token), top-1 agreement.

Recall at long context: the zoo's held-out key-value recall examples, each preceded by distractor examples up to
the model's window (long_recall.py). As in evaluate.py, everything but the last `query_tokens` prompt tokens
(and the answer) is prefilled and the query and answer are decoded; an example counts as recalled when every
answer token is the top-1 prediction. Because a small zoo model recalls rarely, the mean negative log-likelihood
of the answer tokens is reported beside it: it moves whenever a policy drops the pair that was asked for.
"""

from __future__ import annotations

import torch
from tqdm import tqdm
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from models.kv.attention_history import collect_pairs
from models.kv.evaluate import TEXT_TASKS, compare
from models.kv.long_recall import long_recall
from models.kv.predictor import AttentionCNN, PredictorConfig, TrainResult, train
from models.kv.selection import Budget, Dense, Selector, decode_logits, make_policy
from models.zoo import calibration_windows, token_windows


def _mean(rows: list[list[float]]) -> float:
    flat = [x for row in rows for x in row]
    return sum(flat) / len(flat)


def recall_scores(
    model: PreTrainedModel, ids: torch.Tensor, answers: list[int], selector: Selector, query_tokens: int = 4
) -> dict[str, float]:
    """On `long_recall` sequences ids (N, T) with `answers` answer tokens each, `selector` choosing the KV tokens:
    recall (fraction answered exactly), answer_nll (mean nats per answer token), recall_recovery (attention
    recovery rate, 0..1), mean_kept (KV tokens attended per KV head, layer and decode step) and mean_context
    (cached tokens at those steps)."""
    split = max(1, ids.shape[1] - max(answers) - query_tokens)
    logp = torch.log_softmax(decode_logits(model, ids, selector, split), -1)
    correct, nll = 0, []
    for row, n in enumerate(answers):
        target, pred = ids[row, -n:], logp[row, -n:]
        correct += bool((pred.argmax(-1) == target).all())
        nll.append(-pred.gather(-1, target[:, None]).mean().item())
    context = [split + s + 1 for s, step in enumerate(selector.kept) for _ in step]
    return {
        "recall": correct / len(answers),
        "answer_nll": sum(nll) / len(nll),
        "recall_recovery": _mean(selector.recovery),
        "mean_kept": _mean(selector.kept),
        "mean_context": sum(context) / len(context),
    }


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
    query_tokens: int = 4,
    seed: int = 0,
    progress: bool = True,
    calibration_step: int = 5,
) -> dict[str, dict]:
    """{"dense": figures, "<policy>@<ratio>x": figures}: ppl, kl (nats/token), top1_agree and text_recovery
    (attention recovery rate, 0..1) on text windows, and
    `recall_scores` on long recall sequences of seq_len tokens (at most the model's window). `calibration_step`:
    attnpred's (selection.AttentionPredictor)."""
    if not 1 <= prefill < seq_len:
        raise ValueError(f"prefill {prefill} must be between 1 and seq_len - 1 = {seq_len - 1} tokens")
    ids = torch.stack(
        [w for task in TEXT_TASKS for w in token_windows(tokenizer, task, "test", seq_len, windows, preset, seed)]
    )
    window = min(seq_len, int(getattr(model.config, "max_position_embeddings", seq_len)))
    recall_ids, answers = long_recall(tokenizer, preset, recall_examples, window, seed=seed)
    targets = ids[:, prefill:]
    runs = [("dense", Selector(Dense(), Budget(ratio=1)))]
    runs += [
        (f"{p}@{r:g}x", Selector(make_policy(p, predictor, calibration_step), Budget(ratio=r)))
        for r in ratios
        for p in policies
    ]
    results, reference = {}, None
    for name, selector in tqdm(runs, desc="kv eviction", unit="run", disable=not progress):
        logits = decode_logits(model, ids, selector, prefill)
        reference = logits if reference is None else reference
        results[name] = {
            "policy": selector.policy.name,
            "ratio": selector.budget.ratio,
            **compare(reference, logits, targets),
            "text_recovery": _mean(selector.recovery),
            **recall_scores(model, recall_ids, answers, selector, query_tokens),
        }
    return results


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
    head. Held-out recovery at `k` blocks is measured on a tenth of the pairs (see `predictor.train`)."""
    config = config or PredictorConfig()
    window = min(seq_len, int(getattr(model.config, "max_position_embeddings", seq_len)))
    texts = calibration_windows(tokenizer, window, sequences, preset, seed)
    recalls, _ = long_recall(tokenizer, preset, sequences, window, split="train", seed=seed)
    pairs = collect_pairs(
        model, [*texts, *recalls], config.block, config.history, config.sink, config.local, steps_per_sequence, seed
    )
    return train(pairs, config, epochs=epochs, k=k, seed=seed, progress=progress)
