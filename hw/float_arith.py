"""IEEE binary16/binary32 arithmetic for the FP32-accumulating PEs (combinational Amaranth logic).

Every function rounds at most once, to nearest with ties to even (RNE), and says so. What is
handled, and why the rest cannot arise in these PEs:
  * FP16 inputs (activations, scales, dequantized weights) may be subnormal: decoded exactly.
  * FP16 results (the dequantized weight) round with subnormals and overflow to +-Inf, as IEEE.
  * FP32 results never come near the subnormal range: every value the PEs form is a multiple of
    2**-48 (FP16 values are multiples of 2**-24, and rounding to FP32 keeps that grid), so
    |x| >= 2**-48 > 2**-126 for x != 0. FP32 rounding therefore has no subnormal path: a result
    below 2**-126 would be flushed to a signed zero, which no input can reach.
  * Inf/NaN: only the dequantizer can overflow (|S * (q - z)| >= 65520 gives +-Inf). The product
    and the adder follow IEEE for it (Inf * 0 = NaN, Inf - Inf = NaN, NaN propagates); every NaN is
    the canonical quiet NaN 0x7FC00000. Activation and scale ports must hold finite FP16 values
    (the workload format rejects others), so their exponent 31 is not decoded as Inf/NaN.
sim/float_model.py is the bit-exact software model of these functions.
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value, signed, unsigned

from hw.arith import decode_fp16


@dataclass(frozen=True)
class FloatFormat:
    """An IEEE binary format: exponent and stored-mantissa bits."""

    exp_bits: int
    man_bits: int

    @property
    def bias(self) -> int:
        return (1 << (self.exp_bits - 1)) - 1

    @property
    def width(self) -> int:
        return 1 + self.exp_bits + self.man_bits

    @property
    def inf(self) -> int:
        """Bits of +Inf (without the sign)."""
        return ((1 << self.exp_bits) - 1) << self.man_bits


FP16 = FloatFormat(5, 10)
FP32 = FloatFormat(8, 23)
FP32_NAN = 0x7FC00000


def leading_zeros(x: Value) -> Value:
    """Count of leading zero bits of x, as a balanced tree (log depth); undefined when x == 0."""
    width = 1 << max(1, (len(x) - 1).bit_length())
    padded = Cat(Const(0, width - len(x)), x)  # zeros below the LSB leave the count unchanged

    def count(v: Value) -> tuple[Value, Value]:
        if len(v) == 2:
            return ~(v[0] | v[1]), ~v[1]
        half = len(v) // 2
        hi_zero, hi_count = count(v[half:])
        lo_zero, lo_count = count(v[:half])
        return hi_zero & lo_zero, Cat(Mux(hi_zero, lo_count, hi_count), hi_zero)

    return count(padded)[1]


def round_pack(
    m: Module, sign: Value, mag: Value, lsb_exp: Value | int, fmt: FloatFormat, subnormals: bool, exact: bool = False
) -> Signal:
    """Bits of (-1)**sign * mag * 2**lsb_exp in `fmt`, rounded once to nearest, ties to even.

    mag is an unsigned integer; its lowest bit may be a sticky bit (OR of bits already dropped
    below it), which rounds correctly as long as it lies below the rounding position (fp32_add).
    subnormals=False: results below the normal range flush to a signed zero (never reached here).
    exact=True: the caller guarantees that mag fits the significand, so no rounding logic is built.
    Results beyond the largest finite value become +-Inf. mag == 0 gives a signed zero.
    """
    mb = fmt.man_bits
    pad = max(0, mb + 3 - len(mag))  # room for the significand, the round bit and a sticky bit
    mag = Cat(Const(0, pad), mag)
    lsb_exp = lsb_exp - pad
    w = len(mag)
    lz = leading_zeros(mag)
    norm = Signal(unsigned(w))
    m.d.comb += norm.eq(mag << lz)
    biased = Signal(signed(max(len(Value.cast(lsb_exp)), w.bit_length(), fmt.exp_bits + 1) + 3))
    m.d.comb += biased.eq(lsb_exp + (w - 1 + fmt.bias) - lz)

    top = norm[w - 2 - mb :]  # significand (hidden bit included) and the round bit
    low_sticky = norm[: w - 2 - mb].any()
    if subnormals:
        # Below the normal range the LSB stays at 2**(1 - bias - mb): shift right, keeping a sticky bit.
        extra = Signal(range(mb + 3))
        m.d.comb += extra.eq(Mux(biased >= 1, 0, Mux(biased <= -mb - 1, mb + 2, 1 - biased)))
        shifted = Signal(unsigned(2 * (mb + 2)))
        m.d.comb += shifted.eq(Cat(Const(0, mb + 2), top) >> extra)
        kept, round_bit = shifted[mb + 3 :], shifted[mb + 2]
        sticky = low_sticky | shifted[: mb + 2].any()
    else:
        kept, round_bit, sticky = top[1:], top[0], low_sticky
    round_up = 0 if exact else round_bit & (sticky | kept[0])

    # Exponent field above the stored mantissa (a normal significand's hidden bit makes it `biased`,
    # a subnormal's 0); the rounding increment may carry into it, up to Inf, as IEEE intends.
    body = Signal(unsigned(fmt.exp_bits + mb))
    m.d.comb += body.eq(Cat(kept[:mb], Mux(biased >= 1, biased, 0)[: fmt.exp_bits]) + round_up)
    result = Signal(unsigned(fmt.width))
    overflow = biased >= (1 << fmt.exp_bits) - 1
    vanishes = (mag == 0) if subnormals else ((mag == 0) | (biased < 1))
    with m.If(vanishes):
        m.d.comb += result.eq(Cat(Const(0, fmt.width - 1), sign))
    with m.Elif(overflow):
        m.d.comb += result.eq(Cat(Const(fmt.inf, fmt.width - 1), sign))
    with m.Else():
        m.d.comb += result.eq(Cat(body, sign))
    return result


def fp16_scaled_int(m: Module, scale_bits: Value, k: Value) -> Signal:
    """FP16 bits of S * k, S an FP16 value (finite, may be subnormal), k a small signed integer.

    The product mantissa * |k| is exact; it is rounded once to FP16 (RNE, subnormal results kept,
    overflow to +-Inf). This is the per-weight dequantizer w = fp16(S * (q - z)).
    """
    s_sign, s_mant, s_shift = decode_fp16(scale_bits)
    k_neg = k[-1]
    k_mag = Signal(unsigned(len(k)))
    m.d.comb += k_mag.eq(Mux(k_neg, -k, k))
    mag = Signal(unsigned(11 + len(k)))
    m.d.comb += mag.eq(s_mant * k_mag)
    lsb_exp = Signal(signed(7))
    m.d.comb += lsb_exp.eq(s_shift - 24)
    return round_pack(m, s_sign ^ k_neg, mag, lsb_exp, FP16, subnormals=True)


def fp16_product_fp32(m: Module, act_bits: Value, w_bits: Value) -> Signal:
    """FP32 bits of a * w for a finite FP16 activation a and an FP16 weight w (which may be +-Inf).

    The 11 x 11 bit significand product has at most 22 bits and its exponent lies within FP32's
    normal range (2**-48 .. 2**32), so the product is exact: no rounding happens. Inf * 0 = NaN.
    """
    a_sign, a_mant, a_shift = decode_fp16(act_bits)
    w_sign, w_mant, w_shift = decode_fp16(w_bits)
    mag = Signal(unsigned(22))
    m.d.comb += mag.eq(a_mant * w_mant)
    lsb_exp = Signal(signed(8))
    m.d.comb += lsb_exp.eq(a_shift + w_shift - 48)
    product = round_pack(m, a_sign ^ w_sign, mag, lsb_exp, FP32, subnormals=False, exact=True)
    w_special = w_bits[10:15] == 0x1F
    result = Signal(32)
    with m.If(w_special & ((a_mant == 0) | (w_bits[:10] != 0))):
        m.d.comb += result.eq(FP32_NAN)
    with m.Elif(w_special):
        m.d.comb += result.eq(Cat(Const(FP32.inf, 31), a_sign ^ w_sign))
    with m.Else():
        m.d.comb += result.eq(product)
    return result


def int_to_fp32(m: Module, x: Value, lsb_exp: int) -> Signal:
    """FP32 bits of the signed integer x times 2**lsb_exp, rounded once (RNE)."""
    mag = Signal(unsigned(len(x)))
    m.d.comb += mag.eq(Mux(x[-1], -x, x))
    return round_pack(m, x[-1], mag, lsb_exp, FP32, subnormals=False)


def _fp32_fields(bits: Value) -> tuple[Value, Value, Value]:
    """(sign, 24-bit significand with the hidden bit, effective biased exponent >= 1)."""
    exponent = bits[23:31]
    normal = exponent != 0
    return bits[31], Cat(bits[:23], normal), Mux(normal, exponent, 1)


def fp32_mul_fp16(m: Module, x_bits: Value, s_bits: Value) -> Signal:
    """FP32 bits of x * s for a finite FP32 x and a finite FP16 s, rounded once (RNE)."""
    x_sign, x_sig, x_exp = _fp32_fields(x_bits)
    s_sign, s_mant, s_shift = decode_fp16(s_bits)
    mag = Signal(unsigned(35))
    m.d.comb += mag.eq(x_sig * s_mant)
    lsb_exp = Signal(signed(10))
    m.d.comb += lsb_exp.eq(x_exp + s_shift - (FP32.bias + 23 + 24))
    return round_pack(m, x_sign ^ s_sign, mag, lsb_exp, FP32, subnormals=False)


def _align(m: Module, sig: Value, distance: Value) -> Value:
    """A 24-bit significand shifted right by `distance` into 27 bits: 3 extra bits, the lowest one sticky."""
    full = Signal(unsigned(54))
    m.d.comb += full.eq(Cat(Const(0, 30), sig) >> Mux(distance > 27, 27, distance))
    return Cat(full[:28].any(), full[28:])  # the sticky bit ORs everything shifted below it


def fp32_add(m: Module, x_bits: Value, y_bits: Value) -> Signal:
    """FP32 bits of x + y, rounded once (RNE), with IEEE Inf/NaN rules.

    Single-path adder without an operand swap: both significands are aligned to the larger exponent
    (one of the two shifts is by 0) with three extra bits (guard, round, and a sticky bit that ORs
    everything shifted further); x - y and y - x are formed side by side and the non-negative one
    kept, then round_pack normalizes and rounds. An exact zero sum is +0 unless both inputs are -0.
    """
    x_sign, x_sig, x_exp = _fp32_fields(x_bits)
    y_sign, y_sig, y_exp = _fp32_fields(y_bits)
    x_minus_y, y_minus_x = Signal(signed(9)), Signal(signed(9))
    m.d.comb += [x_minus_y.eq(x_exp - y_exp), y_minus_x.eq(y_exp - x_exp)]
    x_exp_larger = ~x_minus_y[-1]
    x_al = _align(m, x_sig, Mux(x_exp_larger, 0, y_minus_x[:8]))
    y_al = _align(m, y_sig, Mux(x_exp_larger, x_minus_y[:8], 0))
    difference, reverse, total = Signal(signed(29)), Signal(signed(29)), Signal(unsigned(28))
    m.d.comb += [difference.eq(x_al - y_al), reverse.eq(y_al - x_al)]
    x_larger = ~difference[-1]  # only with equal exponents can y's aligned significand be the larger
    subtract = x_sign ^ y_sign
    m.d.comb += total.eq(Mux(subtract, Mux(x_larger, difference, reverse), x_al + y_al))
    sign = Mux(total == 0, x_sign & y_sign, Mux(subtract & ~x_larger, y_sign, x_sign))
    lsb_exp = Signal(signed(10))
    m.d.comb += lsb_exp.eq(Mux(x_exp_larger, x_exp, y_exp) - (FP32.bias + 23 + 3))
    rounded = round_pack(m, sign, total, lsb_exp, FP32, subnormals=False)

    result = Signal(32)
    x_special, y_special = x_bits[23:31] == 0xFF, y_bits[23:31] == 0xFF
    x_nan, y_nan = x_special & (x_bits[:23] != 0), y_special & (y_bits[:23] != 0)
    with m.If(x_nan | y_nan | (x_special & y_special & subtract)):
        m.d.comb += result.eq(FP32_NAN)
    with m.Elif(x_special | y_special):
        m.d.comb += result.eq(Mux(x_special, x_bits, y_bits))
    with m.Else():
        m.d.comb += result.eq(rounded)
    return result


def fp32_accumulate(m: Module, acc: Value, x: Value, restart: Value) -> Signal:
    """Next FP32 accumulator: fp32(+0 + x) when `restart` (x itself, but -0 becomes +0), else fp32(acc + x).

    Same bits as fp32_add(Mux(restart, 0, acc), x), with the restart choice after the adder
    instead of in front of it, off the accumulation loop's critical path.
    """
    total = fp32_add(m, acc, x)
    result = Signal(32)
    m.d.comb += result.eq(Mux(restart, Mux(x[:31] == 0, 0, x), total))
    return result


def valid_stage(m: Module, name: str, valid: Value, first: Value, last: Value, *data: tuple[Value, int]):
    """One pipeline register stage of a PE: `valid` is registered every cycle; `first`, `last` and each
    (value, width in bits) of `data` only while valid, so the data registers of an idle PE hold still.
    Returns the registered (valid, first, last, *data), named name_valid, name_first, name_last, name_0, ..."""
    regs = [Signal(name=f"{name}_{flag}") for flag in ("valid", "first", "last")]
    regs += [Signal(width, name=f"{name}_{i}") for i, (_, width) in enumerate(data)]
    m.d.sync += regs[0].eq(valid)
    with m.If(valid):
        m.d.sync += [r.eq(v) for r, v in zip(regs[1:], (first, last, *(v for v, _ in data)), strict=True)]
    return tuple(regs)


def fp32_accumulate_stage(m: Module, valid: Value, first: Value, last: Value, x: Value, out_valid, out_y) -> None:
    """A PE's last pipeline stage: y = fp32_accumulate(y, x, first) when valid; drives out_y and out_valid."""
    acc = Signal(32)
    total = fp32_accumulate(m, acc, x, first)
    with m.If(valid):
        m.d.sync += acc.eq(total)
    m.d.sync += out_valid.eq(valid & last)
    m.d.comb += out_y.eq(acc)
