"""Plain block removal (ShortGPT-style): drop whole decoder blocks from a Llama-architecture model."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from transformers import PreTrainedModel


def remove_blocks(model: PreTrainedModel, indices: Iterable[int]) -> PreTrainedModel:
    """Drop the decoder blocks at `indices` (0-based) in place and return `model`.

    The remaining blocks are renumbered (attention `layer_idx`, which indexes the KV cache) and the config's
    `num_hidden_layers` (and `layer_types`, where the config has it) follow, so the result saves with
    `save_pretrained` and loads back with `from_pretrained` as an ordinary, shallower model.
    """
    layers = model.model.layers
    drop = sorted(set(int(i) for i in indices))
    if not drop:
        return model
    if drop[0] < 0 or drop[-1] >= len(layers):
        raise ValueError(
            f"block index {drop[-1] if drop[-1] >= 0 else drop[0]} is out of range: "
            f"the model has blocks 0..{len(layers) - 1}"
        )
    if len(drop) >= len(layers):
        raise ValueError(f"cannot remove all {len(layers)} blocks: keep at least one")
    keep = [i for i in range(len(layers)) if i not in drop]
    model.model.layers = torch.nn.ModuleList(layers[i] for i in keep)
    for new_idx, layer in enumerate(model.model.layers):
        layer.self_attn.layer_idx = new_idx
    model.config.num_hidden_layers = len(keep)
    if getattr(model.config, "layer_types", None) is not None:
        model.config.layer_types = [model.config.layer_types[i] for i in keep]
    return model
