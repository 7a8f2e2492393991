"""The zoo's recall model: MQAR data from the fixed vocabulary, the tiny recipe trained once and cached, and
KV selection judged on it. Everything is built from fixed synthetic data, never from the machine's text."""

import json

import numpy as np
import pytest
import torch
from transformers import LlamaForCausalLM

from hw.cache import RESULT
from models import zoo
from models.kv.attention_history import HistoryPairs
from models.kv.eviction_eval import evaluate_on
from models.kv.predictor import held_out_mask
from models.zoo import mqar
from models.zoo import recall as rc

pytestmark = pytest.mark.usefixtures("one_thread")
SHAPE = mqar.Shape(48, 5, 3)


def _table(row: torch.Tensor, context: int) -> dict[int, tuple[int, int]]:
    keys = [i for i in range(1, 1 + context) if mqar.KEY0 <= row[i] < mqar.VALUE0]
    assert all(row[i - 1] == mqar.ASK_ID for i in keys)  # every pair is "? key value value"
    return {int(row[i]): (int(row[i + 1]), int(row[i + 2])) for i in keys}


def test_mqar_questions_ask_context_keys_and_answers_are_their_values():
    ids, answers = mqar.sequences(SHAPE, 20, np.random.default_rng(3))
    assert ids.shape == answers.shape == (20, SHAPE.length)
    context = SHAPE.length - 1 - 4 * SHAPE.queries
    for row, mask in zip(ids, answers, strict=True):
        assert row[0] == mqar.BOS
        table = _table(row, context)
        assert len(table) == SHAPE.pairs  # distinct keys, each with its two value tokens
        questions = row[1 + context :].reshape(SHAPE.queries, 4)
        assert (questions[:, 0] == mqar.ASK_ID).all()
        assert len(set(questions[:, 1].tolist())) == SHAPE.queries
        for _, key, first, second in questions.tolist():
            assert table[key] == (first, second)
        assert mask.sum() == mqar.ANSWER_TOKENS * SHAPE.queries
        assert ((row[mask] >= mqar.VALUE0) & (row[mask] < mqar.FILLER0)).all()


def test_prompts_are_seeded_and_splits_differ():
    a = mqar.prompts(SHAPE, 8, "test", seed=1)
    assert torch.equal(a, mqar.prompts(SHAPE, 8, "test", seed=1))
    assert not torch.equal(a, mqar.prompts(SHAPE, 8, "train", seed=1))
    assert not torch.equal(a, mqar.prompts(SHAPE, 8, "test", seed=2))
    with pytest.raises(ValueError, match="split"):
        mqar.prompts(SHAPE, 1, "dev")
    with pytest.raises(ValueError, match="4 context tokens per pair"):
        mqar.Shape(16, 8, 1)


def test_copies_repeat_their_run_and_tokenizer_is_word_level():
    ids, answers = mqar.copies(41, 16, np.random.default_rng(0))
    offsets = set()
    for row, mask in zip(ids.tolist(), answers, strict=True):
        where = mask.nonzero()[:, 0].tolist()
        start, end = where[0] - 1, where[-1] + 1
        assert where == list(range(start + 1, end)) and end - start >= 3  # one run, its tokens after the first
        run = row[start:end]
        earlier = [i for i in range(1, start - len(run) + 1) if row[i : i + len(run)] == run]
        assert earlier  # the run occurred before
        offsets.add(start - earlier[0])
    assert len(offsets) > 1  # never one fixed offset a model could learn instead of the content
    tok = mqar.tokenizer()
    text = "<s> w03 ? k005 v010 v011 w04 ? k005 v010 v011"
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert len(ids) == len(text.split()) and tok.decode(ids) == text
    assert ids[3] == mqar.KEY0 + 5 and ids[4] == mqar.VALUE0 + 10


@pytest.fixture(scope="module")
def tiny_recall(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MIXKIT_CACHE", str(tmp_path_factory.mktemp("cache")))
        yield rc.build_recall("tiny", seed=0, progress=False)


def test_tiny_recall_model_trains_once_and_is_cached(tiny_recall, monkeypatch):
    result = json.loads((tiny_recall / RESULT).read_text())
    assert [s["steps"] for s in result["training"]] == [s.steps for s in rc.get_recipe("tiny").stages]
    # both loss terms start near log(vocabulary) each; the distractor chain alone is learnable far below that
    assert result["training"][-1]["final_loss"] < 2 * np.log(len(mqar.VOCAB)) - 1
    dense = result["dense_recall"]
    assert 0 <= dense["ci95"][0] <= dense["mean"] <= dense["ci95"][1] <= 1
    model, tokenizer = zoo.load(tiny_recall)
    assert isinstance(model, LlamaForCausalLM) and len(tokenizer) == len(mqar.VOCAB)

    def no_training(*args, **kwargs):
        raise AssertionError("the second call retrained instead of using the cache")

    monkeypatch.setattr(rc, "train_recall", no_training)
    monkeypatch.setenv("MIXKIT_CACHE", str(tiny_recall.parent.parent))
    assert rc.build_recall("tiny", seed=0, progress=False) == tiny_recall
    with pytest.raises(zoo.ZooError, match="unknown recall recipe"):
        rc.build_recall("huge")


def test_eviction_on_the_recall_model_keeps_exact_budgets_and_dense_matches_plain_forward(tiny_recall):
    model, _ = zoo.load(tiny_recall)
    shape = rc.get_recipe("tiny").eval_shape
    prompts = mqar.prompts(shape, 24, "test", seed=5)
    text = mqar.prompts(shape, 4, "test", seed=6)
    results = evaluate_on(
        model, text, 40, prompts, [2] * len(prompts), ["streaming", "quest"], [4.0], query_tokens=0, progress=False
    )
    dense = results["dense"]
    assert dense["recall"] == pytest.approx(rc.dense_recall(model, prompts).mean().item())
    assert dense["kl"] == pytest.approx(0.0, abs=1e-6)
    # the question is prefilled: one decode step per prompt (the second answer token), over all but that token
    assert dense["mean_context"] == shape.length - 1
    stream, quest = results["streaming@4x"], results["quest@4x"]
    assert stream["mean_kept"] == quest["mean_kept"] == np.ceil((shape.length - 1) / 4)
    assert stream["mean_resident"] == stream["mean_kept"]  # evicts for good
    assert quest["mean_resident"] == shape.length - 1  # keeps the whole cache, reselects
    assert len(stream["per_item"]["recalled"]) == 24 and len(stream["per_item"]["kl"]) == 4


def test_predictor_held_out_split_keeps_whole_sequences():
    group = torch.arange(10).repeat_interleave(7)
    pairs = HistoryPairs(torch.zeros(70, 2, 3), torch.zeros(70, 3), torch.ones(70, 3, dtype=torch.bool), group)
    mask = held_out_mask(pairs, 0.2, torch.Generator().manual_seed(0))
    held = set(group[mask].tolist())
    assert len(held) == 2 and not held & set(group[~mask].tolist())
    assert mask.sum() == 14
