"""Cycle model of the output-stationary systolic array (Numba), cycle-exact with hw/array.py.

Because the skew buffers and the forwarding registers are pure delays that reset to zero, PE (i, j)
in cycle t sees exactly the operand the host presented in cycle t - i - j (an idle operand before
that). So each PE is simulated over the host's stream with `pe_update`, and each finished result
(produced at stream position t_last, out_valid in cycle t_last + i + j + L, L the PE's latency) is
placed where the upward drain chain delivers it: the top of column j in cycle t_last + 2i + j + 1 + L.
Gating and the packed (decode) mode follow hw/array.py: PE (i, j) takes lane p = i % lanes of its
column's packed fields when the stream is packed (lane 0 otherwise), and an operand counts for it only
if valid, its row's enable and its column lane's enable are all high.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from hw.config import ArrayConfig
from sim.pe_model import decode_acts, groupwise, pe_code, pe_update
from sim.schedule import drain_cycles, min_tile_spacing


@dataclass
class Stream:
    """What the host presents to the array, one entry per cycle (N cycles).

    valid/first/last: (N,) flags; act: (N, rows) activation port bits; q, zero: (N, cols) port values
    (in the packed mode lane p in bits p*wbits...); scale: (N, cols * lanes), column j's lane p at
    j * lanes + p (the in_scale port's bit order); row_en: (N, rows); col_en: (N, cols * lanes), laid
    out like scale (None: every row / column lane on); packed: the array's in_packed (static).
    """

    valid: np.ndarray
    first: np.ndarray
    last: np.ndarray
    act: np.ndarray
    q: np.ndarray
    scale: np.ndarray
    zero: np.ndarray
    row_en: np.ndarray | None = None
    col_en: np.ndarray | None = None
    packed: bool = False

    def __len__(self) -> int:
        return len(self.valid)

    def enables(self, cfg: ArrayConfig) -> tuple[np.ndarray, np.ndarray]:
        """(row_en (N, rows), col_en (N, cols * lanes)) with None replaced by all ones."""
        n = len(self)
        row = np.ones((n, cfg.rows), np.uint8) if self.row_en is None else self.row_en
        col = np.ones((n, cfg.cols * cfg.lanes), np.uint8) if self.col_en is None else self.col_en
        return np.asarray(row, np.uint8), np.asarray(col, np.uint8)


def check_stream(stream: Stream, cfg: ArrayConfig) -> None:
    """Refuse streams the array cannot take: wrong lane shapes, tiles too close for the drain chain."""
    n, lanes = len(stream), cfg.cols * cfg.lanes
    for name, shape in (("scale", (n, lanes)), ("col_en", (n, lanes)), ("row_en", (n, cfg.rows))):
        value = getattr(stream, name)
        if value is not None and np.shape(value) != shape:
            raise ValueError(f"stream field {name} has shape {np.shape(value)}, the array needs {shape}")
    lasts = np.flatnonzero(np.asarray(stream.valid, bool) & np.asarray(stream.last, bool))
    gaps = np.diff(lasts)
    if gaps.size and gaps.min() < min_tile_spacing(cfg.rows):
        raise ValueError(
            f"tiles end {gaps.min()} cycles apart; a {cfg.rows}-row array needs at least "
            f"{min_tile_spacing(cfg.rows)} (pad short tiles with idle cycles)"
        )


@numba.njit(cache=True)
def _array_run(
    kind,
    wbits,
    signed_w,
    group,
    acc_bits,
    latency,
    rows,
    cols,
    lanes,
    packed,
    valid,
    first,
    last,
    row_en,
    col_en,
    a,
    q,
    scale,
    zero,
    out_valid,
    out_y,
):
    n = valid.shape[0]
    mask = (1 << wbits) - 1
    for j in range(cols):
        for i in range(rows):
            lane = i % lanes if packed else 0
            shift = lane * wbits
            y = np.int64(0)
            psum = np.int64(0)
            count = 0
            for t in range(n):
                if valid[t] and row_en[i, t] and col_en[j, lane, t]:
                    y, psum, count = pe_update(
                        kind,
                        wbits,
                        signed_w,
                        group,
                        acc_bits,
                        y,
                        psum,
                        count,
                        a[i, t],
                        (q[j, t] >> shift) & mask,
                        scale[j, lane, t],
                        (zero[j, t] >> shift) & mask,
                        first[t],
                    )
                    if last[t] and (not groupwise(kind) or count == 0):
                        exit_cycle = t + 2 * i + j + 1 + latency
                        out_valid[exit_cycle, j] = 1
                        out_y[exit_cycle, j] = y


def array_run(cfg: ArrayConfig, stream: Stream) -> tuple[np.ndarray, np.ndarray]:
    """Simulate the array over a stream; returns (out_valid, out_y), each (cycles, cols).

    Row c of the outputs is what the array's out_valid/out_y ports show in cycle c (cycle 0 is the
    first cycle after reset, when stream entry 0 is presented). out_y is 0 where out_valid is 0.
    """
    check_stream(stream, cfg)
    pe = cfg.pe
    n, cols, lanes = len(stream), cfg.cols, cfg.lanes
    cycles = n + drain_cycles(cfg) + 1
    out_valid = np.zeros((cycles, cols), np.uint8)
    out_y = np.zeros((cycles, cols), np.int64)
    row_en, col_en = stream.enables(cfg)

    def per_pe(x: np.ndarray, dtype) -> np.ndarray:
        # cycles last, so each PE walks its operands contiguously
        return np.ascontiguousarray(np.moveaxis(np.asarray(x, dtype), 0, -1))

    _array_run(
        pe_code(pe),
        pe.wbits,
        pe.signed_weights,
        pe.group,
        pe.acc_bits,
        pe.latency,
        cfg.rows,
        cols,
        lanes,
        bool(stream.packed),
        np.asarray(stream.valid, np.uint8),
        np.asarray(stream.first, np.uint8),
        np.asarray(stream.last, np.uint8),
        per_pe(row_en, np.uint8),
        per_pe(col_en.reshape(n, cols, lanes), np.uint8),
        per_pe(decode_acts(stream.act, pe.act), np.int64),
        per_pe(stream.q, np.int64),
        per_pe(np.asarray(stream.scale).reshape(n, cols, lanes), np.int64),
        per_pe(stream.zero, np.int64),
        out_valid,
        out_y,
    )
    return out_valid, out_y


@numba.njit(parallel=True, cache=True)
def _gemm_tiles(
    kind,
    wbits,
    signed_w,
    group,
    acc_bits,
    latency,
    tile_rows,
    tile_cols,
    m_off,
    n_off,
    a,
    q_t,
    scale_t,
    zero_t,
    op_group,
    starts,
    y,
):
    """The array over a GEMM's tiles, one tile per parallel task, straight from the operand matrices.

    a: (M, K) decoded activations; q_t: (N, K) weight ports; scale_t, zero_t: (N, K / op_group);
    m_off (R,), n_off (R, C): the Y row and column offsets within a tile of PE (i, j) (m_off -1: unused
    row; sim/gemm.py pe_offsets, packed or not); starts: (tiles,) the cycle each tile's first operand
    enters. Writes Y (M, N) and returns the cycle the last result leaves the array. Each used PE sees its
    tile's K operands back to back, `first` on the first and `last` on the K-th, as _array_run walks the
    stream; PEs outside Y (partial tiles) are gated: they neither compute nor drain a result.
    """
    m, k = a.shape
    n = q_t.shape[0]
    rows, cols = n_off.shape
    col_blocks = (n + tile_cols - 1) // tile_cols
    tiles = starts.shape[0]
    last_exit = np.full(tiles, -1, np.int64)
    for t in numba.prange(tiles):
        r0 = (t // col_blocks) * tile_rows
        c0 = (t % col_blocks) * tile_cols
        t_last = starts[t] + k - 1
        for i in range(rows):
            row = r0 + m_off[i]
            if m_off[i] < 0 or row >= m:
                continue
            for j in range(cols):
                col = c0 + n_off[i, j]
                if col >= n:
                    continue
                acc = np.int64(0)
                psum = np.int64(0)
                count = 0
                for kk in range(k):
                    acc, psum, count = pe_update(
                        kind,
                        wbits,
                        signed_w,
                        group,
                        acc_bits,
                        acc,
                        psum,
                        count,
                        a[row, kk],
                        q_t[col, kk],
                        scale_t[col, kk // op_group],
                        zero_t[col, kk // op_group],
                        kk == 0,
                    )
                y[row, col] = acc
                last_exit[t] = max(last_exit[t], t_last + 2 * i + j + 1 + latency)
    return last_exit.max()


def gemm_run(
    cfg: ArrayConfig,
    act: np.ndarray,
    q: np.ndarray,
    scale: np.ndarray,
    zero: np.ndarray,
    op_group: int,
    starts: np.ndarray,
    tile: tuple[int, int],
    offsets: tuple[np.ndarray, np.ndarray],
) -> tuple[np.ndarray, int]:
    """Y (M x N) and the cycles to the last result (inclusive) of a GEMM whose tiles start at `starts`.

    act: (M, K) activation ports; q: (K, N); scale, zero: (K / op_group, N); tile: the (rows, columns)
    of Y a tile covers and offsets: each PE's place in it (sim/gemm.py tile_shape, pe_offsets; the
    packed mapping gives every lane its own columns, scales and zero points). Memory is the operands
    plus Y: no per-cycle stream is built, so a full LLM layer fits (sim/gemm.py checks the schedule).
    Runs on every core Numba is allowed (NUMBA_NUM_THREADS).
    """
    pe = cfg.pe
    y = np.zeros((act.shape[0], q.shape[1]), np.int64)
    m_off, n_off = offsets
    last = _gemm_tiles(
        pe_code(pe),
        pe.wbits,
        pe.signed_weights,
        pe.group,
        pe.acc_bits,
        pe.latency,
        tile[0],
        tile[1],
        np.asarray(m_off, np.int64),
        np.ascontiguousarray(n_off, np.int64),
        np.ascontiguousarray(decode_acts(act, pe.act), np.int64),
        # (N, K) layout, so each PE walks its operands contiguously
        np.ascontiguousarray(np.asarray(q, np.int64).T),
        np.ascontiguousarray(np.asarray(scale, np.int64).T),
        np.ascontiguousarray(np.asarray(zero, np.int64).T),
        op_group,
        np.asarray(starts, np.int64),
        y,
    )
    return y, int(last) + 1
