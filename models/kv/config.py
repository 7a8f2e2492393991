"""KV precision configs: one (key bits, value bits) pair per layer, the grouping and the full-precision window.

    {"name": "my-tuned", "group_size": 32, "residual_length": 32,
     "pairs": [[8, 4], [4, 2], [4, 2], [2, 2]]}          # one [key_bits, value_bits] per layer, 16 = unquantized

Presets (any layer count): KV16 (no quantization), KV8 (K8V8), KV4 (K4V4), both without a residual window, and
KIVI-2 (K2V2 with the 32 most recent tokens exact, KVTuner's KIVI setting; the KIVI paper uses 128). A tuner
writes a config with `KVConfig(pairs=..., ...).save(path)`; inference loads it as is.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from models.files import InputFileError, read_json
from models.kv.errors import KVConfigError
from sim.files import atomic_write

if TYPE_CHECKING:  # only a type here: the CLI reads configs before torch and transformers are imported
    from transformers import PreTrainedConfig

BITS = (16, 8, 4, 2)
# name -> (key bits, value bits, residual_length)
PRESETS = {"KV16": (16, 16, 0), "KV8": (8, 8, 0), "KV4": (4, 4, 0), "KIVI-2": (2, 2, 32)}
KEYS = ("name", "group_size", "residual_length", "pairs")


@dataclass(frozen=True)
class KVConfig:
    """Per-layer (key bits, value bits) pairs from BITS (16: kept in full precision); keys are quantized per
    channel over groups of `group_size` tokens, values per token over groups of min(group_size, head_dim)
    channels; the `residual_length` most recent tokens stay exact."""

    pairs: tuple[tuple[int, int], ...]
    group_size: int = 32
    residual_length: int = 0
    name: str = "custom"

    def __post_init__(self) -> None:
        if not self.pairs:
            raise KVConfigError(f"config {self.name!r} has no layer pairs: give one [key_bits, value_bits] per layer")
        for i, pair in enumerate(self.pairs):
            if not isinstance(pair, (tuple, list)) or len(pair) != 2:
                raise KVConfigError(f"layer {i}: {pair!r} is not a [key_bits, value_bits] pair")
            for what, bits in zip(("key", "value"), pair, strict=True):
                if isinstance(bits, bool) or bits not in BITS:
                    raise KVConfigError(f"layer {i}: {what} bits {bits!r} unsupported: use one of 16, 8, 4, 2")
        object.__setattr__(self, "pairs", tuple((int(k), int(v)) for k, v in self.pairs))
        if isinstance(self.group_size, bool) or not isinstance(self.group_size, int) or self.group_size < 1:
            raise KVConfigError(f"group_size {self.group_size!r} must be a positive integer (tokens/channels)")
        if isinstance(self.residual_length, bool) or not isinstance(self.residual_length, int):
            raise KVConfigError(f"residual_length {self.residual_length!r} must be an integer number of tokens")
        if self.residual_length < 0:
            raise KVConfigError(f"residual_length {self.residual_length} must be >= 0 tokens")

    @classmethod
    def uniform(cls, key_bits: int, value_bits: int, num_layers: int, **kwargs) -> KVConfig:
        """The same pair on every one of `num_layers` layers."""
        return cls(pairs=((key_bits, value_bits),) * num_layers, **kwargs)

    @classmethod
    def preset(cls, name: str, num_layers: int) -> KVConfig:
        """A named preset (KV16, KV8, KV4, KIVI-2) for a model of `num_layers` layers."""
        if name not in PRESETS:
            raise KVConfigError(f"unknown KV preset {name!r}: use one of {', '.join(PRESETS)} or a JSON file")
        k, v, residual = PRESETS[name]
        return cls.uniform(k, v, num_layers, residual_length=residual, name=name)

    @property
    def num_layers(self) -> int:
        return len(self.pairs)

    @property
    def avg_bits(self) -> float:
        """KVTuner's average KV bits: sum over layers of (key bits + value bits) / (2 * layers); the exact
        residual window and the per-group scale and zero point are not counted."""
        return sum(k + v for k, v in self.pairs) / (2 * len(self.pairs))

    def with_name(self, name: str) -> KVConfig:
        return replace(self, name=name)

    def check(self, model_config: PreTrainedConfig) -> None:
        """KVConfigError unless the config fits the model: one pair per layer, value groups that divide head_dim."""
        layers = model_config.num_hidden_layers
        if len(self.pairs) != layers:
            raise KVConfigError(
                f"config {self.name!r} has {len(self.pairs)} layer pairs but the model has {layers} layers: "
                f"give one [key_bits, value_bits] pair per layer"
            )
        head_dim = (
            getattr(model_config, "head_dim", None) or model_config.hidden_size // model_config.num_attention_heads
        )
        if head_dim % min(self.group_size, head_dim):
            raise KVConfigError(
                f"group_size {self.group_size} does not divide the model's head_dim {head_dim}: use a divisor of it"
            )

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "group_size": self.group_size,
            "residual_length": self.residual_length,
            "pairs": [list(p) for p in self.pairs],
        }

    @classmethod
    def from_dict(cls, data: object, source: str = "config") -> KVConfig:
        if not isinstance(data, dict):
            raise KVConfigError(f"{source}: expected a JSON object with {', '.join(KEYS)}")
        unknown = sorted(set(data) - set(KEYS))
        if unknown:
            raise KVConfigError(f"{source}: unknown key {unknown[0]!r}: use {', '.join(KEYS)}")
        if "pairs" not in data or not isinstance(data["pairs"], list):
            raise KVConfigError(f'{source}: needs "pairs": a list of [key_bits, value_bits], one per layer')
        return cls(
            pairs=tuple(tuple(p) if isinstance(p, list) else p for p in data["pairs"]),
            group_size=data.get("group_size", 32),
            residual_length=data.get("residual_length", 0),
            name=str(data.get("name", "custom")),
        )

    def save(self, path: str | Path) -> None:
        """Write the config as JSON (atomically)."""
        atomic_write(path, json.dumps(self.to_dict(), indent=1) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> KVConfig:
        """Read a JSON config written by `save` (or by hand)."""
        path = Path(path)
        if not path.is_file():
            raise KVConfigError(f"no KV config file at {path}: pass a preset ({', '.join(PRESETS)}) or a JSON file")
        try:
            data = read_json(path, "fix the file")
        except InputFileError as err:
            raise KVConfigError(str(err)) from None
        return cls.from_dict(data, str(path))


def resolve(preset_or_path: str, num_layers: int) -> KVConfig:
    """A preset name (KV16, KV8, KV4, KIVI-2) or the path of a JSON config."""
    if preset_or_path in PRESETS:
        return KVConfig.preset(preset_or_path, num_layers)
    return KVConfig.load(preset_or_path)
