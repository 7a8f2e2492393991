"""The carved model as a transformers model: a Llama, Mistral or Qwen2 whose MLPs are CMoE layers (shared +
top-k routed experts).

    config = CMoEConfig(**llama_config, num_shared_neurons=172, num_experts=12, num_experts_per_tok=4)
    model = CMoEForCausalLM(config); model.save_pretrained(out)
    AutoModelForCausalLM.from_pretrained(out)       # after `import models.moe.modeling` (registers "cmoe")
    FAMILIES["mistral"]                             # (config class, model class) of model_type "cmoe_mistral"

Each MLP computes y = E_shared(x) + sum_{e in topk(p + b)} (1 + p_e s_e) E_e(x), where every expert is an exact
slice of the dense SwiGLU FFN, p = softmax_e |(x C_e)(SiLU(x G_e))| is the analytic router, b the load-balance
bias (not differentiable; nudged towards equal counts while training) and s the learnable scale (init 0, so a
training-free model adds the selected sub-FFNs unweighted).
"""

from __future__ import annotations

import torch
from huggingface_hub.dataclasses import strict
from torch import nn
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    LlamaConfig,
    LlamaForCausalLM,
    MistralConfig,
    MistralForCausalLM,
    Qwen2Config,
    Qwen2ForCausalLM,
)
from transformers.activations import ACT2FN

from models.moe.errors import CARVABLE


class _Layout:
    """What every family's CMoE config adds to its dense config: the layout fields (declared by
    `_config_class`), the expert width and the layout check."""

    @property
    def expert_size(self) -> int:
        """Neurons per routed expert (0 without routed experts)."""
        routed = self.intermediate_size - self.num_shared_neurons
        return routed // self.num_experts if self.num_experts else 0

    def validate_architecture(self) -> None:
        super().validate_architecture()
        problem = layout_problem(
            self.intermediate_size, self.num_shared_neurons, self.num_experts, self.num_experts_per_tok
        )
        if problem:
            raise ValueError(problem)


# The layout fields: name -> (type, default).
_FIELDS = {
    "num_shared_neurons": (int, 0),
    "num_experts": (int, 0),
    "num_experts_per_tok": (int, 0),
    "router_bias_speed": (float, 1e-3),
    "router_aux_loss_coef": (float, 0.01),
}


def _config_class(dense: type, model_type: str, name: str) -> type:
    """The CMoE config class of one dense family: `dense` (LlamaConfig, MistralConfig, ...) plus the layout.

    num_shared_neurons: width (neurons) of the always-on shared FFN. num_experts: routed experts per layer, each
    (intermediate_size - num_shared_neurons) / num_experts neurons wide. num_experts_per_tok: routed experts per
    token (top-k). router_bias_speed: load-balance bias step per training forward (DeepSeek-V3 style).
    router_aux_loss_coef: weight of the Switch-style load-balancing loss the fine-tune adds.
    """
    namespace = {
        "__module__": __name__,
        "__qualname__": name,
        "__doc__": f"A {dense.__name__} plus the CMoE layout of every MLP (see _config_class).",
        "__annotations__": {k: t for k, (t, _) in _FIELDS.items()},
        "model_type": model_type,
        **{k: default for k, (_, default) in _FIELDS.items()},
    }
    return strict(type(name, (_Layout, dense), namespace))


def layout_problem(intermediate: int, shared: int, experts: int, top_k: int) -> str | None:
    """Why a CMoE layout cannot be carved from an FFN of `intermediate` neurons (None if it can)."""
    if not 0 <= shared <= intermediate:
        return f"--shared {shared} must be between 0 and the FFN width {intermediate} neurons"
    routed = intermediate - shared
    if experts < 0 or (experts == 0) != (routed == 0):
        return f"--experts {experts}: the {routed} routed neurons need at least one expert (0 only if all are shared)"
    if experts and routed % experts:
        return f"--experts {experts} does not divide the {routed} routed neurons: pick a divisor or change --shared"
    if not 0 <= top_k <= experts or (experts and top_k == 0):
        return f"--top-k {top_k} must be between 1 and --experts {experts}"
    return None


class SharedExpert(nn.Module):
    """The always-on SwiGLU FFN of `width` neurons (the most frequently active ones)."""

    def __init__(self, config: CMoEConfig, width: int) -> None:
        super().__init__()
        self.gate_proj = nn.Linear(config.hidden_size, width, bias=False)
        self.up_proj = nn.Linear(config.hidden_size, width, bias=False)
        self.down_proj = nn.Linear(width, config.hidden_size, bias=False)
        self.act_fn = ACT2FN[config.hidden_act]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(self.act_fn(self.gate_proj(x)) * self.up_proj(x))


class CMoERouter(nn.Module):
    """Analytic router: score_e = |(x C_e)(act(x G_e))|, p = softmax(score) in fp32, top-k of p + bias.

    classifier / gate rows are the normalised up / gate rows of each expert's representative neuron.
    """

    def __init__(self, config: CMoEConfig) -> None:
        super().__init__()
        e = config.num_experts
        self.top_k = config.num_experts_per_tok
        self.bias_speed = config.router_bias_speed
        self.classifier = nn.Linear(config.hidden_size, e, bias=False)
        self.gate = nn.Linear(config.hidden_size, e, bias=False)
        self.act_fn = ACT2FN[config.hidden_act]
        self.extra_scale = nn.Parameter(torch.zeros(e))
        self.register_buffer("balance_bias", torch.zeros(e))
        self.aux_loss: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x (N, hidden) -> probs (N, E) fp32, index (N, k) selected experts, weights (N, k) = 1 + p s."""
        score = (self.classifier(x) * self.act_fn(self.gate(x))).abs().float()
        probs = score.softmax(-1)
        index = (probs.detach() + self.balance_bias).topk(self.top_k, dim=-1).indices
        weights = 1 + probs.gather(1, index) * self.extra_scale[index]
        if self.training:
            counts = torch.bincount(index.flatten(), minlength=probs.shape[1]).float()
            # Switch-Transformer balance loss E * sum_e f_e P_e (f: share of routing slots, no gradient).
            self.aux_loss = probs.shape[1] * (counts / counts.sum() * probs.mean(0)).sum()
            with torch.no_grad():
                self.balance_bias += self.bias_speed * torch.sign(counts.mean() - counts)
        return probs, index, weights


class RoutedExperts(nn.Module):
    """E equal-width SwiGLU experts stored fused: gate_proj / up_proj (E, m, hidden), down_proj (E, hidden, m)."""

    def __init__(self, config: CMoEConfig) -> None:
        super().__init__()
        e, m, h = config.num_experts, config.expert_size, config.hidden_size
        std = config.initializer_range
        self.gate_proj = nn.Parameter(torch.randn(e, m, h) * std)
        self.up_proj = nn.Parameter(torch.randn(e, m, h) * std)
        self.down_proj = nn.Parameter(torch.randn(e, h, m) * std)
        self.act_fn = ACT2FN[config.hidden_act]

    def forward(self, x: torch.Tensor, index: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """x (N, hidden), index / weights (N, k) -> sum over each token's selected experts, (N, hidden)."""
        out = torch.zeros_like(x)
        for e in range(self.gate_proj.shape[0]):
            token, slot = (index == e).nonzero(as_tuple=True)
            if token.numel() == 0:
                continue
            xe = x[token]
            ye = (self.act_fn(xe @ self.gate_proj[e].T) * (xe @ self.up_proj[e].T)) @ self.down_proj[e].T
            out = out.index_add(0, token, ye * weights[token, slot, None].to(ye.dtype))
        return out


class CMoEMLP(nn.Module):
    """Drop-in for LlamaMLP: shared FFN (if any neurons are shared) + top-k routed experts (if any)."""

    def __init__(self, config: CMoEConfig) -> None:
        super().__init__()
        self.hidden_size = config.hidden_size
        self.shared_expert = SharedExpert(config, config.num_shared_neurons) if config.num_shared_neurons else None
        self.router = CMoERouter(config) if config.num_experts else None
        self.experts = RoutedExperts(config) if config.num_experts else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(-1, self.hidden_size)
        out = self.shared_expert(flat) if self.shared_expert is not None else torch.zeros_like(flat)
        if self.router is not None:
            _, index, weights = self.router(flat)
            out = out + self.experts(flat, index, weights)
        return out.reshape(x.shape)


class _CMoEModel:
    """What every family's CMoE model adds to its dense causal LM: each decoder layer's MLP is a CMoEMLP."""

    def __init__(self, config) -> None:  # noqa: ANN001 (a family's CMoE config)
        super().__init__(config)
        for layer in self.model.layers:
            layer.mlp = CMoEMLP(config)
        self.post_init()


# Dense model_type -> (CMoE config class, CMoE causal LM class): the dense family's attention (Mistral's sliding
# window, Qwen2's q/k/v biases) is kept as it is; only the MLPs change.
FAMILIES: dict[str, tuple[type, type]] = {}
for _dense_type, _dense_config, _dense_model, _prefix in (
    ("llama", LlamaConfig, LlamaForCausalLM, "CMoE"),
    ("mistral", MistralConfig, MistralForCausalLM, "CMoEMistral"),
    ("qwen2", Qwen2Config, Qwen2ForCausalLM, "CMoEQwen2"),
):
    _type = "cmoe" if _dense_type == "llama" else f"cmoe_{_dense_type}"  # "cmoe": the name earlier carves saved
    _config = _config_class(_dense_config, _type, f"{_prefix}Config")
    _model = type(
        f"{_prefix}ForCausalLM",
        (_CMoEModel, _dense_model),
        {"__module__": __name__, "config_class": _config, "__doc__": f"{_dense_model.__name__} with CMoE MLPs."},
    )
    AutoConfig.register(_type, _config, exist_ok=True)
    AutoModelForCausalLM.register(_config, _model, exist_ok=True)
    FAMILIES[_dense_type] = (_config, _model)

assert tuple(FAMILIES) == CARVABLE
CMoEConfig, CMoEForCausalLM = FAMILIES["llama"]
CMOE_TYPES = tuple(config.model_type for config, _ in FAMILIES.values())
