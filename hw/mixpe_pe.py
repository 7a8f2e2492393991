"""MixPE: low-bit weight x INT8/FP16 activation by shift-and-add, dequantized once per group.

Two stages, joined by `hw.group_dequant.GroupSignature` (the documented boundary: another stage 2,
e.g. an FP32 accumulator, plugs onto `GroupAccumulator` unchanged):

Stage 1, `GroupAccumulator`, one operand per cycle (no multiplier):
    d   = q - z            the zero point folded into the weight (unsigned weights; signed: d = q),
                           a (wbits+1)-bit two's complement digit string
    p   = a * d            shift-and-add: sum_j d_j * (a << j), the top bit subtracted; for FP16 it
                           runs on the 11-bit mantissa, the exponent becomes one more left shift
                           and the sign is applied by the group-sum adder (ones' complement, carry in)
    P  += p                the group sum, exact (group_sum_bits wide)
  At the G-th operand of a group (counted since `first`, or flagged by the array: `group_end`), P,
  S and the first/last flags are registered and a one-cycle `valid` pulse goes to stage 2.
  Folding z into the weight replaces the per-PE activation sum A = sum a and the wide z * A
  shift-add of the first MixPE (P - z * A at the group end) by one (wbits+1)-bit subtractor.

Stage 2 (hw/group_dequant.py, PEConfig.group_dequant): y += S * P, in one cycle with a full
multiplier ("parallel", latency 2) or in 16 / serial_bits cycles of shift-add ("serial", latency
16 / serial_bits + 2). y changes only when a group lands: the first group of a dot product replaces
it, so y holds the previous result until then. `last` must fall on a group end (K a multiple of G).
No rounding happens anywhere: the sums are exact integers and y wraps modulo 2**acc_bits.

Inside an array the group counter is the same for every PE of a row (they see the same flags,
delayed), so hw/array.py counts once at the array edge and forwards `group_end` with the flags;
a standalone PE counts itself.
"""

from __future__ import annotations

from amaranth.hdl import Const, Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hw import config as C
from hw.arith import decode_act, decode_fp16, shift_add
from hw.fp32_group_acc import Fp32GroupAccumulator
from hw.group_dequant import DEQUANTIZERS, GroupSignature
from hw.pe import PE, PESignature

PE_INPUTS = ("valid", "first", "last", "act", "q", "scale", "zero")


def group_end_flag(m: Module, valid: Value, first: Value, group: int) -> Value:
    """High on the valid operand that completes a group of `group` operands counted since `first`."""
    count = Signal(unsigned(C.clog2(group + 1)), name="group_count")
    count_next = Mux(first, 0, count) + 1
    group_end = Signal(name="group_end")
    m.d.comb += group_end.eq(valid & (count_next == group))
    with m.If(valid):
        m.d.sync += count.eq(Mux(group_end, 0, count_next))
    return group_end


class GroupAccumulator(wiring.Component):
    """MixPE stage 1: the PE's operand inputs in, one `GroupSignature` record per finished group out.

    shared_group_end: take the group-end flag from an input `group_end` (high on the valid operand
    that completes a group) instead of counting operands here.
    """

    def __init__(self, cfg: C.PEConfig, shared_group_end: bool = False):
        self.cfg = cfg
        self.shared_group_end = shared_group_end
        members = {name: member for name, member in PESignature(cfg.acc_bits).members.items() if name in PE_INPUTS}
        if shared_group_end:
            members["group_end"] = In(1)
        super().__init__({**members, "group": Out(GroupSignature(cfg))})

    def product(self, m: Module) -> tuple[Value, Value]:
        """(p, negate): a * (q - z) (unsigned weights) or a * q (signed) is -p if negate else p.

        FP16's sign is left to the group-sum adder (p ^ -negate, carry-in negate), so no carry chain
        of a separate negation lies on stage 1's path.
        """
        cfg = self.cfg
        if cfg.signed_weights:
            digits, nbits = self.q[: cfg.wbits], cfg.wbits
        else:
            digits, nbits = Signal(signed(cfg.wbits + 1), name="weight_minus_zero"), cfg.wbits + 1
            m.d.comb += digits.eq(self.q[: cfg.wbits] - self.zero[: cfg.wbits])
        if cfg.act == "int8":
            return shift_add(decode_act(self.act, "int8"), digits, nbits, signed_weights=True), Const(0)
        sign, mantissa, shift = decode_fp16(self.act)
        return shift_add(mantissa, digits, nbits, signed_weights=True) << shift, sign

    def elaborate(self, platform) -> Module:
        m = Module()
        cfg, out = self.cfg, self.group
        value, negate = self.product(m)
        prod = Signal(signed(cfg.product_bits))  # the product, or its ones' complement if negate
        m.d.comb += prod.eq(value ^ negate.replicate(cfg.product_bits))
        if self.shared_group_end:
            group_end = self.group_end
        else:
            group_end = group_end_flag(m, self.valid, self.first, cfg.group)

        # Data registers need no reset (fewer cells): `first` and the valid flags decide when they count.
        group_sum = Signal(signed(cfg.group_sum_bits), reset_less=True)
        sum_next = Signal(signed(cfg.group_sum_bits))
        in_first_group = Signal()  # the group being accumulated is its dot product's first
        # `first` selects after the adder, not before it, to keep its fan-out off the carry chain
        # (yosys may still share the adders); the restarted sum applies FP16's sign on its own.
        m.d.comb += sum_next.eq(Mux(self.first, prod + negate, group_sum + prod + negate))
        with m.If(self.valid):
            m.d.sync += [
                group_sum.eq(Mux(group_end, 0, sum_next)),
                in_first_group.eq(~group_end & (self.first | in_first_group)),
            ]
        # Registered hand-over to stage 2: sum/scale/flags hold until the next group ends.
        m.d.sync += out.valid.eq(group_end)
        held = {name: Signal.like(getattr(out, name), reset_less=True) for name in ("sum", "scale", "first", "last")}
        with m.If(group_end):
            m.d.sync += [
                held["sum"].eq(sum_next),
                held["scale"].eq(self.scale),
                held["first"].eq(self.first | in_first_group),
                held["last"].eq(self.last),
            ]
        m.d.comb += [getattr(out, name).eq(reg) for name, reg in held.items()]
        return m


class MixPE(PE):
    """The MixPE processing element: `GroupAccumulator` feeding the configured group dequantizer
    (accumulate="fp32": hw/fp32_group_acc.py's FP32 stage 2).

    shared_group_end: the PE gets an extra input `group_end` (used by hw/array.py, which counts
    groups once at the array edge); a standalone PE keeps the plain PESignature and its own counter.
    """

    def __init__(self, cfg: C.PEConfig, shared_group_end: bool = False):
        self.shared_group_end = shared_group_end
        signature = PESignature(cfg.acc_bits)
        if shared_group_end:
            signature = wiring.Signature({**signature.members, "group_end": In(1)})
        super().__init__(cfg, signature)

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.accumulate = stage1 = GroupAccumulator(self.cfg, self.shared_group_end)
        stage2_class = Fp32GroupAccumulator if self.cfg.fp32 else DEQUANTIZERS[self.cfg.group_dequant]
        m.submodules.dequantize = stage2 = stage2_class(self.cfg)
        inputs = PE_INPUTS + (("group_end",) if self.shared_group_end else ())
        m.d.comb += [getattr(stage1, name).eq(getattr(self, name)) for name in inputs]
        wiring.connect(m, stage1.group, stage2.group)
        m.d.comb += [self.out_valid.eq(stage2.out_valid), self.out_y.eq(stage2.out_y)]
        return m
