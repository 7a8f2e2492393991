"""Baseline: dequantize every weight, then multiply at activation precision (GPU/TPU-style mpGEMM).

Per operand:  w = S * (q - z)   (a per-weight dequantizer: one multiplier)
              y += a * w        (a full multiplier: INT8 x 25 bits, or aligned FP16 x 25 bits)
It computes the same exact integer as MixPE (S and z are constant within a group), so the two PEs
differ only in hardware cost, which is what the comparison is about.
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal, Value, signed

from hw.arith import weight_value
from hw.pe import PE


class DequantPE(PE):
    """Dequantize-then-multiply baseline PE."""

    def increment(self, m: Module) -> Value:
        cfg = self.cfg
        a = self.act_value(m)
        q = weight_value(self.q, cfg.wbits, cfg.signed_weights)
        zero = 0 if cfg.signed_weights else self.zero[: cfg.wbits]
        w = Signal(signed(16 + cfg.wbits + 2))
        m.d.comb += w.eq(self.scale * (q - zero))
        return a * w
