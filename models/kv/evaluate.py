"""Quality of a KV precision config against the unquantized (KV16) cache, through a real prefill and decode.

Text: held-out zoo windows of `seq_len` tokens (code and English). Each window's first `prefill` tokens are one
forward call; the rest are fed one token at a time through the cache (teacher forcing), so every decode step
attends to the stored, quantized states. Scored over the decode steps' next-token predictions: perplexity,
KL(KV16 || config) in nats/token, and top-1 agreement with KV16 (fraction).

Recall: the zoo's key-value recall examples. The prompt but its last `query_tokens` tokens is prefilled; the
query and the answer are decoded token by token, so the question reads the key-value pairs from the cache. An
example counts as recalled when every answer token is the top-1 prediction (the same as greedy decoding).
"""

from __future__ import annotations

import math

import torch
from tqdm import tqdm
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from models.kv.config import KVConfig
from models.kv.quant_cache import KVQuantizedCache
from models.zoo import token_windows
from models.zoo.data import task_examples
from models.zoo.evaluate import answer_lengths
from models.zoo.presets import get_preset

TEXT_TASKS = ("code", "english")


@torch.no_grad()
def decode_logits(model: PreTrainedModel, ids: torch.Tensor, kv: KVConfig, prefill: int) -> torch.Tensor:
    """Logits (batch, tokens - prefill, vocab), float32, predicting ids[:, prefill:]: one prefill call over
    ids[:, :prefill], then one decode call per token through a `KVQuantizedCache` of `kv`."""
    cache = KVQuantizedCache(kv, model.config)
    out = model(input_ids=ids[:, :prefill], cache=cache, use_cache=True)
    logits = [out.logits[:, -1].float()]
    for t in range(prefill, ids.shape[1] - 1):
        out = model(input_ids=ids[:, t : t + 1], cache=out.cache, use_cache=True)
        logits.append(out.logits[:, -1].float())
    return torch.stack(logits, dim=1)


def compare(reference: torch.Tensor, logits: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
    """Perplexity of `logits` on `targets`, KL(reference || logits) in nats/token and top-1 agreement (fraction);
    logits (..., vocab), targets (...)."""
    logp = torch.log_softmax(logits, -1)
    ref = torch.log_softmax(reference, -1)
    nll = -logp.gather(-1, targets.unsqueeze(-1)).mean().item()
    kl = (ref.exp() * (ref - logp)).sum(-1).mean().item()
    agree = (logp.argmax(-1) == ref.argmax(-1)).float().mean().item()
    return {"ppl": math.exp(nll), "kl": max(kl, 0.0), "top1_agree": agree}


@torch.no_grad()
def recall_accuracy(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, examples: list, kv: KVConfig, query_tokens: int = 4
) -> float:
    """Fraction of recall `examples` (zoo `tasks.Example`) answered exactly, decoding the last `query_tokens`
    prompt tokens and the answer through a `KVQuantizedCache` of `kv`."""
    correct = 0
    for example, n in zip(examples, answer_lengths(tokenizer, examples), strict=True):
        ids = tokenizer(example.text, add_special_tokens=False)["input_ids"]
        ids = torch.tensor([([tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []) + ids])
        split = max(1, ids.shape[1] - n - query_tokens)
        logits = decode_logits(model, ids, kv, split)
        predicted = logits[0, -n:].argmax(-1)
        correct += bool((predicted == ids[0, -n:]).all())
    return correct / len(examples)


def evaluate(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    configs: list[KVConfig],
    preset: str = "default",
    seq_len: int = 128,
    prefill: int = 32,
    windows: int = 8,
    recall_examples: int = 100,
    query_tokens: int = 4,
    seed: int = 0,
    progress: bool = True,
) -> dict[str, dict[str, float]]:
    """Per config name: avg_bits, ppl, kl (nats/token), top1_agree and recall (fractions) on the zoo's held-out
    text and recall task of `preset` (`windows` windows per text task, the first `recall_examples` examples),
    and stored_kbit_per_window (KV storage after one window, 1000 bits). KV16 is the reference and is always
    evaluated first; `prefill` must be in [1, seq_len - 1]."""
    if not 1 <= prefill < seq_len:
        raise ValueError(f"prefill {prefill} must be between 1 and seq_len - 1 = {seq_len - 1} tokens")
    num_layers = model.config.get_text_config(decoder=True).num_hidden_layers
    for kv in configs:
        kv.check(model.config.get_text_config(decoder=True))
    reference_kv = KVConfig.preset("KV16", num_layers)
    ordered = [reference_kv] + [kv for kv in configs if kv.name != reference_kv.name]
    ids = torch.stack(
        [w for task in TEXT_TASKS for w in token_windows(tokenizer, task, "test", seq_len, windows, preset, seed)]
    )
    examples = task_examples("recall", "test", get_preset(preset), seed)[:recall_examples]
    targets = ids[:, prefill:]
    results, reference = {}, None
    for kv in tqdm(ordered, desc="kv eval", unit="config", disable=not progress):
        logits = decode_logits(model, ids, kv, prefill)
        reference = logits if reference is None else reference
        cache = KVQuantizedCache(kv, model.config)
        model(input_ids=ids[:1], cache=cache, use_cache=True)
        results[kv.name] = {
            "avg_bits": kv.avg_bits,
            **compare(reference, logits, targets),
            "recall": recall_accuracy(model, tokenizer, examples, kv, query_tokens),
            "stored_kbit_per_window": cache.stored_bits() / 1000,
        }
    return results
