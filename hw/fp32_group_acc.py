"""MixPE with FP32 accumulation: the exact group sum is converted, scaled and added in FP32 once per group.

Following the paper's exponent path for FP16 activations, the in-group work stays exact: MixPE's
stage 1 (hw/mixpe_pe.py, GroupAccumulator) forms D = sum a * (q - z) over the group as an integer in
units of 2**-24 (a shift of the FP16 mantissa is an exponent step, so nothing rounds). Once per group,
Fp32GroupAccumulator, a MixPE stage 2 on the GroupSignature boundary (hw/group_dequant.py), then does
what a conventional FP32 output stage would (latency 4 in all, counting stage 1's group register):
    stage 2   d = fp32(D * 2**-24)             int -> FP32 (RNE)
    stage 3   g = fp32(d * S)                  times the FP16 scale S (RNE); the 16-bit scale port
                                              holds S as FP16 bits
    stage 4   y = fp32(y + g)                  one FP32 add per group (RNE); the first group of a dot
                                              product adds to +0
out_y holds the FP32 bits of y (acc_bits = 32). No Inf, NaN or FP32 subnormal can arise here
(hw/float_arith.py): |D| < 2**59 and S is finite.
"""

from __future__ import annotations

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hw import config as C
from hw.float_arith import fp32_accumulate_stage, fp32_mul_fp16, int_to_fp32, valid_stage
from hw.group_dequant import GroupSignature


class Fp32GroupAccumulator(wiring.Component):
    """MixPE stage 2 for accumulate="fp32": per finished group (GroupSignature: valid, first, last, the
    exact group sum in units of 2**-24, the FP16 scale bits) -> FP32 accumulator.

    out_y: FP32 bits, changing three cycles after a valid group; out_valid three cycles after a group
    with `last`.
    """

    def __init__(self, cfg: C.PEConfig):
        self.cfg = cfg
        super().__init__({"group": In(GroupSignature(cfg)), "out_valid": Out(1), "out_y": Out(32)})

    def elaborate(self, platform) -> Module:
        m = Module()
        group = self.group
        # Convert, then scale, each in its own stage: a group is converted once, so two more
        # registers cost little, and the clock is left to the accumulation loop.
        d_valid, d_first, d_last, d, d_scale = valid_stage(
            m,
            "d",
            group.valid,
            group.first,
            group.last,
            (int_to_fp32(m, group.sum, C.FP16_LSB_EXP), 32),
            (group.scale, C.SCALE_PORT_BITS),
        )
        g_valid, g_first, g_last, g = valid_stage(m, "g", d_valid, d_first, d_last, (fp32_mul_fp16(m, d, d_scale), 32))
        fp32_accumulate_stage(m, g_valid, g_first, g_last, g, self.out_valid, self.out_y)
        return m
