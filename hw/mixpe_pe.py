"""MixPE: low-bit weight x INT8/FP16 activation by shift-and-add, dequantized once per group.

Per operand (no multiplier on the weight path):
    p   = a * q            shift-and-add: sum_j q_j * (a << j); for FP16 the shift-and-add runs on the
                           11-bit mantissa and the exponent becomes one more left shift (alignment)
    P  += p                group sum of products, exact (group_sum_bits wide)
    A  += a                group sum of activations, only for unsigned weights (zero point)
At the G-th operand of a group (counted since `first`), the group is dequantized once:
    y  += S * (P - z * A)  the only multiplier, used once per G operands; z * A is shift-and-add too
No rounding happens anywhere: the sums are exact integers and y wraps modulo 2**acc_bits.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, Value, signed, unsigned

from hw import config as C
from hw.arith import apply_sign, decode_fp16, shift_add
from hw.pe import PE


class MixPE(PE):
    """The MixPE processing element; see the module docstring for its datapath."""

    def product(self, m: Module) -> tuple[Value, Signal]:
        """(a * q by shift-and-add, the decoded activation a)."""
        cfg = self.cfg
        a = self.act_value(m)
        if cfg.act == "int8":
            return shift_add(a, self.q, cfg.wbits, cfg.signed_weights), a
        sign, mantissa, shift = decode_fp16(self.act)
        mq = shift_add(mantissa, self.q, cfg.wbits, cfg.signed_weights)
        return apply_sign(mq << shift, sign), a

    def increment(self, m: Module) -> Value:
        cfg = self.cfg
        prod = Signal(signed(cfg.product_bits))
        p_raw, a = self.product(m)
        m.d.comb += prod.eq(p_raw)

        count = Signal(unsigned(C.clog2(cfg.group + 1)))
        group_sum = Signal(signed(cfg.group_sum_bits))
        count_next = Mux(self.first, 0, count) + 1
        group_end = count_next == cfg.group
        sum_next = Signal(signed(cfg.group_sum_bits))
        m.d.comb += sum_next.eq(Mux(self.first, 0, group_sum) + prod)

        if cfg.signed_weights:
            dequant_in = sum_next
        else:
            act_sum = Signal(signed(cfg.act_sum_bits))
            act_sum_next = Signal(signed(cfg.act_sum_bits))
            m.d.comb += act_sum_next.eq(Mux(self.first, 0, act_sum) + a)
            zero_term = shift_add(act_sum_next, self.zero, cfg.wbits, signed_weights=False)
            dequant_in = sum_next - zero_term
            with m.If(self.valid):
                m.d.sync += act_sum.eq(Mux(group_end, 0, act_sum_next))

        with m.If(self.valid):
            m.d.sync += [
                count.eq(Mux(group_end, 0, count_next)),
                group_sum.eq(Mux(group_end, 0, sum_next)),
            ]
        return Mux(group_end, self.scale * dequant_in, 0)
