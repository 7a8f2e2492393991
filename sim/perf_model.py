"""Tile-level performance model of the output-stationary array with its SRAM buffers and DRAM.

Compute follows the array's cycle formula (hw/array.py), so with unlimited bandwidth the model gives
exactly the cycle count of the cycle-exact Numba model (tests/test_perf_model.py sweeps this):

    compute = (tiles - 1) * max(K, 2R - 1) + K + 2R + C - 2 + L      (L: PE latency)

for full tiles; a tile's drain ends with its last used (ungated) PE (sim/gemm.py). The packed
(decode) mapping (hw/array.py) covers R / lanes x C * lanes outputs per tile; best_cost() runs a GEMM
in whichever mapping takes fewer cycles, so a batch-1 GEMV takes lanes * C weights per cycle.

Memory, in the spirit of SCALE-Sim: tiles run row-major (all column tiles of one row block, then the
next row block), as sim/gemm.py streams them. An activation block (R x K; padded rows and columns
are never fetched) is fetched from DRAM once per row block if half the activation buffer holds it
(the other half is the double buffer), otherwise once per tile. The weights (K x N with their scales
and zero points) are fetched once if half the weight buffer holds all of them, otherwise once per
tile. With double buffering, tile t+1's fetch overlaps tile t's compute, so a tile takes max(its
compute interval, the next fetch); without, they add up. The first fetch is never hidden. Bytes per
element: INT8 1, FP16 2, weights wbits/8, scale 2 and zero point wbits/8 per group and column,
results ceil(acc_bits / 8).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from dataclasses import fields as dataclass_fields

import numpy as np

from hw.config import ArrayConfig
from sim.schedule import Schedule, tile_shape, tile_usage

ACT_BYTES = {"int8": 1, "fp16": 2}
SCALE_BYTES = 2


@dataclass(frozen=True)
class MemoryConfig:
    """On-chip buffers (KiB) and DRAM bandwidth.

    dram_bytes_per_cycle: bytes per array clock cycle. dram_gb_per_s: when set, the bandwidth is fixed
    in time instead (GB/s, 1e9 bytes per second) and `at_clock` turns it into bytes per cycle of each
    PE's own clock, so a faster-clocked array does not also read DRAM faster (how designs at different
    clocks are compared fairly; sim/compare.py).
    """

    act_buffer_kib: int = 256
    weight_buffer_kib: int = 512
    dram_bytes_per_cycle: float = 32.0
    double_buffer: bool = True
    dram_gb_per_s: float | None = None

    def __post_init__(self) -> None:
        if self.act_buffer_kib <= 0 or self.weight_buffer_kib <= 0:
            raise ValueError("buffer sizes must be positive (KiB)")
        if not self.dram_bytes_per_cycle > 0:
            raise ValueError("DRAM bandwidth must be positive (bytes per cycle); use math.inf for unlimited")
        if self.dram_gb_per_s is not None and not 0 < self.dram_gb_per_s < math.inf:
            raise ValueError(f"DRAM bandwidth {self.dram_gb_per_s} GB/s must be finite and positive")

    def at_clock(self, mhz: float) -> MemoryConfig:
        """This memory as seen by an array clocked at `mhz` MHz (bytes per cycle from dram_gb_per_s)."""
        if self.dram_gb_per_s is None:
            return self
        return replace(self, dram_bytes_per_cycle=self.dram_gb_per_s * 1e3 / mhz, dram_gb_per_s=None)


@dataclass(frozen=True)
class GemmCost:
    """Cost of one GEMM Y (m x n) = X (m x k) @ W (k x n) on the array."""

    compute_cycles: int  # the array alone, operands always ready
    cycles: int  # including DRAM stalls: the Numba model's count when tiles start at tile_starts
    tile_starts: np.ndarray = field(repr=False, compare=False)  # cycle each tile's first operand enters
    macs: int  # useful multiply-accumulates, m * n * k: the PE-cycles with an operand
    pes: int  # rows * cols
    packed: bool  # the packed (decode) mapping
    tail_pe_cycles: int  # PE-cycles of the L-cycle pipeline tail after a tile, clock running (gated otherwise)
    dram_read_bytes: int
    dram_write_bytes: int
    sram_read_bytes: int  # operands read from the buffers into the array edges
    sram_write_bytes: int  # DRAM fills of the buffers plus results
    dequant_ops: int  # per-weight dequantizations (dequant PE) or per-group ones (MixPE)

    @property
    def pe_cycles(self) -> int:
        """PE-cycles of the whole run, stalls included (active or not)."""
        return self.cycles * self.pes

    @property
    def utilization(self) -> float:
        """Useful MACs over PE-cycles, stalls included (0..1)."""
        return self.macs / self.pe_cycles

    @property
    def gated_pe_cycles(self) -> int:
        """PE-cycles without an operand and outside a pipeline tail: the PE's clock is gated."""
        return self.pe_cycles - self.macs - self.tail_pe_cycles

    def as_dict(self) -> dict:
        """The counts (without the per-tile schedule) and the utilization."""
        fields = {f.name: getattr(self, f.name) for f in dataclass_fields(self) if f.name != "tile_starts"}
        return {**fields, "utilization": self.utilization}


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def gemm_cost(
    cfg: ArrayConfig,
    mem: MemoryConfig,
    m: int,
    n: int,
    k: int,
    wbits: int | None = None,
    packed: bool = False,
    schedule: str = "overlapped",
) -> GemmCost:
    """Cycles, traffic and dequantization count of one GEMM (see the module docstring).

    wbits: bits per stored weight element, when they differ from the PE's (e.g. an FP16 KV cache).
    packed: the decode mapping (R / lanes x C * lanes tiles). The INT8 PE's per-channel scales live
    outside the array and are not counted. schedule: how tiles follow each other, "overlapped" (the
    hardware) or "scalesim" (SCALE-Sim v3's back-to-back folds, no gating; sim/schedule.py).
    """
    sched = Schedule(schedule)
    pe = cfg.pe
    rows, cols = tile_shape(cfg, packed)
    row_blocks, col_blocks = _ceil_div(m, rows), _ceil_div(n, cols)
    tiles = row_blocks * col_blocks
    act_bytes = ACT_BYTES[pe.act]
    w_bits = wbits or pe.wbits
    groups = 0 if pe.pe == "int8" else _ceil_div(k, pe.group)
    zero_bits = 0 if pe.signed_weights else w_bits

    # Padded rows and columns of a tile are not fetched: blocks hold the rows / columns they use.
    act_block = min(rows, m) * k * act_bytes  # the largest block

    def weight_bytes(columns):
        return np.ceil(k * columns * w_bits / 8) + np.ceil(groups * columns * (SCALE_BYTES * 8 + zero_bits) / 8)

    w_block = weight_bytes(np.minimum(cols, n - np.arange(col_blocks) * cols)).astype(np.int64)
    w_all = int(w_block.sum())
    split = 2 if mem.double_buffer else 1
    act_resident = act_block <= mem.act_buffer_kib * 1024 // split
    w_resident = w_all <= mem.weight_buffer_kib * 1024 // split

    # DRAM bytes fetched before each tile, in the order the array computes them (row-major)
    r, c = np.divmod(np.arange(tiles), col_blocks)
    block_bytes = np.minimum(rows, m - r * rows) * k * act_bytes
    fetch = np.where((c == 0) | (not act_resident), block_bytes, 0) + np.where(
        (r == 0) | (not w_resident), w_block[c], 0
    )
    bw = mem.dram_bytes_per_cycle
    load = np.zeros(tiles, np.int64) if math.isinf(bw) else np.ceil(fetch / bw).astype(np.int64)
    spacing = sched.spacing(cfg, k)
    step = np.maximum(spacing, load[1:]) if mem.double_buffer else spacing + load[1:]
    starts = load[0] + np.concatenate(([0], np.cumsum(step)))

    out_bytes = m * n * _ceil_div(pe.acc_bits, 8)
    macs = m * n * k
    if pe.pe == "mixpe":
        dequant = m * n * groups  # once per group and output
    elif pe.pe == "dequant":
        dequant = macs  # every used PE dequantizes every weight it sees; gated ones are isolated
    else:
        dequant = 0
    sram_reads = int(block_bytes.sum() + w_block[c].sum())
    used, _ = tile_usage(cfg, m, n, packed)
    # A PE's clock gate stays open for the L cycles after its last operand, unless the next tile's
    # operands follow sooner (then those cycles carry operands).
    gaps = np.append(np.diff(starts) - k, pe.latency)
    tail = int((used * np.minimum(gaps, pe.latency)).sum())
    return GemmCost(
        compute_cycles=sched.cycles(cfg, np.arange(tiles) * spacing, m, n, k, packed),
        cycles=sched.cycles(cfg, starts, m, n, k, packed),
        tile_starts=starts,
        macs=macs,
        pes=cfg.rows * cfg.cols,
        packed=packed,
        tail_pe_cycles=tail,
        dram_read_bytes=int(fetch.sum()),
        dram_write_bytes=out_bytes,
        sram_read_bytes=sram_reads,
        sram_write_bytes=int(fetch.sum()) + out_bytes,
        dequant_ops=dequant,
    )


def packable(cfg: ArrayConfig, wbits: int | None = None) -> bool:
    """Whether the packed mapping applies: more than one lane, a row per lane, weights of the PE's width."""
    return cfg.lanes > 1 and cfg.rows >= cfg.lanes and (wbits or cfg.pe.wbits) == cfg.pe.wbits


def best_cost(
    cfg: ArrayConfig,
    mem: MemoryConfig,
    m: int,
    n: int,
    k: int,
    wbits: int | None = None,
    schedule: str = "overlapped",
) -> GemmCost:
    """gemm_cost in the mapping with fewer cycles: the ordinary one, or the packed one where it applies."""
    normal = gemm_cost(cfg, mem, m, n, k, wbits, schedule=schedule)
    if not packable(cfg, wbits):
        return normal
    packed = gemm_cost(cfg, mem, m, n, k, wbits, packed=True, schedule=schedule)
    return packed if packed.cycles < normal.cycles else normal


def dram_bound_cycles(cfg: ArrayConfig, mem: MemoryConfig, m: int, n: int, k: int, wbits: int | None = None) -> float:
    """Cycles to read each weight, scale, zero point and activation from DRAM once (no reuse misses).

    The floor any mapping of the GEMM meets at mem.dram_bytes_per_cycle (results not counted).
    """
    pe = cfg.pe
    w_bits = wbits or pe.wbits
    groups = 0 if pe.pe == "int8" else _ceil_div(k, pe.group)
    zero_bits = 0 if pe.signed_weights else w_bits
    weight_bytes = math.ceil(k * n * w_bits / 8) + math.ceil(groups * n * (SCALE_BYTES * 8 + zero_bits) / 8)
    return (weight_bytes + m * k * ACT_BYTES[pe.act]) / mem.dram_bytes_per_cycle
