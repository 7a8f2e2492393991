"""Critical-KV selection at decode time: one framework, pluggable policies, an exact token budget per step.

At every decode step and layer, each KV head attends to exactly `budget` of its cached tokens (or all of them
when fewer are cached); the rest are masked out of the softmax. The budget is per KV head and per layer, in
tokens: `Budget(ratio=R)` keeps ceil(context / R) tokens (R x compression of the attended KV), `Budget(tokens=N)`
keeps N. Prefill is dense, as in every method compared here. Policies:

  * streaming: StreamingLLM, `sinks` first tokens plus the most recent ones (evicts for good);
  * h2o: H2O heavy hitters, accumulated attention (prefill column sums, then the attention each step actually
    used) for half the budget, the most recent tokens for the other half (evicts for good);
  * snapkv: SnapKV, the votes of the last `window` prefill queries (average-pooled over `kernel` neighbours)
    rank the prompt once; the most recent min(window, budget / 2) tokens are kept beside them (evicts for good);
  * quest: Quest, pages of `block` tokens ranked by the upper bound of q·k from each page's per-channel key
    minimum and maximum (max over the KV head's query heads); selects afresh each step from the full cache;
  * attnpred: AttentionPredictor, a CNN over each layer's block-pooled attention history (predictor.py) ranks the
    key blocks; `sink` first and `local` last tokens are always kept; selects afresh each step. The history gets
    the attention the step actually used (over the kept tokens), and every `calibration_step` steps the full
    row instead (the paper's distribution-error calibration);
  * dense: every token (the reference).

Block policies rank whole blocks; the last block that fits the budget may be cut (its most recent tokens are
kept), so the budget is always exact. Ties go to the more recent token. Every policy keeps the current token.

Use: `decode_logits(model, ids, Selector(policy, Budget(ratio=16)), prefill)` (teacher forcing) or
`kept_tokens(model, "attnpred", 16, prompt_ids, steps, predictor=net)` (greedy decode, per step and layer the
number of KV tokens attended).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from transformers import AttentionInterface, PreTrainedModel
from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, AttentionMaskInterface
from transformers.models.llama.modeling_llama import repeat_kv

from models.kv.attention_history import AttentionHistory, kv_head_mean
from models.kv.predictor import AttentionCNN

ATTENTION_NAME = "mixkit_selective"


@dataclass(frozen=True)
class Budget:
    """KV tokens attended per KV head and layer at each decode step: ceil(context / ratio), or `tokens`."""

    ratio: float | None = None
    tokens: int | None = None

    def __post_init__(self) -> None:
        if (self.ratio is None) == (self.tokens is None):
            raise ValueError("give a budget as exactly one of a compression ratio or a token count")
        if self.ratio is not None and not self.ratio >= 1:
            raise ValueError(f"compression ratio {self.ratio} must be at least 1")
        if self.tokens is not None and self.tokens < 1:
            raise ValueError(f"token budget {self.tokens} must be at least 1")

    def of(self, context: int) -> int:
        """Tokens kept out of `context` cached ones."""
        want = self.tokens if self.tokens is not None else math.ceil(context / self.ratio)
        return min(context, want)


def keep_top(scores: torch.Tensor, forced: torch.Tensor, budget: int, allowed: torch.Tensor | None = None):
    """(..., T) bool mask of exactly min(budget, T) tokens: forced tokens first, then the highest scores; ties
    (and forced tokens beyond the budget) go to the more recent token. `allowed`: tokens that may be kept."""
    t = scores.shape[-1]
    order = torch.argsort(scores.float(), dim=-1, stable=True)  # ascending: ties keep position order
    rank = torch.empty_like(order)
    rank.scatter_(-1, order, torch.arange(t).expand_as(order))
    key = rank + forced.long() * t
    if allowed is not None:
        key = key.masked_fill(~allowed, -1)
    top = key.topk(min(budget, t), dim=-1).indices
    return torch.zeros_like(forced).scatter_(-1, top, True)


def recent(t: int, count: int) -> torch.Tensor:
    """(t,) bool: the last `count` of t positions."""
    return torch.arange(t) >= t - count


def first(t: int, count: int) -> torch.Tensor:
    """(t,) bool: the first `count` of t positions."""
    return torch.arange(t) < count


def block_to_tokens(block_scores: torch.Tensor, block: int, t: int) -> torch.Tensor:
    """(..., ceil(t / block)) block scores -> (..., t) token scores (each token gets its block's)."""
    return block_scores.repeat_interleave(block, dim=-1)[..., :t]


class SelectionPolicy(ABC):
    """Chooses which cached tokens each KV head attends to. Subclasses set `name` and override `select`;
    `prefill` and `observe` let them watch attention. Evicting policies set `evicts`: a token they drop never
    comes back (the framework passes `alive`, the tokens not yet evicted)."""

    name = "policy"
    evicts = False

    def reset(self, num_layers: int) -> None:  # noqa: B027 - an optional hook, a no-op by default
        """Forget the state of a previous sequence."""

    def prefill(self, layer: int, attention: torch.Tensor) -> None:  # noqa: B027 - an optional hook, a no-op by default
        """The dense prefill attention (B, Hkv, P, P) of `layer`."""

    @abstractmethod
    def select(
        self, layer: int, query: torch.Tensor, keys: torch.Tensor, budget: int, alive: torch.Tensor
    ) -> torch.Tensor:
        """(B, Hkv, T) bool mask of exactly min(budget, T) tokens; query (B, Hq, 1, d), keys (B, Hkv, T, d)."""

    def observe(self, layer: int, used: torch.Tensor, full: torch.Tensor) -> None:  # noqa: B027 - an optional hook, a no-op by default
        """This step's attention (B, Hkv, T): `used` over the kept tokens only, `full` as if all were kept."""


class Dense(SelectionPolicy):
    """Every cached token (the uncompressed reference); ignores the budget."""

    name = "dense"

    def select(self, layer, query, keys, budget, alive):
        return torch.ones(keys.shape[:-1], dtype=torch.bool)


class StreamingLLM(SelectionPolicy):
    """Attention sinks plus a sliding window of the most recent tokens."""

    name = "streaming"
    evicts = True

    def __init__(self, sinks: int = 4) -> None:
        self.sinks = sinks

    def select(self, layer, query, keys, budget, alive):
        t = keys.shape[-2]
        forced = first(t, min(self.sinks, budget - 1)) | recent(t, 1)
        return keep_top(torch.arange(t).expand(alive.shape), forced.expand(alive.shape), budget, alive)


class H2O(SelectionPolicy):
    """Heavy hitters by accumulated attention, plus the most recent `recent_fraction` of the budget."""

    name = "h2o"
    evicts = True

    def __init__(self, recent_fraction: float = 0.5) -> None:
        self.recent_fraction = recent_fraction

    def reset(self, num_layers):
        self.accumulated: list[torch.Tensor | None] = [None] * num_layers

    def prefill(self, layer, attention):
        self.accumulated[layer] = attention.sum(-2)

    def select(self, layer, query, keys, budget, alive):
        t = keys.shape[-2]
        acc = F.pad(self.accumulated[layer], (0, t - self.accumulated[layer].shape[-1]))
        self.accumulated[layer] = acc
        forced = recent(t, max(1, int(self.recent_fraction * budget))).expand(alive.shape)
        return keep_top(acc, forced, budget, alive)

    def observe(self, layer, used, full):
        self.accumulated[layer] = self.accumulated[layer] + used


class SnapKV(SelectionPolicy):
    """Prompt tokens ranked once by the pooled attention of the last `window` prefill queries, plus the most
    recent tokens."""

    name = "snapkv"
    evicts = True

    def __init__(self, window: int = 8, kernel: int = 5) -> None:
        self.window = window
        self.kernel = kernel

    def reset(self, num_layers):
        self.votes: list[torch.Tensor | None] = [None] * num_layers

    def prefill(self, layer, attention):
        votes = attention[..., -self.window :, :].sum(-2)
        b, h, p = votes.shape
        pooled = F.avg_pool1d(votes.reshape(b * h, 1, p), self.kernel, stride=1, padding=self.kernel // 2)
        self.votes[layer] = pooled.reshape(b, h, p)

    def select(self, layer, query, keys, budget, alive):
        t = keys.shape[-2]
        votes = F.pad(self.votes[layer], (0, t - self.votes[layer].shape[-1]))
        forced = recent(t, max(1, min(self.window, budget // 2))).expand(alive.shape)
        return keep_top(votes, forced, budget, alive)


class Quest(SelectionPolicy):
    """Query-aware page selection by the upper bound of q·k over each page's key minimum and maximum."""

    name = "quest"

    def __init__(self, block: int = 4) -> None:
        self.block = block

    def select(self, layer, query, keys, budget, alive):
        b, hkv, t, d = keys.shape
        pad = -t % self.block
        padded = F.pad(keys, (0, 0, 0, pad))
        pages = padded.reshape(b, hkv, (t + pad) // self.block, self.block, d)
        # padding rows must not widen a page's bounds: fill them with the page's first key
        if pad:
            pages[:, :, -1, self.block - pad :] = pages[:, :, -1, :1]
        low, high = pages.amin(3), pages.amax(3)  # (B, Hkv, pages, d)
        q = query.reshape(b, hkv, -1, d).unsqueeze(-2)  # (B, Hkv, G, 1, d)
        bound = torch.maximum(q * low.unsqueeze(2), q * high.unsqueeze(2)).sum(-1).amax(2)
        scores = block_to_tokens(bound, self.block, t)
        return keep_top(scores, recent(t, 1).expand(alive.shape), budget)


class AttentionPredictor(SelectionPolicy):
    """Key blocks ranked by a trained `AttentionCNN` over each layer's attention history."""

    name = "attnpred"

    def __init__(self, predictor: AttentionCNN, calibration_step: int = 5) -> None:
        self.net = predictor.eval()
        self.config = predictor.config
        self.calibration_step = calibration_step

    def reset(self, num_layers):
        self.history = AttentionHistory(num_layers, self.config.history, self.config.block)
        self.steps = [0] * num_layers

    def prefill(self, layer, attention):
        self.history.start(layer, attention)

    @torch.no_grad()
    def scores(self, layer: int, context: int) -> torch.Tensor:
        """(B, Hkv, ceil(context / block)) predicted scores of this step's key blocks."""
        hist = self.history.get(layer, context)
        b, h, steps, w = hist.shape
        return self.net(hist.reshape(b * h, steps, w)).reshape(b, h, w)

    def select(self, layer, query, keys, budget, alive):
        t = keys.shape[-2]
        c = self.config
        forced = first(t, min(c.sink, budget - 1)) | recent(t, max(1, min(c.local, budget - c.sink)))
        scores = block_to_tokens(self.scores(layer, t), c.block, t)
        return keep_top(scores, forced.expand(alive.shape), budget)

    def observe(self, layer, used, full):
        self.steps[layer] += 1
        calibrate = self.calibration_step > 0 and self.steps[layer] % self.calibration_step == 0
        self.history.append(layer, full if calibrate else used)


@dataclass
class Selector:
    """A policy at a budget for one sequence batch; records, per decode step and layer, the tokens kept and the
    attention recovery rate (the share of the full attention that falls on the kept tokens, mean over the batch
    and query heads, 0..1)."""

    policy: SelectionPolicy
    budget: Budget
    kept: list[list[int]] = field(default_factory=list)  # per decode step, per layer: tokens per KV head
    recovery: list[list[float]] = field(default_factory=list)  # per decode step, per layer

    def reset(self, num_layers: int) -> None:
        self.kept, self.recovery = [], []
        self.alive: list[torch.Tensor | None] = [None] * num_layers
        self.policy.reset(num_layers)

    def select(self, layer: int, query: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        b, hkv, t, _ = keys.shape
        alive = self.alive[layer]
        alive = (
            torch.ones(b, hkv, t, dtype=torch.bool)
            if alive is None
            else F.pad(alive, (0, t - alive.shape[-1]), value=True)
        )
        mask = self.policy.select(layer, query, keys, self.budget.of(t), alive)
        if self.policy.evicts:
            self.alive[layer] = mask
        if layer == 0:
            self.kept.append([])
        self.kept[-1].append(int(mask.sum(-1).max()))
        return mask

    def observe(self, layer: int, keep: torch.Tensor, used: torch.Tensor, full: torch.Tensor) -> None:
        """Record the recovery of `keep` (B, Hkv, T) under the full attention and pass the step to the policy."""
        if layer == 0:
            self.recovery.append([])
        self.recovery[-1].append((full * keep).sum(-1).mean().item())
        self.policy.observe(layer, used, full)


def selective_attention(module, query, key, value, attention_mask, scaling, dropout=0.0, selector=None, **kwargs):
    """Eager attention that shows the attention to `selector` and, at decode steps (one query), masks out the
    tokens it does not keep. Without a selector it is plain eager attention."""
    groups = module.num_key_value_groups
    keys, values = repeat_kv(key, groups), repeat_kv(value, groups)
    logits = torch.matmul(query, keys.transpose(2, 3)) * scaling
    if attention_mask is not None:
        logits = logits + attention_mask
    full = torch.softmax(logits, dim=-1, dtype=torch.float32)
    weights = full
    if selector is not None:
        kv_heads = key.shape[1]
        if query.shape[2] > 1:
            selector.policy.prefill(module.layer_idx, kv_head_mean(full, kv_heads))
        else:
            keep = selector.select(module.layer_idx, query, key)
            weights = torch.softmax(logits.masked_fill(~repeat_kv(keep.unsqueeze(2), groups), -math.inf), -1)
            used, dense = kv_head_mean(weights, kv_heads), kv_head_mean(full, kv_heads)
            selector.observe(module.layer_idx, keep, used[:, :, 0], dense[:, :, 0])
    out = torch.matmul(weights.to(query.dtype), values)
    return out.transpose(1, 2).contiguous(), weights


AttentionInterface.register(ATTENTION_NAME, selective_attention)
AttentionMaskInterface.register(ATTENTION_NAME, ALL_MASK_ATTENTION_FUNCTIONS["eager"])


@contextmanager
def selective(model: PreTrainedModel) -> Iterator[None]:
    """Within the block, `model` runs `selective_attention` (its attention implementation is restored after)."""
    config = model.config.get_text_config(decoder=True)
    before = config._attn_implementation
    config._attn_implementation = ATTENTION_NAME
    try:
        yield
    finally:
        config._attn_implementation = before


POLICIES: dict[str, type[SelectionPolicy]] = {
    cls.name: cls for cls in (Dense, StreamingLLM, H2O, SnapKV, Quest, AttentionPredictor)
}


def make_policy(name: str, predictor: AttentionCNN | None = None, calibration_step: int = 5) -> SelectionPolicy:
    """The policy called `name` with its default settings; attnpred needs a trained `predictor` and takes
    `calibration_step` (0: its history only ever gets the attention over the kept tokens)."""
    if name not in POLICIES:
        raise ValueError(f"unknown selection policy {name!r}: use one of {', '.join(POLICIES)}")
    if name == AttentionPredictor.name:
        if predictor is None:
            raise ValueError("policy attnpred needs a trained predictor: `python -m models.kv train-predictor`")
        return AttentionPredictor(predictor, calibration_step)
    if name == Quest.name and predictor is not None:
        return Quest(predictor.config.block)
    return POLICIES[name]()


@torch.no_grad()
def decode_logits(model: PreTrainedModel, ids: torch.Tensor, selector: Selector, prefill: int) -> torch.Tensor:
    """Logits (B, T - prefill, vocab), float32, predicting ids[:, prefill:]: dense prefill of ids[:, :prefill],
    then one decode call per token, each attending only to the tokens `selector` keeps."""
    selector.reset(model.config.get_text_config(decoder=True).num_hidden_layers)
    with selective(model):
        out = model(input_ids=ids[:, :prefill], use_cache=True, selector=selector, logits_to_keep=1)
        logits = [out.logits[:, -1].float()]
        for t in range(prefill, ids.shape[1] - 1):
            out = model(input_ids=ids[:, t : t + 1], cache=out.cache, use_cache=True, selector=selector)
            logits.append(out.logits[:, -1].float())
    return torch.stack(logits, dim=1)


@torch.no_grad()
def kept_tokens(
    model: PreTrainedModel,
    policy: str | SelectionPolicy,
    budget: float | Budget,
    prompt_ids: torch.Tensor,
    decode_steps: int,
    predictor: AttentionCNN | None = None,
) -> list[list[int]]:
    """Per decode step, per layer: KV tokens attended (per KV head) when `model` greedily decodes
    `decode_steps` tokens after `prompt_ids` (1-D or (1, P)) under `policy` (a name or a policy) at `budget`
    (a compression ratio, or a `Budget`). For a decode-workload exporter: step s (from 0) attends within a
    context of P + s + 1 cached tokens (the prompt, s generated tokens and the step's own input token)."""
    ids = prompt_ids.reshape(1, -1)
    chosen = make_policy(policy, predictor) if isinstance(policy, str) else policy
    selector = Selector(chosen, budget if isinstance(budget, Budget) else Budget(ratio=float(budget)))
    selector.reset(model.config.get_text_config(decoder=True).num_hidden_layers)
    with selective(model):
        out = model(input_ids=ids, use_cache=True, selector=selector, logits_to_keep=1)
        for _ in range(decode_steps):
            token = out.logits[:, -1:].argmax(-1)
            out = model(input_ids=token, cache=out.cache, use_cache=True, selector=selector)
    return selector.kept
