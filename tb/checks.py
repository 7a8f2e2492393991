"""One testbench run as data: seeded stimulus for any configuration, the cycle model's expected
outputs, and the per-check comparison of what a simulator produced (used by `python -m tb`).

Ports are handled generically from the design's manifest (hw.build.port_list): a scalar port takes
one value per cycle, a vector port (an array's lanes) a (cycles, lanes) array packed lane 0 low.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hw.config import ArrayConfig, PEConfig
from sim.array_model import array_run
from sim.gemm import GemmOperands, collect, gemm_stream, random_operands
from sim.pe_model import pe_trace
from sim.reference import reference_gemm
from tb.stimulus import ACT_CORNERS, array_port_inputs, insert_bubbles, pe_stimulus

BUBBLE_PROB = 0.1  # idle cycles inserted before an array operand
CORNER_PROB = 0.2  # operands replaced by a corner value


@dataclass
class Case:
    """Stimulus and expected outputs of one run.

    inputs: port name -> (cycles,) or (cycles, lanes) port values, cycle 0 the first after reset.
    want_valid, want_y: (cycles, lanes) expected out_valid / out_y; lanes is 1 for a PE.
    y_every_cycle: out_y is compared in every cycle (a PE), else only where out_valid is expected
    (an array's drain registers hold stale values in between).
    ops: the GEMM operands of an array run, for the end-to-end check against numpy.
    """

    inputs: dict[str, np.ndarray]
    want_valid: np.ndarray
    want_y: np.ndarray
    y_every_cycle: bool
    ops: GemmOperands | None = None

    @property
    def cycles(self) -> int:
        return len(self.want_valid)


@dataclass
class Check:
    """One named check; when failed, its first mismatch (cycle, signal, expected, actual)."""

    name: str
    passed: bool
    mismatches: int = 0
    cycle: int | None = None
    signal: str | None = None
    expected: int | None = None
    actual: int | None = None
    detail: dict = field(default_factory=dict)

    def line(self) -> str:
        head = f"{'PASS' if self.passed else 'FAIL'}  {self.name}"
        if self.passed:
            return head
        if self.cycle is None:
            return f"{head}: {self.detail.get('reason', '')}"
        return f"{head}: {self.mismatches} mismatching cycles, first {self.where()}"

    def where(self) -> str:
        return f"cycle {self.cycle}, {self.signal}: expected {self.expected}, actual {self.actual}"


def corner_operands(pe: PEConfig, ops: GemmOperands, rng: np.random.Generator, prob: float) -> GemmOperands:
    """The same operands with a fraction `prob` of activations, weights, scales and zeros set to corners."""
    qmax = (1 << pe.wbits) - 1

    def mix(x: np.ndarray, corners: list[int]) -> np.ndarray:
        pick = rng.random(x.shape) < prob
        return np.where(pick, rng.choice(corners, x.shape), x)

    zero = ops.zero if pe.signed_weights else mix(ops.zero, [0, qmax])
    return GemmOperands(
        act=mix(ops.act, ACT_CORNERS[pe.act]),
        q=mix(ops.q, [0, qmax, 1 << (pe.wbits - 1)]),
        scale=mix(ops.scale, [0, 0xFFFF]),
        zero=zero,
        group=ops.group,
    )


def pe_case(cfg: PEConfig, seed: int, cycles: int) -> Case:
    """Constrained-random PE stimulus with corners and stalls, whole tiles until >= cycles."""
    rng = np.random.default_rng(seed)
    parts = []
    while sum(len(p["valid"]) for p in parts) < cycles:
        parts.append(pe_stimulus(cfg, rng, tiles=1))
    stim = {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}
    want_y, want_valid = pe_trace(cfg, **stim)
    return Case(stim, want_valid[:, None].astype(np.uint8), want_y[:, None], y_every_cycle=True)


def gemm_shape(cfg: ArrayConfig, cycles: int, rng: np.random.Generator) -> tuple[int, int, int]:
    """(M, N, K) of a GEMM whose stream lasts about `cycles` cycles: K of 1-2 groups, enough tiles."""
    k = cfg.pe.group * int(rng.integers(1, 3))
    tiles = max(1, -(-cycles // max(k, 2 * cfg.rows - 1)))
    tile_cols = 2 if tiles >= 2 else 1
    tile_rows = -(-tiles // tile_cols)
    # One padded row and column (when there are several) so discarded results are exercised too.
    return tile_rows * cfg.rows - (cfg.rows > 1), tile_cols * cfg.cols - (cfg.cols > 1), k


def array_case(cfg: ArrayConfig, seed: int, cycles: int) -> Case:
    """A random GEMM with corner operands and idle cycles, streamed through the array."""
    rng = np.random.default_rng(seed)
    m, n, k = gemm_shape(cfg, cycles, rng)
    ops = corner_operands(cfg.pe, random_operands(cfg.pe, m, n, k, rng), rng, CORNER_PROB)
    stream = insert_bubbles(gemm_stream(cfg, ops), rng, BUBBLE_PROB)
    want_valid, want_y = array_run(cfg, stream)
    inputs = array_port_inputs(cfg, stream, len(want_valid))
    return Case(inputs, want_valid, want_y, y_every_cycle=False, ops=ops)


def make_case(cfg: PEConfig | ArrayConfig, seed: int, cycles: int) -> Case:
    """The run's stimulus and expected outputs (cycles: the least stimulus length, in cycles)."""
    if cycles < 1:
        raise ValueError(f"cycles {cycles} must be at least 1")
    return array_case(cfg, seed, cycles) if isinstance(cfg, ArrayConfig) else pe_case(cfg, seed, cycles)


def _compare(name: str, signal: str, want: np.ndarray, got: np.ndarray, where: np.ndarray) -> Check:
    bad = np.flatnonzero(where & (want != got))
    if not bad.size:
        return Check(name, True)
    t = int(bad[0])
    return Check(name, False, int(bad.size), t, signal, int(want[t]), int(got[t]))


def compare(cfg: PEConfig | ArrayConfig, case: Case, got_valid: np.ndarray, got_y: np.ndarray) -> list[Check]:
    """Each check of a run: out_valid timing and out_y values per lane, then (arrays) Y against numpy."""
    lanes = case.want_valid.shape[1]
    vector = isinstance(cfg, ArrayConfig)
    checks = []
    for j in range(lanes):
        suffix = f"[{j}]" if vector else ""
        every = np.ones(case.cycles, bool)
        checks.append(
            _compare(f"out_valid{suffix} timing", f"out_valid{suffix}", case.want_valid[:, j], got_valid[:, j], every)
        )
        where = every if case.y_every_cycle else case.want_valid[:, j] == 1
        checks.append(_compare(f"out_y{suffix} values", f"out_y{suffix}", case.want_y[:, j], got_y[:, j], where))
    if case.ops is not None:
        checks.append(_gemm_check(cfg, case, got_valid, got_y))
    return checks


def _gemm_check(cfg: ArrayConfig, case: Case, got_valid: np.ndarray, got_y: np.ndarray) -> Check:
    name = "Y = X @ W against numpy"
    try:
        y = collect(cfg, case.ops, got_valid, got_y)
    except ValueError as e:  # a column delivered the wrong number of results
        return Check(name, False, detail={"reason": str(e)})
    bad = np.argwhere(y != reference_gemm(cfg.pe, case.ops))
    if not bad.size:
        return Check(name, True)
    i, j = (int(v) for v in bad[0])
    return Check(name, False, detail={"reason": f"{len(bad)} wrong entries, first Y[{i}, {j}]"})


def first_mismatch(checks: list[Check]) -> Check | None:
    """The failed check whose mismatch comes earliest (in cycles), or the first failed one."""
    failed = [c for c in checks if not c.passed]
    timed = [c for c in failed if c.cycle is not None]
    return min(timed, key=lambda c: c.cycle) if timed else (failed[0] if failed else None)
