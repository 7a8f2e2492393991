"""Cross-token prefetch: predict step t+1's critical KV blocks while step t runs, and how much of the prediction
cost that hides, on the simulator's performance model (sim/perf_model.py, the tile model sim/replay.py uses).

Costs, in array clock cycles: every op of one decode step (q/k/v/o and MLP projections per layer, QK^T and PV
over the kept tokens, lm_head) from `gemm_cost` on the main array (R x C PEs of the workload's precision,
DRAM stalls included), and the predictor's convolutions as im2col GEMMs (conv1: H·W x 9 x c1, conv2:
H·W x 9·c1 x c2, head: W x c2 x 1, for every KV head, 8-bit weights) on the engine that runs them.

Schedules of `steps` decode steps (an event simulation; the predictor of layer l needs that layer's attention of
the previous step, so it can start once that layer has run):
  * sparse: the kept-token model with prediction for free (the floor);
  * sync: before each layer's attention the predictor runs for that layer on the main array, in the critical
    path (what the public AttentionPredictor code does);
  * sync_side: the same dependency, the predictor on a side engine (r x c PEs) the layer waits for;
  * prefetch: cross-token prefetch on the side engine: the prediction for (layer l, step t+1) is issued when
    layer l of step t finishes and runs in order on the side engine while the main array goes on; layer l of
    step t+1 waits only if it is not ready.
Hidden fraction = 1 - (prefetch - sparse) / (sync - sparse): the share of the serial prediction cost that no
longer adds to decode time (1: all hidden; below 0: the side engine is so slow that prefetching on it costs more
than predicting serially on the main array). The KV traffic of an offloaded cache (the paper's CPU -> GPU
fetch) is not modeled.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from hw.config import ArrayConfig
from models.kv.predictor import PredictorConfig
from sim.model_shapes import ModelShape, shape_workload
from sim.perf_model import MemoryConfig, gemm_cost
from sim.replay import main_precision, pe_config
from sim.workload import Attention


@dataclass(frozen=True)
class StepCosts:
    """Cycles of one decode step: per layer on the main array (kept-token attention), the lm_head, and the
    predictor of one layer on the main array and on the side engine."""

    layer: int
    lm_head: int
    predictor_main: int
    predictor_side: int
    layers: int
    dense_layer: int  # per layer with attention over the whole context


def _engine(shape: ModelShape, rows: int, cols: int, wbits: int, act: str, group: int) -> tuple[ArrayConfig, list]:
    workload = shape_workload("model", shape, prefill=1, decode=1, wbits=wbits, act=act, group=group, uneven="divisor")
    cfg = ArrayConfig(pe_config("mixpe", main_precision(workload)), rows, cols)
    return cfg, [op for op in workload.ops if op.name.startswith("decode")]


def predictor_cycles(cfg: ArrayConfig, mem: MemoryConfig, predictor: PredictorConfig, width: int, heads: int) -> int:
    """Cycles of one layer's prediction (`heads` KV-head histories of `predictor.history` x `width` blocks)."""
    c1, c2 = predictor.channels
    positions = heads * predictor.history * width
    gemms = ((positions, c1, 9), (positions, c2, 9 * c1), (heads * width, 1, c2))
    return sum(gemm_cost(cfg, mem, m, n, k, wbits=8).cycles for m, n, k in gemms)


def step_costs(
    shape: ModelShape,
    context: int,
    kept: int,
    predictor: PredictorConfig,
    rows: int = 32,
    cols: int = 32,
    side_rows: int = 16,
    side_cols: int = 16,
    mem: MemoryConfig | None = None,
    wbits: int = 4,
    act: str = "int8",
    group: int = 128,
    kv_bits: int = 16,
) -> StepCosts:
    """Cycles of one decode step over `context` cached tokens keeping `kept` per KV head (see the module
    docstring); weights `wbits` in groups of `group`, `act` activations, `kv_bits` per cached element."""
    mem = mem or MemoryConfig()
    cfg, ops = _engine(shape, rows, cols, wbits, act, group)
    side, _ = _engine(shape, side_rows, side_cols, wbits, act, group)

    def layer_cycles(tokens: int) -> int:
        total = 0
        for op in ops:
            if op.name.endswith("lm_head"):
                continue
            if isinstance(op, Attention):
                n, k = (tokens, op.k) if op.kind == "attn_qk" else (op.n, tokens)
                op = replace(op, n=n, k=k, kept_tokens=tokens, context=max(context, tokens))
                bits = kv_bits
            else:
                bits = op.wbits
            total += gemm_cost(cfg, mem, op.m, op.n, op.k, wbits=bits).cycles * op.instances // shape.layers
        return total

    head = next(op for op in ops if op.name.endswith("lm_head"))
    width = -(-context // predictor.block)
    return StepCosts(
        layer=layer_cycles(kept),
        lm_head=gemm_cost(cfg, mem, head.m, head.n, head.k, wbits=head.wbits).cycles,
        predictor_main=predictor_cycles(cfg, mem, predictor, width, shape.kv_heads),
        predictor_side=predictor_cycles(side, mem, predictor, width, shape.kv_heads),
        layers=shape.layers,
        dense_layer=layer_cycles(context),
    )


def schedule(costs: StepCosts, steps: int, mode: str) -> int:
    """Cycles to decode `steps` tokens under `mode` (sparse, sync, sync_side, prefetch)."""
    if mode not in ("sparse", "sync", "sync_side", "prefetch"):
        raise ValueError(f"unknown schedule {mode!r}: use sparse, sync, sync_side or prefetch")
    n = costs.layers
    if mode in ("sparse", "sync"):
        extra = costs.predictor_main if mode == "sync" else 0
        return steps * (n * (costs.layer + extra) + costs.lm_head)
    now, side_free = 0, 0
    ready = [0] * n  # cycle at which layer l's prediction for the current step is done
    for _ in range(steps):
        for layer in range(n):
            if mode == "sync_side":
                side_free = max(now, side_free) + costs.predictor_side
                ready[layer] = side_free
            now = max(now, ready[layer]) + costs.layer
            if mode == "prefetch":  # the next step's prediction for this layer can start now
                side_free = max(now, side_free) + costs.predictor_side
                ready[layer] = side_free
        now += costs.lm_head
    return now


def hidden_cost(costs: StepCosts, steps: int = 32) -> dict:
    """Cycles per decode step under every schedule (and dense: the full context, no prediction), the hidden
    fraction of the prediction cost (see the module docstring) and speedups of prefetch over sync and dense."""
    per_step = {mode: schedule(costs, steps, mode) / steps for mode in ("sparse", "sync", "sync_side", "prefetch")}
    per_step["dense"] = costs.layers * costs.dense_layer + costs.lm_head
    exposed_sync = per_step["sync"] - per_step["sparse"]
    exposed = per_step["prefetch"] - per_step["sparse"]
    return {
        "cycles_per_step": per_step,
        "costs": asdict(costs),
        "hidden_fraction": 1 - exposed / exposed_sync if exposed_sync > 0 else 1.0,
        "hidden_fraction_vs_sync_side": 1 - exposed / (per_step["sync_side"] - per_step["sparse"]),
        "prefetch_speedup_vs_sync": per_step["sync"] / per_step["prefetch"],
        "prefetch_speedup_vs_dense": per_step["dense"] / per_step["prefetch"],
    }
