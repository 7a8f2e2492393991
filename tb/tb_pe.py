"""cocotb testbench: one PE (any type) against the Numba model, cycle by cycle."""

from __future__ import annotations

import cocotb
import numpy as np

from sim.pe_model import pe_trace
from tb.harness import config_from, run_cycles, tb_params
from tb.stimulus import pe_stimulus


@cocotb.test()
async def pe_matches_cycle_model(dut):
    """Constrained-random operands with corners and stalls; out_valid and out_y every cycle."""
    params = tb_params()
    cfg = config_from(params)
    rng = np.random.default_rng(params["seed"])
    stim = pe_stimulus(cfg, rng, tiles=params.get("tiles", 6), stall_prob=params.get("stall_prob", 0.15))
    want_y, want_valid = pe_trace(cfg, **stim)
    mismatches = []

    def check(t: int) -> None:
        got = (int(dut.out_valid.value), dut.out_y.value.to_signed())
        if got != (int(want_valid[t]), int(want_y[t])):
            mismatches.append(f"cycle {t}: RTL (valid, y) = {got}, model = {(int(want_valid[t]), int(want_y[t]))}")

    await run_cycles(dut, {name: stim[name] for name in stim}, check, len(want_y))
    assert not mismatches, f"{len(mismatches)} mismatching cycles, first: {mismatches[0]}"
    assert want_valid.sum() > 0, "the stimulus produced no result to compare"
