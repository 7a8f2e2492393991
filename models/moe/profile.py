"""FFN neuron activation statistics on calibration tokens (CMoE's ATopK activation rates).

For a Llama MLP the activation of neuron n on token t is h_tn = act(x̂ ĝ_n) (x̂ û_n), with x̂ the token's
hidden state and ĝ_n / û_n the neuron's gate / up rows, all L2-normalised (as CMoE does, so the ranking
reflects direction, not weight or activation scale). Neuron n is "active" on token t (marker 1) when |h_tn| is
among the k_act largest of that token; its activation rate is the fraction of tokens where it is active.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F


@dataclass(frozen=True)
class NeuronProfile:
    """markers (T, d_ff) float 0/1 ATopK markers per calibration token; rate (d_ff,) mean marker per neuron."""

    markers: torch.Tensor
    rate: torch.Tensor


def normalized_activation(x: torch.Tensor, mlp: nn.Module) -> torch.Tensor:
    """x (T, hidden) MLP inputs -> (T, d_ff) normalised SwiGLU activations of a Llama MLP."""
    xn = F.normalize(x.float(), dim=-1)
    gate = F.normalize(mlp.gate_proj.weight.float(), dim=1)
    up = F.normalize(mlp.up_proj.weight.float(), dim=1)
    return mlp.act_fn(xn @ gate.T) * (xn @ up.T)


def profile_neurons(x: torch.Tensor, mlp: nn.Module, k_act: int = 10) -> NeuronProfile:
    """ATopK markers and activation rates of a Llama MLP's neurons on inputs x (T, hidden)."""
    h = normalized_activation(x, mlp)
    top = h.abs().topk(min(k_act, h.shape[1]), dim=1).indices
    markers = torch.zeros_like(h).scatter_(1, top, 1.0)
    return NeuronProfile(markers=markers, rate=markers.mean(0))


class _Captured(Exception):
    """Stops the forward once the wanted MLP input is captured (later layers are not needed)."""


@torch.no_grad()
def mlp_inputs(model: nn.Module, layer: int, windows: Sequence[torch.Tensor]) -> torch.Tensor:
    """The inputs of decoder layer `layer`'s MLP (post-attention RMSNorm output) on every calibration token,
    (T, hidden) for T = total tokens of `windows` (1-D token tensors), through the model as it is now (so
    layers already carved feed their carved output forward, as CMoE calibrates layer by layer)."""
    mlp = model.model.layers[layer].mlp
    captured: list[torch.Tensor] = []

    def hook(_module: nn.Module, args: tuple) -> None:
        captured.append(args[0].reshape(-1, args[0].shape[-1]).detach().cpu())
        raise _Captured

    handle = mlp.register_forward_pre_hook(hook)
    try:
        for w in windows:
            try:
                model(input_ids=torch.as_tensor(w).reshape(1, -1), use_cache=False)
            except _Captured:
                pass
    finally:
        handle.remove()
    return torch.cat(captured)
