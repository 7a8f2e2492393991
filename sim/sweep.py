"""Design-space sweep: array sizes x PE types x bit widths x group sizes x workloads, on Dask.

    python -m sim.sweep --arrays 8x8,16x16,32x32 --wbits 2,4,8 --groups 32,128 -o out/sweep
    python -m sim.sweep --scheduler tcp://host:8786 ...      # an existing Dask cluster

Each point replays a built-in workload (sim/replay.py) on one array. The distinct PE configurations
are synthesized first (in parallel, cached), then the points run as Dask tasks. Writes sweep.csv,
sweep.json and pareto.png (throughput per area against energy, Pareto-optimal points joined).
"""

from __future__ import annotations

import argparse
import csv
import io
import itertools
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from hw.config import ConfigError, PEConfig
from sim.files import atomic_write
from sim.perf_model import MemoryConfig
from sim.replay import ReplayError, pe_config, replay, synthesized_cost
from sim.workload import Linear, WorkloadError


@dataclass(frozen=True)
class Point:
    """One design point: a built-in workload at a precision, on an array of one PE type."""

    workload: str
    pe: str
    rows: int
    cols: int
    wbits: int
    group: int
    act: str
    prefill: int
    decode: int

    def pe_config(self) -> PEConfig:
        precision = Linear(name="main", m=1, n=1, k=self.group, wbits=self.wbits, group=self.group, act=self.act)
        return pe_config(self.pe, precision)


def grid(args: argparse.Namespace) -> list[Point]:
    """Every valid combination; the INT8 PE is W8A8 whatever the sweep's bits, so it appears once."""
    points = []
    for workload, (rows, cols), pe, wbits, group, act in itertools.product(
        args.workloads, args.arrays, args.pes, args.wbits, args.groups, args.acts
    ):
        if pe == "int8" and (act != "int8" or wbits != 8 or group != args.groups[0]):
            continue
        points.append(Point(workload, pe, rows, cols, wbits, group, act, args.prefill, args.decode))
    return points


def run_point(point: Point, mem: MemoryConfig) -> dict:
    """Replay one point; returns its settings and totals (runs on a Dask worker)."""
    from sim.model_shapes import builtin_workload

    workload = builtin_workload(
        point.workload, prefill=point.prefill, decode=point.decode, wbits=point.wbits, act=point.act, group=point.group
    )
    totals = replay(workload, point.pe, point.rows, point.cols, mem).totals
    energy = totals.pop("energy_pj")
    return {**asdict(point), **totals, **{f"energy_{k}_j": v * 1e-12 for k, v in energy.items()}}


def pareto(rows: list[dict], x: str = "energy_j", y: str = "gops_per_mm2") -> list[bool]:
    """True where no other point has less or equal x and more or equal y (one of them strictly)."""
    return [not any((o[x] <= r[x] and o[y] >= r[y]) and (o[x] < r[x] or o[y] > r[y]) for o in rows) for r in rows]


def _plot(rows: list[dict], front: list[bool]) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 5))
    for pe, marker in zip(("mixpe", "dequant", "int8"), ("o", "s", "^"), strict=True):
        sel = [r for r in rows if r["pe"] == pe]
        if sel:
            ax.scatter(
                [r["energy_j"] for r in sel], [r["gops_per_mm2"] for r in sel], marker=marker, label=pe, alpha=0.7
            )
    best = sorted((r for r, f in zip(rows, front, strict=True) if f), key=lambda r: r["energy_j"])
    ax.plot([r["energy_j"] for r in best], [r["gops_per_mm2"] for r in best], "k--", lw=1, label="Pareto front")
    for r in best:
        label = f"{r['pe']} {r['rows']}x{r['cols']} w{r['wbits']} g{r['group']} {r['act']}"
        ax.annotate(label, (r["energy_j"], r["gops_per_mm2"]), fontsize=6, xytext=(3, 3), textcoords="offset points")
    ax.set_xscale("log")
    ax.set_xlabel("energy per workload (J)")
    ax.set_ylabel("throughput per area (GOPS/mm²)")
    ax.set_title("design space: throughput/area vs energy")
    ax.legend(fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()


def run_sweep(points: list[Point], mem: MemoryConfig, scheduler: str | None, workers: int) -> list[dict]:
    """Synthesize the distinct PEs, then replay every point, on a Dask cluster with a progress bar."""
    from dask.distributed import Client, LocalCluster, as_completed
    from tqdm import tqdm

    cluster = None if scheduler else LocalCluster(n_workers=workers, threads_per_worker=1, dashboard_address=None)
    with Client(scheduler or cluster) as client:
        configs = sorted({p.pe_config() for p in points}, key=lambda c: c.name())
        synth = client.map(synthesized_cost, configs, pure=False)
        for f in tqdm(as_completed(synth), total=len(synth), desc="synthesize PEs"):
            f.result()
        futures = client.map(run_point, points, mem=mem, pure=False)
        results = []
        for f in tqdm(as_completed(futures), total=len(futures), desc="replay points"):
            results.append(f.result())
    if cluster is not None:
        cluster.close()
    key = {p: i for i, p in enumerate(points)}
    return sorted(results, key=lambda r: key[Point(**{f: r[f] for f in Point.__dataclass_fields__})])


def _ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",")]


def _arrays(text: str) -> list[tuple[int, int]]:
    try:
        return [tuple(int(v) for v in a.lower().split("x")) for a in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"array sizes look like 8x8,16x16, not '{text}'") from None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m sim.sweep", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--workloads", type=lambda s: s.split(","), default=["llama-2-7b"], help="built-in models")
    p.add_argument(
        "--arrays", type=_arrays, default=[(8, 8), (16, 16), (32, 32)], help="RxC list (default 8x8,16x16,32x32)"
    )
    p.add_argument("--pes", type=lambda s: s.split(","), default=["mixpe", "dequant", "int8"], help="PE types")
    p.add_argument("--wbits", type=_ints, default=[4, 8], help="weight bits list (default 4,8)")
    p.add_argument("--groups", type=_ints, default=[128], help="group sizes (default 128)")
    p.add_argument("--acts", type=lambda s: s.split(","), default=["int8"], help="activation types (default int8)")
    p.add_argument("--prefill", type=int, default=512, help="prompt tokens (default 512)")
    p.add_argument("--decode", type=int, default=32, help="decode steps (default 32)")
    p.add_argument("--scheduler", default=None, help="address of a Dask scheduler (default: a local cluster)")
    p.add_argument("--workers", type=int, default=2, help="local cluster workers (default 2)")
    p.add_argument("-o", "--out", type=Path, default=Path("out/sweep"), help="output folder")
    args = p.parse_args(argv)
    try:
        points = grid(args)
        if not points:
            raise ReplayError("the sweep has no valid point: check --pes, --wbits and --acts")
        for point in points:
            point.pe_config()
        rows = run_sweep(points, MemoryConfig(), args.scheduler, args.workers)
    except (ConfigError, ReplayError, WorkloadError) as e:
        print(f"sim.sweep: error: {e}", file=sys.stderr)
        return 2
    front = pareto(rows)
    for r, f in zip(rows, front, strict=True):
        r["pareto"] = f
    args.out.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]))
    w.writeheader()
    w.writerows(rows)
    atomic_write(args.out / "sweep.csv", buf.getvalue())
    atomic_write(args.out / "sweep.json", json.dumps(rows, indent=1) + "\n")
    atomic_write(args.out / "pareto.png", _plot(rows, front))
    print(f"{'point':46s} {'GOPS/mm2':>9s} {'energy J':>9s} {'time s':>8s}  Pareto")
    for r in rows:
        name = f"{r['workload']} {r['pe']} {r['rows']}x{r['cols']} w{r['wbits']} g{r['group']} {r['act']}"
        mark = "*" if r["pareto"] else ""
        print(f"{name:46s} {r['gops_per_mm2']:9.3f} {r['energy_j']:9.2f} {r['seconds']:8.2f}  {mark}")
    print(f"wrote {args.out / 'sweep.csv'}, {args.out / 'sweep.json'}, {args.out / 'pareto.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
