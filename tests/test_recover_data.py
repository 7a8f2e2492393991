"""The recovery pool, the sentence and model-state embeddings, and the per-sample scores (JSD degradation, IFD),
on the tiny zoo preset."""

import math

import numpy as np
import pytest
import torch

from models.recover import CAPABILITIES, build_pool
from models.recover.degradation import degradation, ifd_scores, jsd
from models.recover.embed import model_embeddings, sentence_embeddings
from models.recover.instructions import encode
from models.recover.pipeline import load_model

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def pool():
    return build_pool("tiny", {"arithmetic": 6, "recall": 3, "code": 6, "english": 6}, seed=0)


@pytest.fixture(scope="module")
def models(tiny_zoo):
    original, tokenizer = load_model(str(tiny_zoo["base"]), "tiny")
    pruned, _ = load_model(str(tiny_zoo["base"]), "tiny", [1])
    return original, pruned, tokenizer


def test_pool_covers_every_capability_from_training_data_only(pool):
    from models.zoo.tasks import is_test_problem, solve_arithmetic

    assert {s.capability for s in pool} == set(CAPABILITIES) and len(pool) == 21
    for s in pool:
        assert s.instruction and s.response.strip()
        if s.capability == "arithmetic":
            assert int(s.response) == solve_arithmetic(s.instruction)
            nums = [int(w) for w in s.instruction.replace("?", " ").replace(".", " ").split() if w.isdigit()]
            op = 0 if " gets " in s.instruction else 1 if " gives " in s.instruction else 2
            assert not is_test_problem(op, nums[0], nums[1])  # never a held-out problem
        if s.capability in ("code", "english"):
            assert s.instruction.split("\n")[0].startswith(("Continue this", "Write the body", "Explain what"))
    assert [s.text for s in pool] == [
        s.text for s in build_pool("tiny", {"arithmetic": 6, "recall": 3, "code": 6, "english": 6})
    ]


def test_encoding_marks_the_response_boundary(pool, models):
    _, _, tok = models
    for s in pool[:5]:
        ids, start = encode(tok, s, max_tokens=100_000)
        assert ids[0] == tok.bos_token_id and ids[-1] == tok.eos_token_id
        assert tok.decode(ids[start:-1]) == tok.decode(tok(s.response, add_special_tokens=False)["input_ids"])
        assert len(encode(tok, s, max_tokens=5)[0]) <= 5


def test_jsd_is_zero_for_equal_models_and_bounded():
    p = torch.log_softmax(torch.randn(4, 7, 11), dim=-1)
    q = torch.log_softmax(torch.randn(4, 7, 11), dim=-1)
    assert torch.allclose(jsd(p, p), torch.zeros(4, 7), atol=1e-6)
    d = jsd(p, q)
    assert torch.allclose(d, jsd(q, p), atol=1e-6) and bool((d > 0).all()) and bool((d <= math.log(2) + 1e-6).all())


def test_degradation_and_ifd_scores(pool, models):
    original, pruned, tok = models
    tokens, same = degradation(original, original, tok, pool)
    assert np.allclose(same, 0.0, atol=1e-6)
    assert tokens.tolist() == [len(encode(tok, s)[0]) for s in pool]
    _, div = degradation(original, pruned, tok, pool)
    assert np.all(div > 0) and np.all(div < math.log(2))
    ifd = ifd_scores(pruned, tok, pool)
    assert np.all(np.isfinite(ifd)) and np.all(ifd > 0)
    # an arithmetic answer alone is a bare number; the question makes it far more predictable
    arith = np.array([s.capability == "arithmetic" for s in pool])
    assert np.median(ifd[arith]) < 1.0


def test_embeddings_are_normalized_and_semantic(models):
    texts = ["How many apples does Ann have?", "How many pens does Ben have?", "def parse(line): return line"]
    e = sentence_embeddings(texts)
    assert e.shape == (3, 384) and np.allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-5)
    assert e[0] @ e[1] > e[0] @ e[2]
    original, _, tok = models
    h = model_embeddings(original, tok, texts)
    assert h.shape == (3, original.config.hidden_size) and np.allclose(np.linalg.norm(h, axis=1), 1.0, atol=1e-5)
