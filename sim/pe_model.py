"""Cycle model of one PE (Numba), bit-exact with hw/mixpe_pe.py, hw/dequant_pe.py, hw/int8_pe.py and the FP32 PEs.

An operand presented in cycle t is reflected in out_y in cycle t + L, L = PEConfig.latency (1 for
the INT8 PE, 2 for the pipelined dequantize-then-multiply PE, 3 for its FP32 variant), and
out_valid is `valid & last` delayed L cycles. MixPE dequantizes each finished group in later stages
that run on their own, stalls or not: out_y changes only when a group lands, L cycles after the
group's last operand (2 with the parallel group multiplier, 16 / serial_bits + 2 with the serial
one, 4 with FP32 accumulation), and out_valid follows `last` by L cycles. The accumulator wraps modulo
2**acc_bits exactly as the RTL's truncating assignment does; intermediate products may wrap modulo
2**64 in int64, which leaves the low acc_bits (<= 64) unchanged. The FP32 PEs (accumulate="fp32")
carry their accumulator's FP32 bits in y and update it with sim/float_model.py.
"""

from __future__ import annotations

import numba
import numpy as np

from hw.config import PEConfig
from sim.float_model import dequant_fp32_step, mixpe_fp32_step

PE_CODES = {"mixpe": 0, "dequant": 1, "int8": 2}
MIXPE, DEQUANT, INT8 = 0, 1, 2
MIXPE_FP32, DEQUANT_FP32 = 3, 4  # accumulate="fp32": y carries FP32 bits (sim/float_model.py)


def pe_code(cfg: PEConfig) -> int:
    """The cycle model's code for a PE configuration."""
    return PE_CODES[cfg.pe] + (3 if cfg.fp32 else 0)


@numba.njit(inline="always", cache=True)
def groupwise(kind: int) -> bool:
    """The accumulator changes once per group (MixPE), not once per operand."""
    return kind == MIXPE or kind == MIXPE_FP32


def decode_acts(port: np.ndarray, act: str) -> np.ndarray:
    """Activation port values (uint16 bits) -> signed integers in the PE domain (int64).

    INT8: bits 7:0 as two's complement. FP16: (-1)**s * mantissa * 2**(max(e, 1) - 1), i.e. the
    value in units of 2**-24, exact for every FP16 bit pattern (exponent 31 is treated as finite,
    like the RTL).
    """
    port = np.asarray(port).astype(np.int64)
    if act == "int8":
        low = port & 0xFF
        return low - ((low & 0x80) << 1)
    exponent = (port >> 10) & 0x1F
    mantissa = (port & 0x3FF) | np.where(exponent > 0, 0x400, 0)
    magnitude = mantissa << np.maximum(exponent, 1) - 1
    return np.where(port & 0x8000, -magnitude, magnitude)


@numba.njit(inline="always", cache=True)
def wrap(x: np.int64, bits: int) -> np.int64:
    """x modulo 2**bits as a signed two's complement integer."""
    if bits >= 64:
        return x
    s = 64 - bits
    return (x << s) >> s


@numba.njit(inline="always", cache=True)
def weight_value(q_port: np.int64, wbits: int, signed_w: bool) -> np.int64:
    q = q_port & ((1 << wbits) - 1)
    if signed_w and q >= (1 << (wbits - 1)):
        q -= 1 << wbits
    return q


@numba.njit(inline="always", cache=True)
def pe_update(kind, wbits, signed_w, group, acc_bits, y, psum, count, a, q_port, scale, zero_port, first):
    """Next (y, psum, count) of a PE that accepts one valid operand; a is already decoded.

    MixPE: psum is the group sum P = sum a * (q - z); y takes S * P when the group completes.
    """
    if first:
        y = np.int64(0)
        psum = np.int64(0)
        count = 0
    q = weight_value(q_port, wbits, signed_w)
    z = np.int64(0) if signed_w else zero_port & ((1 << wbits) - 1)
    if kind == INT8:
        y = y + a * q
    elif kind == DEQUANT:
        y = y + a * (scale * (q - z))
    elif kind == DEQUANT_FP32:
        y = dequant_fp32_step(y, a, q - z, scale)
    else:
        psum += a * (q - z)
        count += 1
        if count == group:
            if kind == MIXPE_FP32:
                y = mixpe_fp32_step(y, psum, scale)
            else:
                y = y + scale * psum
            psum = np.int64(0)
            count = 0
    return wrap(y, acc_bits), psum, count


@numba.njit(cache=True)
def _pe_trace(kind, wbits, signed_w, group, acc_bits, latency, valid, first, last, a, q, scale, zero):
    n = valid.shape[0]
    out_y = np.zeros(n + latency, np.int64)
    out_valid = np.zeros(n + latency, np.uint8)
    landed = np.zeros(n + latency, np.uint8)  # cycles in which out_y takes a new value
    y = np.int64(0)
    psum = np.int64(0)
    count = 0
    for t in range(n):
        if valid[t]:
            y, psum, count = pe_update(
                kind,
                wbits,
                signed_w,
                group,
                acc_bits,
                y,
                psum,
                count,
                a[t],
                np.int64(q[t]),
                np.int64(scale[t]),
                np.int64(zero[t]),
                first[t],
            )
            # MixPE's accumulator changes only when a group lands (count wrapped to 0), L cycles later
            if not groupwise(kind) or count == 0:
                out_y[t + latency] = y
                landed[t + latency] = 1
                out_valid[t + latency] = last[t]
    for c in range(1, n + latency):
        if not landed[c]:
            out_y[c] = out_y[c - 1]
    return out_y, out_valid


def pe_trace(cfg: PEConfig, valid, first, last, act, q, scale, zero) -> tuple[np.ndarray, np.ndarray]:
    """Run one PE over N cycles of port values (1-D arrays of length N).

    Returns (out_y, out_valid), each of length N + latency: the outputs in cycles 0.., cycle 0 being
    the first cycle after reset.
    """
    a = decode_acts(act, cfg.act)
    return _pe_trace(
        pe_code(cfg),
        cfg.wbits,
        cfg.signed_weights,
        cfg.group,
        cfg.acc_bits,
        cfg.latency,
        np.asarray(valid, np.uint8),
        np.asarray(first, np.uint8),
        np.asarray(last, np.uint8),
        a,
        np.asarray(q, np.int64),
        np.asarray(scale, np.int64),
        np.asarray(zero, np.int64),
    )
