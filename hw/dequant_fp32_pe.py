"""Baseline for W4A16: the conventional accelerator path, FP16 multiply with FP32 accumulation.

What a tensor-core-style datapath does with a low-bit weight, in three pipeline stages (latency 3):
    stage 1   w = fp16(S * (q - z))        per-weight dequantizer to FP16; the 16-bit scale port holds
                                           the group's scale S as FP16 bits (not the integer S of the
                                           exact PEs). One rounding (RNE, subnormals, overflow to Inf).
    stage 2   p = a * w                    FP16 x FP16, exact in FP32 (11 x 11 bit significands)
    stage 3   y = fp32(y + p)              one FP32 add per operand, rounded to nearest even; `first`
                                           restarts from +0
out_y holds the FP32 bits of y (acc_bits = 32). hw/float_arith.py states what is and is not
handled (FP32 subnormals cannot arise; Inf/NaN only from an overflowing dequantized weight).
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal, signed

from hw.arith import weight_value
from hw.float_arith import fp16_product_fp32, fp16_scaled_int, fp32_accumulate_stage, valid_stage
from hw.pe import PE


class DequantFp32PE(PE):
    """Dequantize to FP16, multiply in FP16, accumulate in FP32 (RNE)."""

    def elaborate(self, platform) -> Module:
        m = Module()
        cfg = self.cfg
        k = Signal(signed(cfg.wbits + 1))  # q - z
        q = weight_value(self.q, cfg.wbits, cfg.signed_weights)
        m.d.comb += k.eq(q if cfg.signed_weights else q - self.zero[: cfg.wbits])
        w16 = fp16_scaled_int(m, self.scale, k)

        # Stage 1: the FP16 weight, the activation and the flags.
        s1_valid, s1_first, s1_last, s1_act, s1_w = valid_stage(
            m, "s1", self.valid, self.first, self.last, (self.act, 16), (w16, 16)
        )

        # Stage 2: the exact FP32 product.
        product = (fp16_product_fp32(m, s1_act, s1_w), 32)
        s2_valid, s2_first, s2_last, s2_product = valid_stage(m, "s2", s1_valid, s1_first, s1_last, product)

        # Stage 3: accumulate in FP32.
        fp32_accumulate_stage(m, s2_valid, s2_first, s2_last, s2_product, self.out_valid, self.out_y)
        return m
