"""Attention-score histories: capture a model's per-layer attention rows while decoding, pool them block-wise
over keys, and cut them into (history -> next row) pairs for training a next-step attention predictor.

Shapes: B batch, Hq query heads, Hkv key/value heads, T keys (context), Q queries. Attention is a probability
distribution over keys (rows sum to 1). Scores are kept per KV head (the mean over the query heads sharing it),
because selection keeps one set of KV tokens per KV head. Block pooling takes the maximum over `block`
consecutive keys (AttentionPredictor's max-pooling), zero-padding the last, partial block.

A teacher-forced forward pass over a sequence gives, in row t of its causal attention matrix, exactly the
attention of decode step t with a full cache, so one eager forward call captures a whole decode's history.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from transformers import PreTrainedModel


def kv_head_mean(attn: torch.Tensor, kv_heads: int) -> torch.Tensor:
    """(B, Hq, Q, T) attention -> (B, Hkv, Q, T): the mean over each KV head's query heads."""
    b, hq, q, t = attn.shape
    return attn.reshape(b, kv_heads, hq // kv_heads, q, t).mean(2)


def block_pool(scores: torch.Tensor, block: int) -> torch.Tensor:
    """(..., T) -> (..., ceil(T / block)): the maximum over each block of `block` keys."""
    t = scores.shape[-1]
    pad = -t % block
    padded = F.pad(scores, (0, pad)) if pad else scores
    return padded.reshape(*scores.shape[:-1], (t + pad) // block, block).amax(-1)


@torch.no_grad()
def capture_attention(model: PreTrainedModel, ids: torch.Tensor) -> list[torch.Tensor]:
    """Per layer, the (B, Hkv, T, T) causal attention of `ids` (B, T) with a full cache (float32); needs
    `attn_implementation="eager"` (other kernels return no scores)."""
    if model.config._attn_implementation != "eager":
        raise ValueError(f"attention capture needs eager attention, not {model.config._attn_implementation!r}")
    kv_heads = model.config.get_text_config(decoder=True).num_key_value_heads
    out = model(input_ids=ids, output_attentions=True, use_cache=False)
    return [kv_head_mean(a.float(), kv_heads) for a in out.attentions]


@dataclass(frozen=True)
class HistoryPairs:
    """Training pairs for a next-step attention predictor, zero-padded to one width W (blocks).

    history (N, H, W): block-pooled rows of the H steps before the target step; target (N, W): the target
    step's block-pooled row; scored (N, W) bool: the blocks a selector chooses among (not sink, not local, not
    padding); group (N,) long or None: the sequence each pair comes from, so a held-out split can keep whole
    sequences apart (adjacent steps of one sequence are nearly the same pair)."""

    history: torch.Tensor
    target: torch.Tensor
    scored: torch.Tensor
    group: torch.Tensor | None = None

    def __len__(self) -> int:
        return self.history.shape[0]

    def subset(self, index: torch.Tensor) -> HistoryPairs:
        group = None if self.group is None else self.group[index]
        return HistoryPairs(self.history[index], self.target[index], self.scored[index], group)

    @staticmethod
    def cat(parts: list[HistoryPairs]) -> HistoryPairs:
        width = max(p.history.shape[-1] for p in parts)

        def pad(x: torch.Tensor) -> torch.Tensor:
            return F.pad(x, (0, width - x.shape[-1]))

        return HistoryPairs(
            torch.cat([pad(p.history) for p in parts]),
            torch.cat([pad(p.target) for p in parts]),
            torch.cat([pad(p.scored) for p in parts]),
            None if any(p.group is None for p in parts) else torch.cat([p.group for p in parts]),
        )


def middle_blocks(context: int, block: int, sink: int, local: int) -> torch.Tensor:
    """(ceil(context / block),) bool: blocks wholly after the first `sink` tokens and before the last `local`
    tokens of a `context`-token cache — the ones a selector ranks (sinks and the local window are always kept)."""
    n = math.ceil(context / block)
    start = torch.arange(n) * block
    return (start >= sink) & (start + block <= context - local)


def history_pairs(
    attention: list[torch.Tensor], block: int, history: int, sink: int, local: int, steps: torch.Tensor
) -> HistoryPairs:
    """Pairs from captured `attention` (per layer (B, Hkv, T, T)): for each target step t in `steps` (t >= 1;
    context t + 1 keys) and every layer, sequence and KV head, the pooled rows of steps t - history .. t - 1
    (zero rows before step 0) and the pooled row of step t."""
    t_len = attention[0].shape[-1]
    width = math.ceil(t_len / block)
    pooled = torch.stack([block_pool(a, block) for a in attention])  # (layers, B, Hkv, T, W)
    pooled = pooled.flatten(0, 2)  # (layers * B * Hkv, T, W)
    padded = F.pad(pooled, (0, 0, history, 0))  # zero rows before step 0
    parts = []
    for t in steps.tolist():
        n = math.ceil((t + 1) / block)
        scored = middle_blocks(t + 1, block, sink, local)
        if not scored.any():
            continue
        hist = padded[:, t : t + history, :n]
        parts.append(
            HistoryPairs(
                F.pad(hist, (0, width - n)),
                F.pad(pooled[:, t, :n], (0, width - n)),
                F.pad(scored, (0, width - n)).expand(pooled.shape[0], width),
            )
        )
    return HistoryPairs.cat(parts)


class AttentionHistory:
    """Rolling per-layer history of block-pooled attention rows while decoding: (B, Hkv, H, W) per layer,
    oldest row first; the key axis grows by one zero column whenever the context crosses a block boundary."""

    def __init__(self, num_layers: int, length: int, block: int) -> None:
        self.length = length
        self.block = block
        self.rows: list[torch.Tensor | None] = [None] * num_layers

    def start(self, layer: int, attention: torch.Tensor) -> None:
        """Seed `layer` with the last `length` rows of the prefill attention (B, Hkv, P, P)."""
        rows = block_pool(attention[..., -self.length :, :], self.block)
        missing = self.length - rows.shape[-2]
        self.rows[layer] = F.pad(rows, (0, 0, missing, 0)) if missing > 0 else rows

    def append(self, layer: int, row: torch.Tensor) -> None:
        """Add one decode step's attention (B, Hkv, T) to `layer`, dropping the oldest row."""
        pooled = block_pool(row, self.block).unsqueeze(-2)
        rows = self.rows[layer]
        rows = F.pad(rows, (0, pooled.shape[-1] - rows.shape[-1]))
        self.rows[layer] = torch.cat([rows[..., 1:, :], pooled], dim=-2)

    def get(self, layer: int, context: int) -> torch.Tensor:
        """(B, Hkv, H, ceil(context / block)) history of `layer`, zero-padded to the current context."""
        rows = self.rows[layer]
        return F.pad(rows, (0, math.ceil(context / self.block) - rows.shape[-1]))


def collect_pairs(
    model: PreTrainedModel,
    sequences: list[torch.Tensor],
    block: int,
    history: int,
    sink: int,
    local: int,
    steps_per_sequence: int,
    seed: int = 0,
) -> HistoryPairs:
    """Training pairs from the model's own attention on `sequences` (each (T,), one capture call each):
    `steps_per_sequence` target steps per sequence drawn (seeded) from those with a scored block, every layer
    and KV head of each; each pair's `group` is the index of its sequence."""
    gen = torch.Generator().manual_seed(seed)
    parts = []
    for index, ids in enumerate(sequences):
        attention = capture_attention(model, ids[None])
        t = ids.shape[0]
        first_step = next((s for s in range(1, t) if middle_blocks(s + 1, block, sink, local).any()), t)
        if first_step >= t:
            continue
        candidates = torch.arange(first_step, t)
        steps = candidates[torch.randperm(len(candidates), generator=gen)[:steps_per_sequence]].sort().values
        pairs = history_pairs(attention, block, history, sink, local, steps)
        parts.append(dataclasses.replace(pairs, group=torch.full((len(pairs),), index)))
    if not parts:
        raise ValueError(f"no sequence is long enough for a block after {sink} sink and {local} local tokens")
    return HistoryPairs.cat(parts)
