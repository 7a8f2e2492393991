"""Carving: shared neurons by activation rate, balanced clustering of the rest, analytic router, CMoE model.

Per decoder layer, in order (JarvisPei/CMoE's algorithm, max_iters = 1):
1. profile the MLP's neurons on the calibration tokens (profile.py), through the layers carved so far;
2. shared FFN = the num_shared neurons with the highest activation rate (ties: lower index first);
3. routed experts: centroids = marker vectors of the E highest-rate remaining neurons; the L1 distance of every
   remaining neuron to every centroid, each centroid column repeated m = routed / E times, is a square linear
   assignment problem (scipy's linear_sum_assignment, CMoE uses lap.lapjv), giving exactly m neurons per expert;
4. centroids are updated to their members' mean marker vector; the representative neuron of an expert is the
   member nearest (L1) to it; the router's classifier / gate rows are its normalised up / gate rows;
5. each expert's gate/up rows and down columns are sliced from the dense FFN, so experts are exact sub-FFNs.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from scipy.optimize import linear_sum_assignment
from torch import nn
from torch.nn import functional as F
from tqdm import tqdm
from transformers import PreTrainedModel

from models.moe.errors import CARVABLE, MoeError
from models.moe.modeling import FAMILIES, CMoEConfig, CMoEForCausalLM, CMoEMLP, layout_problem
from models.moe.profile import NeuronProfile, mlp_inputs, profile_neurons


@dataclass(frozen=True)
class ExpertPlan:
    """Neuron indices into one dense FFN: shared (S,), experts (E, m) sorted per row, representatives (E,)."""

    shared: torch.Tensor
    experts: torch.Tensor
    representatives: torch.Tensor


def balanced_assignment(points: torch.Tensor, centroids: torch.Tensor) -> torch.Tensor:
    """Cluster labels (R,) of points (R, T) onto centroids (E, T) with exactly R / E points per cluster,
    minimising the total L1 distance (a linear assignment over E x (R / E) replicated centroid slots)."""
    r, e = points.shape[0], centroids.shape[0]
    cost = torch.cdist(points.double(), centroids.double(), p=1)  # (R, E)
    rows, slots = linear_sum_assignment(cost.repeat_interleave(r // e, dim=1).numpy())
    labels = torch.empty(r, dtype=torch.long)
    labels[torch.as_tensor(rows)] = torch.as_tensor(slots) // (r // e)
    return labels


def plan_experts(profile: NeuronProfile, num_shared: int, num_experts: int) -> ExpertPlan:
    """Shared neurons, balanced routed experts and their representatives from one FFN's activation profile."""
    d = profile.rate.numel()
    # Stable sort on -rate so equal rates keep index order (deterministic).
    order = torch.sort(-profile.rate, stable=True).indices
    shared, rest = order[:num_shared].sort().values, order[num_shared:]
    if num_experts == 0:
        empty = torch.empty(0, dtype=torch.long)
        return ExpertPlan(shared=shared, experts=empty.reshape(0, 0), representatives=empty)
    points = profile.markers[:, rest].T  # (R, T), rest is in decreasing-rate order
    labels = balanced_assignment(points, points[:num_experts])
    experts, reps = [], []
    for e in range(num_experts):
        members = rest[labels == e].sort().values
        vectors = profile.markers[:, members].T
        centroid = vectors.mean(0, keepdim=True)
        reps.append(members[torch.cdist(vectors.double(), centroid.double(), p=1)[:, 0].argmin()])
        experts.append(members)
    assert sum(len(m) for m in experts) + num_shared == d
    return ExpertPlan(shared=shared, experts=torch.stack(experts), representatives=torch.stack(reps))


@torch.no_grad()
def carve_mlp(dense: nn.Module, plan: ExpertPlan, config: CMoEConfig) -> CMoEMLP:
    """A CMoEMLP whose experts are exact slices of a Llama MLP (gate/up rows, down columns) and whose router
    rows are the normalised gate/up rows of each expert's representative neuron."""
    moe = CMoEMLP(config).to(dense.gate_proj.weight.dtype)
    gate, up, down = dense.gate_proj.weight, dense.up_proj.weight, dense.down_proj.weight
    if moe.shared_expert is not None:
        moe.shared_expert.gate_proj.weight.copy_(gate[plan.shared])
        moe.shared_expert.up_proj.weight.copy_(up[plan.shared])
        moe.shared_expert.down_proj.weight.copy_(down[:, plan.shared])
    if moe.experts is not None:
        moe.experts.gate_proj.copy_(gate[plan.experts])
        moe.experts.up_proj.copy_(up[plan.experts])
        moe.experts.down_proj.copy_(down[:, plan.experts].permute(1, 0, 2))
        moe.router.classifier.weight.copy_(F.normalize(up[plan.representatives], dim=1))
        moe.router.gate.weight.copy_(F.normalize(gate[plan.representatives], dim=1))
    return moe


def check_family(model_type: str | None) -> None:
    """MoeError (one line naming the supported model types) unless CMoE can carve a `model_type` model."""
    if model_type not in FAMILIES:
        raise MoeError(
            f"CMoE carving supports {', '.join(CARVABLE)} models (gate/up/down SwiGLU MLPs), got {model_type!r}:"
            " pass a checkpoint of one of those"
        )


def cmoe_config(dense_config, num_experts: int, top_k: int, num_shared: int) -> CMoEConfig:
    """The CMoE config (of the dense model's family: Llama, Mistral or Qwen2) of a dense config with this
    layout; MoeError (one line) if the family is not one of those or the layout is impossible."""
    check_family(getattr(dense_config, "model_type", None))
    problem = layout_problem(dense_config.intermediate_size, num_shared, num_experts, top_k)
    if problem:
        raise MoeError(problem)
    fields = {k: v for k, v in dense_config.to_dict().items() if k not in ("model_type", "architectures")}
    layout = {"num_shared_neurons": num_shared, "num_experts": num_experts, "num_experts_per_tok": top_k}
    return FAMILIES[dense_config.model_type][0](**fields, **layout)


def carve(
    model: PreTrainedModel,
    windows: Sequence[torch.Tensor],
    num_experts: int,
    top_k: int,
    num_shared: int,
    k_act: int = 10,
    progress: bool = True,
) -> tuple[CMoEForCausalLM, dict]:
    """Carve a dense Llama, Mistral or Qwen2 into its CMoE model (training-free) from calibration `windows`
    (1-D token tensors).

    Returns the model (eval mode; `model` is not changed) and stats: seconds, per-layer plans."""
    config = cmoe_config(model.config, num_experts, top_k, num_shared)
    t0 = time.perf_counter()
    work = copy.deepcopy(model).eval()
    plans = []
    for i in tqdm(range(config.num_hidden_layers), desc="carving layers", disable=not progress):
        dense = work.model.layers[i].mlp
        plan = plan_experts(profile_neurons(mlp_inputs(work, i, windows), dense, k_act), num_shared, num_experts)
        work.model.layers[i].mlp = carve_mlp(dense, plan, config)
        plans.append(plan)
    carved = FAMILIES[model.config.model_type][1](config).to(device=model.device, dtype=model.dtype)
    carved.load_state_dict(work.state_dict())
    carved.eval()
    seconds = time.perf_counter() - t0
    return carved, {"seconds": seconds, "plans": plans}


def activated_parameters(model: CMoEForCausalLM) -> dict[str, float]:
    """Parameters used per token. ffn_ratio: activated FFN neurons (shared + top_k x expert width) / FFN width.
    total / activated: all model parameters (embeddings and routers included) and those a token uses (only
    top_k of the routed experts). ratio: activated / total."""
    c = model.config
    per_neuron = 3 * c.hidden_size  # gate row, up row, down column
    idle = (c.num_experts - c.num_experts_per_tok) * c.expert_size * per_neuron * c.num_hidden_layers
    total = sum(p.numel() for p in model.parameters())
    active = c.num_shared_neurons + c.num_experts_per_tok * c.expert_size
    return {
        "ffn_ratio": active / c.intermediate_size,
        "total": total,
        "activated": total - idle,
        "ratio": (total - idle) / total,
    }
