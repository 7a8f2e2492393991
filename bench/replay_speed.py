"""Replay speed and the headline comparison.

1. Time `sim.replay.replay` on the full Llama-2-7B workload (2,048-token prefill plus 128 decode
   steps, batch 1) on a 32x32 array (target: under 2 s on one core), with synthesis cached.
2. MixPE against the dequantize-then-multiply baseline at W4A8 and W4A16 (and against the W8A8
   INT8 PE): speedup, energy ratio and iso-area throughput, for the whole workload and for prefill
   and decode alone, beside the paper's 2.6x and 1.4x.

Prints its figures and writes bench/results/replay_speed.json.

    python -m bench.replay_speed [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

from sim.files import atomic_write
from sim.model_shapes import builtin_workload
from sim.perf_model import MemoryConfig
from sim.replay import _cost, main_precision, pe_config, replay, speedups, synthesized_cost

RESULTS = Path(__file__).resolve().parent / "results" / "replay_speed.json"
PAPER = {"speedup": 2.6, "energy_ratio": 1.4}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.replay_speed", description=__doc__)
    p.add_argument("--repeats", type=int, default=5, help="timed replays (median reported)")
    args = p.parse_args(argv)
    mem = MemoryConfig()

    comparisons = {}
    phases = {"prefill 2048 + decode 128": (2048, 128), "prefill 2048 only": (2048, 0), "decode 128 only": (0, 128)}
    for act in ("int8", "fp16"):
        kinds = ("mixpe", "dequant", "int8") if act == "int8" else ("mixpe", "dequant")
        scheme = f"W4A{8 if act == 'int8' else 16}"
        for phase, (prefill, decode) in phases.items():
            workload = builtin_workload("llama-2-7b", prefill=prefill, decode=decode, wbits=4, act=act, group=128)
            reports = {kind: replay(workload, kind, 32, 32, mem) for kind in kinds}  # PE costs measured once, cached
            comparisons[f"{scheme}, {phase}"] = {
                "speedups": speedups(reports),
                "totals": {kind: r.totals for kind, r in reports.items()},
                "pe_cost": {kind: r.pe_cost for kind, r in reports.items()},
            }

    workload = builtin_workload("llama-2-7b", prefill=2048, decode=128, wbits=4, act="int8", group=128)
    cost = synthesized_cost(pe_config("mixpe", main_precision(workload)))
    times = []
    for _ in range(args.repeats):
        _cost.cache_clear()  # time the whole replay, not a memoized one
        start = time.perf_counter()
        report = replay(workload, "mixpe", 32, 32, mem, pe_cost=cost)
        times.append(time.perf_counter() - start)
    seconds = statistics.median(times)

    print(f"replay of llama-2-7b (prefill 2048 + 128 decode, {len(workload.ops)} ops) on a 32x32 MixPE array:")
    print(f"  {seconds:.3f} s median of {args.repeats} (target < 2 s), {report.totals['cycles']:.3e} simulated cycles")
    print("  (PE area, clock and energy were measured beforehand; they are cached by configuration)")
    print()
    header = f"{'workload':34s} {'baseline':8s} {'speedup':>8s} {'energy ratio':>13s} {'iso-area':>9s}"
    print(header + "   paper: 2.6x speedup, 1.4x energy")
    for scheme, c in comparisons.items():
        for base, r in c["speedups"].items():
            ratios = f"{r['speedup']:7.2f}x {r['energy_ratio']:12.2f}x {r['iso_area_throughput_ratio']:8.2f}x"
            print(f"{scheme:34s} {base:8s} {ratios}")
    print("(> 1 favours MixPE; same array size, each PE at its own synthesized clock)")

    RESULTS.parent.mkdir(exist_ok=True)
    result = {
        "benchmark": "replay_speed",
        "replay_seconds_median": seconds,
        "replay_seconds_all": times,
        "ops": len(workload.ops),
        "simulated_cycles": report.totals["cycles"],
        "comparisons": comparisons,
        "paper": PAPER,
        "settings": {"model": "llama-2-7b", "prefill": 2048, "decode": 128, "array": "32x32", "group": 128},
        "machine": {"platform": platform.platform(), "python": platform.python_version()},
    }
    atomic_write(RESULTS, json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
