"""Group dequantization shared by a column of MixPEs, at the array's top edge (group_dequant="edge").

Inside such an array a PE is MixPE's stage 1 alone (`GroupAccumulator`): no multiplier, no
accumulator, no scale register. Each finished group's record (valid, first, last, P) climbs its
column through one register per PE, the way results drain in the other arrays: a row's register
loads its PE's record in the cycle the record appears, else takes the one from below. PE (i, j)'s
record for a group whose last operand the host presented in cycle t reaches the top of column j in
cycle t + 2i + j + 2, rows in order, two cycles apart. There one `EdgeDequantizer` per column
  E1  registers P * S_lo and P * S_hi (8-bit halves), S being the scale captured when the group
      ended at the column's first row;
  E2  registers P * S = P * S_lo + (P * S_hi << 8);
  E3  acc = (P * S if first else acc + P * S) for the record's row; on `last` out_y = that sum,
      out_valid = 1 in the next cycle. The R accumulators (one per row) form a ring that each
      record rotates by one, so the head is always the arriving row's (records come in row order),
so PE (i, j)'s result leaves in cycle t_last + 2i + j + 1 + L with L = 4 (PEConfig.latency), the
array's usual cycle formula. The column shares one multiplier and keeps its rows' accumulators,
and scale no longer travels down the column.

Constraint: a group's R records must all have reached the top, and used its S, before the next
group's S is captured: G >= 2R (hw.config.ArrayConfig rejects smaller groups).

Measured (hw.synth's yosys script, osu018, W4 unsigned, INT8 act, G=128; µm²):
    4x4 arrays, whole: edge 971,310; serial MixPEs 1,035,262 (0.94x)
    per array slot, blocks alone: stage 1 with the array's group flag 21,771 (its 16-bit scale
    register, ~2,300, goes unused here), one record-chain hop ~3,500 (24 flip-flops + muxes,
    instead of the 49-bit result drain, ~7,100), the edge unit 116,244 (1 row), 138,661 (4 rows),
    349,486 (32 rows: 10,900 per PE); a serial MixPE with the array's flag 52,305.
The per-slot sums predict both 4x4 arrays within 3%; for a 32x32 array they give ~37k µm² per PE
slot with the edge unit against ~65k with serial MixPEs (0.57x), forwarding registers included.
Clock: the edge unit's logic is shallower than a PE's stage 1 (5.6 ns with one row against 6.4 ns,
INT8; FP16 10.2 ns against 9.9 ns, its 8 x 55-bit half multiplier), but hw.synth inserts no buffers,
so the ring's shift enable (R x acc_bits loads) and any array's broadcast flags dominate its pre-
layout timing (4x4 arrays, serial or edge: ~30 ns); arrays need a flow with buffering (eda/) for
their clock.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from hw import config as C


def group_record(cfg: C.PEConfig) -> data.StructLayout:
    """What climbs a column per finished group (beside its valid bit): first, last, P (signed)."""
    return data.StructLayout({"first": 1, "last": 1, "sum": signed(cfg.group_sum_bits)})


class EdgeDequantizer(wiring.Component):
    """One column's group dequantizer and its R accumulators; see the module docstring.

    record_valid / record: the group record at the top of the column's chain. scale / group_end: the column's scale
    port and group-end flag as its first row sees them. out_valid / out_y: the column's result port.
    """

    def __init__(self, cfg: C.PEConfig, rows: int):
        self.cfg, self.rows = cfg, rows
        super().__init__(
            {
                "record_valid": In(1),
                "record": In(group_record(cfg)),
                "scale": In(C.SCALE_PORT_BITS),
                "group_end": In(1),
                "out_valid": Out(1),
                "out_y": Out(signed(cfg.acc_bits)),
            }
        )

    def elaborate(self, platform) -> Module:
        m = Module()
        cfg, rec = self.cfg, self.record
        scale = Signal(C.SCALE_PORT_BITS, reset_less=True)
        with m.If(self.group_end):
            m.d.sync += scale.eq(self.scale)

        # E1, E2: the column's one multiplier, split in two 8-bit halves of S so that it times like a PE.
        half = C.SCALE_PORT_BITS // 2
        lo, hi = (Signal(signed(cfg.group_sum_bits + half), reset_less=True) for _ in range(2))
        prod = Signal(signed(cfg.scaled_group_bits), reset_less=True)
        valid = [Signal(name=f"e{k}_valid") for k in (1, 2)]
        first = [Signal(name=f"e{k}_first", reset_less=True) for k in (1, 2)]
        last = [Signal(name=f"e{k}_last", reset_less=True) for k in (1, 2)]
        m.d.sync += [valid[0].eq(self.record_valid), valid[1].eq(valid[0])]
        with m.If(self.record_valid):
            m.d.sync += [
                lo.eq(scale[:half] * rec.sum),
                hi.eq(scale[half:] * rec.sum),
                first[0].eq(rec.first),
                last[0].eq(rec.last),
            ]
        with m.If(valid[0]):
            m.d.sync += [prod.eq(lo + (hi << half)), first[1].eq(first[0]), last[1].eq(last[0])]

        # E3: the accumulators form a ring whose head belongs to the row whose record this is
        # (records come in row order); each record rotates it by one, so no row index is decoded.
        ring = [Signal(signed(cfg.acc_bits), name=f"acc{i}", reset_less=True) for i in range(self.rows)]
        new = Signal(signed(cfg.acc_bits))
        m.d.comb += new.eq(Mux(first[1], prod, ring[0] + prod))
        with m.If(valid[1]):
            m.d.sync += [reg.eq(nxt) for reg, nxt in zip(ring, [*ring[1:], new], strict=True)]
        m.d.sync += self.out_valid.eq(valid[1] & last[1])
        with m.If(valid[1] & last[1]):
            m.d.sync += self.out_y.eq(new)
        return m
