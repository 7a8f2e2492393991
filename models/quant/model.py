"""Quantize a transformers causal LM (Llama, Mistral, Qwen2 structure) and evaluate it.

Every nn.Linear inside the decoder layers (model.model.layers) becomes a QuantLinear; the
embeddings, norms and lm_head stay FP32 (lm_head is quantized only with quantize_lm_head).

GPTQ calibrates sequentially: decoder layer i is calibrated on the activations produced by layers
0..i-1 already quantized, so each layer corrects for its predecessors' error. The inputs of all
linears of one layer are captured in one pass (not q/k/v before o_proj); the pass runs the whole
model up to layer i, which costs O(layers^2) layer evaluations but works for any decoder without
reproducing its call signature.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import nn

from models.quant.config import QuantConfig, QuantError
from models.quant.gptq import Hessian, gptq_quantize
from models.quant.linear import QuantLinear
from models.quant.weights import rtn_quantize
from sim.gemm import GemmOperands
from sim.workload import Linear, Workload


class _StopForward(Exception):
    """Raised after the layer being calibrated, to skip the rest of the model."""


def decoder_layers(model: nn.Module) -> nn.ModuleList:
    """The decoder layers of a Llama-style causal LM."""
    inner = getattr(model, "model", None)
    layers = getattr(inner, "layers", None)
    if not isinstance(layers, nn.ModuleList):
        raise QuantError(f"{type(model).__name__} has no model.layers: quantize Llama/Mistral/Qwen2-style causal LMs")
    return layers


def _linears(module: nn.Module) -> list[tuple[str, nn.Linear]]:
    return [(name, m) for name, m in module.named_modules() if isinstance(m, nn.Linear)]


def _replace(root: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    setattr(root.get_submodule(parent_name) if parent_name else root, child, new)


def _quantize_linear(name: str, linear: nn.Linear, cfg: QuantConfig, hessian: torch.Tensor | None) -> QuantLinear:
    group = cfg.group_for(name, linear.in_features)
    weight = linear.weight.detach().cpu()  # QuantLinear's integers live on the CPU
    if hessian is None:
        qw = rtn_quantize(weight, cfg.wbits, group, cfg.wformat)
    else:
        qw = gptq_quantize(weight, hessian, cfg.wbits, group, cfg.wformat, cfg.damp, cfg.act_order)
    return QuantLinear(qw, None if linear.bias is None else linear.bias.detach().cpu(), cfg.act)


def _batches(tokens: torch.Tensor | Sequence[torch.Tensor] | None, limit: int) -> list[torch.Tensor]:
    """Calibration sequences as (1, T) LongTensors, at most `limit`."""
    if tokens is None:
        seqs = []
    elif isinstance(tokens, torch.Tensor) and tokens.dim() == 2:
        seqs = list(tokens.unbind(0))
    else:
        seqs = list(tokens)
    if not seqs:
        raise QuantError("GPTQ needs calibration tokens: pass calib_tokens (a list of token sequences)")
    return [torch.as_tensor(s, dtype=torch.long).reshape(1, -1) for s in seqs[:limit]]


@torch.no_grad()
def quantize_model(
    model: nn.Module, cfg: QuantConfig, calib_tokens: torch.Tensor | Sequence[torch.Tensor] | None = None
) -> nn.Module:
    """Replace the decoder's nn.Linear layers by QuantLinear, in place; returns the model.

    calib_tokens: token sequences (a (B, T) LongTensor or a list of 1-D ones) for GPTQ; RTN ignores
    them. Every layer is checked against cfg (group dividing in_features) before anything changes.
    """
    model.eval()
    layers = decoder_layers(model)
    for i, layer in enumerate(layers):
        for name, lin in _linears(layer):
            cfg.group_for(f"model.layers.{i}.{name}", lin.in_features)
    head = model.get_output_embeddings() if cfg.quantize_lm_head else None
    if head is not None:
        cfg.group_for("lm_head", head.in_features)
    batches = _batches(calib_tokens, cfg.calib_samples) if cfg.method == "gptq" else []

    for i, layer in enumerate(layers):
        hessians: dict[str, Hessian] = {}
        if cfg.method == "gptq":
            hessians = _layer_hessians(model, layer, batches)
        for name, lin in _linears(layer):
            h = hessians[name].h if name in hessians else None
            _replace(layer, name, _quantize_linear(f"model.layers.{i}.{name}", lin, cfg, h))
    if head is not None:
        hessians = _layer_hessians(model, head, batches, stop=False) if cfg.method == "gptq" else {}
        model.set_output_embeddings(_quantize_linear("lm_head", head, cfg, hessians[""].h if hessians else None))
    return model


def _stop(*_: object) -> None:
    raise _StopForward


def _layer_hessians(
    model: nn.Module, block: nn.Module, batches: list[torch.Tensor], stop: bool = True
) -> dict[str, Hessian]:
    """Hessians of every nn.Linear in `block` from the model's current (partly quantized) activations."""
    hessians = {name: Hessian(lin.in_features) for name, lin in _linears(block)}
    handles = [
        lin.register_forward_hook(lambda _m, inp, _out, h=hessians[name]: h.add(inp[0]))
        for name, lin in _linears(block)
    ]
    if stop:
        handles.append(block.register_forward_hook(_stop))
    try:
        for ids in batches:
            try:
                model(input_ids=ids, use_cache=False)
            except _StopForward:
                pass
    finally:
        for handle in handles:
            handle.remove()
    return hessians


def set_engine(model: nn.Module, engine) -> None:
    """Route every QuantLinear's integer product through `engine` (None: back to torch)."""
    for m in model.modules():
        if isinstance(m, QuantLinear):
            m.engine = engine


@contextmanager
def recording(model: nn.Module) -> Iterator[list[tuple[str, GemmOperands]]]:
    """While active, appends (module name, port-level operands) of every QuantLinear call, in call order."""
    calls: list[tuple[str, GemmOperands]] = []
    handles = [
        m.register_forward_hook(
            lambda mod, inp, _out, name=name: calls.append((name, mod.to_operands(inp[0].reshape(-1, mod.in_features))))
        )
        for name, m in model.named_modules()
        if isinstance(m, QuantLinear)
    ]
    try:
        yield calls
    finally:
        for handle in handles:
            handle.remove()


@torch.no_grad()
def capture_operands(model: nn.Module, input_ids: torch.Tensor) -> dict[str, GemmOperands]:
    """Port-level operands of every QuantLinear for one forward pass on input_ids (1, T).

    Keys are module names; the values can be written with sim.workload.save_tensors for exact
    replay (each layer's F is in its QuantLinear.frac_bits).
    """
    with recording(model) as calls:
        model(input_ids=input_ids, use_cache=False)
    return dict(calls)


def operand_op(name: str, layer: QuantLinear, operands: GemmOperands) -> Linear:
    """The workload op `name` of one QuantLinear call with these operands (shape and precision)."""
    m, n, k = operands.shape
    return Linear(name=name, m=m, n=n, k=k, act=layer.act, wbits=layer.wbits, group=layer.group, wformat=layer.wformat)


def to_workload(model: nn.Module, input_ids: torch.Tensor, name: str = "quantized") -> Workload:
    """A sim workload of the model's quantized linears on input_ids (1, T), with their exact operands.

    One Linear op per QuantLinear (m = T tokens), in execution order; meta["frac_bits"] maps op
    names to F, which the host needs to rescale results. Workload.save writes it for sim.replay.
    """
    ops = capture_operands(model, input_ids)
    modules = dict(model.named_modules())
    linears = [operand_op(op_name, modules[op_name], operands) for op_name, operands in ops.items()]
    meta = {"frac_bits": {op_name: modules[op_name].frac_bits for op_name in ops}}
    return Workload(model=name, ops=linears, meta=meta, tensors=ops)


@torch.no_grad()
def evaluate(model: nn.Module, sequences: Iterable[torch.Tensor]) -> dict[str, float]:
    """Next-token perplexity and top-1 accuracy (fraction) over all predicted tokens of the sequences.

    sequences: 1-D or (1, T) token tensors, each scored on its own (no context across sequences).
    """
    model.eval()
    nll, hits, count = 0.0, 0, 0
    for seq in sequences:
        ids = torch.as_tensor(seq, dtype=torch.long).reshape(1, -1)
        if ids.shape[1] < 2:
            continue
        logits = model(input_ids=ids, use_cache=False).logits.float()[0, :-1]
        nll += float(nn.functional.cross_entropy(logits, ids[0, 1:], reduction="sum"))
        hits += int((logits.argmax(-1) == ids[0, 1:]).sum())
        count += ids.shape[1] - 1
    if count == 0:
        raise QuantError("evaluation needs at least one sequence of 2 or more tokens")
    return {"ppl": math.exp(nll / count), "top1": hits / count}


def perplexity(model: nn.Module, sequences: Iterable[torch.Tensor]) -> float:
    """exp(mean next-token negative log-likelihood) over all predicted tokens of the sequences."""
    return evaluate(model, sequences)["ppl"]


def compare(fp_model: nn.Module, q_model: nn.Module, sequences: Sequence[torch.Tensor]) -> dict[str, float]:
    """FP32 and quantized perplexity on the same sequences, and the relative increase (%)."""
    fp, q = perplexity(fp_model, sequences), perplexity(q_model, sequences)
    return {"fp32": fp, "quant": q, "increase_pct": 100.0 * (q / fp - 1.0)}
