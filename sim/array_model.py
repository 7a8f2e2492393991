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
