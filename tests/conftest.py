import pytest


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """An empty MIXKIT_CACHE for the module, so synthesis and power runs start from nothing."""
    with pytest.MonkeyPatch.context() as mp:
        root = tmp_path_factory.mktemp("cache")
        mp.setenv("MIXKIT_CACHE", str(root))
        yield root
