"""Block importance of a Llama-style model: FuseGPT's Macro Influence and ShortGPT's Block Influence.

Both are scores in [0, 2] where higher means more important (remove the lowest first), averaged over every
token of the given windows:

* macro (FuseGPT): 1 - cos(H, H^-i), H the final decoder output (before the last norm) of the whole model and
  H^-i the same with block i skipped: how much information the *whole model* loses without block i.
* cosine (ShortGPT Block Influence): 1 - cos(x_in_i, x_out_i) of block i's own input and output.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from models.prune.errors import PruneError


class _StopForward(Exception):
    """Raised at the first traced block, to skip the rest of the model."""


@dataclass
class Trace:
    """One batch through the decoder: the hidden state entering each block (B, T, D), the final decoder output
    before the last norm (B, T, D), and the keyword arguments every block was called with (mask, rotary)."""

    inputs: list[torch.Tensor]
    output: torch.Tensor | None
    kwargs: dict


def decoder_blocks(model: nn.Module) -> nn.ModuleList:
    """The decoder blocks (`model.model.layers`) of a Llama-style causal LM."""
    layers = getattr(getattr(model, "model", None), "layers", None)
    if not isinstance(layers, nn.ModuleList) or not hasattr(model.model, "norm"):
        raise PruneError(f"{type(model).__name__} has no model.layers and model.norm: prune Llama-style causal LMs")
    return layers


def batches(windows: Sequence[torch.Tensor], batch: int) -> list[torch.Tensor]:
    """Equal-length 1-D token windows stacked into (batch, T) tensors (the last one may be smaller)."""
    if not windows:
        raise PruneError("no token windows given: pass at least one calibration window")
    if len({int(torch.as_tensor(w).numel()) for w in windows}) != 1:
        raise PruneError("token windows differ in length: cut them to one seq_len")
    data = torch.stack([torch.as_tensor(w, dtype=torch.long).reshape(-1) for w in windows])
    return list(data.split(max(1, batch)))


@torch.no_grad()
def trace(model: nn.Module, ids: torch.Tensor, upto: int | None = None) -> Trace:
    """Run `ids` (B, T) through the decoder recording each block's input; with `upto`, stop at block `upto`
    (its input is the last one recorded and `output` is None)."""
    blocks = decoder_blocks(model)
    inputs: list[torch.Tensor] = []
    kwargs: dict = {}
    output: list[torch.Tensor] = []

    def record(_m, args, kw, stop: bool = False):
        inputs.append(args[0] if args else kw["hidden_states"])
        if not kwargs:
            kwargs.update({k: v for k, v in kw.items() if k != "hidden_states"})
        if stop:
            raise _StopForward

    last = len(blocks) - 1 if upto is None else upto
    handles = [b.register_forward_pre_hook(record, with_kwargs=True) for b in blocks[:last]]
    handles.append(
        blocks[last].register_forward_pre_hook(lambda m, a, k: record(m, a, k, upto is not None), with_kwargs=True)
    )
    handles.append(model.model.norm.register_forward_pre_hook(lambda _m, args: output.append(args[0])))
    try:
        model.model(input_ids=ids.to(model.device), use_cache=False)  # the inner model: no device hook
    except _StopForward:
        pass
    finally:
        for h in handles:
            h.remove()
    return Trace(inputs, output[0] if output else None, kwargs)


def run_blocks(blocks: Sequence[nn.Module], hidden: torch.Tensor, kwargs: dict) -> torch.Tensor:
    """`hidden` (B, T, D) through `blocks` in order, with the keyword arguments recorded by `trace`."""
    for block in blocks:
        hidden = block(hidden, **kwargs)
    return hidden


def _token_cos(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return F.cosine_similarity(a.float().flatten(0, -2), b.float().flatten(0, -2), dim=-1)


@torch.no_grad()
def macro_influence(model: nn.Module, windows: Sequence[torch.Tensor], batch: int = 8) -> list[float]:
    """FuseGPT Macro Influence per block: 1 - mean token cosine of the final decoder output with and without it."""
    blocks = decoder_blocks(model)
    sims = torch.zeros(len(blocks), dtype=torch.float64)
    count = 0
    for ids in batches(windows, batch):
        t = trace(model, ids)
        for i in range(len(blocks)):
            skipped = run_blocks(blocks[i + 1 :], t.inputs[i], t.kwargs)
            sims[i] += _token_cos(skipped, t.output).sum().item()
        count += ids.numel()
    return (1.0 - sims / count).tolist()


@torch.no_grad()
def cosine_influence(model: nn.Module, windows: Sequence[torch.Tensor], batch: int = 8) -> list[float]:
    """ShortGPT Block Influence per block: 1 - mean token cosine of the block's input and output."""
    blocks = decoder_blocks(model)
    sims = torch.zeros(len(blocks), dtype=torch.float64)
    count = 0
    for ids in batches(windows, batch):
        t = trace(model, ids)
        states = [*t.inputs, t.output]
        for i in range(len(blocks)):
            sims[i] += _token_cos(states[i], states[i + 1]).sum().item()
        count += ids.numel()
    return (1.0 - sims / count).tolist()


METRICS: dict[str, Callable[..., list[float]]] = {"macro": macro_influence, "cosine": cosine_influence}


def block_importance(model: nn.Module, windows: Sequence[torch.Tensor], metric: str = "macro") -> list[float]:
    """Importance of each decoder block (higher: keep) on `windows` (equal-length 1-D token tensors).

    metric: "macro" (FuseGPT Macro Influence, whole-model output) or "cosine" (ShortGPT Block Influence)."""
    if metric not in METRICS:
        raise PruneError(f"unknown importance metric {metric!r}: choose one of {', '.join(METRICS)}")
    was_training = model.training
    model.eval()
    try:
        return METRICS[metric](model, windows)
    finally:
        model.train(was_training)


def least_important(scores: Sequence[float]) -> int:
    """Index of the block to remove next: the lowest score (the first of equals)."""
    return min(range(len(scores)), key=lambda i: (scores[i], i))
