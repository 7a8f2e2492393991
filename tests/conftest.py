import os
import shutil
import tempfile

import pytest


def pytest_configure(config):
    """Every test runs on a temporary MIXKIT_CACHE, never the user's: the controller makes one and the xdist
    workers inherit it, so entries built by one worker (the tiny zoo, simulator builds) serve the other."""
    if hasattr(config, "workerinput"):  # an xdist worker: the controller already set it
        return
    config._mixkit_user_cache = os.environ.get("MIXKIT_CACHE")
    config._mixkit_cache = os.environ["MIXKIT_CACHE"] = tempfile.mkdtemp(prefix="mixkit-test-cache-")


def pytest_unconfigure(config):
    made = getattr(config, "_mixkit_cache", None)
    if made:
        shutil.rmtree(made, ignore_errors=True)
        if config._mixkit_user_cache is None:
            os.environ.pop("MIXKIT_CACHE", None)
        else:
            os.environ["MIXKIT_CACHE"] = config._mixkit_user_cache


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """An empty MIXKIT_CACHE for the module, so synthesis and power runs start from nothing."""
    with pytest.MonkeyPatch.context() as mp:
        root = tmp_path_factory.mktemp("cache")
        mp.setenv("MIXKIT_CACHE", str(root))
        yield root


@pytest.fixture(scope="session")
def tiny_zoo():
    """The tiny zoo preset's checkpoint folders {"base", "code", "math", "english"}, built once (~12 s on
    2 cores) into the session's temporary cache, so every module shares it."""
    from models import zoo

    return zoo.build("tiny", seed=0, progress=False)


@pytest.fixture
def one_thread():
    """One torch thread for the test: with two xdist workers on 2 cores, two threads each run ~10x slower."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
