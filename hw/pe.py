"""The interface every PE shares, and the accumulator logic they have in common.

One operand per cycle, valid-qualified, no back-pressure (a systolic array cannot stall a single PE):

    valid  an operand pair is present this cycle; when low the PE holds all state (a stall/bubble)
    first  this operand starts a new output: the accumulator restarts from zero
    last   this operand ends the output: out_valid rises on the next cycle
    act    activation (INT8 in bits 7:0, or FP16 bits)
    q      quantized weight in the low wbits
    scale  the group's scale S, unsigned 16 bits (the real scale is S * 2**-F; F is the host's choice)
    zero   the group's zero point z in the low wbits (unsigned weights only)

    out_y      the accumulator, signed acc_bits, wrapping modulo 2**acc_bits
    out_valid  one cycle after an operand with `last`; out_y then holds the finished dot product

Latency: the INT8 PE shows an operand presented in cycle t in out_y in cycle t+1, and raises
out_valid one cycle after `last`; the pipelined dequantize-then-multiply PE takes two, MixPE two with
the parallel group multiplier and 16 / serial_bits + 2 with the serial one, the FP32-accumulating
variants three (dequant) and four (MixPE); PEConfig.latency is the one source of these numbers.
The result is an exact integer: y = sum over groups of S * sum_k a_k * (q_k - z) in the PE domain
(INT8, or FP16 aligned to 2**-24), so y * 2**-F (* 2**-24 for FP16) is the real dot product.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hw import config as C
from hw.arith import decode_act


class PESignature(wiring.Signature):
    """The shared PE interface; only the accumulator width differs between configurations."""

    def __init__(self, acc_bits: int):
        super().__init__(
            {
                "valid": In(1),
                "first": In(1),
                "last": In(1),
                "act": In(C.ACT_PORT_BITS),
                "q": In(C.Q_PORT_BITS),
                "scale": In(C.SCALE_PORT_BITS),
                "zero": In(C.ZERO_PORT_BITS),
                "out_valid": Out(1),
                "out_y": Out(signed(acc_bits)),
            }
        )


class PE(wiring.Component):
    """Base of all PEs: a one-stage accumulator that restarts on `first`; `last` -> out_valid.

    Subclasses define `increment(m) -> Value`, the amount added to the accumulator this cycle (it
    may add registers of its own), or their own `elaborate` (the pipelined PEs). `signature`
    replaces PESignature for PEs inside an array that take extra inputs (MixPE's `group_end`).
    """

    def __init__(self, cfg: C.PEConfig, signature: wiring.Signature | None = None):
        self.cfg = cfg
        super().__init__(signature or PESignature(cfg.acc_bits))

    def act_value(self, m: Module) -> Signal:
        """The decoded activation as a named signal, exactly act_fixed_bits wide."""
        a = Signal(signed(self.cfg.act_fixed_bits))
        m.d.comb += a.eq(decode_act(self.act, self.cfg.act))
        return a

    def elaborate(self, platform) -> Module:
        m = Module()
        acc = Signal(signed(self.cfg.acc_bits))
        delta = self.increment(m)
        with m.If(self.valid):
            m.d.sync += acc.eq(Mux(self.first, 0, acc) + delta)
        m.d.sync += self.out_valid.eq(self.valid & self.last)
        m.d.comb += self.out_y.eq(acc)
        return m
