"""Fine-tuning a TextClassifier: AdamW, linear decay, optional gradient clipping and parameter noise
(the latter two are FRS's phase-1 parameter smoothing, Eq. 4)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch
from tqdm import tqdm

from models.robust.classifier import TextClassifier
from models.robust.data import Sample


@dataclass(frozen=True)
class TrainConfig:
    """steps: optimizer steps of `batch` samples; lr: AdamW peak learning rate (linear decay to 0).
    clip: gradient-norm clip ρ (None: off). param_noise: std of Gaussian noise added to the smoothed
    parameters after every step (0: off). freeze_embeddings: keep the input embeddings fixed (a third of
    MiniLM's weights; freezing them makes CPU steps cheaper). seed: batch order, dropout and noise."""

    steps: int = 150
    batch: int = 16
    lr: float = 5e-5
    clip: float | None = None
    param_noise: float = 0.0
    freeze_embeddings: bool = True
    seed: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


def finetune(
    clf: TextClassifier,
    samples: Sequence[Sample],
    cfg: TrainConfig,
    noisy: Sequence[torch.nn.Parameter] = (),
    progress: bool = True,
    desc: str = "fine-tune",
) -> list[float]:
    """Train `clf` in place on `samples`; returns the loss per step. `noisy`: the parameters that get
    cfg.param_noise after each step."""
    if not samples:
        raise ValueError("no training samples: build the task with load_task(..., per_class > 0)")
    rng = np.random.default_rng(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    torch.manual_seed(cfg.seed)  # dropout
    model = clf.model
    model.get_input_embeddings().weight.requires_grad_(not cfg.freeze_embeddings)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=cfg.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1 - s / cfg.steps)
    losses = []
    model.train()
    for _ in tqdm(range(cfg.steps), desc=desc, disable=not progress, leave=False):
        idx = rng.choice(len(samples), size=min(cfg.batch, len(samples)), replace=False)
        enc = clf.encode([samples[i].text for i in idx])
        loss = model(**enc, labels=torch.tensor([samples[i].label for i in idx])).loss
        loss.backward()
        if cfg.clip is not None:
            torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], cfg.clip)
        opt.step()
        sched.step()
        opt.zero_grad()
        if cfg.param_noise:
            with torch.no_grad():
                for p in noisy:
                    p.add_(torch.randn(p.shape, generator=gen) * cfg.param_noise)
        losses.append(loss.item())
    model.eval()
    return losses
