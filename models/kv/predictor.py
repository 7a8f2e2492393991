"""AttentionPredictor's lightweight CNN: next-step block attention from the block-wise attention history.

The history of one KV head is a 2-D time series (H steps x W key blocks). The network, with the sizes of the
official code (`src/llama_attention/attnpred_llama_attention.py`): Conv2d(1->16, 3x3, pad 1) + ReLU,
Conv2d(16->32, 3x3, pad 1) + ReLU, mean over the time axis, Conv1d(32->1, kernel 1): one score per key block
(about 4.8 K parameters). One network is shared by every layer and head, as in the paper.

Training (the paper releases none; our choice, documented): pairs from captured attention of the model itself
(`attention_history.history_pairs`), loss = KL(target || softmax(prediction)) over the blocks a selector ranks
(neither sink nor local), the target being the next step's pooled row renormalized over those blocks. This
scores the ranking that top-k selection uses rather than the absolute attention values.

Files: `save_pretrained(folder)` writes config.json and model.safetensors; `AttentionCNN.from_pretrained`
reads them back.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn
from tqdm import tqdm

from models.kv.attention_history import HistoryPairs


@dataclass(frozen=True)
class PredictorConfig:
    """history: steps of attention fed in (paper 64 at 4k-32k contexts; 8 here, for 256-token contexts: at 64 the
    time average drowns the recent steps and the net trained 20x slower to a worse held-out recovery);
    block: keys pooled per block (paper 16; 4 suits budgets of 16-64 tokens); sink / local: tokens at the start
    / end always kept and never ranked (paper 64 / 64). The convolution sizes are the paper's."""

    history: int = 8
    block: int = 4
    sink: int = 4
    local: int = 4
    channels: tuple[int, int] = (16, 32)


class AttentionCNN(nn.Module):
    """(N, H, W) block-pooled attention history -> (N, W) scores (logits) of the next step's key blocks."""

    def __init__(self, config: PredictorConfig | None = None) -> None:
        super().__init__()
        self.config = config or PredictorConfig()
        c1, c2 = self.config.channels
        self.conv1 = nn.Conv2d(1, c1, 3, padding=1)
        self.conv2 = nn.Conv2d(c1, c2, 3, padding=1)
        self.head = nn.Conv1d(c2, 1, 1)

    def forward(self, history: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.conv1(history.unsqueeze(1)))
        x = F.relu(self.conv2(x))
        return self.head(x.mean(2)).squeeze(1)

    def macs(self, width: int) -> int:
        """Multiply-accumulates of one forward pass on one (H, width) history."""
        c1, c2 = self.config.channels
        positions = self.config.history * width
        return positions * (9 * c1 + 9 * c1 * c2) + width * c2

    def save_pretrained(self, folder: str | Path) -> None:
        from sim.files import atomic_write

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write(folder / "config.json", json.dumps(asdict(self.config), indent=1) + "\n")
        atomic_write(folder / "model.safetensors", lambda tmp: save_file(self.state_dict(), tmp))

    @classmethod
    def from_pretrained(cls, folder: str | Path) -> AttentionCNN:
        folder = Path(folder)
        for name in ("config.json", "model.safetensors"):
            if not (folder / name).is_file():
                raise FileNotFoundError(f"no {name} in {folder}: train one with `python -m models.kv train-predictor`")
        raw = json.loads((folder / "config.json").read_text())
        config = PredictorConfig(**{**raw, "channels": tuple(raw["channels"])})
        net = cls(config)
        net.load_state_dict(load_file(folder / "model.safetensors"))
        return net.eval()


def masked_log_softmax(scores: torch.Tensor, scored: torch.Tensor) -> torch.Tensor:
    """log softmax of `scores` (N, W) over the `scored` blocks; -inf elsewhere."""
    return torch.log_softmax(scores.masked_fill(~scored, -math.inf), -1)


def target_distribution(target: torch.Tensor, scored: torch.Tensor) -> torch.Tensor:
    """The pooled target row (N, W) renormalized over the scored blocks (zero elsewhere)."""
    t = target * scored
    return t / t.sum(-1, keepdim=True).clamp_min(1e-12)


def kl_loss(scores: torch.Tensor, target: torch.Tensor, scored: torch.Tensor) -> torch.Tensor:
    """Mean over pairs of KL(target || softmax(scores)) on the scored blocks (nats)."""
    p = target_distribution(target, scored)
    logq = masked_log_softmax(scores, scored)
    terms = torch.where(p > 0, p * (torch.log(p.clamp_min(1e-12)) - logq), torch.zeros_like(p))
    return terms.sum(-1).mean()


def recovery(scores: torch.Tensor, target: torch.Tensor, scored: torch.Tensor, k: int) -> float:
    """Attention recovery rate: the target's attention mass (over scored blocks) in the top-k blocks of
    `scores`, averaged over pairs (0..1)."""
    p = target_distribution(target, scored)
    top = scores.masked_fill(~scored, -math.inf).topk(k, -1).indices
    return p.gather(-1, top).sum(-1).mean().item()


def baseline_scores(pairs: HistoryPairs, seed: int) -> dict[str, torch.Tensor]:
    """Scores of untrained choices on `pairs`: random blocks (seeded), the last history row (attention repeats),
    and the sum of the history (accumulated attention, H2O-like)."""
    gen = torch.Generator().manual_seed(seed)
    return {
        "random": torch.rand(pairs.target.shape, generator=gen),
        "last_step": pairs.history[:, -1],
        "accumulated": pairs.history.sum(1),
    }


@dataclass
class TrainResult:
    """Held-out recovery rates (0..1) at `k` blocks for the predictor and the untrained choices, and the loss curve
    (nats per pair, one value per epoch)."""

    k: int
    recovery: dict[str, float]
    train_loss: list[float]
    held_out_loss: float
    pairs: int


def held_out_mask(pairs: HistoryPairs, fraction: float, gen: torch.Generator) -> torch.Tensor:
    """(N,) bool: the held-out pairs, a `fraction` of the groups (sequences) if the pairs have groups, else of
    the pairs; at least one."""
    if pairs.group is None:
        order = torch.randperm(len(pairs), generator=gen)[: max(1, int(fraction * len(pairs)))]
        return torch.zeros(len(pairs), dtype=torch.bool).index_fill_(0, order, True)
    groups = pairs.group.unique()
    chosen = groups[torch.randperm(len(groups), generator=gen)[: max(1, int(fraction * len(groups)))]]
    return torch.isin(pairs.group, chosen)


def train(
    pairs: HistoryPairs,
    config: PredictorConfig | None = None,
    epochs: int = 8,
    batch: int = 256,
    lr: float = 3e-3,
    held_out: float = 0.1,
    k: int = 2,
    seed: int = 0,
    progress: bool = True,
) -> tuple[AttentionCNN, TrainResult]:
    """A predictor trained with Adam on `pairs` (a `held_out` fraction kept aside, seeded), and its held-out
    recovery at `k` blocks beside random, last-step and accumulated-attention choices. Pairs with a `group`
    are split by group (whole sequences held out, at least one), otherwise by pair."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    test_mask = held_out_mask(pairs, held_out, gen)
    test, fit = pairs.subset(test_mask.nonzero()[:, 0]), pairs.subset((~test_mask).nonzero()[:, 0])
    if len(fit) == 0:
        raise ValueError("the held-out split leaves no training pairs: give more sequences")
    net = AttentionCNN(config)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    steps = epochs * math.ceil(len(fit) / batch)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(1, steps))
    curve = []
    bar = tqdm(total=steps, desc="train predictor", unit="batch", disable=not progress)
    for _ in range(epochs):
        total, count = 0.0, 0
        for idx in torch.randperm(len(fit), generator=gen).split(batch):
            b = fit.subset(idx)
            loss = kl_loss(net(b.history), b.target, b.scored)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total, count = total + loss.item() * len(idx), count + len(idx)
            bar.update()
        curve.append(total / count)
    bar.close()
    net.eval()
    with torch.no_grad():
        pred = torch.cat([net(test.history[i : i + batch]) for i in range(0, len(test), batch)])
        held_loss = kl_loss(pred, test.target, test.scored).item()
    scores = {"predictor": pred, **baseline_scores(test, seed)}
    rates = {name: recovery(s, test.target, test.scored, k) for name, s in scores.items()}
    return net, TrainResult(k, rates, curve, held_loss, len(pairs))
