"""Baseline: a plain INT8 x INT8 multiply-accumulate PE for W8A8 (scale and zero ports unused)."""

from __future__ import annotations

from amaranth.hdl import Module, Value

from hw.pe import PE


class Int8PE(PE):
    """y += a * w with signed 8-bit activation and weight."""

    def increment(self, m: Module) -> Value:
        return self.act_value(m) * self.q.as_signed()
