"""The recall-trained zoo copy on the tiny preset: a loadable checkpoint, trained once and then found in the cache."""

import json

import pytest
import torch
from transformers import LlamaForCausalLM

from hw.cache import RESULT
from models import zoo
from models.kv import recall_model as rm

pytestmark = pytest.mark.usefixtures("one_thread")
TOKENS = 8 * 96 * 4  # four steps of the tiny preset's batch


@pytest.fixture
def cache_with_zoo(tiny_zoo, tmp_path, monkeypatch):
    """An empty MIXKIT_CACHE that holds only the (already built) tiny zoo entry."""
    entry = tiny_zoo["base"].parent
    (tmp_path / "zoo").mkdir()
    (tmp_path / "zoo" / entry.name).symlink_to(entry)
    monkeypatch.setenv("MIXKIT_CACHE", str(tmp_path))
    return tmp_path


def test_recall_model_trains_once_and_changes_weights(cache_with_zoo, tiny_zoo, monkeypatch):
    path = rm.recall_model("tiny", seed=0, tokens=TOKENS, progress=False)
    assert path.parent == cache_with_zoo / "zoo-recall"
    result = json.loads((path / RESULT).read_text())
    assert result["training"]["steps"] == 4
    # recall is generated, so always there; a machine may lack some text sources (zoo._available)
    assert "recall" in result["mix"] and set(result["mix"]) <= set(rm.RECALL_MIX)

    model, tokenizer = zoo.load(path, "tiny")
    assert isinstance(model, LlamaForCausalLM)
    assert tokenizer("recall: ab=12 .")["input_ids"]
    base, _ = zoo.load(tiny_zoo["base"], "tiny")
    trained, before = model.state_dict(), base.state_dict()
    assert trained.keys() == before.keys()
    assert any(not torch.equal(trained[k], before[k]) for k in trained)

    def no_training(*args, **kwargs):
        raise AssertionError("the second call retrained instead of using the cache")

    monkeypatch.setattr(rm, "train", no_training)
    assert rm.recall_model("tiny", seed=0, tokens=TOKENS, progress=False) == path
    # other settings are another entry
    assert rm.entry_dir_for("tiny", 0, 2 * TOKENS, rm.RECALL_MIX) != path
