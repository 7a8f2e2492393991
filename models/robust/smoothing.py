"""FRS's biphased model parameter smoothing (BMPS).

Phase 1 (fine-tuning, Eq. 4): clipped-gradient steps with Gaussian noise on the parameters (train.finetune
with clip and param_noise). Phase 2 (inference, Eq. 5): K copies θ_k = θ + N(0, σ²) with noise only on the
top H encoder layers nearest the output, plus the pooler and the classification head. The paper's default
H = 10 exceeds MiniLM's 6 layers, so H = 10 here means every encoder layer (the embeddings stay exact).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass

import torch

from models.robust.classifier import TextClassifier
from models.robust.data import Sample
from models.robust.train import TrainConfig, finetune


def top_parameters(model: torch.nn.Module, layers: int) -> list[torch.nn.Parameter]:
    """Parameters of the top `layers` encoder layers (all of them if there are fewer), pooler and head."""
    blocks = list(model.bert.encoder.layer)[-layers:] if layers > 0 else []
    heads = [m for m in (model.bert.pooler, model.classifier) if m is not None]
    return [p for m in blocks + heads for p in m.parameters()]


@dataclass(frozen=True)
class ParameterSmoothing:
    """Phase 2: `copies` (K) noisy copies, noise std `sigma` on the top `layers` (H) layers; copy k's noise
    is seeded by (seed, k), so the copies are the same on every call."""

    copies: int = 20
    sigma: float = 0.01
    layers: int = 10
    seed: int = 0

    def as_dict(self) -> dict:
        return asdict(self)

    @contextmanager
    def copy(self, model: torch.nn.Module, k: int) -> Iterator[torch.nn.Module]:
        """The model with copy k's noise added in place; the exact parameters come back afterwards."""
        params = top_parameters(model, self.layers)
        saved = [p.detach().clone() for p in params]
        gen = torch.Generator().manual_seed(self.seed * 100_003 + k)
        with torch.no_grad():
            for p in params:
                p.add_(torch.randn(p.shape, generator=gen) * self.sigma)
        try:
            yield model
        finally:
            with torch.no_grad():
                for p, s in zip(params, saved, strict=True):
                    p.copy_(s)


def bmps_finetune(
    clf: TextClassifier,
    samples: Sequence[Sample],
    cfg: TrainConfig,
    smoothing: ParameterSmoothing,
    progress: bool = True,
) -> list[float]:
    """Phase 1: fine-tune with cfg's clip and param_noise on the parameters phase 2 perturbs."""
    if cfg.clip is None or cfg.param_noise <= 0:
        raise ValueError("BMPS phase 1 needs clip and param_noise > 0 in the TrainConfig")
    return finetune(clf, samples, cfg, top_parameters(clf.model, smoothing.layers), progress, "BMPS fine-tune")
