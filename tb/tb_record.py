"""cocotb testbench for `python -m tb`: drive a prepared stimulus, record out_valid/out_y every cycle.

The comparison with the cycle model happens in the calling process (tb/checks.py), so every
simulator (cocotb on Icarus or Verilator, Amaranth's own) is checked by the same code.
Parameters (MIXKIT_TB): case (an .npz of input port arrays), lane_bits (port -> bits per lane of a
vector port), lanes, acc_bits, cycles, record (the .npz to write), progress (a file that receives
the cycle count every PROGRESS_EVERY cycles).
"""

from __future__ import annotations

import os

import cocotb
import numpy as np

from tb.harness import run_cycles, tb_params
from tb.tb_array import pack, unpack_signed

PROGRESS_EVERY = 500


@cocotb.test()
async def record_outputs(dut):
    """Drive every input port from the case file; store (out_valid, out_y) per cycle and lane."""
    params = tb_params()
    lane_bits, lanes, acc, cycles = params["lane_bits"], params["lanes"], params["acc_bits"], params["cycles"]
    with np.load(params["case"]) as stimulus:
        inputs = {
            name: pack(stimulus[name], lane_bits[name]) if name in lane_bits else stimulus[name]
            for name in stimulus.files
        }
    got_valid = np.zeros((cycles, lanes), np.uint8)
    got_y = np.zeros((cycles, lanes), np.int64)
    progress = params["progress"]

    def record(t: int) -> None:
        valid = int(dut.out_valid.value)
        got_valid[t] = [(valid >> j) & 1 for j in range(lanes)]
        got_y[t] = unpack_signed(dut.out_y.value.to_unsigned(), acc, lanes)
        if t % PROGRESS_EVERY == 0:
            with open(progress + ".tmp", "w") as f:
                f.write(str(t))
            os.replace(progress + ".tmp", progress)

    await run_cycles(dut, inputs, record, cycles)
    np.savez(params["record"], valid=got_valid, y=got_y)
