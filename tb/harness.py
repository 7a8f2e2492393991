"""Helpers shared by the cocotb testbenches: clock and reset, the per-cycle drive/compare loop."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence

from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, RisingEdge

from hw.config import ArrayConfig, PEConfig

CLOCK_NS = 10


def tb_params() -> dict:
    """Parameters the pytest runner passes to a testbench (config, seed, ...)."""
    return json.loads(os.environ["MIXKIT_TB"])


def config_from(params: dict) -> PEConfig | ArrayConfig:
    cfg = params["config"]
    if "rows" in cfg:
        return ArrayConfig(PEConfig(**cfg["pe"]), cfg["rows"], cfg["cols"])
    return PEConfig(**cfg)


async def run_cycles(dut, inputs: dict[str, Sequence[int]], check: Callable[[int], None], cycles: int) -> None:
    """Reset the DUT, then for cycles t = 0..cycles-1: check(t) on the outputs, drive inputs[t].

    Cycle t is the clock period after the t-th rising edge since reset; inputs and outputs are
    sampled on the falling edge, between the edges, as the cycle models count time.
    """
    Clock(dut.clk, CLOCK_NS, unit="ns").start()
    dut.rst.value = 1
    for name in inputs:
        getattr(dut, name).value = 0
    for _ in range(2):
        await RisingEdge(dut.clk)
    await FallingEdge(dut.clk)
    dut.rst.value = 0
    for t in range(cycles):
        check(t)
        for name, values in inputs.items():
            getattr(dut, name).value = int(values[t]) if t < len(values) else 0
        await FallingEdge(dut.clk)
