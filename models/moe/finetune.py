"""The optional lightweight fine-tune of a carved model: differentiable routing plus load balancing.

Only the MoE layers train (shared FFN, experts, router rows and the routing scale s); attention, norms and
embeddings stay frozen. Routing is differentiable through the combine weights 1 + p_e s_e (s starts at 0, so
step 0 is the training-free model). Load balancing uses both CMoE's auxiliary-loss-free bias (each training
forward moves an expert's bias by router_bias_speed towards the mean token count) and a Switch-style loss
config.router_aux_loss_coef x E sum_e f_e P_e. Deliberate differences from JarvisPei/CMoE (LoRA r=8 on all linear
layers with Adam lr 5.65e-5): on a few-million-parameter model a full update of the MoE layers is as cheap as
LoRA, needs no peft, and leaves nothing to merge; the learning rates below suit that setting.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch
from tqdm import tqdm

from models.moe.modeling import CMoEForCausalLM, CMoEMLP, CMoERouter


def training_windows(tokenizer, preset: str, seq_len: int, count: int, seed: int = 0) -> list[torch.Tensor]:
    """`count` (seq_len,) windows of zoo training text, taken in turn from code, English and math (never test)."""
    from models import zoo

    per_task = count // 3 + 1
    tasks = [
        zoo.token_windows(tokenizer, t, "train", seq_len, per_task, preset, seed) for t in ("code", "english", "math")
    ]
    return [w for group in itertools.zip_longest(*tasks) for w in group if w is not None][:count]


def finetune(
    model: CMoEForCausalLM,
    windows: Sequence[torch.Tensor],
    steps: int,
    batch: int = 4,
    lr: float = 3e-4,
    scale_lr: float = 1e-3,
    seed: int = 0,
    progress: bool = True,
) -> dict[str, float]:
    """Train the MoE layers for `steps` AdamW steps of `batch` windows (1-D token tensors, drawn with `seed`).

    Returns {"loss_first", "loss_last"} (mean causal-LM loss of the first / last 10% of steps, nats/token).
    The model is left in eval mode."""
    gen = torch.Generator().manual_seed(seed)
    for p in model.parameters():
        p.requires_grad_(False)
    moe = [m for m in model.modules() if isinstance(m, CMoEMLP)]
    routers = [m for m in model.modules() if isinstance(m, CMoERouter)]
    scales = [r.extra_scale for r in routers]
    weights = [p for m in moe for n, p in m.named_parameters() if not n.endswith("extra_scale")]
    for p in weights + scales:
        p.requires_grad_(True)
    opt = torch.optim.AdamW(
        [{"params": weights, "lr": lr}, {"params": scales, "lr": scale_lr, "weight_decay": 0.0}], betas=(0.9, 0.95)
    )
    data = torch.stack([torch.as_tensor(w) for w in windows])
    coef = model.config.router_aux_loss_coef
    losses = []
    model.train()
    for _ in tqdm(range(steps), desc="cmoe fine-tune", disable=not progress):
        ids = data[torch.randint(len(data), (batch,), generator=gen)]
        loss = model(input_ids=ids, labels=ids, use_cache=False).loss
        losses.append(loss.item())
        aux = sum(r.aux_loss for r in routers).to(loss.device) if routers else 0.0
        opt.zero_grad(set_to_none=True)
        (loss + coef * aux).backward()
        opt.step()
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    tail = max(1, steps // 10)
    return {"loss_first": sum(losses[:tail]) / tail, "loss_last": sum(losses[-tail:]) / tail} if steps else {}
