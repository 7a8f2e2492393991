"""Asymmetric min-max group quantization (KIVI / KVTuner's vanilla quantizer) with real integer codes.

Each group of `group` consecutive elements along `dim` gets its own minimum (the zero point) and scale
(max - min) / (2^bits - 1); an element is stored as the code round((x - min) / scale) in [0, 2^bits - 1], uint8
(no bit packing: memory savings are counted, not realized, as in KVTuner). Dequantized, every element is within
scale / 2 of its original value.
"""

from __future__ import annotations

from typing import NamedTuple

import torch


class Quantized(NamedTuple):
    """Codes (uint8, the shape of the input split at `dim` into (groups, group)), and per-group float32 `scale`
    and `minimum` (size 1 on the in-group axis); `dtype` is the input's."""

    codes: torch.Tensor
    scale: torch.Tensor
    minimum: torch.Tensor
    dim: int
    dtype: torch.dtype

    def map(self, fn) -> Quantized:
        """The same quantized tensor with `fn` applied to codes, scale and minimum (e.g. a batch selection)."""
        return self._replace(codes=fn(self.codes), scale=fn(self.scale), minimum=fn(self.minimum))


def quantize(x: torch.Tensor, bits: int, dim: int, group: int) -> Quantized:
    """Quantize `x` to `bits` (1..8) in groups of `group` consecutive elements along `dim`
    (x.shape[dim] must be a multiple of `group`)."""
    dim = dim % x.dim()
    g = x.float().unflatten(dim, (x.shape[dim] // group, group))
    lo = g.amin(dim + 1, keepdim=True)
    scale = (g.amax(dim + 1, keepdim=True) - lo) / (2**bits - 1)
    # A constant group has scale 0: every element is its minimum, code 0.
    codes = ((g - lo) / scale.clamp_min(torch.finfo(torch.float32).tiny)).round().clamp(0, 2**bits - 1)
    return Quantized(codes.to(torch.uint8), scale, lo, dim, x.dtype)


def dequantize(q: Quantized) -> torch.Tensor:
    """The tensor `q` stands for, in its original shape and dtype."""
    return (q.codes.float() * q.scale + q.minimum).flatten(q.dim, q.dim + 1).to(q.dtype)
