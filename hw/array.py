"""An output-stationary systolic array of R x C identical PEs.

Dataflow (output-stationary: PE (i, j) owns output Y[i, j] of the current tile):
  * The host presents one operand vector per cycle t: activations a[t][0..R-1] (one per row),
    weights q/scale/zero[t][0..C-1] (one per column), and the shared flags valid/first/last.
  * Skew: row i's activations and flags are delayed i cycles, column j's weights j cycles, by
    shift registers at the array edge, so the host needs no skewing of its own.
  * Activations and flags move right one PE per cycle, weights move down one PE per cycle:
    PE (i, j) sees the operand the host presented at cycle t in cycle t + i + j.
  * Drain: each column has a chain of result registers that shifts *up*, against the wavefront.
    PE (i, j)'s result (out_valid in cycle t_last + i + j + L, L = PEConfig.latency)
    leaves the top of column j in cycle t_last + 2*i + j + 1 + L, so rows never collide within a tile,
    and column outputs come row by row.

Gating: in_row_en (one bit per row) and in_col_en (one bit per column and lane) mark the rows and
columns a tile uses. A row's enable travels with its flags, a column's with its weights, and a PE
whose row or column (lane) is off sees valid low: it holds its state and never raises out_valid, so
padded rows and columns of a tile (31 of 32 rows in a batch-1 GEMV) neither compute nor drain.
Operand isolation: while its valid is low a PE's act/q/scale/zero inputs are forced to zero, so a
gated PE's logic does not switch with the operands streaming past it. osu018 has no clock-gating
cell: the energy model (sim/energy.py) adds one per PE, enabled by valid and the PE's pipeline tail.

Packed (decode) mode, in_packed high: a column's 8-bit q port carries `lanes` = 8 // wbits weights
(lane p in bits p*wbits...), its zero port `lanes` zero points the same way, and its scale port, 16
bits per lane, `lanes` scales; row i uses lane i % lanes. So each column feeds `lanes` different
outputs (sim/gemm.py maps output n = c0 + p*C + j to lane p of column j, rows i with i % lanes = p)
and the array takes lanes * C weights per cycle instead of C: a batch-1 GEMV runs on `lanes` rows at
DRAM speed. in_packed is static: hold it while a GEMM is in the array. With in_packed low every row
uses lane 0 (the ordinary mapping).

Cycle formula (cycles from the first operand to the last result, inclusive), for n tiles of K
operands each whose `last` operands are D >= 2R - 1 cycles apart:
    cycles = (n - 1) * D + K + 2R + C - 2 + L
which for one tile is SCALE-Sim's output-stationary fold latency 2*Sr + Sc + T - 2 plus the PE's
latency L. With gating the last result is that of the last tile's bottom-most used row and right-most
used column (sim/gemm.py counts it per tile).
MixPE's group counter is the same for every PE (all see the host's flags, delayed): the array counts
groups once, at its input, and the flag `group_end` travels with valid/first/last, so its PEs have
no counter (one flip-flop per hop instead of a counter, incrementer and comparator per PE). A PE
takes the flag only with its own valid, so a gated PE never finishes a group.
Two tiles whose `last` operands are closer than 2R - 1 cycles could collide in the drain chain;
the host must space them (sim/ checks this and refuses such a stream).
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from hw import config as C
from hw.dequant_fp32_pe import DequantFp32PE
from hw.dequant_pe import DequantPE
from hw.int8_pe import Int8PE
from hw.mixpe_pe import MixPE, group_end_flag
from hw.pe import PE

PE_CLASSES: dict[str, type[PE]] = {"dequant": DequantPE, "int8": Int8PE}


def make_pe(cfg: C.PEConfig, in_array: bool = False) -> PE:
    """The PE component for a configuration; in_array: a MixPE takes `group_end` from the array."""
    if cfg.pe == "mixpe":
        return MixPE(cfg, shared_group_end=in_array)  # its stage 2 integer or FP32 (hw/mixpe_pe.py)
    return DequantFp32PE(cfg) if cfg.fp32 else PE_CLASSES[cfg.pe](cfg)


def _delay(m: Module, values: dict, cycles: int, prefix: str) -> dict:
    """Each named value delayed by `cycles` registers (reset to zero)."""
    out = {}
    for name, value in values.items():
        for k in range(cycles):
            reg = Signal.like(value, name=f"{prefix}_{name}_d{k}")
            m.d.sync += reg.eq(value)
            value = reg
        out[name] = value
    return out


ISOLATED = ("act", "q", "scale", "zero")  # held at zero while a PE's valid is low


class SystolicArray(wiring.Component):
    """R x C output-stationary array; see the module docstring for dataflow and cycle formula."""

    def __init__(self, cfg: C.ArrayConfig):
        self.cfg = cfg
        rows, cols, acc, lanes = cfg.rows, cfg.cols, cfg.pe.acc_bits, cfg.lanes
        super().__init__(
            {
                "in_valid": In(1),
                "in_first": In(1),
                "in_last": In(1),
                "in_row_en": In(rows),
                "in_col_en": In(data.ArrayLayout(lanes, cols)),
                "in_packed": In(1),
                "in_act": In(data.ArrayLayout(C.ACT_PORT_BITS, rows)),
                "in_q": In(data.ArrayLayout(C.Q_PORT_BITS, cols)),
                "in_scale": In(data.ArrayLayout(C.SCALE_PORT_BITS * lanes, cols)),
                "in_zero": In(data.ArrayLayout(C.ZERO_PORT_BITS, cols)),
                "out_valid": Out(cols),
                "out_y": Out(data.ArrayLayout(signed(acc), cols)),
            }
        )

    def _connect(self, m: Module, pe: PE, row: int, left: dict, top: dict) -> None:
        """Drive a PE from its row's and column's streams: lane select, gating, operand isolation."""
        w, lanes = self.cfg.pe.wbits, self.cfg.lanes
        lane = row % lanes

        def pick(value, bits: int):
            """This row's lane of a packed column field (lane 0 unless in_packed)."""
            if lane == 0:
                return value[:bits]
            return Mux(self.in_packed, value[lane * bits : (lane + 1) * bits], value[:bits])

        operands = {
            "act": left["act"],
            "q": pick(top["q"], w),
            "scale": pick(top["scale"], C.SCALE_PORT_BITS),
            "zero": pick(top["zero"], w),
        }
        m.d.comb += [
            pe.valid.eq(left["valid"] & pick(top["en"], 1)),
            pe.first.eq(left["first"]),
            pe.last.eq(left["last"]),
        ]
        m.d.comb += [getattr(pe, n).eq(Mux(pe.valid, operands[n], 0)) for n in ISOLATED]
        if "group_end" in left:
            m.d.comb += pe.group_end.eq(left["group_end"] & pe.valid)

    def elaborate(self, platform) -> Module:
        m = Module()
        rows, cols = self.cfg.rows, self.cfg.cols
        pes = [[make_pe(self.cfg.pe, in_array=True) for _ in range(cols)] for _ in range(rows)]
        for i in range(rows):
            for j in range(cols):
                m.submodules[f"pe_{i}_{j}"] = pes[i][j]

        # Row streams (activation + flags) enter on the left, column streams (weights) on top; both
        # are skewed at the edge and forwarded one PE per cycle.
        lefts = [[None] * cols for _ in range(rows)]
        shared = {}
        if self.cfg.pe.pe == "mixpe":
            shared["group_end"] = group_end_flag(m, self.in_valid, self.in_first, self.cfg.pe.group)
        for i in range(rows):
            flags = {"valid": self.in_valid & self.in_row_en[i], "first": self.in_first, "last": self.in_last, **shared}
            left = _delay(m, {**flags, "act": self.in_act[i]}, i, f"skew_row{i}")
            for j in range(cols):
                lefts[i][j] = left
                if j + 1 < cols:
                    left = _delay(m, left, 1, f"h{i}_{j}")
        for j in range(cols):
            ports = {"q": self.in_q[j], "scale": self.in_scale[j], "zero": self.in_zero[j], "en": self.in_col_en[j]}
            top = _delay(m, ports, j, f"skew_col{j}")
            for i in range(rows):
                self._connect(m, pes[i][j], i, lefts[i][j], top)
                if i + 1 < rows:
                    top = _delay(m, top, 1, f"v{i}_{j}")

        # Drain: result registers per column, loaded by their PE, otherwise shifting up.
        for j in range(cols):
            below_y, below_v = 0, 0
            for i in reversed(range(rows)):
                pe = pes[i][j]
                y = Signal(signed(self.cfg.pe.acc_bits), name=f"drain{i}_{j}")
                v = Signal(name=f"drain{i}_{j}_valid")
                with m.If(pe.out_valid):
                    m.d.sync += [y.eq(pe.out_y), v.eq(1)]
                with m.Else():
                    m.d.sync += [y.eq(below_y), v.eq(below_v)]
                below_y, below_v = y, v
            m.d.comb += [self.out_y[j].eq(below_y), self.out_valid[j].eq(below_v)]
        return m
