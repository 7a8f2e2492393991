import pytest


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
    2 cores) into the user cache, so every module and later runs share it."""
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
