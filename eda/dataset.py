"""The E2ESlack dataset's flows as Dask tasks: one eda.flow run per named design.

A LocalCluster of `workers` single-threaded worker processes by default, or an existing Dask scheduler
(`scheduler='tcp://HOST:PORT'`, whose workers must see the same cache folder, e.g. on a shared filesystem).
Each flow is cached per design and flow version (eda.flow), and a cache entry appears only when complete,
so a batch that crashes resumes where it stopped: finished designs load from the cache, the rest run again.
"""

from __future__ import annotations

import os
import re
import time

from eda.flow import FlowError, FlowResult

# The clock period (ns) the dataset's flows are timed at: bench.e2eslack and the demo's quick model share them.
FLOW_CLOCK_NS = 5.0
_ADDRESS = re.compile(r"^(tcp|tls|ucx|inproc)://[A-Za-z0-9_.\-\[\]:]+:\d{1,5}$")


def check_scheduler_address(address: str) -> str:
    """The address unchanged if it looks like PROTOCOL://HOST:PORT; FlowError naming the fix otherwise."""
    if not _ADDRESS.match(address) or not 0 < int(address.rsplit(":", 1)[1]) < 65536:
        raise FlowError(f"scheduler address {address!r} is not PROTOCOL://HOST:PORT: pass e.g. tcp://10.0.0.5:8786")
    return address


def _flow_task(name: str, clock_ns: float, cache: str) -> tuple[FlowResult, float]:
    """Run one design's flow on a worker with the caller's cache root: (result, wall seconds on the worker)."""
    from eda.flow import run_design

    os.environ["MIXKIT_CACHE"] = cache  # the worker may have been started with another environment
    t0 = time.perf_counter()
    return run_design(name, clock_ns), time.perf_counter() - t0


def run_flows(
    names: list[str], clock_ns: float, scheduler: str | None = None, workers: int = 2, progress: bool = True
) -> tuple[dict[str, FlowResult], dict[str, float]]:
    """({design: FlowResult}, {design: wall seconds of its task}) with the flows of `names` run as Dask tasks
    (biggest first would be better for balance, but the caller's order is kept: it lists small designs first
    so that a crash on a big one leaves the small ones cached)."""
    from dask.distributed import Client, LocalCluster, as_completed
    from tqdm import tqdm

    from hw.cache import cache_root

    if scheduler is not None:
        check_scheduler_address(scheduler)
    cluster = None if scheduler else LocalCluster(n_workers=workers, threads_per_worker=1, processes=True)
    try:
        with Client(scheduler or cluster, timeout="30s") as client:
            futures = {
                client.submit(_flow_task, n, clock_ns, str(cache_root()), key=f"flow-{n}-{clock_ns}", pure=False): n
                for n in names
            }
            results, seconds = {}, {}
            for fut in tqdm(
                as_completed(futures), total=len(futures), desc="flows", unit="design", disable=not progress
            ):
                name = futures[fut]
                results[name], seconds[name] = fut.result()
    except OSError as e:  # the scheduler could not be reached
        raise FlowError(f"cannot reach the Dask scheduler {scheduler}: {e}; start it or drop --scheduler") from e
    finally:
        if cluster is not None:
            cluster.close()
    return {n: results[n] for n in names}, {n: seconds[n] for n in names}
