"""Group-wise integer weights in the accelerator's format, and round-to-nearest quantization.

Hardware layout (sim/gemm.py): Y (m x n) = X (m x k) @ W (k x n) with

    W[k, n] = S[k // G, n] * 2**-F * (q[k, n] - z[k // G, n])

S an unsigned 16-bit integer per (group, column), F one integer per layer ("frac bits"), q in
[0, 2**b) with zero point z in [0, 2**b) (unsigned) or q in [-2**(b-1), 2**(b-1)) with z = 0
(signed). torch's Linear weight is (out, in) = (n, k); this module works in (n, k) internally and
stores the hardware (k, n) layout.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

SCALE_MAX = (1 << 16) - 1


@dataclass
class QuantizedWeight:
    """One layer's integer weights (torch tensors, hardware layout).

    q: (k, n) int16 integer values (signed values for wformat "signed"). scale: (k/G, n) int32
    holding the unsigned 16-bit S (torch has no arithmetic on uint16). zero: (k/G, n) int16 z (all 0
    when signed). frac_bits: F, the real scale is S * 2**-F.
    """

    q: torch.Tensor
    scale: torch.Tensor
    zero: torch.Tensor
    frac_bits: int
    group: int
    wbits: int
    wformat: str

    @property
    def shape(self) -> tuple[int, int]:
        """(k, n): in_features, out_features."""
        return tuple(self.q.shape)

    def int_weight(self) -> torch.Tensor:
        """S * (q - z) per weight, (k, n) int64: the weight in units of 2**-F (|value| < 2**24)."""
        g = torch.arange(self.q.shape[0]) // self.group
        return self.scale.long()[g] * (self.q.long() - self.zero.long()[g])

    def dequantize(self) -> torch.Tensor:
        """The real weight S * 2**-F * (q - z) as float32, torch layout (out, in) = (n, k).

        Exact: |S * (q - z)| < 2**24 fits the float32 mantissa and 2**-F is a power of two.
        """
        return torch.ldexp(self.int_weight().double(), torch.tensor(-self.frac_bits)).float().T.contiguous()

    def port_q(self) -> np.ndarray:
        """(k, n) weight port values: the low wbits (two's complement bits when signed), int64."""
        return self.q.long().numpy() & ((1 << self.wbits) - 1)


def qrange(wbits: int, wformat: str) -> tuple[int, int]:
    """Smallest and largest integer q of a format."""
    if wformat == "signed":
        return -(1 << (wbits - 1)), (1 << (wbits - 1)) - 1
    return 0, (1 << wbits) - 1


def real_scales(w: torch.Tensor, wbits: int, wformat: str) -> torch.Tensor:
    """Float scales (..., n) of weight groups w (..., n, G) before rounding to S * 2**-F.

    Asymmetric: (max - min) / (2**b - 1) over a range that includes 0. Symmetric: 2 * absmax / (2**b - 1),
    which with q clamped to [-2**(b-1), 2**(b-1) - 1] uses every level (GPTQ's convention).
    """
    levels = (1 << wbits) - 1
    if wformat == "signed":
        return 2 * w.abs().amax(-1) / levels
    return (w.amax(-1).clamp(min=0) - w.amin(-1).clamp(max=0)) / levels


def frac_bits_for(max_scale: float) -> int:
    """F such that the largest real scale of a layer fits 16 bits: floor(log2((2**16 - 1) / max_scale))."""
    if max_scale <= 0 or not math.isfinite(max_scale):
        return 0
    return math.floor(math.log2(SCALE_MAX / max_scale))


def round_scales(s: torch.Tensor, frac_bits: int) -> torch.Tensor:
    """Float scales -> integer S (int64) in [1, 2**16 - 1]; S = 0 would make q undefined, so 1 is the floor."""
    return torch.round(torch.ldexp(s.double(), torch.tensor(frac_bits))).clamp(1, SCALE_MAX).long()


def group_params(
    w: torch.Tensor, wbits: int, wformat: str, frac_bits: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Integer S, zero point z and the real rounded scale for weight groups w (..., n, G).

    The zero point is chosen from the rounded scale S * 2**-F, so q is picked against exactly the
    scale the hardware applies. Returns (S int64, z int64, scale float64), each (..., n).
    """
    s_int = round_scales(real_scales(w, wbits, wformat), frac_bits)
    scale = torch.ldexp(s_int.double(), torch.tensor(-frac_bits))
    if wformat == "signed":
        zero = torch.zeros_like(s_int)
    else:
        zero = torch.round(-w.amin(-1).clamp(max=0).double() / scale).clamp(0, (1 << wbits) - 1).long()
    return s_int, zero, scale


def quantize_values(w: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor, wbits: int, wformat: str) -> torch.Tensor:
    """q = clamp(round(w / scale) + z) (int64), broadcasting scale and zero against w."""
    lo, hi = qrange(wbits, wformat)
    return (torch.round(w.double() / scale) + zero).clamp(lo, hi).long()


def layer_frac_bits(weight: torch.Tensor, group: int, wbits: int, wformat: str) -> int:
    """F of a layer from its (out, in) weight: the largest group scale fits 16 bits."""
    n, k = weight.shape
    s = real_scales(weight.detach().double().reshape(n, k // group, group), wbits, wformat)
    return frac_bits_for(float(s.max()))


def pack(
    q: torch.Tensor, s_int: torch.Tensor, zero: torch.Tensor, frac_bits: int, group: int, wbits: int, wformat: str
) -> QuantizedWeight:
    """QuantizedWeight from torch-layout integers: q (n, k), S and z (n, k/G)."""
    return QuantizedWeight(
        q=q.T.to(torch.int16).contiguous(),
        scale=s_int.T.to(torch.int32).contiguous(),
        zero=zero.T.to(torch.int16).contiguous(),
        frac_bits=frac_bits,
        group=group,
        wbits=wbits,
        wformat=wformat,
    )


def rtn_quantize(weight: torch.Tensor, wbits: int, group: int, wformat: str = "unsigned") -> QuantizedWeight:
    """Round-to-nearest group-wise quantization of a torch Linear weight (out, in)."""
    n, k = weight.shape
    w = weight.detach().double().reshape(n, k // group, group)
    frac_bits = layer_frac_bits(weight, group, wbits, wformat)
    s_int, zero, scale = group_params(w, wbits, wformat, frac_bits)
    q = quantize_values(w, scale[..., None], zero[..., None], wbits, wformat).reshape(n, k)
    return pack(q, s_int, zero, frac_bits, group, wbits, wformat)
