"""A transformers cache whose layers each quantize keys and values at their own precision (KVTuner), KIVI-style.

    cache = KVQuantizedCache(KVConfig.preset("KIVI-2", 4), model.config)
    out = model(input_ids=ids, cache=cache)                 # prefill: attention sees the exact states
    out = model(input_ids=next_ids, cache=out.cache)        # decode: attention sees dequantized old states
    model.generate(ids, cache=KVQuantizedCache(kv_config, model.config), max_new_tokens=16)

Layout per layer (states are (batch, kv_heads, tokens, head_dim)): the oldest tokens are stored as integer codes
(keys per channel over groups of `group_size` tokens, values per token over groups of channels), the newest
ones exactly: at least `residual_length` of them, and for keys also the tail that does not yet fill a group of
tokens. Tokens pass a call's attention exactly and are quantized only once they are stored, as in KVTuner and
transformers' `QuantizedLayer`, so a prefill is exact and quantization shows in later calls.
"""

from __future__ import annotations

import torch
from transformers import PreTrainedConfig
from transformers.cache_utils import Cache, DynamicLayer

from models.kv.config import KVConfig
from models.kv.quantizer import Quantized, dequantize, quantize

FULL = 16


def _append(old: Quantized | None, new: Quantized) -> Quantized:
    """`old` followed by `new` in token order: axis 2 is the token (group) axis of both layouts, keys'
    (batch, heads, token groups, group, head_dim) and values' (batch, heads, tokens, channel groups, group)."""
    if old is None:
        return new
    return old._replace(
        **{f: torch.cat([getattr(old, f), getattr(new, f)], dim=2) for f in ("codes", "scale", "minimum")}
    )


class MixedPrecisionLayer(DynamicLayer):
    """One layer's cache with its own key and value bits (16: exact). `self.keys`/`self.values` hold the exact
    recent tokens; `_quantized_keys`/`_quantized_values` the older ones (None until there are any)."""

    is_croppable = False

    def __init__(self, key_bits: int = 4, value_bits: int = 4, group_size: int = 32, residual_length: int = 32):
        super().__init__()
        self.key_bits = key_bits
        self.value_bits = value_bits
        self.group_size = group_size
        self.residual_length = residual_length
        self.cumulative_length = 0
        self._quantized_keys: Quantized | None = None
        self._quantized_values: Quantized | None = None

    def __repr__(self):
        return f"{self.__class__.__name__}(K{self.key_bits}V{self.value_bits})"

    def lazy_initialization(self, key_states: torch.Tensor, value_states: torch.Tensor) -> None:
        self.device = key_states.device
        self.keys = key_states[..., :0, :]
        self.values = value_states[..., :0, :]
        head_dim = value_states.shape[-1]
        self.value_group = min(self.group_size, head_dim)
        if head_dim % self.value_group:
            raise ValueError(f"group_size {self.group_size} does not divide head_dim {head_dim}: use a divisor of it")
        self.is_initialized = True

    def update(
        self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """
        Store the new key and value states and return all of this layer's states for attention: the stored ones
        (dequantized where quantized) followed by the new ones, exact.

        Args:
            key_states (`torch.Tensor`): The new key states, (batch, kv_heads, new_tokens, head_dim).
            value_states (`torch.Tensor`): The new value states, same shape.

        Returns:
            tuple[`torch.Tensor`, `torch.Tensor`]: The key and value states, (batch, kv_heads, all_tokens, head_dim).
        """
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        self.keys = torch.cat([self.keys, key_states], dim=-2)
        self.values = torch.cat([self.values, value_states], dim=-2)
        keys, values = self.keys, self.values
        if self._quantized_keys is not None:
            keys = torch.cat([dequantize(self._quantized_keys), keys], dim=-2)
        if self._quantized_values is not None:
            values = torch.cat([dequantize(self._quantized_values), values], dim=-2)
        self.cumulative_length += key_states.shape[-2]
        self._flush()
        return keys, values

    def _flush(self) -> None:
        """Quantize the exact tokens beyond the residual window: keys in whole groups of tokens, values per token."""
        if self.key_bits < FULL:
            excess = self.keys.shape[-2] - self.residual_length
            n = excess // self.group_size * self.group_size
            if n > 0:
                new = quantize(self.keys[..., :n, :], self.key_bits, -2, self.group_size)
                self._quantized_keys = _append(self._quantized_keys, new)
                self.keys = self.keys[..., n:, :]
        if self.value_bits < FULL:
            n = self.values.shape[-2] - self.residual_length
            if n > 0:
                new = quantize(self.values[..., :n, :], self.value_bits, -1, self.value_group)
                self._quantized_values = _append(self._quantized_values, new)
                self.values = self.values[..., n:, :]

    def get_seq_length(self) -> int:
        """Returns the sequence length of the cached states."""
        return self.cumulative_length

    def stored_bits(self) -> int:
        """Bits the stored states take: codes at their bit width, a 16-bit scale and zero point per group, and
        16 bits per exact element (what a packed fp16 implementation would hold)."""
        if not self.is_initialized:
            return 0
        bits = 16 * (self.keys.numel() + self.values.numel())
        for q, nbits in ((self._quantized_keys, self.key_bits), (self._quantized_values, self.value_bits)):
            if q is not None:
                bits += nbits * q.codes.numel() + 16 * (q.scale.numel() + q.minimum.numel())
        return bits

    def crop(self, tokens_to_remove: int) -> None:
        """Not supported: tokens already folded into a quantized group cannot be taken back out exactly."""
        raise ValueError("a KVQuantizedCache cannot be cropped (assisted decoding): use it for plain or beam decoding")

    def _apply(self, fn) -> None:
        """Apply `fn` (a batch selection) to every stored tensor."""
        self.keys, self.values = fn(self.keys), fn(self.values)
        if self._quantized_keys is not None:
            self._quantized_keys = self._quantized_keys.map(fn)
        if self._quantized_values is not None:
            self._quantized_values = self._quantized_values.map(fn)

    def reorder_cache(self, beam_idx: torch.LongTensor) -> None:
        """Reorders this layer's cache for beam search (codes and their scales are reordered as they are)."""
        if self.is_initialized:
            self._apply(lambda t: t.index_select(0, beam_idx.to(t.device)))

    def batch_repeat_interleave(self, repeats: int) -> None:
        """Repeat the cache `repeats` times in the batch dimension."""
        if self.is_initialized:
            self._apply(lambda t: t.repeat_interleave(repeats, dim=0))

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        """Only keep the `indices` in the batch dimension of the cache."""
        if self.is_initialized:
            self._apply(lambda t: t[indices, ...])

    def reset(self) -> None:
        """Resets the cache values while preserving the objects."""
        super().reset()
        self._quantized_keys = self._quantized_values = None


class KVQuantizedCache(Cache):
    """
    A cache with one `MixedPrecisionLayer` per decoder layer, at the (key bits, value bits) pair that `kv_config`
    gives that layer (KVTuner's layer-wise mixed precision; KIVI's grouping and residual window).

    Args:
        kv_config (`KVConfig`): The per-layer precision pairs, group size and residual length.
        config (`PreTrainedConfig`, *optional*): The model's config; if given, `kv_config` is checked against it
            (one pair per layer, value groups dividing head_dim) and a `KVConfigError` raised otherwise.
    """

    def __init__(self, kv_config: KVConfig, config: PreTrainedConfig | None = None):
        if config is not None:
            kv_config.check(config.get_text_config(decoder=True))
        self.kv_config = kv_config
        layers = [
            MixedPrecisionLayer(k, v, kv_config.group_size, kv_config.residual_length) for k, v in kv_config.pairs
        ]
        super().__init__(layers=layers)

    def stored_bits(self) -> int:
        """Bits all layers' stored states take (see `MixedPrecisionLayer.stored_bits`)."""
        return sum(layer.stored_bits() for layer in self.layers)
