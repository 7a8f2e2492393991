"""MixPE's second stage: the group dequantizer, y += S * P once per finished group.

The boundary between MixPE's stages is `GroupSignature`: stage 1 (hw/mixpe_pe.py,
`GroupAccumulator`) emits, one cycle after a group's last operand, a one-cycle `valid` pulse with
the group's exact zero-corrected sum P = sum_k a_k * (q_k - z), its scale S and the `first`/`last`
flags of the dot product; P, S and the flags then hold until the next group ends, at least G cycles
later. A stage 2 is any component with an `In(GroupSignature)` port named `group` and the PE's
`out_valid`/`out_y` outputs, registered in `DEQUANTIZERS` under its `PEConfig.group_dequant` name.

Two stage 2s:
  parallel  a full 16 x group_sum_bits multiplier and the accumulator in one cycle (latency 2 in all).
  serial    a shift-add multiplier that consumes `serial_bits` bits of S per cycle, least significant
            first, into a product register that shifts right (no multiplier, one narrow adder),
            for N = 16 / serial_bits cycles, then one cycle to add S * P into the accumulator
            (latency N + 2). It reads P and S straight from stage 1's registers, which hold for
            >= G >= N cycles (PEConfig rejects G < N), so a group never overtakes the previous one.

Measured (`python -m hw.synth --group-dequant serial|parallel --serial-bits R`, osu018, W4 unsigned,
G=128, whole PE with the stage 1 of hw/mixpe_pe.py; README hardware section):
    INT8 act:  parallel 115,265 µm² at 119.0 MHz; serial 1 bit/cycle 54,627 µm² at 156.4 MHz
               (2 bits: 58,577 µm², 4 bits: 66,905 µm², no faster)
    FP16 act:  parallel 252,366 µm² at 83.4 MHz;  serial 1 bit/cycle 107,568 µm² at 93.7 MHz
Alone (a revision earlier), the serial stage 2 is 32,891 µm² (INT8; 94 flip-flops) against 92,748 µm² for the parallel
one, and no longer sets the clock (5.3 ns against 8.3 ns): stage 1 does.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hw import config as C
from hw.arith import shift_add


class GroupSignature(wiring.Signature):
    """One finished group from stage 1 (driven by stage 1, so its members are Out there).

    valid: one-cycle pulse, one cycle after the group's last operand. sum: P, signed
    group_sum_bits. scale: S, unsigned 16 bits. first/last: the group starts/ends its dot product.
    """

    def __init__(self, cfg: C.PEConfig):
        super().__init__(
            {
                "valid": Out(1),
                "first": Out(1),
                "last": Out(1),
                "sum": Out(signed(cfg.group_sum_bits)),
                "scale": Out(C.SCALE_PORT_BITS),
            }
        )


class GroupDequantizer(wiring.Component):
    """Base of the stage 2s: the `group` input, the accumulator and the PE's outputs."""

    def __init__(self, cfg: C.PEConfig):
        self.cfg = cfg
        super().__init__(
            {
                "group": In(GroupSignature(cfg)),
                "out_valid": Out(1),
                "out_y": Out(signed(cfg.acc_bits)),
            }
        )

    def accumulate(self, m: Module, valid, first, last, term) -> None:
        """In cycles with `valid`: y = (0 if first else y) + term; out_valid follows `valid & last`."""
        acc = Signal(signed(self.cfg.acc_bits))
        addend = Signal(signed(self.cfg.scaled_group_bits))
        m.d.comb += addend.eq(term)
        with m.If(valid):
            # `first` selects after the adder, not before it: its fan-out of acc_bits stays off the carry chain
            m.d.sync += acc.eq(Mux(first, addend, acc + addend))
        m.d.sync += self.out_valid.eq(valid & last)
        m.d.comb += self.out_y.eq(acc)


class ParallelDequantizer(GroupDequantizer):
    """y += S * P in the cycle the group arrives: one full multiplier, idle G - 1 cycles of G."""

    def elaborate(self, platform) -> Module:
        m = Module()
        g = self.group
        self.accumulate(m, g.valid, g.first, g.last, g.scale * g.sum)
        return m


class SerialDequantizer(GroupDequantizer):
    """S * P by shift-add over S's bits, serial_bits per cycle (dequant_cycles cycles), then y += S * P."""

    def elaborate(self, platform) -> Module:
        m = Module()
        cfg, g = self.cfg, self.group
        r, steps = cfg.serial_bits, cfg.dequant_cycles
        # prod holds sum_{j<=k} P * digit_j * 2**(r*j) shifted so that after the last step it is
        # exactly S * P; the right shifts drop only zeros, so no bit of the product is lost.
        prod = Signal(signed(cfg.scaled_group_bits), reset_less=True)  # data registers need no reset
        step = Signal(range(steps))  # digit of S used this cycle; 0 when idle
        busy = Signal()  # a group that arrived earlier is still being multiplied
        running = g.valid | busy  # g.valid marks step 0
        last_step = step == steps - 1
        # Digit k of S is selected during step k - 1 and registered, so the digit multiplexer is
        # not on the path into the adder; step 0's digit needs no selection.
        next_digit = Signal(r, reset_less=True)
        if steps > 1:
            m.d.sync += next_digit.eq(g.scale.word_select(Mux(last_step, 0, step + 1), r))
        digit = Mux(g.valid, g.scale[:r], next_digit)
        partial = Mux(g.valid, 0, prod >> r)  # the first step starts from zero
        with m.If(running):
            m.d.sync += [
                prod.eq(partial + (shift_add(g.sum, digit, r, signed_weights=False) << (C.SCALE_PORT_BITS - r))),
                step.eq(Mux(last_step, 0, step + 1)),
                busy.eq(~last_step),
            ]

        # The product is complete one cycle after the last step; add it then. The flags are copied
        # because stage 1 may overwrite them with the next group's in that very cycle (G == N).
        add_valid, add_first, add_last = Signal(), Signal(reset_less=True), Signal(reset_less=True)
        m.d.sync += add_valid.eq(running & last_step)
        with m.If(running & last_step):
            m.d.sync += [add_first.eq(g.first), add_last.eq(g.last)]
        self.accumulate(m, add_valid, add_first, add_last, prod)
        return m


DEQUANTIZERS: dict[str, type[GroupDequantizer]] = {"parallel": ParallelDequantizer, "serial": SerialDequantizer}
