"""Cycle counts of a GEMM's tile schedule on the output-stationary array, in plain Python (no Numba).

Shared by the cycle model, the tile model (sim/perf_model.py) and the Verilog manifest (hw/build.py),
so all of them state one formula. Y (M x N) is cut into n = ceil(M/R)·ceil(N/C) tiles of R x C
outputs (R / lanes x C · lanes in the packed decode mapping, hw/array.py), each streaming K operands;
L is the PE latency (PEConfig.latency).

"overlapped" is the hardware's schedule (hw/array.py): a tile's operands start max(K, 2R − 1)
cycles after the previous tile's, so one tile streams while the one before drains. PE (i, j)'s
result leaves the array K + 2i + j + 1 + L cycles after its tile starts, and PEs a partial tile does
not use are gated (no result), so a tile ends with its last used PE; with every PE used:

    cycles = (n − 1)·max(K, 2R − 1) + K + 2R + C − 2 + L

"scalesim" reproduces SCALE-Sim v3's output-stationary compute cycles: each fold (tile) takes
K + R + C − 2 cycles (fill, stream, drain) and folds run back to back without overlap; SCALE-Sim
reports the index of the last cycle, one less than the count:

    cycles = n·(K + R + C − 2) − 1
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hw.config import ArrayConfig

SCHEDULES = ("overlapped", "scalesim")


def min_tile_spacing(rows: int) -> int:
    """Fewest cycles between the `last` operands of two tiles so that their drains never collide."""
    return 2 * rows - 1


def drain_cycles(cfg: ArrayConfig) -> int:
    """Cycles after the last operand's cycle until the final result has left the array (inclusive)."""
    return 2 * cfg.rows + cfg.cols - 2 + cfg.pe.latency


def tile_shape(cfg: ArrayConfig, packed: bool = False) -> tuple[int, int]:
    """(rows of Y, columns of Y) one tile covers: R x C, or R // lanes x C * lanes when packed."""
    lanes = cfg.lanes if packed else 1
    if cfg.rows < lanes:
        raise ValueError(f"the packed mode needs at least {lanes} rows (one per lane); the array has {cfg.rows}")
    return cfg.rows // lanes, cfg.cols * lanes


def tile_count(cfg: ArrayConfig, m: int, n: int, packed: bool = False) -> int:
    """Output tiles (SCALE-Sim's folds) of an M x N result."""
    tm, tn = tile_shape(cfg, packed)
    return -(-m // tm) * -(-n // tn)


def tile_usage(cfg: ArrayConfig, m: int, n: int, packed: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Per tile (in order): the PEs it uses, and max 2i + j over them (its last result's drain offset).

    PE (i, j)'s result leaves the array 2i + j + 1 + L cycles after the tile's last operand
    (hw/array.py); gated PEs produce none, so a tile's drain ends with its last used PE.
    """
    lanes = cfg.lanes if packed else 1
    tm, tn = tile_shape(cfg, packed)
    rows_used = np.minimum(tm, m - np.arange(0, m, tm))  # per row block
    lane_cols = np.clip(n - np.arange(0, n, tn)[:, None] - np.arange(lanes)[None, :] * cfg.cols, 0, cfg.cols)
    lane = np.arange(lanes)[None, :]
    # per column block: max over lanes in use of 2p + (columns used) - 1
    col_exit = np.where(lane_cols > 0, 2 * lane + lane_cols - 1, -1).max(axis=1)
    used = rows_used[:, None] * lane_cols.sum(axis=1)[None, :]
    exit_offset = 2 * lanes * (rows_used[:, None] - 1) + col_exit[None, :]
    return used.ravel(), exit_offset.ravel()


def schedule_cycles(cfg: ArrayConfig, starts: np.ndarray, exit_offset: np.ndarray, k: int) -> int:
    """Cycles from cycle 0 to the last result, inclusive, of the hardware's tiles starting at `starts`."""
    return int((np.asarray(starts) + exit_offset).max()) + k + cfg.pe.latency + 1


def tile_spacing(cfg: ArrayConfig, k: int) -> int:
    """Cycles from one tile's first operand to the next tile's (K, padded for the drain chain)."""
    return max(k, min_tile_spacing(cfg.rows))


def scalesim_fold_cycles(cfg: ArrayConfig, k: int) -> int:
    """SCALE-Sim v3's output-stationary compute cycles of one fold: K + R + C − 2."""
    return k + cfg.rows + cfg.cols - 2


@dataclass(frozen=True)
class Schedule:
    """How tiles follow each other: `spacing` cycles between tile starts (operands ready), and the
    cycles the whole GEMM takes for given tile starts."""

    name: str

    def __post_init__(self) -> None:
        if self.name not in SCHEDULES:
            raise ValueError(f"unknown schedule '{self.name}': choose one of {', '.join(SCHEDULES)}")

    def spacing(self, cfg: ArrayConfig, k: int) -> int:
        """Cycles from one tile's start to the next one's, operands ready."""
        return scalesim_fold_cycles(cfg, k) if self.name == "scalesim" else tile_spacing(cfg, k)

    def cycles(self, cfg: ArrayConfig, starts: np.ndarray, m: int, n: int, k: int, packed: bool = False) -> int:
        """Cycles from cycle 0 to the end of the count for tiles starting at `starts` (cycles).

        "scalesim" counts every fold in full (SCALE-Sim has no gating); "overlapped" ends with the
        last used PE of each tile (tile_usage).
        """
        if self.name == "scalesim":
            return int(np.asarray(starts)[-1]) + scalesim_fold_cycles(cfg, k) - 1
        _, exit_offset = tile_usage(cfg, m, n, packed)
        return schedule_cycles(cfg, starts, exit_offset, k)


def gemm_cycles(cfg: ArrayConfig, m: int, n: int, k: int, schedule: str = "overlapped", packed: bool = False) -> int:
    """Cycles of a GEMM with every operand ready (see the module docstring), tiles `spacing` apart."""
    s = Schedule(schedule)
    starts = np.arange(tile_count(cfg, m, n, packed)) * s.spacing(cfg, k)
    return s.cycles(cfg, starts, m, n, k, packed)


def cycle_formula(latency: int) -> str:
    """The overlapped gemm_cycles as text for a PE latency L, in the manifest's names (tiles, K, rows, cols)."""
    return f"(tiles - 1) * max(K, 2*rows - 1) + K + 2*rows + cols - 2 + {latency}"
