"""Cycle model of the output-stationary systolic array (Numba), cycle-exact with hw/array.py.

Because the skew buffers and the forwarding registers are pure delays that reset to zero, PE (i, j)
in cycle t sees exactly the operand the host presented in cycle t - i - j (an idle operand before
that). So each PE is simulated over the host's stream with `pe_update`, and each finished result
(produced at stream position t_last, out_valid in cycle t_last + i + j + L, L the PE's latency) is
placed where the upward drain chain delivers it: the top of column j in cycle t_last + 2i + j + 1 + L.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from hw.config import ArrayConfig
from sim.pe_model import MIXPE, PE_CODES, decode_acts, pe_update
from sim.schedule import drain_cycles, min_tile_spacing


@dataclass
class Stream:
    """What the host presents to the array, one entry per cycle (N cycles).

    valid/first/last: (N,) flags; act: (N, rows) activation port bits; q, scale, zero: (N, cols).
    """

    valid: np.ndarray
    first: np.ndarray
    last: np.ndarray
    act: np.ndarray
    q: np.ndarray
    scale: np.ndarray
    zero: np.ndarray

    def __len__(self) -> int:
        return len(self.valid)


def check_stream(stream: Stream, cfg: ArrayConfig) -> None:
    """Refuse streams the hardware would mangle: tiles too close for the drain chain."""
    lasts = np.flatnonzero(np.asarray(stream.valid, bool) & np.asarray(stream.last, bool))
    gaps = np.diff(lasts)
    if gaps.size and gaps.min() < min_tile_spacing(cfg.rows):
        raise ValueError(
            f"tiles end {gaps.min()} cycles apart; a {cfg.rows}-row array needs at least "
            f"{min_tile_spacing(cfg.rows)} (pad short tiles with idle cycles)"
        )


@numba.njit(cache=True)
def _array_run(
    kind, wbits, signed_w, group, acc_bits, rows, cols, valid, first, last, a, q, scale, zero, out_valid, out_y
):
    n = valid.shape[0]
    latency = 2 if kind == MIXPE else 1
    for j in range(cols):
        for i in range(rows):
            y = np.int64(0)
            psum = np.int64(0)
            asum = np.int64(0)
            count = 0
            for t in range(n):
                if valid[t]:
                    y, psum, asum, count = pe_update(
                        kind,
                        wbits,
                        signed_w,
                        group,
                        acc_bits,
                        y,
                        psum,
                        asum,
                        count,
                        a[i, t],
                        q[j, t],
                        scale[j, t],
                        zero[j, t],
                        first[t],
                    )
                    if last[t] and (kind != MIXPE or count == 0):
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
    cycles = len(stream) + drain_cycles(cfg) + 1
    out_valid = np.zeros((cycles, cfg.cols), np.uint8)
    out_y = np.zeros((cycles, cfg.cols), np.int64)
    _array_run(
        PE_CODES[pe.pe],
        pe.wbits,
        pe.signed_weights,
        pe.group,
        pe.acc_bits,
        cfg.rows,
        cfg.cols,
        np.asarray(stream.valid, np.uint8),
        np.asarray(stream.first, np.uint8),
        np.asarray(stream.last, np.uint8),
        # (lanes, cycles) layout, so each PE walks its operands contiguously
        np.ascontiguousarray(decode_acts(stream.act, pe.act).T),
        np.ascontiguousarray(np.asarray(stream.q, np.int64).T),
        np.ascontiguousarray(np.asarray(stream.scale, np.int64).T),
        np.ascontiguousarray(np.asarray(stream.zero, np.int64).T),
        out_valid,
        out_y,
    )
    return out_valid, out_y


@numba.njit(parallel=True, cache=True)
def _gemm_tiles(
    kind, wbits, signed_w, group, acc_bits, latency, rows, cols, a, q_t, scale_t, zero_t, op_group, starts, y
):
    """The array over a GEMM's tiles, one tile per parallel task, straight from the operand matrices.

    a: (M, K) decoded activations; q_t: (N, K) weight ports; scale_t, zero_t: (N, K / op_group);
    starts: (tiles,) the cycle each tile's first operand enters. Writes Y (M, N) and returns the
    cycle the last result leaves the array. Each PE sees its tile's K operands back to back, `first`
    on the first and `last` on the K-th, exactly as in the stream _array_run walks; padded rows
    and columns of edge tiles are only timed (their results are discarded).
    """
    m, k = a.shape
    n = q_t.shape[0]
    col_blocks = (n + cols - 1) // cols
    tiles = starts.shape[0]
    last_exit = np.zeros(tiles, np.int64)
    for t in numba.prange(tiles):
        r0 = (t // col_blocks) * rows
        c0 = (t % col_blocks) * cols
        t_last = starts[t] + k - 1
        last_exit[t] = t_last + 2 * (rows - 1) + (cols - 1) + 1 + latency
        for i in range(min(rows, m - r0)):
            for j in range(min(cols, n - c0)):
                acc = np.int64(0)
                psum = np.int64(0)
                asum = np.int64(0)
                count = 0
                for g in range(k // op_group):
                    s = scale_t[c0 + j, g]
                    z = zero_t[c0 + j, g]
                    for kk in range(g * op_group, (g + 1) * op_group):
                        acc, psum, asum, count = pe_update(
                            kind,
                            wbits,
                            signed_w,
                            group,
                            acc_bits,
                            acc,
                            psum,
                            asum,
                            count,
                            a[r0 + i, kk],
                            q_t[c0 + j, kk],
                            s,
                            z,
                            kk == 0,
                        )
                y[r0 + i, c0 + j] = acc
    return last_exit.max()


def gemm_run(
    cfg: ArrayConfig,
    act: np.ndarray,
    q: np.ndarray,
    scale: np.ndarray,
    zero: np.ndarray,
    op_group: int,
    starts: np.ndarray,
) -> tuple[np.ndarray, int]:
    """Y (M x N) and the cycles to the last result (inclusive) of a GEMM whose tiles start at `starts`.

    act: (M, K) activation ports; q: (K, N); scale, zero: (K / op_group, N). Memory is the operands
    plus Y: no per-cycle stream is built, so a full LLM layer fits (sim/gemm.py checks the schedule).
    Runs on every core Numba is allowed (NUMBA_NUM_THREADS).
    """
    pe = cfg.pe
    y = np.zeros((act.shape[0], q.shape[1]), np.int64)
    last = _gemm_tiles(
        PE_CODES[pe.pe],
        pe.wbits,
        pe.signed_weights,
        pe.group,
        pe.acc_bits,
        pe.latency,
        cfg.rows,
        cfg.cols,
        np.ascontiguousarray(decode_acts(act, pe.act)),
        # (N, K) layout, so each PE walks its weights contiguously
        np.ascontiguousarray(np.asarray(q, np.int64).T),
        np.ascontiguousarray(np.asarray(scale, np.int64).T),
        np.ascontiguousarray(np.asarray(zero, np.int64).T),
        op_group,
        np.asarray(starts, np.int64),
        y,
    )
    return y, int(last) + 1
