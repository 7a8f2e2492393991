"""Combinational arithmetic shared by the PEs: activation decoding and shift-and-add products.

Every activation is brought into one integer domain before it meets a weight:
INT8 is used as is; FP16 is aligned to its smallest subnormal (LSB = 2**-24), which represents every
finite FP16 value exactly, so products and group sums need no rounding at all.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Mux, Value, unsigned


def decode_fp16(bits: Value) -> tuple[Value, Value, Value]:
    """Split FP16 bits into (sign, 11-bit mantissa with hidden bit, left shift 0..30).

    The value is (-1)**sign * mantissa * 2**(shift - 24). Subnormals (exponent 0) use shift 0 and no
    hidden bit. Exponent 31 (Inf/NaN in IEEE) is treated as an ordinary exponent: the workload
    format rejects such activations before they reach the array.
    """
    sign = bits[15]
    exponent = bits[10:15]
    normal = exponent != 0
    mantissa = Cat(bits[0:10], normal)
    shift = Mux(normal, exponent - 1, 0)[:5]
    return sign, mantissa, shift


def apply_sign(magnitude: Value, sign: Value) -> Value:
    """(-1)**sign * magnitude; callers assign it to a signal of the exact width they need."""
    return Mux(sign, -magnitude, magnitude)


def decode_act(act: Value, kind: str) -> Value:
    """The activation port as a signed integer in the PE domain (see config.ACT_FIXED_BITS)."""
    if kind == "int8":
        return act[:8].as_signed()
    sign, mantissa, shift = decode_fp16(act)
    return apply_sign(mantissa << shift, sign)


def weight_value(q: Value, wbits: int, signed_weights: bool) -> Value:
    """The low `wbits` of the weight port as a signed integer."""
    raw = q[:wbits]
    return raw.as_signed() if signed_weights else raw


def shift_add(x: Value, q: Value, wbits: int, signed_weights: bool) -> Value:
    """x * q formed as sum_j q_j * (x << j), with no multiplier.

    For two's complement q the top bit weighs -2**(wbits-1), so its term is subtracted.
    """
    terms = [Mux(q[j], x << j, 0) for j in range(wbits)]
    total = sum(terms[:-1], Const(0, unsigned(1)).as_signed())
    return total - terms[-1] if signed_weights else total + terms[-1]
