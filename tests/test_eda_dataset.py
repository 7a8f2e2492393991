"""eda.dataset: the two smallest designs' flows as Dask tasks on a LocalCluster, cached, and address checks."""

import pytest

from eda.dataset import check_scheduler_address, run_flows
from eda.flow import FlowError, run_design

SMALL = ["add8", "mul4s0"]


def test_flow_batch_on_a_local_cluster(cache):
    results, seconds = run_flows(SMALL, 3.0, workers=2, progress=False)
    assert list(results) == SMALL and all(s > 0 for s in seconds.values())
    for name, result in results.items():
        assert result.design == name and result.cells > 50 and str(cache) in result.work_dir
        # The task wrote the caller's cache: the same flow in this process is a cache hit.
        assert run_design(name, 3.0) == result


@pytest.mark.parametrize("bad", ["localhost:8786", "tcp://host", "tcp://host:99999", "tcp://a b:1", "http://h:80"])
def test_bad_scheduler_address_is_refused_before_connecting(bad):
    with pytest.raises(FlowError, match="PROTOCOL://HOST:PORT"):
        run_flows(SMALL, 3.0, scheduler=bad, progress=False)
    assert check_scheduler_address("tcp://10.0.0.5:8786") == "tcp://10.0.0.5:8786"
