"""Cycle counts of a GEMM's tile schedule on the output-stationary array, in plain Python (no Numba).

Shared by the cycle model, the tile model (sim/perf_model.py) and the Verilog manifest (hw/build.py),
so all of them state one formula. Y (M x N) is cut into n = ceil(M/R)·ceil(N/C) tiles of R x C
outputs, each streaming K operands; L is the PE latency (PEConfig.latency).

"overlapped" is the hardware's schedule (hw/array.py): a tile's operands start max(K, 2R − 1)
cycles after the previous tile's, so one tile streams while the one before drains:

    cycles = (n − 1)·max(K, 2R − 1) + K + 2R + C − 2 + L

"scalesim" reproduces SCALE-Sim v3's output-stationary compute cycles: each fold (tile) takes
K + R + C − 2 cycles (fill, stream, drain) and folds run back to back without overlap; SCALE-Sim
reports the index of the last cycle, one less than the count:

    cycles = n·(K + R + C − 2) − 1
"""

from __future__ import annotations

from dataclasses import dataclass

from hw.config import ArrayConfig

SCHEDULES = ("overlapped", "scalesim")


def min_tile_spacing(rows: int) -> int:
    """Fewest cycles between the `last` operands of two tiles so that their drains never collide."""
    return 2 * rows - 1


def drain_cycles(cfg: ArrayConfig) -> int:
    """Cycles after the last operand's cycle until the final result has left the array (inclusive)."""
    return 2 * cfg.rows + cfg.cols - 2 + cfg.pe.latency


def tile_count(cfg: ArrayConfig, m: int, n: int) -> int:
    """Output tiles (SCALE-Sim's folds) of an M x N result."""
    return -(-m // cfg.rows) * -(-n // cfg.cols)


def tile_spacing(cfg: ArrayConfig, k: int) -> int:
    """Cycles from one tile's first operand to the next tile's (K, padded for the drain chain)."""
    return max(k, min_tile_spacing(cfg.rows))


def scalesim_fold_cycles(cfg: ArrayConfig, k: int) -> int:
    """SCALE-Sim v3's output-stationary compute cycles of one fold: K + R + C − 2."""
    return k + cfg.rows + cfg.cols - 2


@dataclass(frozen=True)
class Schedule:
    """How tiles follow each other: `spacing` cycles between tile starts, `tail` cycles from the last
    tile's start to the last counted cycle, so cycles = start of the last tile + tail."""

    name: str

    def __post_init__(self) -> None:
        if self.name not in SCHEDULES:
            raise ValueError(f"unknown schedule '{self.name}': choose one of {', '.join(SCHEDULES)}")

    def spacing(self, cfg: ArrayConfig, k: int) -> int:
        """Cycles from one tile's start to the next one's, operands ready."""
        return scalesim_fold_cycles(cfg, k) if self.name == "scalesim" else tile_spacing(cfg, k)

    def tail(self, cfg: ArrayConfig, k: int) -> int:
        """Cycles from the last tile's start to the end of the count."""
        return scalesim_fold_cycles(cfg, k) - 1 if self.name == "scalesim" else k + drain_cycles(cfg)


def gemm_cycles(cfg: ArrayConfig, m: int, n: int, k: int, schedule: str = "overlapped") -> int:
    """Cycles of a GEMM with every operand ready (see the module docstring): (tiles − 1)·spacing + tail."""
    s = Schedule(schedule)
    return (tile_count(cfg, m, n) - 1) * s.spacing(cfg, k) + s.tail(cfg, k)


def cycle_formula(latency: int) -> str:
    """The overlapped gemm_cycles as text for a PE latency L, in the manifest's names (tiles, K, rows, cols)."""
    return f"(tiles - 1) * max(K, 2*rows - 1) + K + 2*rows + cols - 2 + {latency}"
