"""Design-space sweep: array sizes x PE types x bit widths x group sizes x workloads, on Dask.

    python -m sim.sweep --arrays 8x8,16x16,32x32 --wbits 2,4,8 --groups 32,128 -o out/sweep
    python -m sim.sweep --prefill 128,512,2048 --decode 0,128 --arrays 8x8,8x32,32x8,32x32 ...
    python -m sim.sweep --scheduler tcp://host:8786 ...      # an existing Dask cluster

Each point replays a built-in workload (sim/replay.py) on one array. Every argument is checked
first, in this process; then the distinct PE configurations are synthesized (in parallel, cached on
disk), and the points run as Dask tasks in chunks (a cached point costs milliseconds, a Dask task
about as much). Writes sweep.csv, sweep.json and pareto.png (throughput per area against energy,
Pareto-optimal points joined).
"""

from __future__ import annotations

import argparse
import csv
import io
import itertools
import json
import sys
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

from hw.config import ArrayConfig, ConfigError, PEConfig
from sim.cli import MAX_DIM, OneLineParser, add_quiet_argument, check_output, fail, int_in
from sim.files import atomic_write
from sim.perf_model import MemoryConfig
from sim.replay import PE_TYPES, ReplayError, pe_config, replay, synthesized_cost
from sim.workload import Linear, Workload, WorkloadError

MAX_LOCAL_WORKERS = 256
# Dask tasks per worker: enough to balance uneven points, few enough that per-task overhead vanishes.
CHUNKS_PER_WORKER = 8
# Seconds to wait for an external --scheduler to answer.
CONNECT_TIMEOUT_S = 10

PROG = "python -m sim.sweep"


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

    def workload_key(self) -> tuple:
        return self.workload, self.prefill, self.decode, self.wbits, self.act, self.group


def grid(args: argparse.Namespace) -> list[Point]:
    """Every valid combination; the INT8 PE is W8A8 whatever the sweep's bits, so it appears once."""
    points = []
    for workload, prefill, decode, (rows, cols), pe, wbits, group, act in itertools.product(
        args.workloads, args.prefill, args.decode, args.arrays, args.pes, args.wbits, args.groups, args.acts
    ):
        if pe == "int8" and (act != "int8" or wbits != 8 or group != args.groups[0]):
            continue
        points.append(Point(workload, pe, rows, cols, wbits, group, act, prefill, decode))
    return points


@lru_cache(maxsize=64)
def _workload(name: str, prefill: int, decode: int, wbits: int, act: str, group: int) -> Workload:
    from sim.model_shapes import builtin_workload

    return builtin_workload(name, prefill=prefill, decode=decode, wbits=wbits, act=act, group=group)


def check_points(points: list[Point]) -> None:
    """Raise ConfigError/ReplayError/WorkloadError for the first point that cannot run, before any Dask work."""
    for key in dict.fromkeys(p.workload_key() for p in points):
        _workload(*key)
    for p in points:
        ArrayConfig(p.pe_config(), p.rows, p.cols)


def run_point(point: Point, mem: MemoryConfig) -> dict:
    """Replay one point; returns its settings and totals (PE costs from the disk cache, once per process)."""
    totals = replay(_workload(*point.workload_key()), point.pe, point.rows, point.cols, mem).totals
    energy = totals.pop("energy_pj")
    return {**asdict(point), **totals, **{f"energy_{k}_j": v * 1e-12 for k, v in energy.items()}}


def run_points(points: list[Point], mem: MemoryConfig) -> list[dict]:
    """run_point over a chunk of points (one Dask task)."""
    return [run_point(p, mem) for p in points]


def pareto(rows: list[dict], x: str = "energy_j", y: str = "gops_per_mm2") -> list[bool]:
    """True where no other point has less or equal x and more or equal y (one of them strictly).

    O(n log n): in order of rising x (falling y among equal x), a point is dominated exactly when
    some point before its group of identical (x, y) has y at least as high.
    """
    order = sorted(range(len(rows)), key=lambda i: (rows[i][x], -rows[i][y]))
    front = [False] * len(rows)
    best = float("-inf")
    start = 0
    while start < len(order):
        end = start
        same = (rows[order[start]][x], rows[order[start]][y])
        while end < len(order) and (rows[order[end]][x], rows[order[end]][y]) == same:
            end += 1
        for i in order[start:end]:
            front[i] = not best >= same[1]
        best = max(best, same[1])
        start = end
    return front


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


def chunks(points: list[Point], n: int) -> list[list[Point]]:
    """About n chunks of consecutive points (at least one point each)."""
    size = max(1, -(-len(points) // n))
    return [points[i : i + size] for i in range(0, len(points), size)]


def run_sweep(
    points: list[Point], mem: MemoryConfig, scheduler: str | None, workers: int, progress: bool = True
) -> list[dict]:
    """Synthesize the distinct PEs, then replay every point in chunks, on a Dask cluster with progress bars.

    Rows come back in the order of `points`.
    """
    import dask
    from dask.distributed import Client, LocalCluster, as_completed
    from tqdm import tqdm

    if scheduler:
        client = Client(scheduler, timeout=CONNECT_TIMEOUT_S)
    else:
        # Forked workers inherit this process's imports: 0.5 s to start two instead of 5 s spawning fresh ones.
        with dask.config.set({"distributed.worker.multiprocessing-method": "fork"}):
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, dashboard_address=None, processes=True)
        client = Client(cluster)
    with client:
        configs = sorted({p.pe_config() for p in points}, key=lambda c: c.name())
        synth = client.map(synthesized_cost, configs, pure=False)
        for f in tqdm(as_completed(synth), total=len(synth), desc="synthesize PEs", disable=not progress):
            f.result()
        n_workers = max(1, len(client.scheduler_info()["workers"]))
        parts = chunks(points, n_workers * CHUNKS_PER_WORKER)
        futures = {client.submit(run_points, part, mem, pure=False): i for i, part in enumerate(parts)}
        done: list[list[dict]] = [[] for _ in parts]
        with tqdm(total=len(points), desc="replay points", unit="pt", disable=not progress) as bar:
            for f in as_completed(futures):
                done[futures[f]] = f.result()
                bar.update(len(done[futures[f]]))
    if not scheduler:
        cluster.close()
    return [row for part in done for row in part]


def _ints(low: int, high: int = MAX_DIM):
    """A comma-separated list of integers, each in [low, high]."""
    check = int_in(low, high)

    def parse(text: str) -> list[int]:
        try:
            return [check(v) for v in text.split(",")]
        except argparse.ArgumentTypeError as e:
            if "not an integer" in str(e):
                raise argparse.ArgumentTypeError(f"expected whole numbers separated by commas, not '{text}'") from None
            raise

    parse.__name__ = "integers"
    return parse


def _arrays(text: str) -> list[tuple[int, int]]:
    try:
        sizes = [tuple(int(v) for v in a.lower().split("x")) for a in text.split(",")]
    except ValueError:
        sizes = []
    if not sizes or any(len(s) != 2 for s in sizes):
        raise argparse.ArgumentTypeError(f"array sizes look like 8x8,16x16, not '{text}'")
    return sizes


def _names(choices: tuple[str, ...] | None = None):
    """A comma-separated list of names, each one of `choices` (when given)."""

    def parse(text: str) -> list[str]:
        names = text.split(",")
        bad = [n for n in names if choices is not None and n not in choices]
        if bad:
            raise argparse.ArgumentTypeError(f"'{bad[0]}' is not one of {', '.join(choices)}")
        return names

    return parse


def main(argv: list[str] | None = None) -> int:
    from hw.power import PowerError
    from hw.synth import SynthError
    from sim.model_shapes import MAX_DECODE_STEPS, MODELS

    p = OneLineParser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workloads", type=_names(tuple(MODELS)), default=["llama-2-7b"], help="built-in models")
    p.add_argument(
        "--arrays", type=_arrays, default=[(8, 8), (16, 16), (32, 32)], help="RxC list (default 8x8,16x16,32x32)"
    )
    p.add_argument("--pes", type=_names(PE_TYPES), default=["mixpe", "dequant", "int8"], help="PE types")
    p.add_argument("--wbits", type=_ints(1, 64), default=[4, 8], help="weight bits list (default 4,8)")
    p.add_argument("--groups", type=_ints(1), default=[128], help="group sizes (default 128)")
    p.add_argument("--acts", type=_names(), default=["int8"], help="activation types (default int8)")
    p.add_argument("--prefill", type=_ints(0), default=[512], help="prompt tokens, a list (default 512)")
    p.add_argument("--decode", type=_ints(0, MAX_DECODE_STEPS), default=[32], help="decode steps, a list (default 32)")
    p.add_argument("--scheduler", default=None, help="address of a Dask scheduler (default: a local cluster)")
    p.add_argument(
        "--workers", type=int_in(1, MAX_LOCAL_WORKERS), default=2, help="local cluster worker processes (default 2)"
    )
    p.add_argument("-o", "--out", type=Path, default=Path("out/sweep"), help="output folder")
    p.add_argument("--force", action="store_true", help="overwrite an earlier sweep's files in the -o folder")
    p.add_argument("--json", action="store_true", help="print the rows as JSON instead of a table")
    add_quiet_argument(p)
    args = p.parse_args(argv)
    try:
        if args.scheduler is None and not 1 <= args.workers <= MAX_LOCAL_WORKERS:
            raise ReplayError(f"--workers {args.workers}: choose 1..{MAX_LOCAL_WORKERS} local worker processes")
        check_output(args.out, force=args.force)
        if args.scheduler is not None:
            from distributed.comm.addressing import get_address_host_port

            try:
                get_address_host_port(args.scheduler)
            except ValueError as e:
                raise ReplayError(f"--scheduler {args.scheduler!r}: {e} (expected e.g. tcp://host:8786)") from None
        points = grid(args)
        if not points:
            raise ReplayError("the sweep has no valid point: check --pes, --wbits and --acts")
        check_points(points)
    except (ConfigError, ReplayError, WorkloadError, ValueError) as e:
        return fail(PROG, e)
    try:
        rows = run_sweep(points, MemoryConfig(), args.scheduler, args.workers, progress=not args.quiet)
    except (OSError, TimeoutError) as e:
        return fail(PROG, f"Dask scheduler {args.scheduler}: {e}")
    except (SynthError, PowerError) as e:  # a synthesis or simulation tool is missing or failed
        fail(PROG, e)
        return 1
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
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    print(f"{'point':46s} {'GOPS/mm2':>9s} {'energy J':>9s} {'time s':>8s}  Pareto")
    for r in rows:
        name = f"{r['workload']} {r['pe']} {r['rows']}x{r['cols']} w{r['wbits']} g{r['group']} {r['act']}"
        mark = "*" if r["pareto"] else ""
        print(f"{name:46s} {r['gops_per_mm2']:9.3f} {r['energy_j']:9.2f} {r['seconds']:8.2f}  {mark}")
    print(f"wrote {args.out / 'sweep.csv'}, {args.out / 'sweep.json'}, {args.out / 'pareto.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
