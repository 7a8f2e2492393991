"""Pretraining and fine-tuning loops (AdamW, warmup then cosine decay), budgeted in tokens."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
from tqdm.auto import tqdm
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedModel, PreTrainedTokenizerBase

from models.zoo.data import Stream, sample_batch
from models.zoo.presets import Preset


@contextmanager
def single_thread() -> Iterator[None]:
    """Run torch on one thread inside the block. Small models gain little from a second thread, and when
    another process holds a core, two threads wait on each other and run 5-7x slower (measured); one thread
    also makes results independent of the machine's core count."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def optimizer_step(model: torch.nn.Module, opt: torch.optim.Optimizer, sched, loss: torch.Tensor) -> float:
    """One training step on `loss` (gradients clipped to norm 1, then the schedule advances); the loss value."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    sched.step()
    return loss.item()


def new_llama(sizes: object, vocab_size: int, max_length: int, tokenizer, seed: int) -> LlamaForCausalLM:
    """A freshly initialized Llama (weights depend only on `seed`) whose widths come from `sizes`: any object
    with hidden_size, intermediate_size, num_layers, num_heads and num_kv_heads (a Preset, a RecallRecipe)."""
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=sizes.hidden_size,
        intermediate_size=sizes.intermediate_size,
        num_hidden_layers=sizes.num_layers,
        num_attention_heads=sizes.num_heads,
        num_key_value_heads=sizes.num_kv_heads,
        max_position_embeddings=max_length,
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        attn_implementation="eager",  # later tools read attention scores; sdpa returns none
    )
    torch.manual_seed(seed)
    return LlamaForCausalLM(config)


def new_model(preset: Preset, tokenizer: PreTrainedTokenizerBase, seed: int) -> LlamaForCausalLM:
    """A freshly initialized Llama of the preset's size (weights depend only on `seed`)."""
    return new_llama(preset, len(tokenizer), preset.seq_len, tokenizer, seed)


def train(
    model: PreTrainedModel,
    streams: dict[str, Stream],
    weights: dict[str, float],
    tokens: int,
    lr: float,
    preset: Preset,
    seed: int,
    desc: str,
    progress: bool = True,
) -> dict:
    """Train `model` in place on `tokens` tokens drawn from `streams` by `weights`; returns tokens, wall and
    CPU seconds, tokens/s (wall) and the final loss (nats/token, mean of the last 10 steps)."""
    steps = max(1, tokens // (preset.batch_size * preset.seq_len))
    warmup = max(1, steps // 20)
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}], lr=lr, betas=(0.9, 0.95)
    )

    def schedule(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        t = (step - warmup) / max(1, steps - warmup)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * t))  # floor at 10% of the peak

    sched = torch.optim.lr_scheduler.LambdaLR(opt, schedule)
    rng = np.random.default_rng([seed, 77])
    torch.manual_seed(seed)
    model.train()
    losses = []
    start, cpu_start = time.perf_counter(), time.process_time()
    for _ in tqdm(range(steps), desc=desc, disable=not progress, unit="step"):
        batch = sample_batch(streams, weights, preset.batch_size, preset.seq_len, rng)
        losses.append(optimizer_step(model, opt, sched, model(input_ids=batch, labels=batch).loss))
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    model.eval()
    seen = steps * preset.batch_size * preset.seq_len
    return {
        "tokens": seen,
        "steps": steps,
        "seconds": round(seconds, 2),
        "cpu_seconds": round(cpu_seconds, 2),
        "tokens_per_s": round(seen / seconds, 1),
        "final_loss": round(float(np.mean(losses[-10:])), 4),
    }
