"""Sens-Merging (Liu et al., 2025, arXiv 2502.12420): per-layer, per-model merging coefficients.

K fine-tuned models θ_i of one base θ₀, task vectors τ_i = θ_i − θ₀, layers l (decoder blocks; parameters
outside the blocks are each their own layer, see task_vector.layer_group).

Task-specific scaling. On model i's own calibration windows D_i, the first-order Taylor estimate of the loss
change from zeroing parameter j is S_j = |θ_j · ∂L_i/∂θ_j| (L_i the causal-LM NLL of one window, nats/token);
the layer sensitivity is s_i^l = mean over windows of Σ_{j∈l} S_j, and α_i^l = s_i^l / ‖s_i‖₂ over the layers
(`normalize: l1` divides by Σ_l s_i^l; `saliency: delta` scores |τ_j · ∂L_i/∂θ_j| instead).

Cross-task scaling. g_ij = mean over windows x of D_j and their tokens of ‖logits_i(x) − logits_j(x)‖₂: how far
model i is from expert j on task j's data. With `transfer: alignment` (the paper's wording: favour models whose
logits align with the other experts) a_ij = exp(−g_ij / ḡ), ḡ the mean over pairs i ≠ j, and
τ̂_i = Σ_{j≠i} a_ij; with `transfer: distance` (the third-party reimplementation's sign) τ̂_i = Σ_{j≠i} g_ij.
Then the L1 normalisation τ_i = τ̂_i / Σ_k τ̂_k (K = 1: τ = 1).

Combination. σ_i^l = softmax over i of (α_i^l · τ_i / T), so Σ_i σ_i^l = 1 in every layer, and model i's weight
in layer l is K·σ_i^l: uniform σ = 1/K (T → ∞) gives every model weight 1, i.e. exactly the host method.

The paper's exact normalisers, the sign of the transferability term and its default T are not verified here
(no official code); the choices above follow the third-party reimplementation except the alignment sign, and
each ambiguous choice is a setting (see config.SensConfig).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import torch
from tqdm import tqdm
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from models.merge.config import ModelEntry, SensConfig
from models.merge.errors import MergeError
from models.merge.task_vector import layer_group, layer_groups, parameters
from models.zoo import TASKS, ZooError, token_windows


def calibration_windows(
    entry: ModelEntry, tokenizer: PreTrainedTokenizerBase, sens: SensConfig, preset: str, seed: int, where: str
) -> list[torch.Tensor]:
    """Up to `sens.samples` (seq_len,) token windows of the model's calibration source: a zoo task's training split
    (never held-out text) or a UTF-8 text file."""
    source = entry.calibration or entry.model
    if source in TASKS:
        try:
            return token_windows(tokenizer, source, "train", sens.seq_len, sens.samples, preset, seed)
        except ZooError as err:
            raise MergeError(f"{where} ({entry.model}): {err}") from None
    path = Path(source).expanduser()
    if entry.calibration is None or not path.is_file():
        raise MergeError(
            f"{where} ({entry.model}): Sens-Merging needs calibration text: add calibration: "
            f"{'|'.join(TASKS)} or a text file"
        )
    try:
        ids = tokenizer(path.read_text(), add_special_tokens=False)["input_ids"]
    except UnicodeDecodeError:
        raise MergeError(f"{where}: calibration file {path} is not UTF-8 text") from None
    count = min(sens.samples, len(ids) // sens.seq_len)
    if count == 0:
        raise MergeError(f"{where}: calibration file {path} has {len(ids)} tokens, fewer than seq_len={sens.seq_len}")
    return list(torch.tensor(ids[: count * sens.seq_len]).view(count, sens.seq_len).unbind(0))


def layer_sensitivity(
    model: PreTrainedModel,
    windows: list[torch.Tensor],
    groups: list[str],
    base: dict[str, torch.Tensor] | None = None,
) -> torch.Tensor:
    """(L,) s^l = mean over windows of Σ_{j∈l} |x_j · ∂L/∂θ_j|, x = θ (base None) or τ = θ − base."""
    index = {g: i for i, g in enumerate(groups)}
    named = list(model.named_parameters())
    scale = {n: (p.detach() if base is None else p.detach() - base[n]) for n, p in named}
    total = torch.zeros(len(groups), dtype=torch.float64)
    model.eval()
    for window in windows:
        model.zero_grad(set_to_none=True)
        ids = window.view(1, -1)
        model(input_ids=ids, labels=ids).loss.backward()
        for n, p in named:
            if p.grad is not None:
                total[index[layer_group(n)]] += (scale[n] * p.grad).abs().sum().item()
    model.zero_grad(set_to_none=True)
    return total / len(windows)


def normalize_layers(s: torch.Tensor, how: str = "l2") -> torch.Tensor:
    """(K, L) α: each model's layer sensitivities divided by their L2 norm ("l2") or sum ("l1")."""
    norm = s.norm(dim=1, keepdim=True) if how == "l2" else s.sum(dim=1, keepdim=True)
    return s / norm.clamp_min(torch.finfo(s.dtype).tiny)


@torch.no_grad()
def logit_distances(models: list[PreTrainedModel], windows: list[list[torch.Tensor]]) -> torch.Tensor:
    """(K, K) g_ij = mean over task j's windows and tokens of ‖logits_i − logits_j‖₂ (diagonal 0)."""
    k = len(models)
    g = torch.zeros(k, k, dtype=torch.float64)
    for j in range(k):
        ids = torch.stack(windows[j])
        expert = models[j](input_ids=ids).logits.float()
        for i in range(k):
            if i != j:
                g[i, j] = (models[i](input_ids=ids).logits.float() - expert).norm(dim=-1).mean().item()
    return g


def transferability(g: torch.Tensor, how: str = "alignment") -> torch.Tensor:
    """(K,) τ, L1-normalised over models, from the (K, K) distances (see the module docstring)."""
    k = g.shape[0]
    if k == 1:
        return torch.ones(1, dtype=torch.float64)
    off = ~torch.eye(k, dtype=torch.bool)
    if how == "alignment":
        score = torch.exp(-g / g[off].mean().clamp_min(torch.finfo(g.dtype).tiny))
    else:
        score = g
    raw = (score * off).sum(dim=1)
    return raw / raw.sum()


def coefficients(alpha: torch.Tensor, tau: torch.Tensor, temperature: float) -> torch.Tensor:
    """(K, L) σ_i^l = softmax over the K models of α_i^l·τ_i / T; every column sums to 1."""
    return torch.softmax(alpha * tau[:, None] / temperature, dim=0)


@dataclass
class SensCoefficients:
    """Sens-Merging's result: layer groups, s (K, L), α (K, L), g (K, K), τ (K,), σ (K, L)."""

    groups: list[str]
    sensitivity: torch.Tensor
    alpha: torch.Tensor
    distances: torch.Tensor
    tau: torch.Tensor
    sigma: torch.Tensor

    def with_temperature(self, temperature: float) -> SensCoefficients:
        """The same analysis combined at another temperature T (no new gradients or forwards)."""
        return replace(self, sigma=coefficients(self.alpha, self.tau, temperature))

    def weights(self, name: str) -> list[float]:
        """The K models' multipliers K·σ_i^l for parameter `name` (all 1 when σ is uniform)."""
        col = self.groups.index(layer_group(name))
        return (self.sigma.shape[0] * self.sigma[:, col]).tolist()

    def as_dict(self) -> dict:
        return {
            "groups": self.groups,
            "sensitivity": self.sensitivity.tolist(),
            "alpha": self.alpha.tolist(),
            "logit_distances": self.distances.tolist(),
            "tau": self.tau.tolist(),
            "sigma": self.sigma.tolist(),
        }


def sens_merging(
    tuned: list[PreTrainedModel],
    windows: list[list[torch.Tensor]],
    sens: SensConfig,
    base: PreTrainedModel | None = None,
    progress: bool = False,
) -> SensCoefficients:
    """Sens-Merging coefficients for `tuned` models, model i calibrated on `windows[i]` (its own task's data)."""
    groups = layer_groups([n for n, _ in tuned[0].named_parameters()])
    base_params = parameters(base) if sens.saliency == "delta" else None
    s = torch.stack(
        [
            layer_sensitivity(m, w, groups, base_params)
            for m, w in tqdm(list(zip(tuned, windows, strict=True)), desc="sensitivity", disable=not progress)
        ]
    )
    if not (s.sum(dim=1) > 0).all():
        raise MergeError("a model has zero sensitivity on its calibration data: check that its weights train the task")
    alpha = normalize_layers(s, sens.normalize)
    g = logit_distances(tuned, windows)
    tau = transferability(g, sens.transfer)
    return SensCoefficients(groups, s, alpha, g, tau, coefficients(alpha, tau, sens.temperature))
