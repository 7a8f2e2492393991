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

Cycle formula (cycles from the first operand to the last result, inclusive), for n tiles of K
operands each whose `last` operands are D >= 2R - 1 cycles apart:
    cycles = (n - 1) * D + K + 2R + C - 2 + L
which for one tile is SCALE-Sim's output-stationary fold latency 2*Sr + Sc + T - 2 plus the PE's
latency L.
MixPE's group counter is the same for every PE (all see the host's flags, delayed): the array counts
groups once, at its input, and the flag `group_end` travels with valid/first/last, so its PEs have
no counter (one flip-flop per hop instead of a counter, incrementer and comparator per PE).
Two tiles whose `last` operands are closer than 2R - 1 cycles could collide in the drain chain;
the host must space them (sim/ checks this and refuses such a stream).
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from hw import config as C
from hw.dequant_pe import DequantPE
from hw.edge_dequant import EdgeDequantizer, group_record
from hw.int8_pe import Int8PE
from hw.mixpe_pe import GroupAccumulator, MixPE, group_end_flag
from hw.pe import PE

PE_CLASSES: dict[str, type[PE]] = {"mixpe": MixPE, "dequant": DequantPE, "int8": Int8PE}


def make_pe(cfg: C.PEConfig, in_array: bool = False) -> PE | GroupAccumulator:
    """The PE component for a configuration.

    in_array: a MixPE takes `group_end` from the array; with group_dequant="edge" it is stage 1
    alone (the column's edge dequantizes), which exists only inside an array.
    """
    if cfg.pe == "mixpe" and cfg.group_dequant == "edge":
        if not in_array:
            raise C.ConfigError(C.EDGE_NEEDS_ARRAY)
        return GroupAccumulator(cfg, shared_group_end=True)
    return MixPE(cfg, shared_group_end=True) if in_array and cfg.pe == "mixpe" else PE_CLASSES[cfg.pe](cfg)


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


def _climb(m: Module, loads: list[tuple], shape, prefix: str) -> tuple[Signal, Signal]:
    """A chain of registers shifting up a column; loads[i] = (load, value) of row i (top first).

    Row i's register takes `value` in cycles its `load` is high, else the register below's; returns
    the top register (valid, value).
    """
    below_value, below_valid = 0, 0
    for i in reversed(range(len(loads))):
        load, value = loads[i]
        reg, valid = Signal(shape, name=f"{prefix}{i}"), Signal(name=f"{prefix}{i}_valid")
        with m.If(load):
            m.d.sync += [reg.eq(value), valid.eq(1)]
        with m.Else():
            m.d.sync += [reg.eq(below_value), valid.eq(below_valid)]
        below_value, below_valid = reg, valid
    return below_valid, below_value


ROW_PORTS = ("valid", "first", "last", "act")  # travel right with the activations
COL_PORTS = ("q", "scale", "zero")  # travel down with the weights


class SystolicArray(wiring.Component):
    """R x C output-stationary array; see the module docstring for dataflow and cycle formula."""

    def __init__(self, cfg: C.ArrayConfig):
        self.cfg = cfg
        rows, cols, acc = cfg.rows, cfg.cols, cfg.pe.acc_bits
        super().__init__(
            {
                "in_valid": In(1),
                "in_first": In(1),
                "in_last": In(1),
                "in_act": In(data.ArrayLayout(C.ACT_PORT_BITS, rows)),
                "in_q": In(data.ArrayLayout(C.Q_PORT_BITS, cols)),
                "in_scale": In(data.ArrayLayout(C.SCALE_PORT_BITS, cols)),
                "in_zero": In(data.ArrayLayout(C.ZERO_PORT_BITS, cols)),
                "out_valid": Out(cols),
                "out_y": Out(data.ArrayLayout(signed(acc), cols)),
            }
        )

    def elaborate(self, platform) -> Module:
        m = Module()
        rows, cols, pe_cfg = self.cfg.rows, self.cfg.cols, self.cfg.pe
        edge = pe_cfg.pe == "mixpe" and pe_cfg.group_dequant == "edge"
        pes = [[make_pe(pe_cfg, in_array=True) for _ in range(cols)] for _ in range(rows)]
        for i in range(rows):
            for j in range(cols):
                m.submodules[f"pe_{i}_{j}"] = pes[i][j]

        # Row streams (activation + flags) enter on the left, column streams (weights) on top.
        flags = {"valid": self.in_valid, "first": self.in_first, "last": self.in_last}
        row_ports = ROW_PORTS
        if self.cfg.pe.pe == "mixpe":
            flags["group_end"] = group_end_flag(m, self.in_valid, self.in_first, self.cfg.pe.group)
            row_ports += ("group_end",)
        for i in range(rows):
            left = _delay(m, {**flags, "act": self.in_act[i]}, i, f"skew_row{i}")
            for j in range(cols):
                pe = pes[i][j]
                m.d.comb += [getattr(pe, n).eq(left[n]) for n in row_ports]
                if j + 1 < cols:
                    left = _delay(m, {n: getattr(pe, n) for n in row_ports}, 1, f"h{i}_{j}")
        col_ports = ("q", "zero") if edge else COL_PORTS  # with an edge dequantizer S stays at the top
        col_tops = []
        for j in range(cols):
            ports = {"q": self.in_q[j], "scale": self.in_scale[j], "zero": self.in_zero[j]}
            top = _delay(m, ports, j, f"skew_col{j}")
            col_tops.append(top)
            for i in range(rows):
                pe = pes[i][j]
                m.d.comb += [getattr(pe, n).eq(top[n]) for n in col_ports]
                if i + 1 < rows:
                    top = _delay(m, {n: getattr(pe, n) for n in col_ports}, 1, f"v{i}_{j}")

        for j in range(cols):
            column = [pes[i][j] for i in range(rows)]
            if not edge:  # drain: result registers, loaded by their PE, otherwise shifting up
                loads = [(pe.out_valid, pe.out_y) for pe in column]
                valid, y = _climb(m, loads, signed(pe_cfg.acc_bits), f"drain_{j}_")
                m.d.comb += [self.out_y[j].eq(y), self.out_valid[j].eq(valid)]
                continue
            # group records climb to the column's dequantizer (hw/edge_dequant.py)
            loads = [(pe.group.valid, Cat(pe.group.first, pe.group.last, pe.group.sum)) for pe in column]
            valid, record = _climb(m, loads, group_record(pe_cfg), f"records_{j}_")
            m.submodules[f"edge_{j}"] = unit = EdgeDequantizer(pe_cfg, rows)
            m.d.comb += [
                unit.record_valid.eq(valid),
                unit.record.eq(record),
                unit.scale.eq(col_tops[j]["scale"]),
                unit.group_end.eq(column[0].group_end),
                self.out_y[j].eq(unit.out_y),
                self.out_valid[j].eq(unit.out_valid),
            ]
        return m
