"""Plain-numpy statement of what the PEs compute, independent of any cycle or register detail.

    Y[m, n] = sum_g S[g, n] * ( sum_{k in g} a[m, k] * q[k, n]  -  z[g, n] * sum_{k in g} a[m, k] )

with a the activation in the PE's integer domain (INT8, or FP16 in units of 2**-24), wrapped to the
accumulator width. The int8 PE computes plain a @ q. `real_gemm` gives the same product in floating
point from the dequantized operands, to show what the integers mean.
"""

from __future__ import annotations

import numpy as np

from hw.config import FP16_LSB_EXP, PEConfig
from sim.float_model import FP32_NAN_BITS, reference_gemm_fp32
from sim.gemm import GemmOperands
from sim.pe_model import decode_acts


def weight_values(q: np.ndarray, wbits: int, signed: bool) -> np.ndarray:
    """Weight port values -> integers (two's complement when signed)."""
    q = np.asarray(q, np.int64) & ((1 << wbits) - 1)
    return q - ((q >> (wbits - 1)) << wbits) if signed else q


def wrap(y: np.ndarray, bits: int) -> np.ndarray:
    """Signed two's complement wrap to `bits` (int64 arithmetic already wraps modulo 2**64)."""
    if bits >= 64:
        return y
    shift = np.int64(64 - bits)
    return (y << shift) >> shift


def reference_gemm(pe: PEConfig, ops: GemmOperands) -> np.ndarray:
    """The result (M, N) the array must produce: exact integers, or FP32 bits for accumulate="fp32"."""
    a = decode_acts(ops.act, pe.act)
    m, n, k = ops.shape
    if pe.pe == "int8":
        return wrap(a @ weight_values(ops.q, 8, True), pe.acc_bits)
    q = weight_values(ops.q, pe.wbits, pe.signed_weights)
    z = np.zeros_like(ops.zero) if pe.signed_weights else np.asarray(ops.zero, np.int64) & ((1 << pe.wbits) - 1)
    if pe.fp32:
        return reference_gemm_fp32(pe, ops.act, q, ops.scale, z, ops.group)
    groups = k // ops.group
    ag = a.reshape(m, groups, ops.group)
    psum = np.einsum("mgk,gkn->mgn", ag, q.reshape(groups, ops.group, n))
    asum = ag.sum(axis=2)
    y = np.einsum("gn,mgn->mn", ops.scale, psum - z[None] * asum[:, :, None])
    return wrap(y, pe.acc_bits)


def torch_reference(pe: PEConfig, ops: GemmOperands) -> np.ndarray:
    """reference_gemm's results computed independently with torch (int64, or float16/float32), for exact replays."""
    import torch

    if pe.fp32:
        return _torch_fp32(pe, ops)
    a = torch.from_numpy(decode_acts(ops.act, pe.act))
    m, n, k = ops.shape
    if pe.pe == "int8":
        y = a @ torch.from_numpy(weight_values(ops.q, 8, True))
    else:
        q = torch.from_numpy(weight_values(ops.q, pe.wbits, pe.signed_weights))
        z = (
            torch.zeros(ops.zero.shape, dtype=torch.int64)
            if pe.signed_weights
            else torch.from_numpy(np.asarray(ops.zero, np.int64) & ((1 << pe.wbits) - 1))
        )
        groups = k // ops.group
        ag = a.reshape(m, groups, ops.group)
        psum = torch.einsum("mgk,gkn->mgn", ag, q.reshape(groups, ops.group, n))
        y = torch.einsum(
            "gn,mgn->mn", torch.from_numpy(np.asarray(ops.scale, np.int64)), psum - z * ag.sum(2)[:, :, None]
        )
    return wrap(y.numpy(), pe.acc_bits)


def _torch_fp32(pe: PEConfig, ops: GemmOperands) -> np.ndarray:
    """FP32 bits of an FP32 PE's GEMM with torch's IEEE float16/float32 (see sim/float_model.py for the order)."""
    import torch

    def fp16(bits: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.asarray(bits, np.int64).astype(np.int16)).view(torch.float16).float()

    a, s = fp16(ops.act), fp16(ops.scale)
    m, n, k = ops.shape
    g = np.arange(k) // ops.group
    z = 0 if pe.signed_weights else (np.asarray(ops.zero, np.int64) & ((1 << pe.wbits) - 1))[g]
    diff = torch.from_numpy(weight_values(ops.q, pe.wbits, pe.signed_weights) - z)
    y = torch.zeros(m, n, dtype=torch.float32)
    if pe.pe == "dequant":
        w = (s[g] * diff.float()).half().float()
        for kk in range(k):
            y = y + a[:, kk, None] * w[kk]
    else:
        a_int = torch.round(a.double() * 2.0**24).long()
        for gg in range(k // ops.group):
            sl = slice(gg * ops.group, (gg + 1) * ops.group)
            y = y + ((a_int[:, sl] @ diff[sl]).float() * 2.0**-24) * s[gg]
    bits = y.view(torch.int32).long()
    return torch.where(torch.isnan(y), FP32_NAN_BITS, bits).numpy()


def real_gemm(pe: PEConfig, ops: GemmOperands, frac_bits: int) -> np.ndarray:
    """X @ dequant(W) in float64, with real scale S * 2**-frac_bits; compare with Y * result_lsb."""
    x = decode_acts(ops.act, pe.act).astype(np.float64)
    if pe.act == "fp16":
        x *= 2.0**FP16_LSB_EXP
    q = weight_values(ops.q, pe.wbits, pe.signed_weights).astype(np.float64)
    if pe.pe == "int8":
        return x @ q
    g = np.arange(ops.shape[2]) // ops.group
    z = 0.0 if pe.signed_weights else ops.zero[g].astype(np.float64)
    w = ops.scale[g] * 2.0**-frac_bits * (q - z)
    return x @ w


def result_lsb(pe: PEConfig, frac_bits: int) -> float:
    """The real value of one unit of Y (for int8/W8A8 the scale is outside the PE: 1)."""
    if pe.pe == "int8":
        return 1.0
    return 2.0**-frac_bits * (2.0**FP16_LSB_EXP if pe.act == "fp16" else 1.0)
