"""Bit-exact model of hw/float_arith.py: the FP32-accumulating PEs' arithmetic (Numba), and numpy references.

The Numba steps use IEEE float32 arithmetic (Numba compiles without fast-math, so +, * round to
nearest even and no multiply-add is fused); the one rounding float32 cannot do for us, FP16 rounding
of the dequantized weight, is done on integers. A PE's FP32 accumulator travels through the cycle
model as its 32 bits, a signed int32 pattern in int64 (as the RTL's signed out_y shows it); every
NaN is the canonical 0x7FC00000. The numpy references (reference_gemm_fp32) compute the same
results with numpy's own float16/float32 conversions and arithmetic, independently of the Numba code.

Rounding, per PE (the RTL's):
  dequant, fp32:  w = fp16(S * (q - z)) (RNE, subnormal, overflow to Inf); p = a * w exact in FP32;
                  y = fp32(y + p) (RNE), one add per operand, in k order, from +0 at `first`.
  mixpe, fp32:    D = sum a*(q - z) over the group, exact (units 2**-24); d = fp32(D * 2**-24) (RNE);
                  g = fp32(d * S) (RNE); y = fp32(y + g) (RNE), one add per group, from +0.
"""

from __future__ import annotations

import numba
import numpy as np

from hw.config import PEConfig

FP32_NAN_BITS = 0x7FC00000
FP16_MAX = 65504.0


@numba.njit(inline="always", cache=True)
def f32_from_bits(bits: np.int64) -> np.float32:
    """The float32 whose bit pattern is the low 32 bits of `bits`."""
    return np.int32(bits).view(np.float32)


@numba.njit(inline="always", cache=True)
def f32_bits(x: np.float32) -> np.int64:
    """The bits of x as a signed int32 pattern; NaN becomes the canonical 0x7FC00000."""
    if x != x:
        return np.int64(FP32_NAN_BITS)
    return np.int64(np.float32(x).view(np.int32))


@numba.njit(inline="always", cache=True)
def fp16_value(bits: np.int64) -> np.float64:
    """The value of FP16 bits (exponent 31 decoded as an ordinary exponent, like the RTL)."""
    exponent = (bits >> 10) & 0x1F
    mantissa = bits & 0x3FF
    if exponent:
        mantissa |= 0x400
    value = mantissa * 2.0 ** (max(exponent, 1) - 25)
    return -value if bits & 0x8000 else value


@numba.njit(cache=True)
def round_fp16(negative: bool, mag: np.int64, lsb_exp: np.int64) -> np.float64:
    """(-1)**negative * mag * 2**lsb_exp rounded to FP16 (RNE, subnormals, overflow to Inf), as a float."""
    if mag != 0:
        lead = 0
        while (mag >> (lead + 1)) != 0:
            lead += 1
        lsb = max(lead + lsb_exp - 10, -24)  # FP16 keeps 11 bits; its LSB is never below 2**-24
        shift = lsb - lsb_exp
        if shift > 0:
            kept = mag >> shift
            rest = mag - (kept << shift)
            half = np.int64(1) << (shift - 1)
            if rest > half or (rest == half and kept & 1):
                kept += 1
            mag, lsb_exp = kept, lsb
    value = mag * 2.0**lsb_exp
    if value > FP16_MAX:
        value = np.inf
    return -value if negative else value


@numba.njit(cache=True)
def dequant_fp32_step(y_bits: np.int64, a: np.int64, k: np.int64, scale_bits: np.int64) -> np.int64:
    """One operand of the FP32 dequant PE: y + a * fp16(S * k), a in units of 2**-24, k = q - z."""
    s = scale_bits & 0xFFFF
    exponent = (s >> 10) & 0x1F
    mantissa = (s & 0x3FF) | (0x400 if exponent else 0)
    w = np.float32(round_fp16(bool(s & 0x8000) != (k < 0), mantissa * abs(k), max(exponent, 1) - 25))
    product = np.float32(np.float32(a) * np.float32(2.0**-24)) * w  # exact: 11 x 11 bits
    return f32_bits(np.float32(f32_from_bits(y_bits) + np.float32(product)))


@numba.njit(cache=True)
def mixpe_fp32_step(y_bits: np.int64, group_sum: np.int64, scale_bits: np.int64) -> np.int64:
    """One finished group of the FP32 MixPE: y + fp32(fp32(D * 2**-24) * S), D the exact group sum."""
    d = np.float32(np.float32(group_sum) * np.float32(2.0**-24))  # int64 -> float32 rounds to nearest even
    g = np.float32(d * np.float32(fp16_value(scale_bits & 0xFFFF)))
    return f32_bits(np.float32(f32_from_bits(y_bits) + g))


def random_fp16_scales(rng: np.random.Generator, shape, corner_prob: float = 0.1) -> np.ndarray:
    """FP16 scale bits for the FP32 PEs (int64): finite, mostly 2**-10 .. 2**4 of either sign.

    With probability corner_prob each is a corner instead: 0, the smallest subnormal, the largest
    subnormal, or the largest finite value (whose dequantized weights overflow FP16 to Inf).
    """
    exponent = rng.integers(5, 20, shape)
    bits = (rng.integers(0, 2, shape) << 15) | (exponent << 10) | rng.integers(0, 1 << 10, shape)
    corners = rng.choice(np.array([0x0000, 0x0001, 0x03FF, 0x7BFF, 0xFBFF]), shape)
    return np.where(rng.random(shape) < corner_prob, corners, bits).astype(np.int64)


def _canonical_bits(y: np.ndarray) -> np.ndarray:
    bits = np.asarray(y, np.float32).view(np.int32).astype(np.int64)
    return np.where(np.isnan(y), FP32_NAN_BITS, bits)


def reference_gemm_fp32(pe: PEConfig, act: np.ndarray, q: np.ndarray, scale: np.ndarray, zero: np.ndarray, group: int):
    """FP32 bits (M, N) of an FP32 PE's GEMM, computed with numpy float16/float32 only.

    act (M, K) FP16 bits, q (K, N) weight values as integers, scale/zero (K/G, N) FP16 bits / z.
    """
    a = np.asarray(act, np.uint16).view(np.float16).astype(np.float32)
    s = np.asarray(scale, np.uint16).view(np.float16).astype(np.float32)
    m, k = a.shape
    n = q.shape[1]
    g = np.arange(k) // group
    diff = np.asarray(q, np.int64) - (0 if pe.signed_weights else zero[g])  # (K, N)
    y = np.zeros((m, n), np.float32)
    with np.errstate(invalid="ignore", over="ignore"):
        if pe.pe == "dequant":
            w = (s[g] * diff.astype(np.float32)).astype(np.float16).astype(np.float32)
            for kk in range(k):
                y = y + a[:, kk, None] * w[None, kk]
        else:
            a_int = np.rint(a.astype(np.float64) * 2.0**24).astype(np.int64)  # exact: units of 2**-24
            for gg in range(k // group):
                sl = slice(gg * group, (gg + 1) * group)
                d = (a_int[:, sl] @ diff[sl]).astype(np.float32) * np.float32(2.0**-24)
                y = y + d * s[gg][None]
    return _canonical_bits(y)
