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


def window_scores(reference: torch.Tensor, logits: torch.Tensor, targets: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per window (row): nll (nats/token) of `targets`, KL(reference || logits) (nats/token) and top-1
    agreement with the reference (fraction); logits and reference (N, T, vocab), targets (N, T)."""
    logp, ref = torch.log_softmax(logits, -1), torch.log_softmax(reference, -1)
    nll = -logp.gather(-1, targets.unsqueeze(-1))[..., 0].mean(-1)
    kl = (ref.exp() * (ref - logp)).sum(-1).clamp(min=0).mean(-1)
    agree = (logp.argmax(-1) == ref.argmax(-1)).float().mean(-1)
    return {"nll": nll, "kl": kl, "top1_agree": agree}


def compare(reference: torch.Tensor, logits: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
    """Perplexity of `logits` on `targets`, KL(reference || logits) in nats/token and top-1 agreement (fraction),
    means over the windows of `window_scores`; logits (N, T, vocab), targets (N, T)."""
    w = window_scores(reference, logits, targets)
    return {
        "ppl": math.exp(w["nll"].mean().item()),
        "kl": w["kl"].mean().item(),
        "top1_agree": w["top1_agree"].mean().item(),
    }


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


def stored_bits_per_element(model: PreTrainedModel, ids: torch.Tensor, kv: KVConfig) -> float:
    """Bits per stored key/value element after prefilling `ids` (1, T) into a `KVQuantizedCache` of `kv`:
    codes, per-group scales and zero points, and the exact residual window at 16 bits."""
    config = model.config.get_text_config(decoder=True)
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    cache = KVQuantizedCache(kv, model.config)
    model(input_ids=ids, cache=cache, use_cache=True)
    elements = 2 * config.num_hidden_layers * config.num_key_value_heads * head_dim * ids.shape[-1]
    return cache.stored_bits() / elements


@torch.no_grad()
def evaluate_configs(
    model: PreTrainedModel,
    configs: list[KVConfig],
    text_ids: torch.Tensor,
    prefill: int,
    recall_ids: torch.Tensor | None,
    answer_tokens: int,
    progress: bool = True,
) -> dict[str, dict]:
    """Per config name (the first config is the reference): avg_bits, stored_bits (per element, after one text
    window), ppl, kl (nats/token), top1_agree, recall, and per_item (per-window kl and nll, per-prompt
    recalled). Text: windows text_ids (N, T), `prefill` tokens prefilled, the rest decoded through the cache.
    Recall: prompts recall_ids (M, T') ending in `answer_tokens` answer tokens, all but those prefilled (the
    question included), the answer decoded through the cache; recalled when every answer token is top-1.
    With recall_ids None (a model not trained on these prompts) recall is NaN and no prompt is scored."""
    results, reference = {}, None
    for kv in tqdm(configs, desc="kv eval", unit="config", disable=not progress):
        logits = decode_logits(model, text_ids, kv, prefill)
        reference = logits if reference is None else reference
        text = window_scores(reference, logits, text_ids[:, prefill:])
        recalled = torch.zeros(0)
        if recall_ids is not None:
            answer = decode_logits(model, recall_ids, kv, recall_ids.shape[1] - answer_tokens)
            recalled = (answer.argmax(-1) == recall_ids[:, -answer_tokens:]).all(-1).float()
        results[kv.name] = {
            "avg_bits": kv.avg_bits,
            "stored_bits": stored_bits_per_element(model, text_ids[:1], kv),
            "residual_length": kv.residual_length,
            "ppl": math.exp(text["nll"].mean().item()),
            "kl": text["kl"].mean().item(),
            "top1_agree": text["top1_agree"].mean().item(),
            "recall": recalled.mean().item() if len(recalled) else float("nan"),
            "per_item": {"kl": text["kl"].tolist(), "nll": text["nll"].tolist(), "recalled": recalled.tolist()},
        }
    return results


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
