"""Merge configs: mergekit-style YAML (merge_method, base_model, models, parameters, dtype) plus a `sens_merging`
block.

    merge_method: ties                 # linear | task_arithmetic | ties | dare_linear | dare_ties
    base_model: base                   # zoo name (base, code, math, english) or a local checkpoint folder
    models:
      - model: code
        parameters: {weight: 1.0, density: 0.5}
      - model: /path/to/my/finetune
        calibration: notes.txt         # Sens-Merging calibration text: a zoo task or a UTF-8 text file
    parameters: {lambda: 0.5, normalize: true, density: 0.5}   # globals; a model's own parameters win
    sens_merging: {temperature: 1.0, samples: 16, seq_len: 128}  # absent or `enabled: false`: plain method
    dtype: float32
    zoo_preset: default                # which zoo builds the zoo names (and zoo_seed: 0, which of its builds)
    seed: 0                            # DARE's random drops

Precedence follows mergekit: a model's `parameters` override the global `parameters`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from models.merge.errors import MergeError

DTYPES = ("float32", "float16", "bfloat16")
MODEL_PARAMS = ("weight", "density")
GLOBAL_PARAMS = (*MODEL_PARAMS, "lambda", "normalize")
TOP_KEYS = (
    "merge_method",
    "base_model",
    "models",
    "parameters",
    "sens_merging",
    "dtype",
    "zoo_preset",
    "zoo_seed",
    "seed",
    "tokenizer_source",
)
NORMALIZERS = ("l2", "l1")
SALIENCIES = ("weight", "delta")
TRANSFERS = ("alignment", "distance")


@dataclass(frozen=True)
class ModelEntry:
    """One model to merge: a zoo name or checkpoint folder, its weight, its kept fraction of the task vector
    (TIES/DARE `density`, 0 < density ≤ 1), and its Sens-Merging calibration source (a zoo task or a text file;
    None: the zoo name itself, which is also a task)."""

    model: str
    weight: float = 1.0
    density: float = 1.0
    calibration: str | None = None


@dataclass(frozen=True)
class SensConfig:
    """Sens-Merging settings (see models.merge.sensitivity for the equations).

    samples: calibration windows per task; seq_len: tokens per window; temperature: T of the per-layer softmax
    over models; normalize: how layer sensitivities are scaled per model ("l2": s/‖s‖₂, "l1": s/Σs);
    saliency: "weight" scores |θ·∂L/∂θ|, "delta" scores |τ·∂L/∂θ|; transfer: "alignment" favours models whose
    logits agree with the other experts on those experts' data, "distance" (the third-party code's sign) favours
    those that disagree."""

    enabled: bool = True
    samples: int = 16
    seq_len: int = 128
    temperature: float = 1.0
    normalize: str = "l2"
    saliency: str = "weight"
    transfer: str = "alignment"


@dataclass(frozen=True)
class MergeConfig:
    """A parsed merge config; `models` are the fine-tuned models, `base_model` the model they share."""

    merge_method: str
    models: tuple[ModelEntry, ...]
    base_model: str | None = None
    lam: float = 1.0
    normalize: bool | None = None  # None: the method's default (mergekit's)
    sens: SensConfig | None = None
    dtype: str = "float32"
    zoo_preset: str = "default"
    zoo_seed: int = 0
    seed: int = 0
    tokenizer_source: str = "base"
    source: dict[str, Any] = field(default_factory=dict, compare=False)


def _number(
    where: str, value: Any, low: float | None = None, high: float | None = None, low_open: bool = False
) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise MergeError(f"{where} is {value!r}: expected a finite number")
    if (low is not None and (value < low or (low_open and value == low))) or (high is not None and value > high):
        bounds = f"{'(' if low_open else '['}{low}, {high if high is not None else '∞'}]"
        raise MergeError(f"{where} is {value}: expected a number in {bounds}")
    return float(value)


def _mapping(where: str, value: Any, allowed: tuple[str, ...]) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise MergeError(f"{where} must be a mapping, got {type(value).__name__}")
    for key in value:
        if key not in allowed:
            raise MergeError(f"{where} has unknown key {key!r}: allowed keys are {', '.join(allowed)}")
    return value


def _choice(where: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise MergeError(f"{where} is {value!r}: use one of {', '.join(choices)}")
    return value


def _sens(raw: Any) -> SensConfig | None:
    fields = tuple(SensConfig.__dataclass_fields__)
    if raw is None or raw is False:
        return None
    if raw is True:
        return SensConfig()
    raw = _mapping("sens_merging", raw, fields)
    if not raw.get("enabled", True):
        return None
    samples = raw.get("samples", SensConfig.samples)
    seq_len = raw.get("seq_len", SensConfig.seq_len)
    for key, v in (("samples", samples), ("seq_len", seq_len)):
        if isinstance(v, bool) or not isinstance(v, int) or v < (1 if key == "samples" else 2):
            raise MergeError(f"sens_merging.{key} is {v!r}: expected an integer ≥ {1 if key == 'samples' else 2}")
    return SensConfig(
        samples=samples,
        seq_len=seq_len,
        temperature=_number("sens_merging.temperature", raw.get("temperature", 1.0), 0.0, low_open=True),
        normalize=_choice("sens_merging.normalize", raw.get("normalize", "l2"), NORMALIZERS),
        saliency=_choice("sens_merging.saliency", raw.get("saliency", "weight"), SALIENCIES),
        transfer=_choice("sens_merging.transfer", raw.get("transfer", "alignment"), TRANSFERS),
    )


def _entry(i: int, raw: Any, defaults: dict) -> ModelEntry:
    where = f"models[{i}]"
    if isinstance(raw, str):
        raw = {"model": raw}
    raw = _mapping(where, raw, ("model", "parameters", "calibration"))
    if not isinstance(raw.get("model"), str) or not raw["model"]:
        raise MergeError(f"{where} has no 'model': give a zoo name or a checkpoint folder")
    params = {**defaults, **_mapping(f"{where}.parameters", raw.get("parameters"), MODEL_PARAMS)}
    calibration = raw.get("calibration")
    if calibration is not None and not isinstance(calibration, str):
        raise MergeError(f"{where}.calibration is {calibration!r}: give a zoo task or a text file")
    return ModelEntry(
        model=raw["model"],
        weight=_number(f"{where}.parameters.weight", params.get("weight", 1.0)),
        density=_number(f"{where}.parameters.density", params.get("density", 1.0), 0.0, 1.0, low_open=True),
        calibration=calibration,
    )


def parse_config(raw: Any) -> MergeConfig:
    """A MergeConfig from the YAML's data; MergeError naming the offending key otherwise."""
    from models.merge.methods import METHODS  # the registry decides which names are valid

    raw = _mapping("config", raw, TOP_KEYS)
    method = _choice("merge_method", raw.get("merge_method"), tuple(METHODS))
    params = _mapping("parameters", raw.get("parameters"), GLOBAL_PARAMS)
    models = raw.get("models")
    if not isinstance(models, list) or not models:
        raise MergeError("models must be a non-empty list of {model: NAME_OR_FOLDER, parameters: {...}}")
    defaults = {k: params[k] for k in MODEL_PARAMS if k in params}
    entries = tuple(_entry(i, m, defaults) for i, m in enumerate(models))
    base = raw.get("base_model")
    if base is not None and not isinstance(base, str):
        raise MergeError(f"base_model is {base!r}: give a zoo name or a checkpoint folder")
    if base is None and METHODS[method].needs_base:
        raise MergeError(f"merge_method {method} needs a base_model: add base_model: NAME_OR_FOLDER")
    normalize = params.get("normalize")
    if normalize is not None and not isinstance(normalize, bool):
        raise MergeError(f"parameters.normalize is {normalize!r}: expected true or false")
    for key in ("seed", "zoo_seed"):
        if isinstance(raw.get(key, 0), bool) or not isinstance(raw.get(key, 0), int):
            raise MergeError(f"{key} is {raw[key]!r}: expected an integer")
    sens = _sens(raw.get("sens_merging"))
    if sens is not None and sens.saliency == "delta" and base is None:
        raise MergeError("sens_merging.saliency: delta needs a base_model: add base_model or use saliency: weight")
    tokenizer_source = raw.get("tokenizer_source", "base")
    if tokenizer_source != "base" and not isinstance(tokenizer_source, str):
        raise MergeError(f"tokenizer_source is {tokenizer_source!r}: use base or a checkpoint folder")
    return MergeConfig(
        merge_method=method,
        models=entries,
        base_model=base,
        lam=_number("parameters.lambda", params.get("lambda", 1.0)),
        normalize=normalize,
        sens=sens,
        dtype=_choice("dtype", raw.get("dtype", "float32"), DTYPES),
        zoo_preset=str(raw.get("zoo_preset", "default")),
        zoo_seed=raw.get("zoo_seed", 0),
        seed=raw.get("seed", 0),
        tokenizer_source=tokenizer_source,
        source=raw,
    )


def with_sens(cfg: MergeConfig, sens: SensConfig | None) -> MergeConfig:
    """`cfg` with Sens-Merging set to `sens` (None: off), its YAML source updated to match."""
    source = {k: v for k, v in cfg.source.items() if k != "sens_merging"}
    if sens is not None:
        source["sens_merging"] = asdict(sens)
    return replace(cfg, sens=sens, source=source)


def load_config(path: str | Path) -> MergeConfig:
    """Read and parse a YAML merge config; MergeError (one line) for a missing or malformed file."""
    path = Path(path)
    if not path.is_file():
        raise MergeError(f"no config file at {path}: pass a YAML merge config")
    try:
        raw = yaml.safe_load(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise MergeError(f"{path} is not valid YAML ({first}): fix the file") from None
    try:
        return parse_config(raw)
    except MergeError as err:
        raise MergeError(f"{path}: {err}") from None
