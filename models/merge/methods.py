"""Merge methods as small pluggable classes behind a registry, following mergekit's generalized task arithmetic.

Every method merges one parameter tensor at a time: `method.merge(base, tuned, weights, densities, generator)`
with `base` the base model's tensor, `tuned` the K fine-tuned models' tensors (same shape), `weights` K scalars
(the config's weight, times K·σ under Sens-Merging) and `densities` K kept fractions in (0, 1].

Task-vector methods compute deltas τ_i = θ_i − θ₀, then
    1. sparsify each τ_i: none (task_arithmetic), top-|τ| magnitude trim (ties), or DARE's random drop with
       rescaling by 1/density (dare_*);
    2. weight: w_i·τ_i;
    3. sign consensus (ties, dare_ties): elect per element the sign of Σ_i w_i·τ_i, drop entries that disagree;
    4. sum; with `normalize` divide by Σ_i w_i (over the kept entries under consensus), as mergekit does;
    5. θ = θ₀ + λ·sum.
`linear` is a weighted average of the models themselves: Σ w_i θ_i / Σ w_i (no base needed).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import ClassVar

import torch

EPS = 1e-8


def magnitude_trim(delta: torch.Tensor, density: float) -> torch.Tensor:
    """TIES trimming: keep the round(density·numel) entries of largest |delta| (at least one), zero the rest."""
    if density >= 1.0:
        return delta
    k = max(1, round(density * delta.numel()))
    flat = delta.flatten()
    keep = torch.zeros_like(flat, dtype=torch.bool)
    keep[flat.abs().topk(k, sorted=False).indices] = True
    return (flat * keep).view_as(delta)


def dare_drop(delta: torch.Tensor, density: float, generator: torch.Generator | None) -> torch.Tensor:
    """DARE: keep each entry with probability `density` (drop rate p = 1 − density), rescale kept ones by
    1/density so the expectation equals `delta`."""
    if density >= 1.0:
        return delta
    keep = torch.rand(delta.shape, generator=generator, dtype=torch.float32) < density
    return delta * keep / density


def sign_consensus(weighted: torch.Tensor) -> torch.Tensor:
    """TIES sign election on (K, ...) weighted deltas: the elected sign is that of the summed mass (ties count as
    +); returns the boolean mask of entries whose sign matches it (zeros never match)."""
    elected = torch.where(weighted.sum(dim=0) >= 0, 1.0, -1.0).to(weighted.dtype)
    return weighted.sign() == elected


class MergeMethod(ABC):
    """One merge method: `merge` combines one parameter tensor of K models."""

    name: ClassVar[str]
    needs_base: ClassVar[bool] = True
    default_normalize: ClassVar[bool] = False

    def __init__(self, lam: float = 1.0, normalize: bool | None = None) -> None:
        self.lam = lam
        self.normalize = self.default_normalize if normalize is None else normalize

    @abstractmethod
    def merge(
        self,
        base: torch.Tensor | None,
        tuned: Sequence[torch.Tensor],
        weights: Sequence[float],
        densities: Sequence[float],
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """The merged tensor (shape of the inputs)."""


class Linear(MergeMethod):
    """Weighted average of the models: Σ w_i θ_i / Σ w_i (normalize: false gives the plain weighted sum)."""

    name = "linear"
    needs_base = False
    default_normalize = True

    def merge(self, base, tuned, weights, densities, generator=None):
        w = torch.tensor(list(weights), dtype=tuned[0].dtype).view(-1, *([1] * tuned[0].dim()))
        total = (w * torch.stack(list(tuned))).sum(dim=0)
        if self.normalize and w.sum().abs() > EPS:
            total = total / w.sum()
        return total


class GeneralizedTaskArithmetic(MergeMethod):
    """θ₀ + λ·combine(sparsify(τ_i)·w_i) with the steps in the module docstring; subclasses pick the steps."""

    sparsify: ClassVar[str | None] = None  # None | "magnitude" | "random"
    consensus: ClassVar[bool] = False

    def _sparse(self, delta: torch.Tensor, density: float, generator: torch.Generator | None) -> torch.Tensor:
        if self.sparsify == "magnitude":
            return magnitude_trim(delta, density)
        if self.sparsify == "random":
            return dare_drop(delta, density, generator)
        return delta

    def merge(self, base, tuned, weights, densities, generator=None):
        deltas = torch.stack([self._sparse(t - base, d, generator) for t, d in zip(tuned, densities, strict=True)])
        w = torch.tensor(list(weights), dtype=deltas.dtype).view(-1, *([1] * base.dim()))
        weighted = deltas * w
        if self.consensus:
            mask = sign_consensus(weighted)
            weighted = weighted * mask
            divisor = (w * mask).sum(dim=0)
        else:
            divisor = w.sum(dim=0).expand_as(base)
        total = weighted.sum(dim=0)
        if self.normalize:
            total = total / torch.where(divisor.abs() < EPS, torch.ones_like(divisor), divisor)
        return base + self.lam * total


class TaskArithmetic(GeneralizedTaskArithmetic):
    """θ₀ + λ Σ w_i τ_i (Ilharco et al., 2023)."""

    name = "task_arithmetic"


class Ties(GeneralizedTaskArithmetic):
    """TIES-Merging (Yadav et al., 2023): trim to the top-density magnitudes, elect signs, disjoint weighted mean."""

    name = "ties"
    sparsify = "magnitude"
    consensus = True
    default_normalize = True


class DareLinear(GeneralizedTaskArithmetic):
    """DARE (Yu et al., 2024) then task arithmetic: random drop at rate 1 − density, rescale by 1/density."""

    name = "dare_linear"
    sparsify = "random"


class DareTies(GeneralizedTaskArithmetic):
    """DARE's random drop and rescale, then TIES sign election and sum."""

    name = "dare_ties"
    sparsify = "random"
    consensus = True


METHODS: dict[str, type[MergeMethod]] = {m.name: m for m in (Linear, TaskArithmetic, Ties, DareLinear, DareTies)}
