"""Seeded stimulus for the testbenches: constrained-random operands with directed corners mixed in."""

from __future__ import annotations

import numpy as np

from hw.config import SCALE_PORT_BITS, ArrayConfig, PEConfig
from sim.array_model import Stream
from sim.float_model import random_fp16_scales

# Activation port values at the edges of each format.
ACT_CORNERS = {
    "int8": [0x80, 0x7F, 0x00, 0xFF, 0x01],  # -128, 127, 0, -1, 1
    "fp16": [0x7BFF, 0xFBFF, 0x0001, 0x8001, 0x03FF, 0x0400, 0x3C00, 0x8000, 0x0000],
}


def _act(cfg: PEConfig, rng: np.random.Generator, corner: bool) -> int:
    if corner:
        return int(rng.choice(ACT_CORNERS[cfg.act]))
    if cfg.act == "int8":
        return int(rng.integers(0, 256))
    bits = int(rng.integers(0, 1 << 16))
    return bits & ~0x4000 if (bits >> 10) & 0x1F == 0x1F else bits  # every finite pattern


def pe_stimulus(
    cfg: PEConfig,
    rng: np.random.Generator,
    tiles: int = 6,
    max_groups: int = 3,
    stall_prob: float = 0.15,
    corner_prob: float = 0.2,
) -> dict[str, np.ndarray]:
    """Cycle-by-cycle PE inputs: `tiles` dot products of 1..max_groups whole groups each.

    Scale and zero point are constant within a group (0 and full scale among the corners; FP16
    scales from sim.float_model.random_fp16_scales for the FP32 PEs); stall
    cycles (valid low, random garbage on every other input, flags included) are sprinkled inside
    groups and between tiles; some tiles follow each other back to back.
    """
    qmax, cols = (1 << cfg.wbits) - 1, {n: [] for n in ("valid", "first", "last", "act", "q", "scale", "zero")}

    def emit(valid, first, last, act, q, scale, zero):
        for name, v in zip(cols, (valid, first, last, act, q, scale, zero), strict=True):
            cols[name].append(v)

    def stall():
        emit(
            0,
            int(rng.integers(2)),
            int(rng.integers(2)),
            int(rng.integers(1 << 16)),
            int(rng.integers(256)),
            int(rng.integers(1 << 16)),
            int(rng.integers(256)),
        )

    for _ in range(tiles):
        groups = int(rng.integers(1, max_groups + 1))
        for g in range(groups):
            corner = rng.random() < corner_prob
            if cfg.fp32:  # FP16 scale bits: finite, corners among them
                scale = int(random_fp16_scales(rng, 1, corner_prob=float(corner))[0])
            else:
                scale = int(rng.choice([0, 0xFFFF])) if corner else int(rng.integers(1 << 16))
            zero = 0 if cfg.signed_weights else int(rng.choice([0, qmax])) if corner else int(rng.integers(qmax + 1))
            for k in range(cfg.group):
                while rng.random() < stall_prob:
                    stall()
                c = rng.random() < corner_prob
                q = int(rng.choice([0, qmax, 1 << (cfg.wbits - 1)])) if c else int(rng.integers(qmax + 1))
                first, last = g == 0 and k == 0, g == groups - 1 and k == cfg.group - 1
                emit(1, int(first), int(last), _act(cfg, rng, c), q, scale, zero)
        if rng.random() < 0.5:
            for _ in range(int(rng.integers(1, 4))):
                stall()
    return {name: np.array(v, np.int64) for name, v in cols.items()}


def insert_bubbles(stream: Stream, rng: np.random.Generator, prob: float) -> Stream:
    """The same stream with idle cycles (valid low, random data, random enables) inserted before entries at random."""
    n = len(stream)
    extra = rng.geometric(1 - prob, n) - 1  # idle cycles before each entry
    pos = np.arange(n) + np.cumsum(extra)
    total = n + int(extra.sum())

    def spread(x: np.ndarray, valid_field: bool = False) -> np.ndarray:
        out = np.zeros((total, *x.shape[1:]), np.int64) if valid_field else rng.integers(0, 256, (total, *x.shape[1:]))
        out[pos] = x
        return out

    return Stream(
        valid=spread(stream.valid, True),
        first=spread(stream.first) & 1,
        last=spread(stream.last) & 1,
        act=spread(stream.act),
        q=spread(stream.q),
        scale=spread(stream.scale),
        zero=spread(stream.zero),
        row_en=None if stream.row_en is None else spread(stream.row_en) & 1,
        col_en=None if stream.col_en is None else spread(stream.col_en) & 1,
        packed=stream.packed,
    )


def array_port_inputs(cfg: ArrayConfig, stream: Stream, cycles: int) -> dict[str, np.ndarray]:
    """The array's input ports for each of `cycles` cycles (0 after the stream): (cycles,) for a scalar
    port, (cycles, lanes) for a vector port, one value per lane as the hw.build manifest lists them.

    A column's packed-mode fields (scale, enable: one per lane, hw/array.py) become one port lane per
    column, lane p at bit p * bits. in_packed is held for every cycle, so a packed GEMM drains in it.
    """
    n, lanes = len(stream), cfg.lanes
    row_en, col_en = stream.enables(cfg)

    def padded(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, np.uint64)
        return np.concatenate([x, np.zeros((cycles - n, *x.shape[1:]), np.uint64)])

    def per_column(x: np.ndarray, bits: int) -> np.ndarray:
        x = np.asarray(x, np.uint64).reshape(n, cfg.cols, lanes)
        return sum(x[:, :, p] << np.uint64(p * bits) for p in range(lanes))

    ports = {
        "in_valid": stream.valid,
        "in_first": stream.first,
        "in_last": stream.last,
        "in_row_en": (np.asarray(row_en, np.uint64) << np.arange(cfg.rows, dtype=np.uint64)).sum(axis=1),
        "in_col_en": per_column(col_en, 1),
        "in_act": stream.act,
        "in_q": stream.q,
        "in_scale": per_column(stream.scale, SCALE_PORT_BITS),
        "in_zero": stream.zero,
    }
    inputs = {name: padded(values) for name, values in ports.items()}
    inputs["in_packed"] = np.full(cycles, int(stream.packed), np.uint64)
    return inputs
