"""MixPE: low-bit weight x INT8/FP16 activation by shift-and-add, dequantized once per group.

Per operand (no multiplier on the weight path):
    p   = a * q            shift-and-add: sum_j q_j * (a << j); for FP16 the shift-and-add runs on the
                           11-bit mantissa and the exponent becomes one more left shift (alignment)
    P  += p                group sum of products, exact (group_sum_bits wide)
    A  += a                group sum of activations, only for unsigned weights (zero point)
At the G-th operand of a group (counted since `first`), P - z * A (z * A by shift-and-add too) and S
are registered, and in the next cycle the group is dequantized once, in a second pipeline stage:
    y  += S * (P - z * A)  the only multiplier; its inputs change once per G operands
so out_valid comes two cycles after `last` (latency 2). The accumulator y changes only when a group
lands: the first group of a dot product replaces it, so y holds the previous result until then.
`last` must fall on a group end (K a multiple of G). No rounding happens anywhere: the sums are
exact integers and y wraps modulo 2**acc_bits.
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

    def elaborate(self, platform) -> Module:
        m = Module()
        self.dequantize(m, *self.group_stage(m))
        return m

    def group_stage(self, m: Module) -> tuple[Signal, Signal, Signal, Signal, Signal]:
        """Stage 1; returns the registers (valid, first, last, scale, exact group sum) of each finished group."""
        cfg = self.cfg
        prod = Signal(signed(cfg.product_bits))
        p_raw, a = self.product(m)
        m.d.comb += prod.eq(p_raw)

        # Stage 1: accumulate the group in the integer domain, one operand per cycle.
        count = Signal(unsigned(C.clog2(cfg.group + 1)))
        group_sum = Signal(signed(cfg.group_sum_bits))
        in_first_group = Signal()  # the group being accumulated is its dot product's first
        count_next = Mux(self.first, 0, count) + 1
        group_end = self.valid & (count_next == cfg.group)
        sum_next = Signal(signed(cfg.group_sum_bits))
        m.d.comb += sum_next.eq(Mux(self.first, 0, group_sum) + prod)
        if cfg.signed_weights:
            diff = sum_next
        else:
            act_sum = Signal(signed(cfg.act_sum_bits))
            act_sum_next = Signal(signed(cfg.act_sum_bits))
            m.d.comb += act_sum_next.eq(Mux(self.first, 0, act_sum) + a)
            diff = sum_next - shift_add(act_sum_next, self.zero, cfg.wbits, signed_weights=False)
            with m.If(self.valid):
                m.d.sync += act_sum.eq(Mux(group_end, 0, act_sum_next))
        with m.If(self.valid):
            m.d.sync += [
                count.eq(Mux(group_end, 0, count_next)),
                group_sum.eq(Mux(group_end, 0, sum_next)),
                in_first_group.eq(~group_end & (self.first | in_first_group)),
            ]

        # Stage 2: dequantize the finished group. Its operands are registered, so the multiplier's
        # inputs change once per group, not every cycle, and the two stages time separately.
        dq_valid, dq_first, dq_last = Signal(), Signal(), Signal()
        dq_scale = Signal(C.SCALE_PORT_BITS)
        dq_diff = Signal(signed(cfg.group_sum_bits + 1))
        m.d.sync += dq_valid.eq(group_end)
        with m.If(group_end):
            m.d.sync += [
                dq_scale.eq(self.scale),
                dq_diff.eq(diff),
                dq_first.eq(self.first | in_first_group),
                dq_last.eq(self.last),
            ]
        return dq_valid, dq_first, dq_last, dq_scale, dq_diff

    def dequantize(self, m: Module, dq_valid, dq_first, dq_last, dq_scale, dq_diff) -> None:
        """Stage 2: y += S * (P - z * A) once per finished group."""
        acc = Signal(signed(self.cfg.acc_bits))
        with m.If(dq_valid):
            m.d.sync += acc.eq(Mux(dq_first, 0, acc) + dq_scale * dq_diff)
        m.d.sync += self.out_valid.eq(dq_valid & dq_last)
        m.d.comb += self.out_y.eq(acc)
