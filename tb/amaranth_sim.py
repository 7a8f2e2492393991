"""Run the array's Amaranth description in Amaranth's own simulator (no Verilog, no Icarus).

A second, independent way to execute the RTL: used by the benchmark and as a cross-check of the
emitted Verilog (both must match the cycle model).
"""

from __future__ import annotations

import numpy as np
from amaranth.sim import Simulator

from hw.array import SystolicArray, make_pe
from hw.config import ArrayConfig, PEConfig
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
    lanes = {
        "in_act": stream.act,
        "in_q": stream.q,
        "in_scale": stream.scale,
        "in_zero": stream.zero,
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
            for name, values in lanes.items():
                port = getattr(dut, name)
                for i in range(values.shape[1]):
                    ctx.set(port[i], int(values[t, i]) if live else 0)
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(testbench)
    sim.run()
    return out_valid, out_y
