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
