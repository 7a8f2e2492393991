"""Run a design's Amaranth description in Amaranth's own simulator (no Verilog, no Icarus).

A second, independent way to execute the RTL: used by `python -m tb --sim amaranth`, the benchmark
and as a cross-check of the emitted Verilog (all must match the cycle model).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from amaranth.sim import Simulator

from hw.build import elaborate
from hw.config import ArrayConfig, PEConfig
from sim.array_model import Stream
from tb.stimulus import array_port_inputs


def trace_amaranth(
    cfg: PEConfig | ArrayConfig,
    inputs: dict[str, np.ndarray],
    cycles: int,
    waves: Path | None = None,
    progress: Callable[[int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(out_valid, out_y), each (cycles, lanes), of any PE or array over `inputs`.

    inputs: port name -> (N,) values, or (N, lanes) for a vector port; 0 after cycle N. Cycle t's
    outputs are sampled before cycle t's inputs are applied, as in tb.harness.run_cycles.
    waves: a VCD file to write. progress: called with each cycle number.
    """
    dut = elaborate(cfg)
    lanes = cfg.cols if isinstance(cfg, ArrayConfig) else 1
    out_valid = np.zeros((cycles, lanes), np.uint8)
    out_y = np.zeros((cycles, lanes), np.int64)
    ys = [dut.out_y[j] for j in range(lanes)] if isinstance(cfg, ArrayConfig) else [dut.out_y]

    async def testbench(ctx):
        for t in range(cycles):
            valid = ctx.get(dut.out_valid)
            for j in range(lanes):
                out_valid[t, j] = (valid >> j) & 1
                out_y[t, j] = ctx.get(ys[j])
            for name, values in inputs.items():
                port, live = getattr(dut, name), t < len(values)
                if values.ndim == 1:
                    ctx.set(port, int(values[t]) if live else 0)
                else:
                    for i in range(values.shape[1]):
                        ctx.set(port[i], int(values[t, i]) if live else 0)
            if progress is not None:
                progress(t)
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(testbench)
    if waves is None:
        sim.run()
    else:
        with sim.write_vcd(str(waves)):
            sim.run()
    return out_valid, out_y


def pe_trace_amaranth(cfg: PEConfig, inputs: dict[str, np.ndarray], cycles: int) -> tuple[np.ndarray, np.ndarray]:
    """(out_y, out_valid), each (cycles,), of one standalone PE, as sim.pe_model.pe_trace returns them."""
    out_valid, out_y = trace_amaranth(cfg, {name: np.asarray(v, np.int64) for name, v in inputs.items()}, cycles)
    return out_y[:, 0], out_valid[:, 0]


def array_trace_amaranth(cfg: ArrayConfig, stream: Stream, cycles: int) -> tuple[np.ndarray, np.ndarray]:
    """(out_valid, out_y), each (cycles, cols), as in sim.array_model.array_run; out_y is 0 when not valid."""
    out_valid, out_y = trace_amaranth(cfg, array_port_inputs(cfg, stream, cycles), cycles)
    return out_valid, np.where(out_valid == 1, out_y, 0)
