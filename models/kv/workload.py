"""The decode phase of a model with a compressed KV cache, as a sim workload (shape-only).

decode_workload() lists the GEMMs of T decode steps after an S-token prompt for B sequences:

- Linear ops (q/k/v/o, gate/up/down, lm_head) come from sim.model_shapes.shape_workload: m = B per step.
- Attention of step t (1..T) attends over a context of S + t tokens, of which layer l keeps kept[t][l] (all of
  them without eviction). Of the kept tokens, the newest min(residual_length, kept) are the KV config's
  full-precision residual window (KIVI-style), read at 16 bits; the rest are read at the layer's key bits
  (QK^T) and value bits (PV). So each (step, precision, kept) class is one QK and one PV op whose repeat is
  the number of layers in that class times B; a residual window adds a 16-bit QK/PV pair.

The KV cache is the "weight" operand of an attention GEMM in the replay model, so fewer kept tokens and
fewer bits per element shrink exactly the DRAM traffic that bounds decode.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

from models.kv.config import KVConfig
from sim.model_shapes import ModelShape, shape_workload
from sim.workload import AttnPV, AttnQK, Linear, Op, Workload, WorkloadError


def ratio_kept(context: int, ratio: float) -> int:
    """Tokens kept of a `context`-token cache at compression `ratio` (>= 1): ceil(context / ratio)."""
    if not ratio >= 1:
        raise WorkloadError(f"compression ratio is {ratio!r}, expected a number >= 1 (1 keeps every token)")
    return min(context, math.ceil(context / ratio))


def kept_table(prefill: int, decode: int, layers: int, ratio: float = 1.0) -> list[list[int]]:
    """(decode, layers) tokens kept per step and layer when every layer keeps ceil(context / ratio)."""
    return [[ratio_kept(prefill + t, ratio)] * layers for t in range(1, decode + 1)]


def _attention_ops(
    shape: ModelShape, t: int, context: int, kept: Sequence[int], kv: KVConfig, batch: int, act: str
) -> list[Op]:
    """The QK^T / PV ops of decode step t over all layers: one pair per (key bits, value bits, quantized tokens)
    class, and one 16-bit pair per residual-window size."""
    classes: Counter = Counter()
    for layer, n in enumerate(kept):
        residual = min(kv.residual_length, n)
        classes[(*kv.pairs[layer], n - residual)] += 1
        classes[(16, 16, -residual)] += 1  # negative: the exact window, kept apart from a quantized class
    queries = shape.heads // shape.kv_heads
    ops: list[Op] = []
    for (kbits, vbits, signed_tokens), layers in sorted(classes.items()):
        tokens = abs(signed_tokens)
        if tokens == 0:
            continue
        common = dict(
            act=act,
            kept_tokens=tokens,
            context=context,
            heads=shape.kv_heads,
            kv_heads=shape.kv_heads,
            repeat=layers * batch,
        )
        name = f"decode.t{t}." + (f"residual{tokens}" if signed_tokens < 0 else f"k{kbits}v{vbits}.kept{tokens}")
        ops += [
            AttnQK(name=f"{name}.attn_qk", m=queries, n=tokens, k=shape.head_dim, kv_bits=kbits, **common),
            AttnPV(name=f"{name}.attn_pv", m=queries, n=shape.head_dim, k=tokens, kv_bits=vbits, **common),
        ]
    return ops


def decode_workload(
    name: str,
    shape: ModelShape,
    kv: KVConfig,
    prefill: int,
    decode: int,
    kept: Sequence[Sequence[int]] | None = None,
    batch: int = 1,
    wbits: int = 4,
    act: str = "int8",
    group: int = 128,
    wformat: str = "unsigned",
) -> Workload:
    """The GEMMs of `decode` steps after a `prefill`-token prompt with KV config `kv` (one pair per layer).

    kept: (decode, layers) tokens attended per step and layer (e.g. kept_table(..., ratio) or an eviction
    policy's real counts); None keeps the whole context. Weight precision applies to every linear op; a group
    that does not divide an op's k is fitted to the largest divisor below it (sim.workload.fit_group).
    """
    if kv.num_layers != shape.layers:
        raise WorkloadError(
            f"KV config '{kv.name}' has {kv.num_layers} layer pairs but the model has {shape.layers} layers: "
            "tune or write a config for this model"
        )
    if not isinstance(prefill, int) or prefill < 1 or not isinstance(decode, int) or decode < 1:
        raise WorkloadError(f"prefill is {prefill!r} and decode is {decode!r}, expected integers >= 1")
    kept = kept_table(prefill, decode, shape.layers) if kept is None else kept
    if len(kept) != decode or any(len(row) != shape.layers for row in kept):
        raise WorkloadError(f"kept tokens must be a ({decode} steps, {shape.layers} layers) table")
    weights = dict(batch=batch, wbits=wbits, act=act, group=group, wformat=wformat)
    linear = shape_workload(name, shape, prefill=0, decode=decode, uneven="divisor", **weights)
    ops: list[Op] = [op for op in linear.ops if isinstance(op, Linear)]
    for t, row in enumerate(kept, start=1):
        context = prefill + t
        if any(not 1 <= n <= context for n in row):
            raise WorkloadError(f"decode step {t}: kept tokens {list(row)} must lie in 1..{context} (the context)")
        ops += _attention_ops(shape, t, context, row, kv, batch, act)
    meta = dict(
        source="models.kv.workload",
        prefill=prefill,
        decode=decode,
        **weights,
        kv_config=kv.to_dict(),
        kv_avg_bits=kv.avg_bits,
        kept_tokens=[list(map(int, row)) for row in kept],
    )
    return Workload(name, ops, meta)
