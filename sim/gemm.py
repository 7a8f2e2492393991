"""GEMM operands for the array, their mapping onto tiles and operand streams, and the cycle formula.

Y (M x N) = X (M x K) @ W (K x N), with W quantized per group of G consecutive k and per column n:
W[k, n] = S[k // G, n] * (Q[k, n] - Z[k // G, n]) (times 2**-F, the host's fixed-point scale).
The array computes output tiles one after another (row-major over tiles), streaming K: R x C tiles,
or in the packed (decode) mode R / lanes x C * lanes tiles, each column feeding `lanes` outputs
(hw/array.py), which runs a GEMV (M = 1) at `lanes` times the weights per cycle.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hw.config import ArrayConfig, PEConfig
from sim.array_model import Stream, array_run, gemm_run
from sim.float_model import random_fp16_scales
from sim.schedule import gemm_cycles as gemm_cycles  # re-exported: callers import the formula from here
from sim.schedule import tile_count, tile_shape, tile_spacing


@dataclass
class GemmOperands:
    """Port-level operands (all integer arrays).

    act: (M, K) activation port bits (INT8 two's complement in the low byte, or FP16 bits).
    q: (K, N) weight port values (low wbits). scale: (K/G, N) uint16 S. zero: (K/G, N) z.
    group: G, the number of consecutive k sharing one scale and zero point.
    """

    act: np.ndarray
    q: np.ndarray
    scale: np.ndarray
    zero: np.ndarray
    group: int

    @property
    def shape(self) -> tuple[int, int, int]:
        """(M, N, K)."""
        return self.act.shape[0], self.q.shape[1], self.act.shape[1]

    def validate(self, pe: PEConfig) -> None:
        m, n, k = self.shape
        if self.q.shape[0] != k:
            raise ValueError(f"weights have {self.q.shape[0]} rows but activations have K={k}")
        if k % self.group:
            raise ValueError(f"K={k} is not a multiple of the group size {self.group}")
        if self.scale.shape != (k // self.group, n) or self.zero.shape != self.scale.shape:
            raise ValueError(f"scale/zero must be ({k // self.group}, {n}) for K={k}, G={self.group}, N={n}")
        if pe.pe == "mixpe" and self.group != pe.group:
            raise ValueError(f"operands use group size {self.group} but the MixPE array was built for {pe.group}")


def random_operands(pe: PEConfig, m: int, n: int, k: int, rng: np.random.Generator, fp16: str = "bits") -> GemmOperands:
    """Random operands that exercise a PE configuration.

    fp16="bits" draws FP16 activations uniformly over all finite bit patterns (every exponent and
    subnormal: the accumulators may wrap, which the hardware and models share); fp16="normal"
    draws N(0, 1) values so results stay in range and can be compared with float math. The FP32
    PEs read the scale as FP16 bits (sim.float_model.random_fp16_scales).
    """
    group = pe.group if pe.pe == "mixpe" else (pe.group if k % pe.group == 0 else k)
    if pe.act == "int8":
        act = rng.integers(-128, 128, (m, k)) & 0xFF
    elif fp16 == "bits":
        act = rng.integers(0, 1 << 16, (m, k))
        act = np.where((act >> 10) & 0x1F == 0x1F, act & ~0x4000, act)  # no Inf/NaN
    else:
        act = rng.standard_normal((m, k)).astype(np.float16).view(np.uint16)
    q = rng.integers(0, 1 << pe.wbits, (k, n))
    scale = random_fp16_scales(rng, (k // group, n)) if pe.fp32 else rng.integers(0, 1 << 16, (k // group, n))
    zero = np.zeros_like(scale) if pe.signed_weights else rng.integers(0, 1 << pe.wbits, scale.shape)
    return GemmOperands(act.astype(np.int64), q.astype(np.int64), scale.astype(np.int64), zero.astype(np.int64), group)


def tiles(cfg: ArrayConfig, m: int, n: int, packed: bool = False) -> list[tuple[int, int]]:
    """(row offset, column offset) of each output tile, in the order the array computes them."""
    tm, tn = tile_shape(cfg, packed)
    return [(r, c) for r in range(0, m, tm) for c in range(0, n, tn)]


def pe_offsets(cfg: ArrayConfig, packed: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Which output of its tile each PE (i, j) computes: (row offset (R,), column offset (R, C)).

    Packed: row i takes lane p = i % lanes and Y row i // lanes, column j's lane p is Y column
    p * C + j; rows beyond the last whole group of lanes get row offset -1 (never used).
    """
    lanes = cfg.lanes if packed else 1
    i = np.arange(cfg.rows)
    m_off = np.where(i < lanes * (cfg.rows // lanes), i // lanes, -1)
    n_off = (i % lanes)[:, None] * cfg.cols + np.arange(cfg.cols)[None, :]
    return m_off, n_off


def checked_starts(
    cfg: ArrayConfig, ops: GemmOperands, starts: list[int] | np.ndarray | None, packed: bool = False
) -> np.ndarray:
    """Validated operands and tile start cycles (default: every tile_spacing cycles), as an int64 array."""
    ops.validate(cfg.pe)
    m, n, k = ops.shape
    spacing = tile_spacing(cfg, k)
    count = tile_count(cfg, m, n, packed)
    starts = np.arange(count, dtype=np.int64) * spacing if starts is None else np.asarray(starts, np.int64)
    if len(starts) != count or starts[0] < 0 or (count > 1 and np.diff(starts).min() < spacing):
        raise ValueError(f"need {count} tile starts, increasing by at least {spacing} cycles")
    return starts


def gemm_stream(cfg: ArrayConfig, ops: GemmOperands, starts: list[int] | None = None, packed: bool = False) -> Stream:
    """The cycle-by-cycle operand stream for a GEMM: each tile's K operands, then idle padding.

    Rows and column lanes a tile does not use (M or N not a multiple of the tile) are gated off.
    packed: the decode mapping (hw/array.py), `lanes` outputs per column. starts: the cycle each tile
    begins (e.g. delayed by DRAM fetches, sim/perf_model.py); by default tiles follow each other
    every tile_spacing cycles.
    """
    starts = checked_starts(cfg, ops, starts, packed)
    m, n, k = ops.shape
    rows, cols, lanes, wbits = cfg.rows, cfg.cols, cfg.lanes, cfg.pe.wbits
    used_lanes = lanes if packed else 1
    tm, tn = tile_shape(cfg, packed)
    order = tiles(cfg, m, n, packed)
    length = starts[-1] + k
    m_off, n_off = pe_offsets(cfg, packed)
    # Pad M and N up to whole tiles with zeros; the padding's lanes are gated off.
    act = np.zeros((-(-m // tm) * tm + 1, k), np.int64)  # the extra zero row feeds unused rows
    act[:m] = ops.act
    kk = np.arange(k)
    pad_n = -(-n // tn) * tn
    q, scale, zero = (np.zeros((k, pad_n), np.int64) for _ in range(3))
    q[:, :n] = ops.q
    scale[:, :n] = ops.scale[kk // ops.group]
    zero[:, :n] = ops.zero[kk // ops.group]
    lane_shift = wbits * np.arange(used_lanes)[None, :, None]

    s = Stream(
        valid=np.zeros(length, np.uint8),
        first=np.zeros(length, np.uint8),
        last=np.zeros(length, np.uint8),
        act=np.zeros((length, rows), np.int64),
        q=np.zeros((length, cols), np.int64),
        scale=np.zeros((length, cols * lanes), np.int64),
        zero=np.zeros((length, cols), np.int64),
        row_en=np.zeros((length, rows), np.uint8),
        col_en=np.zeros((length, cols * lanes), np.uint8),
        packed=packed,
    )
    for (r, c), start in zip(order, starts, strict=True):
        sl = slice(start, start + k)
        s.valid[sl] = 1
        s.first[start] = 1
        s.last[start + k - 1] = 1
        row_used = (m_off >= 0) & (r + m_off < m)
        s.row_en[sl] = row_used
        s.act[sl] = act[np.where(row_used, r + m_off, -1)].T
        # (K, lanes used, C) blocks: lane p of column j is Y column c + p * C + j
        lanes_q, lanes_s, lanes_z = (x[:, c : c + tn].reshape(k, used_lanes, cols) for x in (q, scale, zero))
        s.q[sl] = (lanes_q << lane_shift).sum(axis=1)
        s.zero[sl] = (lanes_z << lane_shift).sum(axis=1)
        port_s = np.zeros((k, cols, lanes), np.int64)
        port_s[:, :, :used_lanes] = lanes_s.transpose(0, 2, 1)
        s.scale[sl] = port_s.reshape(k, cols * lanes)
        col_en = np.zeros((cols, lanes), np.uint8)
        col_en[:, :used_lanes] = c + n_off[:used_lanes].T < n
        s.col_en[sl] = col_en.reshape(cols * lanes)
    return s


def collect(
    cfg: ArrayConfig, ops: GemmOperands, out_valid: np.ndarray, out_y: np.ndarray, packed: bool = False
) -> np.ndarray:
    """Reassemble Y (M x N) from the array's per-cycle column outputs.

    Column j delivers, tile after tile, the results of its used PEs from the top row down.
    """
    m, n, _ = ops.shape
    order = tiles(cfg, m, n, packed)
    m_off, n_off = pe_offsets(cfg, packed)
    y = np.zeros((m, n), np.int64)
    for j in range(cfg.cols):
        targets = [
            (r + m_off[i], c + n_off[i, j])
            for r, c in order
            for i in range(cfg.rows)
            if m_off[i] >= 0 and r + m_off[i] < m and c + n_off[i, j] < n
        ]
        results = out_y[np.flatnonzero(out_valid[:, j]), j]
        if len(results) != len(targets):
            raise ValueError(f"column {j} delivered {len(results)} results, expected {len(targets)}")
        for (row, col), value in zip(targets, results, strict=True):
            y[row, col] = value
    return y


def run_gemm(
    cfg: ArrayConfig, ops: GemmOperands, starts: list[int] | None = None, packed: bool = False
) -> tuple[np.ndarray, int]:
    """Y from the cycle model, and the cycles it took (cycle 0 to the last result, inclusive).

    Tiles are simulated straight from the operands (array_model.gemm_run), in parallel, in memory
    proportional to the operands; run_gemm_stream builds the per-cycle stream instead (the
    testbenches' form) and gives the same Y and cycles. packed: the decode mapping.
    """
    starts = checked_starts(cfg, ops, starts, packed)
    tile, offsets = tile_shape(cfg, packed), pe_offsets(cfg, packed)
    return gemm_run(cfg, ops.act, ops.q, ops.scale, ops.zero, ops.group, starts, tile, offsets)


def run_gemm_stream(
    cfg: ArrayConfig, ops: GemmOperands, starts: list[int] | None = None, packed: bool = False
) -> tuple[np.ndarray, int]:
    """run_gemm through the per-cycle operand stream and array_run (memory grows with the cycles)."""
    out_valid, out_y = array_run(cfg, gemm_stream(cfg, ops, starts, packed))
    cycles = int(np.flatnonzero(out_valid.any(axis=1))[-1]) + 1
    return collect(cfg, ops, out_valid, out_y, packed), cycles
