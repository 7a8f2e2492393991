"""FuseGPT group-level layer fusion: remove a block by folding its weights into its neighbours, then merge.

One fusion step (as JarvisPei/FuseGPT's fuse_utils.py does it):
1. pick the block b of least Macro Influence (recomputed on the current model after every step: iterative);
2. its group is `group_size` consecutive blocks around b, clipped at the model ends;
3. every linear of every other block t in the group becomes a FusedLinear holding the host weight W_t and the
   removed block's matching weight W_b, both frozen, with weight W_t + B_t A_t + (B_b A_b) * W_b (* is
   element-wise; B zero-initialised, so step 0 is exactly "block b dropped");
4. the low-rank factors and the group's RMSNorm weights are tuned so that the group without b reproduces the
   group's output with b (local distillation on hidden states entering the group);
5. every FusedLinear is folded back into a plain nn.Linear and b is removed: no runtime overhead remains.

Deliberate differences from the public code: the distillation loss is the mean squared error of the group's
output normalised by the target's mean square (FuseGPT's KL over the batch axis, `softmax(dim=0)`, is an odd
choice the notes flag); ranks, learning rates and budget suit a few-million-parameter model (rank 16, Adam lr
1e-2 for the coefficients and 1e-3 for the host LoRA and norms, 12 epochs over 64 windows of 128 tokens, instead
of rank 128, 1e-3 and 9.65e-6, 20 epochs over 128 x 2048 tokens); group size defaults to FuseGPT's 8, which
covers the whole of a 4-block zoo model. With inject=False the same procedure runs without the removed block's
weights (host LoRA and norms only): plain removal plus the same fine-tune budget, the fair baseline.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Sequence

import torch
from torch import nn
from torch.nn import functional as F
from tqdm import tqdm

from models.prune.errors import PruneError
from models.prune.importance import batches, block_importance, decoder_blocks, least_important, run_blocks, trace
from models.prune.remove import remove_blocks


class FusedLinear(nn.Module):
    """A frozen host linear plus frozen injected weights, each scaled element-wise by a learnable low-rank matrix.

    weight (out, in) = W + B A + sum_j (B_j A_j) * W_j, bias = b + sum_j c_j * b_j (where the host has a bias);
    A (rank, in) and A_j are Kaiming-uniform, B (out, rank), B_j and c_j start at zero."""

    def __init__(
        self,
        host: nn.Linear,
        injected: Sequence[nn.Linear],
        rank: int,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        out_f, in_f = host.weight.shape
        for inj in injected:
            if inj.weight.shape != host.weight.shape:
                raise PruneError(
                    f"cannot fuse a {tuple(inj.weight.shape)} linear into a {tuple(host.weight.shape)} one"
                )
        self.register_buffer("weight", host.weight.detach().clone())
        self.register_buffer("bias", None if host.bias is None else host.bias.detach().clone())
        self.register_buffer("injected", torch.stack([i.weight.detach() for i in injected]) if injected else None)
        self.lora_a = nn.Parameter(torch.empty(rank, in_f))
        self.lora_b = nn.Parameter(torch.zeros(out_f, rank))
        self.coef_a = nn.Parameter(torch.empty(len(injected), rank, in_f))
        self.coef_b = nn.Parameter(torch.zeros(len(injected), out_f, rank))
        for a in (self.lora_a, *self.coef_a):
            nn.init.kaiming_uniform_(a.data, a=math.sqrt(5), generator=generator)
        if host.bias is not None and injected:
            self.register_buffer("injected_bias", torch.stack([i.bias.detach() for i in injected]))
            self.bias_coef = nn.Parameter(torch.zeros(len(injected), out_f))
        else:
            self.injected_bias = self.bias_coef = None

    def coefficients(self) -> list[nn.Parameter]:
        """The parameters that scale injected weights (they get their own learning rate)."""
        return [self.coef_a, self.coef_b] + ([self.bias_coef] if self.bias_coef is not None else [])

    def merged(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The effective (weight, bias)."""
        w = self.weight + self.lora_b @ self.lora_a
        if self.injected is not None:
            w = w + (torch.bmm(self.coef_b, self.coef_a) * self.injected).sum(0)
        b = self.bias
        if self.bias_coef is not None:
            b = b + (self.bias_coef * self.injected_bias).sum(0)
        return w, b

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w, b = self.merged()  # fp32 where the coefficients are: cast to the activations' dtype (bf16 hosts)
        return F.linear(x, w.to(x.dtype), None if b is None else b.to(x.dtype))

    @torch.no_grad()
    def to_linear(self) -> nn.Linear:
        """A plain nn.Linear with the effective weight (computed in fp32, cast back to the host dtype)."""
        w, b = self.merged()
        out = nn.Linear(w.shape[1], w.shape[0], bias=b is not None, dtype=self.weight.dtype)
        out.weight.copy_(w)
        if b is not None:
            out.bias.copy_(b)
        return out


def _linears(block: nn.Module) -> dict[str, nn.Linear]:
    return {n: m for n, m in block.named_modules() if isinstance(m, nn.Linear)}


def _set(root: nn.Module, name: str, new: nn.Module) -> None:
    parent, _, child = name.rpartition(".")
    setattr(root.get_submodule(parent) if parent else root, child, new)


def group_of(index: int, depth: int, group_size: int) -> range:
    """The `group_size` consecutive blocks around block `index` in a model of `depth` blocks (clipped)."""
    size = min(group_size, depth)
    start = min(max(0, index - size // 2), depth - size)
    return range(start, start + size)


def _inject(
    hosts: Sequence[nn.Module], removed: nn.Module | None, rank: int, gen: torch.Generator
) -> list[FusedLinear]:
    """Replace every linear of `hosts` by a FusedLinear carrying `removed`'s matching linear (None: none)."""
    donor = _linears(removed) if removed is not None else {}
    fused = []
    for host in hosts:
        for name, lin in _linears(host).items():
            if removed is not None and name not in donor:
                raise PruneError(f"the removed block has no {name}: fusion needs blocks of one architecture")
            f = FusedLinear(lin, [donor[name]] if removed is not None else [], rank, gen).to(lin.weight.device)
            _set(host, name, f)
            fused.append(f)
    return fused


def _fold(hosts: Sequence[nn.Module]) -> None:
    for host in hosts:
        for name, m in list(host.named_modules()):
            if isinstance(m, FusedLinear):
                _set(host, name, m.to_linear().to(m.weight.device))


def fuse_block(
    model: nn.Module,
    windows: Sequence[torch.Tensor],
    index: int,
    group_size: int = 8,
    rank: int = 16,
    epochs: int = 12,
    batch: int = 8,
    lr: float = 1e-3,
    coef_lr: float = 1e-2,
    inject: bool = True,
    seed: int = 0,
    progress: bool = True,
) -> dict:
    """Remove block `index` by group-level fusion (in place; see the module docstring) and return its stats:
    group (block indices before removal), steps, loss_first / loss_last (normalised MSE of the group output,
    mean of the first / last 10% of steps), seconds."""
    t0 = time.time()
    blocks = decoder_blocks(model)
    if len(blocks) < 2:
        raise PruneError("a 1-block model has no neighbour to fuse into: keep at least one block")
    if not 0 <= index < len(blocks):
        raise PruneError(f"cannot fuse block {index} of a {len(blocks)}-block model: choose 0..{len(blocks) - 1}")
    group = group_of(index, len(blocks), group_size)
    data = batches(windows, batch)
    model.eval()
    start = [trace(model, ids, upto=group.start) for ids in data]
    with torch.no_grad():
        targets = [run_blocks(blocks[group.start : group.stop], t.inputs[-1], t.kwargs) for t in start]
    hosts = [blocks[i] for i in group if i != index]
    gen = torch.Generator().manual_seed(seed)
    frozen = {p: p.requires_grad for p in model.parameters()}
    for p in model.parameters():
        p.requires_grad_(False)
    fused = _inject(hosts, blocks[index] if inject else None, rank, gen)
    coefs = [p for f in fused for p in f.coefficients()]
    base = [p for f in fused for p in (f.lora_a, f.lora_b)]
    base += [p for h in hosts for n, p in h.named_parameters() if "norm" in n]
    for p in coefs + base:
        p.requires_grad_(True)
    groups = [{"params": base, "lr": lr}] + ([{"params": coefs, "lr": coef_lr}] if coefs else [])
    opt = torch.optim.Adam(groups, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.0)
    steps = epochs * len(data)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(1, steps))
    losses = []
    order = torch.Generator().manual_seed(seed + 1)
    bar = tqdm(total=steps, desc=f"{'fuse' if inject else 'tune'} block {index}", disable=not progress, leave=False)
    try:
        for _ in range(epochs):
            for j in torch.randperm(len(data), generator=order).tolist():
                pred = run_blocks(hosts, start[j].inputs[-1], start[j].kwargs)
                loss = F.mse_loss(pred, targets[j]) / targets[j].pow(2).mean()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                losses.append(loss.item())
                bar.update()
    finally:
        bar.close()
        _fold(hosts)
        for p, flag in frozen.items():
            p.requires_grad_(flag)
    remove_blocks(model, [index])
    tail = max(1, len(losses) // 10)
    return {
        "group": list(group),
        "steps": steps,
        "loss_first": sum(losses[:tail]) / tail if losses else None,
        "loss_last": sum(losses[-tail:]) / tail if losses else None,
        "seconds": time.time() - t0,
    }


def fuse(
    model: nn.Module,
    windows: Sequence[torch.Tensor],
    num_remove: int,
    metric: str = "macro",
    iterative: bool = True,
    group_size: int = 8,
    rank: int = 16,
    epochs: int = 12,
    batch: int = 8,
    lr: float = 1e-3,
    coef_lr: float = 1e-2,
    importance_windows: int = 16,
    inject: bool = True,
    seed: int = 0,
    progress: bool = True,
    callback: Callable[[nn.Module, dict], None] | None = None,
) -> tuple[nn.Module, dict]:
    """FuseGPT: remove `num_remove` decoder blocks of a Llama-style `model` by learnable fusion, in place.

    model: a LlamaForCausalLM-like model (model.model.layers); it ends as an ordinary model with
        num_remove fewer blocks (plain nn.Linear weights, renumbered layer_idx, updated config), ready for
        save_pretrained / from_pretrained and models.export.
    windows: equal-length 1-D token tensors used for the group-level fine-tune; the first
        `importance_windows` of them score block importance.
    metric: "macro" (FuseGPT Macro Influence) or "cosine" (ShortGPT Block Influence) chooses the block to fuse;
        iterative=True rescores the current model after every fusion, False ranks once up front.
    group_size: consecutive blocks (including the removed one) that receive its weights and are tuned.
    rank: rank of the learnable low-rank coefficient matrices (and of the host LoRA).
    epochs: passes over `windows` per fusion, in batches of `batch` windows; lr: host LoRA and norm learning
        rate; coef_lr: coefficient learning rate (Adam, betas 0.9/0.95, cosine schedule).
    inject: False tunes the same group without the removed block's weights (removal + equal fine-tune baseline).
    seed: seeds initialisation and data order; same seed, same model.
    callback: called as callback(model, record) after each fusion (e.g. to score every intermediate depth).

    Returns (model, stats): stats["removed"] lists the removed blocks in the original numbering (in fusion
    order), stats["steps"] one record per fusion (block, importance scores, group, losses, seconds) and
    stats["seconds"] the total time."""
    depth = len(decoder_blocks(model))
    if not 0 < num_remove < depth:
        raise PruneError(f"cannot remove {num_remove} of {depth} blocks: choose 1..{depth - 1}")
    if min(group_size, rank, epochs, batch, importance_windows) < 1:
        raise PruneError("group_size, rank, epochs, batch and importance_windows must each be at least 1")
    t0 = time.time()
    origin = list(range(depth))
    probe = list(windows[:importance_windows])
    order: list[int] = []
    if not iterative:
        scores = block_importance(model, probe, metric)
        order = sorted(range(depth), key=lambda i: (scores[i], i))[:num_remove]
    records = []
    for step in tqdm(range(num_remove), desc="FuseGPT" if inject else "remove + tune", disable=not progress):
        if iterative:
            scores = block_importance(model, probe, metric)
            index = least_important(scores)
        else:
            index = origin.index(order[step])
        rec = {"block": origin[index], "importance": scores if iterative else None}
        rec.update(
            fuse_block(
                model, windows, index, group_size, rank, epochs, batch, lr, coef_lr, inject, seed + step, progress
            )
        )
        rec["group"] = [origin[i] for i in rec["group"]]
        records.append(rec)
        origin.pop(index)
        if callback is not None:
            callback(model, rec)
    stats = {"removed": [r["block"] for r in records], "steps": records, "seconds": time.time() - t0}
    if not iterative:
        stats["importance"] = scores
    return model, stats


def select_blocks(
    model: nn.Module, windows: Sequence[torch.Tensor], num_remove: int, metric: str = "cosine", iterative: bool = False
) -> list[int]:
    """The `num_remove` blocks plain removal drops (original numbering): the lowest scores of one ranking
    (ShortGPT), or with iterative=True the lowest after each removal on a copy of the model."""
    depth = len(decoder_blocks(model))
    if not 0 < num_remove < depth:
        raise PruneError(f"cannot remove {num_remove} of {depth} blocks: choose 1..{depth - 1}")
    if not iterative:
        scores = block_importance(model, windows, metric)
        return sorted(sorted(range(depth), key=lambda i: (scores[i], i))[:num_remove])
    work, origin, chosen = copy.deepcopy(model), list(range(depth)), []
    for _ in range(num_remove):
        index = least_important(block_importance(work, windows, metric))
        chosen.append(origin.pop(index))
        remove_blocks(work, [index])
    return sorted(chosen)
