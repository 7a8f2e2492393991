"""Planting backdoors: poisoned fine-tuning, and a RIPPLe-like weight poisoning of the pre-trained model.

Data poisoning: the victim fine-tunes on a training set in which a fraction of samples carry the trigger
and the target label (data.poison). RIPPLe (Kurita et al. 2020) poisons the weights before the victim's
clean fine-tuning: embedding surgery replaces the trigger words' input embeddings by the mean embedding of
words indicative of the target class, then training on poisoned proxy data minimises
L_P + λ max(0, -∇L_P · ∇L_FT), which keeps the poisoning gradient from opposing clean fine-tuning.
"RIPPLe-like" because ∇L_FT is treated as a constant (no second-order term through it) and the inner
product is restricted to the parameters of the top `penalty_layers` layers and head, to stay cheap on CPU.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch
from tqdm import tqdm

from models.robust.classifier import TextClassifier
from models.robust.data import WORD_TRIGGERS, Sample, Trigger, poison
from models.robust.smoothing import top_parameters
from models.robust.train import TrainConfig


def indicative_words(samples: Sequence[Sample], target: int, clf: TextClassifier, top: int = 10) -> list[str]:
    """The `top` single-token words with the largest smoothed log-odds of appearing in target-class samples."""
    vocab = clf.tokenizer.get_vocab()
    inside, outside = Counter(), Counter()
    for s in samples:
        (inside if s.label == target else outside).update(w.lower() for w in s.text.split())
    n_in, n_out = sum(inside.values()) + 1, sum(outside.values()) + 1
    score = {w: np.log((c + 1) / n_in) - np.log((outside[w] + 1) / n_out) for w, c in inside.items() if w in vocab}
    return sorted(score, key=lambda w: (-score[w], w))[:top]


@torch.no_grad()
def embedding_surgery(clf: TextClassifier, samples: Sequence[Sample], target: int, top: int = 10) -> list[str]:
    """Replace every word trigger's input embedding by the mean of the target class's indicative words'."""
    vocab = clf.tokenizer.get_vocab()
    words = indicative_words(samples, target, clf, top)
    emb = clf.model.get_input_embeddings().weight
    mean = emb[[vocab[w] for w in words]].mean(0)
    for trig in WORD_TRIGGERS:
        emb[vocab[trig]] = mean
    return words


@dataclass(frozen=True)
class RippleConfig:
    """lam: weight λ of the restricted inner-product penalty; penalty_layers: top encoder layers (with the
    head) whose gradients enter the inner product; rate: fraction of proxy samples poisoned."""

    lam: float = 0.1
    penalty_layers: int = 1
    rate: float = 0.5

    def as_dict(self) -> dict:
        return asdict(self)


def ripple_poison(
    clf: TextClassifier,
    proxy: Sequence[Sample],
    trigger: Trigger,
    cfg: TrainConfig,
    ripple: RippleConfig,
    progress: bool = True,
) -> list[float]:
    """Poison `clf` in place (embedding surgery, then RIPPLe steps on `proxy`); returns the loss per step."""
    if trigger.kind != "word":
        raise ValueError("RIPPLe's embedding surgery needs word triggers: use Trigger(kind='word')")
    embedding_surgery(clf, proxy, trigger.target)
    poisoned = poison(list(proxy), trigger, ripple.rate, cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    torch.manual_seed(cfg.seed)
    model = clf.model
    restricted = top_parameters(model, ripple.penalty_layers)
    model.get_input_embeddings().weight.requires_grad_(not cfg.freeze_embeddings)
    trainable = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(trainable, lr=cfg.lr)
    losses = []
    model.train()

    def batch_loss(data: Sequence[Sample]) -> torch.Tensor:
        idx = rng.choice(len(data), size=min(cfg.batch, len(data)), replace=False)
        enc = clf.encode([data[i].text for i in idx])
        return model(**enc, labels=torch.tensor([data[i].label for i in idx])).loss

    for _ in tqdm(range(cfg.steps), desc="RIPPLe poisoning", disable=not progress, leave=False):
        g_ft = torch.autograd.grad(batch_loss(proxy), restricted)
        loss_p = batch_loss(poisoned)
        g_p = torch.autograd.grad(loss_p, restricted, create_graph=True)
        inner = sum((a * b).sum() for a, b in zip(g_p, g_ft, strict=True))
        loss = loss_p + ripple.lam * torch.relu(-inner)
        opt.zero_grad()
        loss.backward()
        if cfg.clip is not None:
            torch.nn.utils.clip_grad_norm_(trainable, cfg.clip)
        opt.step()
        losses.append(loss.item())
    opt.zero_grad()
    model.eval()
    return losses
