"""Baseline: dequantize every weight, then multiply at activation precision (GPU/TPU-style mpGEMM).

Built as its best advocate would, in two pipeline stages (latency 2, PEConfig.latency):
    stage 1   w = S * (q - z)              the per-weight dequantizer (16 x (wbits+1) bits), registered
                                           with the activation, already decoded for stage 2
    stage 2   y += a * w                   INT8: an 8 x (17+wbits) bit multiply-accumulate
                                           FP16, mantissa first: y += ((-1)**sign * w) * mantissa << shift,
                                           an 11 x (18+wbits) bit multiply, then a shift by the exponent
The FP16 sign is applied to w in stage 1 (where the short dequantizer leaves time), so stage 2 is
one small multiplier, a shifter and the adder. Multiplying the 11-bit mantissa and shifting is
exact, so this PE computes the same exact integer as MixPE (S and z are constant within a group);
the two PEs differ only in hardware cost, which is what the comparison is about. FP32 accumulation
(W4A16 on a conventional FP16 datapath) is hw/dequant_fp32_pe.py.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed, unsigned

from hw import config as C
from hw.arith import apply_sign, decode_fp16, weight_value
from hw.pe import PE


def dequantized_weight(m: Module, pe: PE) -> Signal:
    """w = S * (q - z) of the operand at the ports, as an exact signed integer (17 + wbits bits)."""
    cfg = pe.cfg
    q = weight_value(pe.q, cfg.wbits, cfg.signed_weights)
    zero = 0 if cfg.signed_weights else pe.zero[: cfg.wbits]
    w = Signal(signed(C.SCALE_PORT_BITS + cfg.wbits + 1))
    m.d.comb += w.eq(pe.scale * (q - zero))
    return w


class DequantPE(PE):
    """Pipelined dequantize-then-multiply baseline PE (exact integer result)."""

    def elaborate(self, platform) -> Module:
        m = Module()
        cfg = self.cfg
        w = dequantized_weight(m, self)

        # Stage 1: dequantize; register the weight, the activation and the flags.
        s1_valid, s1_first, s1_last = Signal(), Signal(), Signal()
        m.d.sync += s1_valid.eq(self.valid)
        with m.If(self.valid):
            m.d.sync += [s1_first.eq(self.first), s1_last.eq(self.last)]
        if cfg.act == "int8":
            s1_act, s1_w = Signal(signed(8)), Signal.like(w)
            with m.If(self.valid):
                m.d.sync += [s1_act.eq(self.act[:8].as_signed()), s1_w.eq(w)]
            product = s1_act * s1_w
        else:
            sign, mantissa, shift = decode_fp16(self.act)
            s1_mantissa, s1_shift = Signal(unsigned(11)), Signal(unsigned(5))
            s1_w = Signal(signed(len(w) + 1))  # (-1)**sign * w: one more bit for -(most negative w)
            with m.If(self.valid):
                m.d.sync += [s1_mantissa.eq(mantissa), s1_shift.eq(shift), s1_w.eq(apply_sign(w, sign))]
            product = (s1_w * s1_mantissa) << s1_shift

        # Stage 2: multiply and accumulate.
        acc = Signal(signed(cfg.acc_bits))
        with m.If(s1_valid):
            m.d.sync += acc.eq(Mux(s1_first, 0, acc) + product)
        m.d.sync += self.out_valid.eq(s1_valid & s1_last)
        m.d.comb += self.out_y.eq(acc)
        return m
