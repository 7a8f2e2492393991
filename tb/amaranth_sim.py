"""Run the array's Amaranth description in Amaranth's own simulator (no Verilog, no Icarus).

A second, independent way to execute the RTL: used by the benchmark and as a cross-check of the
emitted Verilog (both must match the cycle model).
"""

from __future__ import annotations

import numpy as np
from amaranth.sim import Simulator

from hw.array import SystolicArray, make_pe
from hw.config import SCALE_PORT_BITS, ArrayConfig, PEConfig
from sim.array_model import Stream


def pe_trace_amaranth(cfg: PEConfig, inputs: dict[str, np.ndarray], cycles: int) -> tuple[np.ndarray, np.ndarray]:
    """(out_y, out_valid), each (cycles,), of one standalone PE, as in sim.pe_model.pe_trace.

    inputs: port name -> (N,) values per cycle (valid, first, last, act, q, scale, zero); zeros after N.
    """
    dut = make_pe(cfg)
    out_y = np.zeros(cycles, np.int64)
    out_valid = np.zeros(cycles, np.uint8)

    async def testbench(ctx):
        for t in range(cycles):
            out_valid[t], out_y[t] = ctx.get(dut.out_valid), ctx.get(dut.out_y)
            for name, values in inputs.items():
                ctx.set(getattr(dut, name), int(values[t]) if t < len(values) else 0)
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(testbench)
    sim.run()
    return out_y, out_valid


def array_trace_amaranth(cfg: ArrayConfig, stream: Stream, cycles: int) -> tuple[np.ndarray, np.ndarray]:
    """(out_valid, out_y), each (cycles, cols), as in sim.array_model.array_run; out_y is 0 when not valid."""
    dut = SystolicArray(cfg)
    out_valid = np.zeros((cycles, cfg.cols), np.uint8)
    out_y = np.zeros((cycles, cfg.cols), np.int64)
    row_en, col_en = stream.enables(cfg)
    n, lanes = len(stream), cfg.lanes

    def per_column(x: np.ndarray, bits: int) -> np.ndarray:
        """(N, cols * lanes) lane values -> (N, cols) port values, lane p at bit p * bits."""
        x = np.asarray(x, object).reshape(n, cfg.cols, lanes)
        return sum(x[:, :, p] << (p * bits) for p in range(lanes))

    ports = {
        "in_act": stream.act,
        "in_q": stream.q,
        "in_scale": per_column(stream.scale, SCALE_PORT_BITS),
        "in_zero": stream.zero,
        "in_col_en": per_column(col_en, 1),
        "in_row_en": (np.asarray(row_en, object) << np.arange(cfg.rows)).sum(axis=1)[:, None],
    }

    async def testbench(ctx):
        for t in range(cycles):
            for j in range(cfg.cols):
                if ctx.get(dut.out_valid[j]):
                    out_valid[t, j] = 1
                    out_y[t, j] = ctx.get(dut.out_y[j])
            live = t < len(stream)
            for name in ("valid", "first", "last"):
                ctx.set(getattr(dut, f"in_{name}"), int(getattr(stream, name)[t]) if live else 0)
            ctx.set(dut.in_packed, int(stream.packed))
            for name, values in ports.items():
                port = getattr(dut, name)
                if name == "in_row_en":
                    ctx.set(port, int(values[t, 0]) if live else 0)
                    continue
                for i in range(values.shape[1]):
                    ctx.set(port[i], int(values[t, i]) if live else 0)
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(testbench)
    sim.run()
    return out_valid, out_y
