"""LoRA adapters on nn.Linear (written here, no peft) and recovery fine-tuning on selected samples.

`add_lora` wraps the target projections of a Llama model (PASER: q, k, v, o, gate, up, down; r = 8, alpha = 16,
dropout 0.05) as W x + (alpha / r) B A dropout(x), with A Kaiming-uniform and B zero, so training starts from the
pruned model itself; only A and B train. `merge_lora` folds B A into W and puts the plain nn.Linear back, so the
result is an ordinary LlamaForCausalLM that saves and loads with transformers. The loss covers every token of
BOS + instruction + response + EOS (alpaca-lora's default train_on_inputs, on which PASER's training builds).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from models.recover.errors import RecoverError
from models.recover.instructions import Sample, encode

TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


class LoRALinear(nn.Module):
    """A frozen nn.Linear plus a trainable low-rank update: y = base(x) + scale * B(A(dropout(x)))."""

    def __init__(self, base: nn.Linear, r: int = 8, alpha: float = 16.0, dropout: float = 0.05) -> None:
        super().__init__()
        if r < 1:
            raise RecoverError(f"LoRA rank must be at least 1, got {r}")
        self.base = base
        self.scale = alpha / r
        self.dropout = nn.Dropout(dropout)
        like = {"dtype": base.weight.dtype, "device": base.weight.device}
        self.lora_a = nn.Parameter(torch.empty(r, base.in_features, **like))
        self.lora_b = nn.Parameter(torch.zeros(base.out_features, r, **like))
        nn.init.kaiming_uniform_(self.lora_a, a=math.sqrt(5))  # as nn.Linear and peft initialize A
        base.weight.requires_grad_(False)
        if base.bias is not None:
            base.bias.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + self.scale * (self.dropout(x) @ self.lora_a.T @ self.lora_b.T)

    def merged(self) -> nn.Linear:
        """The base nn.Linear with scale * B A added to its weight (in place)."""
        with torch.no_grad():
            self.base.weight += (self.scale * self.lora_b @ self.lora_a).to(self.base.weight.dtype)
        return self.base


def add_lora(
    model: nn.Module, r: int = 8, alpha: float = 16.0, dropout: float = 0.05, targets=TARGETS
) -> list[nn.Parameter]:
    """Freeze `model` and wrap every nn.Linear named in `targets` with a LoRALinear; returns the trainable
    parameters. RecoverError if no target is found."""
    for p in model.parameters():
        p.requires_grad_(False)
    found = [
        (parent, name, child)
        for parent in model.modules()
        for name, child in parent.named_children()
        if name in targets and isinstance(child, nn.Linear)
    ]
    if not found:
        raise RecoverError(f"no linear layer named {', '.join(targets)} to adapt: is this a Llama-style model?")
    params = []
    for parent, name, child in found:
        wrapped = LoRALinear(child, r, alpha, dropout)
        setattr(parent, name, wrapped)
        params += [wrapped.lora_a, wrapped.lora_b]
    return params


def merge_lora(model: nn.Module) -> nn.Module:
    """Fold every LoRALinear of `model` back into a plain nn.Linear (in place); returns `model`."""
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, LoRALinear):
                setattr(parent, name, child.merged())
    return model


def _batches(seqs: list[list[int]], batch: int, rng: np.random.Generator, pad: int):
    order = rng.permutation(len(seqs))
    for b in range(0, len(order), batch):
        chunk = [seqs[i] for i in order[b : b + batch]]
        width = max(len(s) for s in chunk)
        ids = torch.full((len(chunk), width), pad, dtype=torch.long)
        labels = torch.full((len(chunk), width), -100, dtype=torch.long)
        for i, s in enumerate(chunk):
            ids[i, : len(s)] = torch.tensor(s)
            labels[i, : len(s)] = torch.tensor(s)
        yield ids, labels, (labels != -100).long()


def recovery_finetune(
    model: nn.Module,
    tokenizer,
    samples: Sequence[Sample],
    epochs: int = 2,
    batch: int = 8,
    lr: float = 1e-3,
    r: int = 8,
    alpha: float = 16.0,
    dropout: float = 0.05,
    max_tokens: int = 256,
    warmup: float = 0.1,
    seed: int = 0,
    progress: bool = True,
) -> dict:
    """LoRA-train `model` on `samples` for `epochs` epochs of shuffled batches (AdamW, linear warmup over the
    `warmup` fraction of steps, then cosine decay to 0), then merge the adapters (in place, eval mode).

    Returns {"steps", "tokens" (trained, incl. repeats), "loss_first", "loss_last" (mean loss of the first / last
    10% of steps, nats/token), "seconds"}."""
    import time

    if not samples:
        raise RecoverError("no samples to train on: the selection is empty")
    if epochs < 1 or batch < 1:
        raise RecoverError("--epochs and --batch must be at least 1")
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    seqs = [encode(tokenizer, s, max_tokens)[0] for s in samples]
    seqs = [s for s in seqs if len(s) > 1]
    params = add_lora(model, r, alpha, dropout)
    steps = epochs * math.ceil(len(seqs) / batch)
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    warm = max(1, int(warmup * steps))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / warm if s < warm else 0.5 * (1 + math.cos(math.pi * (s - warm) / max(1, steps - warm)))
    )
    losses, seen = [], 0
    t0 = time.perf_counter()
    model.train()
    with tqdm(total=steps, desc="recovery LoRA", disable=not progress) as bar:
        for _ in range(epochs):
            for ids, labels, mask in _batches(seqs, batch, rng, pad):
                loss = model(input_ids=ids, attention_mask=mask, labels=labels, use_cache=False).loss
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                losses.append(loss.item())
                seen += int(mask.sum())
                bar.update(1)
    merge_lora(model)
    model.eval()
    tail = max(1, len(losses) // 10)
    return {
        "steps": len(losses),
        "tokens": seen,
        "loss_first": float(np.mean(losses[:tail])),
        "loss_last": float(np.mean(losses[-tail:])),
        "seconds": time.perf_counter() - t0,
    }
