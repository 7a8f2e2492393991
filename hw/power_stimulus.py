"""The operand streams hw.power simulates a PE under, and the Icarus testbench that plays them.

A stream is one value per cycle for each PE input port (PORTS, PORT_BITS wide); STREAM_MODES names
the three a PE meets in the array (see operand_stream). The testbench resets the PE for RESET_CYCLES,
then applies one stream word per clock on the falling edge and dumps every net of the PE to a VCD.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from hw.config import PEConfig

# Reset cycles before the measured window; the inputs already hold the first operand, so the window
# starts without an artificial input transition.
RESET_CYCLES = 2
# Operands per dot product at least (a whole number of groups): long enough that `first`/`last`
# and the output register matter as little as in a real GEMM.
MIN_DOT_LENGTH = 256
PORTS = ("valid", "first", "last", "act", "q", "scale", "zero")
PORT_BITS = {"valid": 1, "first": 1, "last": 1, "act": 16, "q": 8, "scale": 16, "zero": 8}
# Operand streams hw.power measures (operand_stream): a computing PE, a PE whose lane the array gates
# (valid low; the array forces a gated PE's operand inputs to zero), and a padded row of an array
# without gating (act = 0 with valid high: it computes zeros and switches like an active PE).
STREAM_MODES = ("active", "idle", "padded")


def operand_stream(cfg: PEConfig, cycles: int, seed: int = 0, mode: str = "active") -> dict[str, np.ndarray]:
    """Per-cycle port values for `cycles` cycles of the stimulus a PE sees in the array.

    mode "active": dot products of a whole number of groups (at least MIN_DOT_LENGTH operands) back
    to back, valid always high; INT8 activations uniform over -128..127, FP16 activations N(0, 1);
    weights uniform over wbits; scale (16-bit; FP16 2**-10..2**4 for the FP32 PEs) and zero point
    constant per group.
    mode "idle": what a gated PE sees (hw/array.py): valid low, every operand input held at zero.
    mode "padded": a padded row of an ungated array (e.g. 31 of 32 rows in a batch-1 GEMV): the
    active stream with act = 0, so the PE computes zeros while weights and scales stream past.
    """
    check_stream(cycles, mode)
    rng = np.random.default_rng(seed)
    if cfg.act == "int8":
        act = rng.integers(-128, 128, cycles) & 0xFF
    else:
        act = rng.standard_normal(cycles).astype(np.float16).view(np.uint16).astype(np.int64)
    q = rng.integers(0, 1 << cfg.wbits, cycles)
    k = -(-MIN_DOT_LENGTH // cfg.group) * cfg.group
    pos = np.arange(cycles)
    groups = -(-cycles // cfg.group)
    if cfg.fp32:  # the scale port holds FP16 bits: finite scales of realistic size
        from sim.float_model import random_fp16_scales

        scale = np.repeat(random_fp16_scales(rng, groups, corner_prob=0.0), cfg.group)[:cycles]
    else:
        scale = np.repeat(rng.integers(0, 1 << 16, groups), cfg.group)[:cycles]
    zero = np.zeros(cycles, np.int64)
    if not cfg.signed_weights:
        zero = np.repeat(rng.integers(0, 1 << cfg.wbits, groups), cfg.group)[:cycles]
    stream = {
        "valid": np.ones(cycles, np.int64),
        "first": (pos % k == 0).astype(np.int64),
        "last": (pos % k == k - 1).astype(np.int64),
        "act": act.astype(np.int64),
        "q": q.astype(np.int64),
        "scale": scale.astype(np.int64),
        "zero": zero.astype(np.int64),
    }
    if mode == "idle":
        stream = {name: np.zeros(cycles, np.int64) for name in stream}
    elif mode == "padded":
        stream["act"][:] = 0
    return stream


def check_stream(cycles: int, mode: str) -> None:
    """ValueError naming the fix unless cycles is positive and mode one of STREAM_MODES."""
    if cycles < 1:
        raise ValueError(f"cycles {cycles} must be positive")
    if mode not in STREAM_MODES:
        raise ValueError(f"stream mode '{mode}' unknown: choose one of {', '.join(STREAM_MODES)}")


def scale_draw(cfg: PEConfig) -> str:
    """How operand_stream draws the scales, for the cache key: the FP32 PEs' FP16 draw lives in
    sim/float_model.py, outside the hw/ sources the synthesis key hashes, so its file's hash counts."""
    if not cfg.fp32:
        return "uniform 16-bit"
    source = Path(__file__).resolve().parent.parent / "sim" / "float_model.py"
    return "random_fp16_scales " + hashlib.sha256(source.read_bytes()).hexdigest()[:12]


def stimulus_hex(stream: dict[str, np.ndarray]) -> str:
    """One hex word per cycle, ports packed MSB-first in PORTS order."""
    n = len(stream["valid"])
    for name in PORTS:
        v = np.asarray(stream[name])
        if v.shape != (n,) or v.min(initial=0) < 0 or v.max(initial=0) >= 1 << PORT_BITS[name]:
            raise ValueError(f"stimulus '{name}' must be {n} values in 0..{(1 << PORT_BITS[name]) - 1}")
    words = np.zeros(n, dtype=object)
    for name in PORTS:
        words = (words << PORT_BITS[name]) | np.asarray(stream[name]).astype(object)
    return "".join(f"{int(w):013x}\n" for w in words)


def testbench(top: str, acc_bits: int, cycles: int, clock_ns: float) -> str:
    """Verilog testbench `tb` for PE module `top`: RESET_CYCLES of reset, then `cycles` words of
    stimulus.hex at one per clock_ns (ns), every net of the PE dumped to activity.vcd."""
    half = clock_ns / 2
    width = sum(PORT_BITS.values())
    ports = ", ".join(f".{p}({p})" for p in ("clk", "rst", *PORTS, "out_valid", "out_y"))
    # Inputs change on the falling edge, half a period away from the sampling edge, so a zero-delay
    # simulation has no races; the window [t0, t0 + cycles·period) holds exactly `cycles` rising edges.
    return f"""`timescale 1ns/10ps
module tb;
  reg clk = 1'b0, rst = 1'b1;
  reg valid, first, last;
  reg [15:0] act, scale;
  reg [7:0] q, zero;
  wire out_valid;
  wire [{acc_bits - 1}:0] out_y;
  reg [{width - 1}:0] mem [0:{cycles - 1}];
  integer i;
  {top} dut({ports});
  always #({half}) clk = ~clk;
  initial begin
    $readmemh("stimulus.hex", mem);
    {{{", ".join(PORTS)}}} = mem[0];
    $dumpfile("activity.vcd");
    $dumpvars(1, dut);
    #({clock_ns * RESET_CYCLES});
    rst = 1'b0;
    $display("window_start_ps %0d", $realtime * 1000);
    for (i = 0; i < {cycles}; i = i + 1) begin
      {{{", ".join(PORTS)}}} = mem[i];
      #({clock_ns});
    end
    $display("window_end_ps %0d", $realtime * 1000);
    $finish;
  end
endmodule
"""
