"""Loading the models of a merge, checking they share one architecture (so task vectors θ_i − θ₀ exist), and
Sens-Merging's layer groups.

A model is named by a zoo name ("base", "code", "math", "english"; built by models.zoo for the config's
`zoo_preset`) or a local Hugging Face checkpoint folder (Llama / Mistral / Qwen2 / Mixtral, as models.zoo loads).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from models.merge.errors import MergeError
from models.zoo import NAMES, ZooError, build, load
from models.zoo.zoo import checkpoint_type

_BLOCK = re.compile(r"^(.*?\.layers\.\d+)\.")


def resolve(name: str, preset: str, seed: int, where: str) -> Path:
    """The checkpoint folder of a zoo name or a local folder (a folder of that name wins); MergeError naming
    `where` if it is missing or unsupported."""
    path = Path(name).expanduser()
    if name in NAMES and not path.is_dir():
        try:
            path = build(preset, seed)[name]
        except ZooError as err:
            raise MergeError(f"{where} ({name}): {err}") from None
    try:
        checkpoint_type(path)
    except ZooError as err:
        raise MergeError(f"{where} ({name}): {err}") from None
    return path


def load_checkpoint(path: Path, where: str) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Model (eval mode, float32) and tokenizer of a resolved folder; MergeError naming `where` if unreadable."""
    try:
        model, tokenizer = load(path)
    except (OSError, ValueError) as err:
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise MergeError(f"{where} ({path}): cannot load the checkpoint ({first})") from None
    return model.float(), tokenizer


def parameters(model: PreTrainedModel) -> dict[str, torch.Tensor]:
    """The model's distinct parameters by name (a tied lm_head appears once, as the embedding), detached."""
    return {name: p.detach() for name, p in model.named_parameters()}


def check_compatible(reference: PreTrainedModel, ref_where: str, other: PreTrainedModel, where: str) -> None:
    """MergeError naming `where` unless `other` has the reference's model type, parameter names and shapes."""
    if other.config.model_type != reference.config.model_type:
        raise MergeError(
            f"{where} is a {other.config.model_type} model but {ref_where} is {reference.config.model_type}: "
            "merge models fine-tuned from one base"
        )
    ref, mine = parameters(reference), parameters(other)
    for name, tensor in ref.items():
        if name not in mine:
            raise MergeError(f"{where} has no parameter {name} that {ref_where} has: merge models of one architecture")
        if mine[name].shape != tensor.shape:
            raise MergeError(
                f"{where}: {name} has shape {tuple(mine[name].shape)} but {tuple(tensor.shape)} in {ref_where}: "
                "merge models of one architecture"
            )
    extra = sorted(set(mine) - set(ref))
    if extra:
        raise MergeError(f"{where} has parameter {extra[0]} that {ref_where} lacks: merge models of one architecture")


def layer_group(name: str) -> str:
    """The Sens-Merging layer of a parameter: its decoder block ("model.layers.7") or, outside the blocks, the
    parameter itself ("model.embed_tokens.weight", "model.norm.weight")."""
    m = _BLOCK.match(name)
    return m.group(1) if m else name


def layer_groups(names: list[str]) -> list[str]:
    """The distinct layer groups of `names`, in order of first appearance."""
    return list(dict.fromkeys(layer_group(n) for n in names))


@dataclass
class Loaded:
    """The models of one merge: base (None for linear without a base) and fine-tuned, with where each came from."""

    base: PreTrainedModel | None
    tuned: list[PreTrainedModel]
    tokenizer: PreTrainedTokenizerBase
    paths: dict[str, Path]
