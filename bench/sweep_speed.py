"""Fast paths: the warm replay CLI, sweep throughput, and an exact replay of a full Llama-2-7B layer.

1. Warm CLI: `python -m sim.replay llama-2-7b` (plots off) as a user runs it, PE costs and bytecode
   already cached; median wall time of --repeats runs (target < 0.6 s), with the CPU time beside it.
2. Sweep: `sim.sweep.run_sweep` over a grid of --points-ish design points (array shapes x PE types x
   prefill/decode lengths x two models) with the PE costs cached, on a local Dask cluster of 1 and
   of 2 worker processes, cluster start included; points per minute (target >= 1,000 on 2 cores).
3. Exact layer: the cycle-exact model (`sim.replay.exact_check`, as `--exact` runs it) on a
   2048 x 4096 x 4096 projection (random W4A8 operands, group 128, seed 0) on a 32 x 32 MixPE array,
   in a child process: PE-cycles per second of the cycle model (target >= 2e8), Y checked against
   torch, and the child's peak RSS (target <= 4 GB).

The machine's load average is recorded beside the figures: wall times on a shared machine are only
as good as its quietest moments. Writes bench/results/sweep_speed.json.

    python -m bench.sweep_speed [--repeats 7] [--skip-exact]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sim.files import atomic_write

RESULTS = Path(__file__).resolve().parent / "results" / "sweep_speed.json"
ROOT = Path(__file__).resolve().parents[1]
LAYER = (2048, 4096, 4096)  # M (tokens) x N x K: one Llama-2-7B attention projection over a 2,048-token prompt
TARGETS = {"warm_cli_s": 0.6, "sweep_points_per_min": 1000, "exact_layer_peak_gb": 4.0, "exact_pe_cycles_per_s": 2e8}


def warm_cli(repeats: int) -> dict:
    """Median wall and CPU seconds of the replay CLI, after one run that warms every cache."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}  # a user's bytecode cache
    env["PYTHONPATH"] = str(ROOT)
    walls, cpus = [], []
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "sim.replay", "llama-2-7b", "-o", tmp, "--force"]
        for i in range(repeats + 1):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            t0 = time.perf_counter()
            subprocess.run(cmd, check=True, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, timeout=600)
            wall = time.perf_counter() - t0
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            if i:  # the first run fills the caches
                walls.append(wall)
                cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return {
        "warm_cli_s": statistics.median(walls),
        "warm_cli_cpu_s": statistics.median(cpus),
        "warm_cli_min_s": min(walls),
        "warm_cli_all_s": walls,
    }


def sweep_grid():
    """The benchmark's design points: 16 array shapes x 3 PEs x 4 prefills x 3 decodes x 2 models."""
    from sim.sweep import Point

    sizes = (8, 16, 32, 64)
    return [
        Point(model, pe, rows, cols, 8 if pe == "int8" else 4, 128, "int8", prefill, decode)
        for model, rows, cols, pe, prefill, decode in itertools.product(
            ("llama-2-7b", "mistral-7b"), sizes, sizes, ("mixpe", "dequant", "int8"), (64, 128, 256, 512), (0, 16, 32)
        )
    ]


def sweep(points_limit: int | None) -> dict:
    """Points per minute of run_sweep with 1 and 2 local workers, PE costs synthesized beforehand."""
    from sim.perf_model import MemoryConfig
    from sim.replay import synthesized_cost
    from sim.sweep import check_points, run_point, run_sweep

    points = sweep_grid()[:points_limit]
    check_points(points)
    t0 = time.perf_counter()
    for cfg in {p.pe_config() for p in points}:
        synthesized_cost(cfg)
    synth_s = time.perf_counter() - t0
    mem = MemoryConfig()
    t0 = time.perf_counter()
    serial = [run_point(p, mem) for p in points[:200]]
    serial_rate = len(serial) / (time.perf_counter() - t0) * 60
    rates, seconds = {}, {}
    for workers in (1, 2):
        t0 = time.perf_counter()
        rows = run_sweep(points, mem, None, workers, progress=False)
        seconds[workers] = time.perf_counter() - t0
        rates[workers] = len(rows) / seconds[workers] * 60
    return {
        "points": len(points),
        "distinct_pes": len({p.pe_config() for p in points}),
        "pe_costs_from_cache_s": synth_s,
        "sweep_seconds": {str(w): s for w, s in seconds.items()},
        "sweep_points_per_min": rates[2],
        "sweep_points_per_min_by_workers": {str(w): r for w, r in rates.items()},
        "in_process_points_per_min_first_200": serial_rate,
    }


EXACT_CHILD = """
import json, resource
import numpy as np
from hw.config import PEConfig
from sim.gemm import random_operands
from sim.perf_model import MemoryConfig
from sim.replay import exact_check
from sim.workload import Linear, Workload
def layer(m, n, k, seed):
    pe = PEConfig("mixpe", 4, "unsigned", "int8", 128)
    ops = random_operands(pe, m, n, k, np.random.default_rng(seed))
    return Workload("llama-2-7b", [Linear(name="q_proj", m=m, n=n, k=k)], tensors={{"q_proj": ops}})
exact_check(layer(40, 40, 256, 1), "mixpe", 32, 32, MemoryConfig())  # compiles the kernels
(check,) = exact_check(layer(*{layer}, 0), "mixpe", 32, 32, MemoryConfig())
print(json.dumps({{**check, "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6}}))
"""


def exact_layer() -> dict:
    """The exact replay of one full layer in a child process (its own peak RSS)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", EXACT_CHILD.format(layer=LAYER)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=3600,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"the exact-layer child failed: {proc.stderr.strip()[-2000:]}")
    seconds = time.perf_counter() - t0
    child = json.loads(proc.stdout.strip().splitlines()[-1])
    pe_cycles = child["cycles_model"] * 32 * 32
    return {
        "exact_layer": "x".join(map(str, LAYER)) + " (M x N x K), 32x32 MixPE W4A8 g128",
        "exact_layer_ok": child["outputs_match_torch"] and child["cycles_model"] == child["cycles_tile_model"],
        "exact_layer_cycles": child["cycles_model"],
        "exact_layer_model_s": child["model_seconds"],
        "exact_layer_child_s": seconds,
        "exact_pe_cycles_per_s": pe_cycles / child["model_seconds"],
        "exact_layer_model_cpu_s": child["model_cpu_seconds"],
        "exact_pe_cycles_per_cpu_s": pe_cycles / child["model_cpu_seconds"],
        "exact_layer_peak_gb": child["peak_rss_gb"],
        "numba_threads": int(os.environ.get("NUMBA_NUM_THREADS", os.cpu_count() or 1)),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.sweep_speed", description=__doc__)
    p.add_argument("--repeats", type=int, default=7, help="timed warm CLI runs (median reported)")
    p.add_argument("--points", type=int, default=None, help="limit the sweep to its first N points")
    p.add_argument("--skip-exact", action="store_true", help="leave out the exact full-layer replay")
    args = p.parse_args(argv)
    result = {"benchmark": "sweep_speed", "targets": TARGETS, "load_average_before": os.getloadavg()}
    result |= warm_cli(args.repeats)
    print(f"warm CLI: median {result['warm_cli_s']:.3f} s wall, {result['warm_cli_cpu_s']:.3f} s CPU", flush=True)
    result |= sweep(args.points)
    by = result["sweep_points_per_min_by_workers"]
    print(f"sweep: {result['points']} points, {by['1']:.0f} points/min (1 worker), {by['2']:.0f} (2)", flush=True)
    if not args.skip_exact:
        result |= exact_layer()
        print(
            f"exact {result['exact_layer']}: {result['exact_pe_cycles_per_s']:.3g} PE-cycles/s, "
            f"peak {result['exact_layer_peak_gb']:.2f} GB, Y == torch and cycles == tile model: "
            f"{result['exact_layer_ok']}",
            flush=True,
        )
    result["load_average_after"] = os.getloadavg()
    result["machine"] = {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version()}
    atomic_write(RESULTS, json.dumps(result, indent=1) + "\n")
    print(f"load average {result['load_average_before'][0]:.1f} before, {result['load_average_after'][0]:.1f} after")
    print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
