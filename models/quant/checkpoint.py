"""A quantized model as a checkpoint folder that keeps its integers: save it, load it back, get the same logits.

    save_quantized(qmodel, tokenizer, qcfg, out)     # after quantize_model(model, qcfg, ...)
    qmodel, tokenizer = load_quantized(out)          # QuantLinears rebuilt from the stored integers

The folder is the dense model's `config.json` and tokenizer files, `quant.json` (QuantConfig, the unquantized
parts' dtype, and per quantized layer: in/out features, group, bits, format, activations, F) and one
`model.safetensors` holding the unquantized tensors as they are plus, per quantized layer NAME:

    NAME.qweight  uint8 (n, ceil(k * b / 8))      q's low b bits, packed little-endian along k per output column
    NAME.qzeros   uint8 (n, ceil(k / G * b / 8))  the zero points z, packed the same way (0 when signed)
    NAME.scales   uint16 (k / G, n)               the unsigned 16-bit group scales S (real scale S * 2**-F)
    NAME.bias     float32 (n,)                    where the layer has a bias

so a 4-bit layer takes k * n / 2 bytes of weights. Loading checks every file and every layer's tensor shapes
first (InputFileError naming the file and the fix), then builds the model from config.json and puts the
QuantLinears in place: the integers are the saved ones, so the logits are exactly the saved model's.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from models.files import InputFileError, check_checkpoint, read_json
from models.quant.config import QuantConfig
from models.quant.linear import QuantLinear
from models.quant.weights import QuantizedWeight

MANIFEST = "quant.json"
WEIGHTS = "model.safetensors"
FORMAT = 1
FIX = "save it again with `python -m models.quant save`"


def pack_bits(values: torch.Tensor, bits: int) -> torch.Tensor:
    """(k, n) integers (their low `bits` bits are kept) -> (n, ceil(k * bits / 8)) uint8, column by column,
    bit j of element i at bit position i * bits + j (little-endian)."""
    v = values.T.contiguous().numpy().astype(np.int64) & ((1 << bits) - 1)
    planes = (v[:, :, None] >> np.arange(bits)) & 1  # (n, k, bits)
    return torch.from_numpy(np.packbits(planes.reshape(v.shape[0], -1).astype(np.uint8), axis=1, bitorder="little"))


def unpack_bits(packed: torch.Tensor, k: int, bits: int, signed: bool) -> torch.Tensor:
    """The (k, n) int64 values `pack_bits` packed (sign-extended from `bits` bits when `signed`)."""
    n = packed.shape[0]
    planes = np.unpackbits(packed.numpy(), axis=1, count=k * bits, bitorder="little").reshape(n, k, bits)
    v = (planes.astype(np.int64) << np.arange(bits)).sum(-1)
    if signed:
        v = np.where(v >= 1 << (bits - 1), v - (1 << bits), v)
    return torch.from_numpy(v.T.copy())


def _layers(model: nn.Module) -> dict[str, QuantLinear]:
    return {name: m for name, m in model.named_modules() if isinstance(m, QuantLinear)}


def _layer_entry(layer: QuantLinear) -> dict:
    return {
        "in_features": layer.in_features,
        "out_features": layer.out_features,
        "group": layer.group,
        "wbits": layer.wbits,
        "wformat": layer.wformat,
        "act": layer.act,
        "frac_bits": layer.frac_bits,
        "bias": layer.bias is not None,
    }


def quantized_tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    """The tensors `save_quantized` stores: the unquantized ones as they are, each QuantLinear packed."""
    layers = _layers(model)
    out = {}
    for key, value in model.state_dict().items():
        if key.rpartition(".")[0] in layers:
            continue  # written packed below
        out[key] = value.detach().cpu().contiguous().clone()  # clone: tied embeddings share storage
    for name, layer in layers.items():
        qw = layer.qweight
        out[f"{name}.qweight"] = pack_bits(qw.q, qw.wbits)
        out[f"{name}.qzeros"] = pack_bits(qw.zero, qw.wbits)
        out[f"{name}.scales"] = torch.from_numpy(qw.scale.cpu().numpy().astype(np.uint16))  # S < 2**16
        if layer.bias is not None:
            out[f"{name}.bias"] = layer.bias.detach().cpu().float().contiguous()
    return out


def save_quantized(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, qcfg: QuantConfig, out: Path, extra: dict | None = None
) -> None:
    """Write the quantized `model` (after quantize_model with `qcfg`) and its tokenizer to the folder `out`,
    atomically (a staging folder beside it, then renamed); `extra` goes into quant.json as "results"."""
    layers = _layers(model)
    if not layers:
        raise InputFileError("the model has no quantized layers: run quantize_model before save_quantized")
    floating = [p.dtype for p in model.parameters() if p.is_floating_point()]
    manifest = {
        "format": FORMAT,
        "quant": qcfg.as_dict(),
        "dtype": str(floating[0]).removeprefix("torch.") if floating else "float32",
        "layers": {name: _layer_entry(layer) for name, layer in layers.items()},
        "results": extra or {},
    }
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        model.config.save_pretrained(stage)
        tokenizer.save_pretrained(stage)
        save_file(quantized_tensors(model), stage / WEIGHTS, metadata={"format": "pt", "mixkit_quant": str(FORMAT)})
        (stage / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
        if out.exists():
            shutil.rmtree(out)
        stage.rename(out)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise


def check_quantized(path: Path) -> dict:
    """quant.json of the quantized checkpoint folder `path`, once every file of it is whole and readable
    (standard library only); InputFileError naming the broken file otherwise."""
    path = Path(path)
    if not (path / MANIFEST).is_file():
        raise InputFileError(f"{path} has no {MANIFEST}: pass a folder written by `python -m models.quant save`")
    check_checkpoint(path, FIX)
    if not (path / WEIGHTS).is_file():
        raise InputFileError(f"{path / WEIGHTS} is missing: {FIX}")
    manifest = read_json(path / MANIFEST, FIX)
    if (
        not isinstance(manifest, dict)
        or manifest.get("format") != FORMAT
        or not isinstance(manifest.get("layers"), dict)
    ):
        raise InputFileError(f"{path / MANIFEST} is not a format-{FORMAT} quantized-checkpoint manifest: {FIX}")
    return manifest


def _expected_shapes(name: str, entry: dict) -> dict[str, tuple[int, ...]]:
    k, n, group, bits = entry["in_features"], entry["out_features"], entry["group"], entry["wbits"]
    shapes = {
        f"{name}.qweight": (n, -(-k * bits // 8)),
        f"{name}.qzeros": (n, -(-(k // group) * bits // 8)),
        f"{name}.scales": (k // group, n),
    }
    if entry["bias"]:
        shapes[f"{name}.bias"] = (n,)
    return shapes


def _quant_linear(name: str, entry: dict, tensors: dict[str, torch.Tensor]) -> QuantLinear:
    k, group, bits, wformat = entry["in_features"], entry["group"], entry["wbits"], entry["wformat"]
    signed = wformat == "signed"
    qw = QuantizedWeight(
        q=unpack_bits(tensors[f"{name}.qweight"], k, bits, signed).to(torch.int16),
        scale=tensors[f"{name}.scales"].to(torch.int32),
        zero=unpack_bits(tensors[f"{name}.qzeros"], k // group, bits, signed=False).to(torch.int16),
        frac_bits=entry["frac_bits"],
        group=group,
        wbits=bits,
        wformat=wformat,
    )
    return QuantLinear(qw, tensors.get(f"{name}.bias"), entry["act"])


def load_quantized(path: str | Path) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """The quantized model (eval mode, eager attention) and tokenizer `save_quantized` wrote to `path`."""
    path = Path(path)
    manifest = check_quantized(path)
    try:
        tensors = load_file(path / WEIGHTS)
    except (SafetensorError, OSError) as e:
        raise InputFileError(f"{path / WEIGHTS} cannot be read ({e}): {FIX}") from None
    try:
        layers = {name: dict(entry) for name, entry in manifest["layers"].items()}
        expected = {key: shape for name, e in layers.items() for key, shape in _expected_shapes(name, e).items()}
    except (KeyError, TypeError, ZeroDivisionError):
        raise InputFileError(f"{path / MANIFEST} has a malformed layer entry: {FIX}") from None
    for key, shape in expected.items():
        if key not in tensors or tuple(tensors[key].shape) != shape:
            got = "missing" if key not in tensors else f"shaped {tuple(tensors[key].shape)}"
            raise InputFileError(f"{path / WEIGHTS}: {key} is {got}, {MANIFEST} needs {shape}: {FIX}")
    config = AutoConfig.from_pretrained(path, local_files_only=True)
    model = AutoModelForCausalLM.from_config(config, attn_implementation="eager")
    model.to(getattr(torch, manifest.get("dtype", "float32")))
    for name, entry in layers.items():
        parent, _, child = name.rpartition(".")
        try:
            owner = model.get_submodule(parent) if parent else model
        except AttributeError:
            raise InputFileError(f"{path / MANIFEST} names a layer {name} config.json's model lacks: {FIX}") from None
        setattr(owner, child, _quant_linear(name, entry, tensors))
    missing, unexpected = model.load_state_dict({k: v for k, v in tensors.items() if k not in expected}, strict=False)
    missing = [key for key in missing if key.rpartition(".")[0] not in layers]  # QuantLinears: already built
    if missing or unexpected:
        key = (missing or unexpected)[0]
        raise InputFileError(f"{path / WEIGHTS}: tensor {key} is {'missing' if missing else 'unexpected'}: {FIX}")
    model.eval()
    return model, AutoTokenizer.from_pretrained(path, local_files_only=True)
