"""A carved model's real routing on a text, as a sim workload (prefill of S tokens, routed token counts).

The dense ops (q/k/v/o projections, attention, lm_head) come from sim.model_shapes.shape_workload with
decode = 0; each layer's MLP becomes, per layer i: a router GEMM (m = S, n = E, k = hidden; the classifier and
gate rows fused as one op of n = 2E), the shared FFN's gate/up/down (m = S), and for every routed expert that got
tokens its gate/up/down as MoeExpert ops with m = the tokens really routed to it in that layer.
"""

from __future__ import annotations

import torch

from models.moe.modeling import CMoEForCausalLM, CMoERouter
from sim.model_shapes import ModelShape, shape_workload
from sim.workload import Linear, MoeExpert, Op, Workload, fit_group

MLP_PROJ = ("gate_proj", "up_proj", "down_proj")


@torch.no_grad()
def routed_counts(model: CMoEForCausalLM, tokens: torch.Tensor) -> torch.Tensor:
    """(layers, E) tokens routed to each expert of each layer when `tokens` (1-D) are run as one prefill."""
    routers = [m for m in model.modules() if isinstance(m, CMoERouter)]
    counts: list[torch.Tensor] = []
    handles = [
        r.register_forward_hook(
            lambda mod, _args, out: counts.append(torch.bincount(out[1].flatten(), minlength=mod.extra_scale.numel()))
        )
        for r in routers
    ]
    try:
        model.eval()
        model(input_ids=torch.as_tensor(tokens).reshape(1, -1), use_cache=False)
    finally:
        for h in handles:
            h.remove()
    return torch.stack(counts) if counts else torch.zeros(model.config.num_hidden_layers, 0, dtype=torch.long)


def routed_workload(
    model: CMoEForCausalLM,
    tokens: torch.Tensor,
    name: str = "cmoe",
    wbits: int = 4,
    group: int = 128,
    act: str = "int8",
    wformat: str = "unsigned",
) -> Workload:
    """The GEMMs of prefilling `tokens` (1-D, S tokens) through the carved model with its real routing.

    Weight precision (wbits, group, wformat) applies to every linear op; a group that does not divide an op's k
    is fitted to the largest divisor below it (sim.workload.fit_group). meta holds the routed counts."""
    c = model.config
    seq = int(torch.as_tensor(tokens).numel())
    counts = routed_counts(model, tokens)
    shape = ModelShape(
        hidden=c.hidden_size,
        intermediate=c.intermediate_size,
        layers=c.num_hidden_layers,
        heads=c.num_attention_heads,
        kv_heads=c.num_key_value_heads,
        vocab=c.vocab_size,
    )
    dense = shape_workload(
        name, shape, prefill=seq, decode=0, wbits=wbits, act=act, group=group, wformat=wformat, uneven="divisor"
    )
    weights = dict(wbits=wbits, wformat=wformat, act=act)
    h, s, m = c.hidden_size, c.num_shared_neurons, c.expert_size
    dims = {"gate_proj": (m, h), "up_proj": (m, h), "down_proj": (h, m)}
    mlp: list[Op] = []
    for i in range(c.num_hidden_layers):
        base = f"prefill.layers.{i}"
        if c.num_experts:
            mlp.append(
                Linear(name=f"{base}.router", m=seq, n=2 * c.num_experts, k=h, group=fit_group(group, h), **weights)
            )
        if s:
            for proj, (n, k) in {"gate_proj": (s, h), "up_proj": (s, h), "down_proj": (h, s)}.items():
                mlp.append(
                    Linear(name=f"{base}.shared_expert.{proj}", m=seq, n=n, k=k, group=fit_group(group, k), **weights)
                )
        for e in range(c.num_experts):
            routed = int(counts[i, e])
            mlp += [
                MoeExpert(
                    name=f"{base}.experts.{e}.{proj}",
                    m=routed,
                    n=n,
                    k=k,
                    expert=e,
                    group=fit_group(group, k),
                    **weights,
                )
                for proj, (n, k) in dims.items()
                if routed
            ]
    ops = [op for op in dense.ops if not op.name.endswith(MLP_PROJ)]
    at = next(i for i, op in enumerate(ops) if op.name.endswith("lm_head"))
    meta = {
        **dense.meta,
        "source": "models.moe.workload",
        "routed_counts": counts.tolist(),
        "num_shared_neurons": s,
        "num_experts": c.num_experts,
        "top_k": c.num_experts_per_tok,
        "expert_size": m,
    }
    return Workload(name, ops[:at] + mlp + ops[at:], meta)
