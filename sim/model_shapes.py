"""Built-in shape-only workloads from public model configurations (no weights needed).

builtin_workload() lists the GEMMs of serving a batch of B sequences: a prefill of S prompt tokens
each, then T decode steps. Counting rules:

- Linear ops (q/k/v/o projections, gate/up/down, lm_head, MoE router) take every token of the phase:
  m = B*S in prefill (lm_head too, as a plain forward pass computes logits at every position),
  m = B per decode step. All decoder layers are identical, so each projection is one op with
  repeat = num_layers (x T in decode, where every step has the same shapes).
- Attention runs per sequence and per query head: op.heads = num_heads, repeat = num_layers x B.
  Prefill QK^T is m = S, n = S, k = head_dim and PV is m = S, n = head_dim, k = S: the full S x S
  score matrix is counted, although causal masking leaves (S+1)/(2S) of it useful, because an
  array computes whole tiles unless the mapper skips masked ones. Decode step t (1..T) attends over
  context S + t (the prompt, the tokens generated before it and itself), one QK/PV pair per step,
  so attention costs stay exact; no KV eviction (kept_tokens = context).
- Mistral-7B's sliding window (4096) is ignored: every query attends to its whole context, which
  is exact for S + T <= 4096.
- MoE (Mixtral): each layer routes its tokens x top_k to experts spread as evenly as possible
  (expert e gets ceil or floor of tokens x top_k / experts, the larger counts to the lower
  indices; experts with no token are left out), the same in every layer. Real routing is uneven;
  replay with real routing needs a workload built from routed token counts.
- All linear ops use one precision (wbits, group, wformat), the router included (with
  uneven="divisor", an op whose k the group does not divide gets the largest divisor below it);
  attention ops use kv_bits for the cache and `act` for Q and the scores.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass

from sim.cli import int_in
from sim.workload_format import (
    UNEVEN_POLICIES,
    AttnPV,
    AttnQK,
    Linear,
    MoeExpert,
    Op,
    Workload,
    WorkloadError,
    fit_group,
)

# Decode steps a shape-only workload may hold: each step is its own attention ops (its KV length grows), so a
# workload holds about 2 ops per step; 65,536 steps are ~130k ops, seconds to build (10^12 never finished).
MAX_DECODE_STEPS = 1 << 16


@dataclass(frozen=True)
class ModelShape:
    """The numbers of a decoder-only transformer that fix its GEMM shapes.

    hidden: model width (features). intermediate: MLP (or expert) width (features). heads / kv_heads:
    query and key/value heads (head_dim = hidden / heads). experts / top_k: MoE experts per layer
    and experts per token (0 / 0 for a dense MLP).
    """

    hidden: int
    intermediate: int
    layers: int
    heads: int
    kv_heads: int
    vocab: int
    experts: int = 0
    top_k: int = 0

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads

    @classmethod
    def from_hf_config(cls, config) -> ModelShape:
        """The shape of a transformers Llama / Mistral / Qwen2 / Mixtral config."""
        heads = config.num_attention_heads
        return cls(
            hidden=config.hidden_size,
            intermediate=config.intermediate_size,
            layers=config.num_hidden_layers,
            heads=heads,
            kv_heads=getattr(config, "num_key_value_heads", None) or heads,
            vocab=config.vocab_size,
            experts=getattr(config, "num_local_experts", 0) or 0,
            top_k=getattr(config, "num_experts_per_tok", 0) or 0,
        )


MODELS: dict[str, ModelShape] = {
    "llama-2-7b": ModelShape(hidden=4096, intermediate=11008, layers=32, heads=32, kv_heads=32, vocab=32000),
    "llama-2-13b": ModelShape(hidden=5120, intermediate=13824, layers=40, heads=40, kv_heads=40, vocab=32000),
    "mistral-7b": ModelShape(hidden=4096, intermediate=14336, layers=32, heads=32, kv_heads=8, vocab=32000),
    "mixtral-8x7b": ModelShape(
        hidden=4096, intermediate=14336, layers=32, heads=32, kv_heads=8, vocab=32000, experts=8, top_k=2
    ),
}


def expert_tokens(tokens: int, experts: int, top_k: int) -> list[int]:
    """Tokens routed to each expert when tokens x top_k assignments are spread evenly."""
    base, extra = divmod(tokens * top_k, experts)
    return [base + (e < extra) for e in range(experts)]


def _phase_linear(cfg: ModelShape, phase: str, m: int, repeat: int, weights: dict, uneven: str) -> list[Op]:
    """The linear / expert ops of `repeat` identical layer passes over m tokens, then lm_head."""
    h, kv = cfg.hidden, cfg.kv_heads * cfg.head_dim
    group = weights["group"]

    def fit(k: int) -> dict:
        # A bad group is left for Linear.check to name; only a valid one is fitted to k.
        if uneven == "divisor" and isinstance(group, int) and group >= 1:
            return {**weights, "group": fit_group(group, k)}
        return weights

    ops: list[Op] = [
        Linear(name=f"{phase}.layers.{proj}", m=m, n=n, k=k, repeat=cfg.layers * repeat, **fit(k))
        for proj, n, k in (("q_proj", h, h), ("k_proj", kv, h), ("v_proj", kv, h), ("o_proj", h, h))
    ]
    mlp = (("gate_proj", cfg.intermediate, h), ("up_proj", cfg.intermediate, h), ("down_proj", h, cfg.intermediate))
    if cfg.experts:
        ops.append(Linear(name=f"{phase}.layers.router", m=m, n=cfg.experts, k=h, repeat=cfg.layers * repeat, **fit(h)))
        for e, routed in enumerate(expert_tokens(m, cfg.experts, cfg.top_k)):
            ops += [
                MoeExpert(
                    name=f"{phase}.layers.experts.{e}.{proj}",
                    m=routed,
                    n=n,
                    k=k,
                    expert=e,
                    repeat=cfg.layers * repeat,
                    **fit(k),
                )
                for proj, n, k in mlp
                if routed
            ]
    else:
        ops += [
            Linear(name=f"{phase}.layers.{proj}", m=m, n=n, k=k, repeat=cfg.layers * repeat, **fit(k))
            for proj, n, k in mlp
        ]
    ops.append(Linear(name=f"{phase}.lm_head", m=m, n=cfg.vocab, k=h, repeat=repeat, **fit(h)))
    return ops


def _attention(cfg: ModelShape, name: str, queries: int, context: int, batch: int, act: str, kv_bits: int) -> list[Op]:
    """QK^T and PV of every layer for `batch` sequences of `queries` new tokens over `context` keys."""
    common = dict(
        act=act,
        kv_bits=kv_bits,
        kept_tokens=context,
        context=context,
        heads=cfg.heads,
        kv_heads=cfg.kv_heads,
        repeat=cfg.layers * batch,
    )
    return [
        AttnQK(name=f"{name}.attn_qk", m=queries, n=context, k=cfg.head_dim, **common),
        AttnPV(name=f"{name}.attn_pv", m=queries, n=cfg.head_dim, k=context, **common),
    ]


def _require(model: str, label: str, value: object, low: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise WorkloadError(f"builtin '{model}': {label} is {value!r}, expected an integer >= {low}")


def builtin_workload(
    model: str,
    prefill: int = 512,
    decode: int = 128,
    batch: int = 1,
    wbits: int = 4,
    act: str = "int8",
    group: int = 128,
    wformat: str = "unsigned",
    kv_bits: int = 16,
) -> Workload:
    """The GEMMs of prefilling `prefill` tokens and decoding `decode` tokens for `batch` sequences.

    model: a key of MODELS. prefill: prompt tokens S per sequence (0 skips prefill). decode:
    generated tokens T per sequence (0 skips decode). batch: sequences B. wbits / group / wformat:
    weight precision of every linear op. act: activation type. kv_bits: KV-cache bits. See the
    module docstring for how the ops are counted.
    """
    if model not in MODELS:
        raise WorkloadError(f"builtin: model '{model}' is unknown, expected one of {', '.join(MODELS)}")
    return shape_workload(model, MODELS[model], prefill, decode, batch, wbits, act, group, wformat, kv_bits)


def shape_workload(
    model: str,
    cfg: ModelShape,
    prefill: int = 512,
    decode: int = 128,
    batch: int = 1,
    wbits: int = 4,
    act: str = "int8",
    group: int = 128,
    wformat: str = "unsigned",
    kv_bits: int = 16,
    uneven: str = "error",
) -> Workload:
    """builtin_workload for any ModelShape (e.g. ModelShape.from_hf_config of a local checkpoint).

    uneven: what an op whose k the group does not divide gets: "error" (WorkloadError) or "divisor"
    (sim.workload_format.fit_group: the largest divisor of k not above group, as models.quant does).
    """
    if uneven not in UNEVEN_POLICIES:
        raise WorkloadError(f"builtin '{model}': uneven is {uneven!r}, expected one of {', '.join(UNEVEN_POLICIES)}")
    _require(model, "prefill", prefill, 0)
    _require(model, "decode", decode, 0)
    _require(model, "batch", batch, 1)
    if prefill + decode == 0:
        raise WorkloadError(f"builtin '{model}': prefill and decode are both 0, expected at least one token")
    weights = dict(wbits=wbits, group=group, wformat=wformat, act=act)
    ops: list[Op] = []
    if prefill:
        ops += _phase_linear(cfg, "prefill", batch * prefill, 1, weights, uneven)
        ops += _attention(cfg, "prefill.layers", prefill, prefill, batch, act, kv_bits)
    if decode:
        ops += _phase_linear(cfg, "decode", batch, decode, weights, uneven)
        for t in range(1, decode + 1):
            ops += _attention(cfg, f"decode.t{t}.layers", 1, prefill + t, batch, act, kv_bits)
    meta = dict(
        source="sim.model_shapes",
        prefill=prefill,
        decode=decode,
        batch=batch,
        **weights,
        kv_bits=kv_bits,
        uneven=uneven,
        config=asdict(cfg),
    )
    try:
        return Workload(model, ops, meta)
    except WorkloadError as e:
        # Name the builtin's argument rather than the op the bad setting first landed in.
        raise WorkloadError(f"builtin '{model}': {str(e).split(': ', 2)[-1]}") from None


def add_builtin_arguments(p: argparse.ArgumentParser | argparse._ArgumentGroup, prefill: int = 512) -> None:
    """The options of builtin_workload, for CLIs that build one (sim.workload, sim.replay)."""
    p.add_argument(
        "--prefill", type=int_in(0), default=prefill, help=f"prompt tokens S per sequence (default {prefill})"
    )
    p.add_argument(
        "--decode",
        type=int_in(0, MAX_DECODE_STEPS),
        default=128,
        help=f"generated tokens T per sequence (default 128, at most {MAX_DECODE_STEPS})",
    )
    p.add_argument("--batch", type=int_in(1), default=1, help="sequences B (default 1)")
    p.add_argument("--wbits", type=int, default=4, help="weight bits: 2, 3, 4 or 8 (default 4)")
    p.add_argument("--act", default="int8", help="activations: int8 or fp16 (default int8)")
    p.add_argument("--group", type=int, default=128, help="weights per scale, dividing every k (default 128)")
    p.add_argument("--wformat", default="unsigned", help="unsigned (zero point) or signed (default unsigned)")
    p.add_argument("--kv-bits", type=int, default=16, help="KV-cache bits: 2, 4, 8 or 16 (default 16)")


def builtin_from_args(model: str, args: argparse.Namespace) -> Workload:
    """builtin_workload with the options add_builtin_arguments defined."""
    return builtin_workload(
        model,
        prefill=args.prefill,
        decode=args.decode,
        batch=args.batch,
        wbits=args.wbits,
        act=args.act,
        group=args.group,
        wformat=args.wformat,
        kv_bits=args.kv_bits,
    )
