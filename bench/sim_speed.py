"""Simulator speed: one random GEMM on an 8x8 array through cocotb+Icarus, Amaranth's simulator and
the Numba cycle model; all three must agree. Then the Numba model alone on a 16x16 array. Then the
Numba model against a native Verilator build of the same 8x8 array (C++ main, -O3, one thread,
bench/verilator_native.py) on a 64x64x1024 GEMM, outputs checked equal on every cycle:
numba_over_native_verilator (target >= 20). `--native-only` runs just that comparison and updates
it in the existing JSON.

Prints simulated PE-cycles per second (array cycles x PEs / wall seconds, simulation loop only:
no compilation or start-up) and the ratios, and writes bench/results/sim_speed.json.

    python -m bench.sim_speed [--repeats 3] [--quick]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from hw.config import ArrayConfig, PEConfig
from sim.array_model import array_run
from sim.files import atomic_write
from sim.gemm import gemm_stream, random_operands
from tb import runner
from tb.amaranth_sim import array_trace_amaranth

RESULTS = Path(__file__).resolve().parent / "results" / "sim_speed.json"


def numba_rate(cfg: ArrayConfig, stream, repeats: int, min_seconds: float = 0.2) -> tuple[float, tuple]:
    """Median PE-cycles/s of array_run over `repeats` timed batches (after one warm-up call)."""
    out = array_run(cfg, stream)
    start, calls = time.perf_counter(), 0
    while time.perf_counter() - start < min_seconds / repeats:
        array_run(cfg, stream)
        calls += 1
    rates = []
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(calls):
            array_run(cfg, stream)
        rates.append(calls * len(out[0]) * cfg.rows * cfg.cols / (time.perf_counter() - t))
    return statistics.median(rates), out


def compare_simulators(cfg: ArrayConfig, shape: tuple[int, int, int], repeats: int, seed: int) -> dict:
    ops = random_operands(cfg.pe, *shape, np.random.default_rng(seed))
    stream = gemm_stream(cfg, ops)
    pes = cfg.rows * cfg.cols
    rates = {}
    with tqdm(total=3, desc=f"{cfg.name()} {shape}", leave=False) as bar:
        rates["numba"], (want_valid, want_y) = numba_rate(cfg, stream, repeats)
        cycles = len(want_valid)
        bar.update()
        t = time.perf_counter()
        got_valid, got_y = array_trace_amaranth(cfg, stream, cycles)
        rates["amaranth"] = cycles * pes / (time.perf_counter() - t)
        if not (np.array_equal(got_valid, want_valid) and np.array_equal(got_y, want_y)):
            raise SystemExit("Amaranth simulation disagrees with the Numba model")
        bar.update()
        icarus_runs = []
        with tempfile.TemporaryDirectory() as tmp:
            for r in range(repeats):
                timing = Path(tmp) / f"timing{r}.json"
                # the testbench replays the same stream (same seed) and checks every cycle against the model
                tests, failed = runner.run(
                    cfg, "tb_array", seed, shape=list(shape), bubble_prob=0.0, timing_out=str(timing)
                )
                if failed or not tests:
                    raise SystemExit("cocotb+Icarus simulation disagrees with the Numba model")
                icarus_runs.append(json.loads(timing.read_text()))
        if icarus_runs[0]["cycles"] != cycles:
            raise SystemExit(f"Icarus ran {icarus_runs[0]['cycles']} cycles, the model {cycles}")
        rates["icarus"] = statistics.median(cycles * pes / r["seconds"] for r in icarus_runs)
        bar.update()
    return {"config": cfg.name(), "shape_mnk": list(shape), "cycles": cycles, "pe_cycles_per_s": rates}


def native_verilator(cfg: ArrayConfig, shape: tuple[int, int, int], repeats: int, seed: int) -> dict:
    """PE-cycles/s of native Verilator and of the Numba model (one thread) on one GEMM; outputs must agree."""
    import numba

    from bench import verilator_native
    from sim.gemm import run_gemm

    ops = random_operands(cfg.pe, *shape, np.random.default_rng(seed))
    stream = gemm_stream(cfg, ops)
    exe = verilator_native.cached_build(cfg)
    stream_rate, (want_valid, want_y) = numba_rate(cfg, stream, repeats)
    cycles, pes = len(want_valid), cfg.rows * cfg.cols
    seconds = []
    for _ in range(repeats):
        got_valid, got_y, s = verilator_native.run(cfg, exe, stream, cycles)
        if not (np.array_equal(got_valid, want_valid) and np.array_equal(got_y, want_y)):
            raise SystemExit("native Verilator disagrees with the Numba model")
        seconds.append(s)
    threads = numba.get_num_threads()
    numba.set_num_threads(1)  # one core, like the Verilator run
    try:
        run_gemm(cfg, ops)
        tile_seconds = []
        for _ in range(repeats):
            t = time.perf_counter()
            _, tile_cycles = run_gemm(cfg, ops)
            tile_seconds.append(time.perf_counter() - t)
    finally:
        numba.set_num_threads(threads)
    verilator = cycles * pes / statistics.median(seconds)
    tiles = tile_cycles * pes / statistics.median(tile_seconds)
    return {
        "config": cfg.name(),
        "shape_mnk": list(shape),
        "cycles": cycles,
        "pe_cycles_per_s": {
            "native_verilator": verilator,
            "numba_run_gemm_1_thread": tiles,
            "numba_stream": stream_rate,
        },
        "numba_over_native_verilator": tiles / verilator,
        "numba_stream_over_native_verilator": stream_rate / verilator,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.sim_speed", description=__doc__)
    p.add_argument("--repeats", type=int, default=3, help="timed repeats per simulator (median is reported)")
    p.add_argument("--quick", action="store_true", help="smaller shapes (for a smoke test)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--native-only", action="store_true", help="only Numba vs native Verilator, merged into the JSON")
    args = p.parse_args(argv)
    native_cfg = ArrayConfig(PEConfig("mixpe", 4, "unsigned", "int8", 32), 8, 8)
    native = native_verilator(native_cfg, (64, 64, 1024), args.repeats, args.seed)
    r = native["pe_cycles_per_s"]
    print(
        f"{native['config']} {tuple(native['shape_mnk'])}: native Verilator {r['native_verilator']:.3g}, Numba"
        f" run_gemm (1 thread) {r['numba_run_gemm_1_thread']:.3g}, Numba stream {r['numba_stream']:.3g} PE-cycles/s:"
        f" {native['numba_over_native_verilator']:.1f}x"
        f" (stream model {native['numba_stream_over_native_verilator']:.1f}x)"
    )
    if args.native_only:
        result = json.loads(RESULTS.read_text()) if RESULTS.exists() else {"benchmark": "sim_speed"}
        result |= {"native_verilator": native, "numba_over_native_verilator": native["numba_over_native_verilator"]}
        atomic_write(RESULTS, json.dumps(result, indent=2) + "\n")
        return 0

    k = 64 if args.quick else 256
    cases = [
        compare_simulators(
            ArrayConfig(PEConfig("mixpe", 4, "unsigned", act, 32), 8, 8), (16, 16, k), args.repeats, args.seed
        )
        for act in ("int8", "fp16")
    ]
    big = ArrayConfig(PEConfig("mixpe", 4, "unsigned", "fp16", 128), 16, 16)
    big_shape = (32, 32, 512) if args.quick else (64, 64, 1024)
    big_rate, _ = numba_rate(
        big, gemm_stream(big, random_operands(big.pe, *big_shape, np.random.default_rng(args.seed))), args.repeats
    )

    print(
        f"{'configuration':34s} {'cycles':>7s} {'Icarus':>12s} {'Amaranth':>12s} {'Numba':>12s}"
        "   Numba/Icarus  Numba/Amaranth"
    )
    for c in cases:
        r = c["pe_cycles_per_s"]
        c["numba_over_icarus"] = r["numba"] / r["icarus"]
        c["numba_over_amaranth"] = r["numba"] / r["amaranth"]
        print(
            f"{c['config']:34s} {c['cycles']:7d} {r['icarus']:12.3g} {r['amaranth']:12.3g} {r['numba']:12.3g}"
            f"   {c['numba_over_icarus']:12.0f}x {c['numba_over_amaranth']:14.0f}x"
        )
    print(f"Numba, {big.name()} {big_shape}: {big_rate:.3g} PE-cycles/s on one core (target 2e7)")
    print("(PE-cycles/s = simulated array cycles x PEs / wall seconds; all three simulators agreed on every cycle)")

    RESULTS.parent.mkdir(exist_ok=True)
    result = {
        "benchmark": "sim_speed",
        "unit": "PE-cycles per second",
        "cases": cases,
        "numba_16x16": {"config": big.name(), "shape_mnk": list(big_shape), "pe_cycles_per_s": big_rate},
        "native_verilator": native,
        "numba_over_native_verilator": native["numba_over_native_verilator"],
        "settings": vars(args),
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "processor": platform.processor(),
        },
    }
    atomic_write(RESULTS, json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
