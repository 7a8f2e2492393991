"""Quantized copies of the classifier: every nn.Linear of the encoder, pooler and head becomes a
models.quant QuantLinear (group-wise RTN weights in the MixPE integer format, INT8 per-token activations).

models.quant.quantize_model only walks Llama-style decoders (model.model.layers), so the layers are
replaced here with its public QuantLinear and rtn_quantize; embeddings and LayerNorms stay FP32.
"""

from __future__ import annotations

import copy

from torch import nn

from models.quant import QuantConfig, QuantLinear, rtn_quantize


def quantize_linears(model: nn.Module, cfg: QuantConfig) -> nn.Module:
    """A deep copy of `model` with every nn.Linear replaced by a QuantLinear (cfg: wbits, group, wformat, act;
    the group must divide every in_features: 384 and 1536 for MiniLM, so 128 or 64 work)."""
    model = copy.deepcopy(model)
    linears = [(name, m) for name, m in model.named_modules() if isinstance(m, nn.Linear)]
    for name, lin in linears:
        group = cfg.group_for(name, lin.in_features)
        q = QuantLinear(rtn_quantize(lin.weight.detach(), cfg.wbits, group, cfg.wformat), lin.bias, cfg.act)
        parent, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent) if parent else model, child, q)
    return model.eval()
