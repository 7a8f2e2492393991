"""KV selection on the tiny zoo model: exact budgets, dense identity, eviction never restores, Quest and StreamingLLM
choices, the kept-tokens export, and the `evict` CLI."""

import json
import math

import pytest
import torch

from models import zoo
from models.kv import KVConfig
from models.kv import decode_logits as quant_decode_logits
from models.kv.__main__ import main
from models.kv.predictor import AttentionCNN, PredictorConfig
from models.kv.selection import (
    POLICIES,
    Budget,
    Quest,
    Selector,
    StreamingLLM,
    decode_logits,
    keep_top,
    kept_tokens,
    make_policy,
)
from models.kv.workload import kept_table
from tests.cli import one_line_error

pytestmark = pytest.mark.usefixtures("one_thread")
PREFILL = 16


@pytest.fixture(scope="module")
def tiny(tiny_zoo):
    model, tokenizer = zoo.load(str(tiny_zoo["base"]), "tiny")
    ids = torch.stack(zoo.token_windows(tokenizer, "english", "test", 40, 2, "tiny"))
    return model, tokenizer, ids


@pytest.fixture(scope="module")
def reference(tiny):
    """Logits of the plain eager model through an unquantized cache."""
    model, _, ids = tiny
    return quant_decode_logits(model, ids, KVConfig.preset("KV16", 2), PREFILL)


def _policy(name: str):
    torch.manual_seed(0)
    return make_policy(name, AttentionCNN(PredictorConfig(history=4)))


def test_keep_top_forced_first_exact_and_recent_on_ties():
    scores = torch.tensor([[5.0, 1.0, 1.0, 1.0, 0.0, 9.0]])
    forced = torch.tensor([[False, False, False, False, True, False]])
    assert keep_top(scores, forced, 3).tolist() == [[True, False, False, False, True, True]]
    assert keep_top(scores, forced, 4)[0, 3] and keep_top(scores, forced, 4).sum() == 4  # tie: most recent 1.0
    assert keep_top(scores, forced, 10).all()


@pytest.mark.parametrize("name", sorted(set(POLICIES) - {"dense"}))
def test_every_policy_keeps_exactly_the_budget(tiny, name):
    model, _, ids = tiny
    selector = Selector(_policy(name), Budget(ratio=4))
    decode_logits(model, ids, selector, PREFILL)
    contexts = range(PREFILL + 1, ids.shape[1])  # the last token is only predicted, never fed
    assert len(selector.kept) == len(contexts)
    assert selector.kept == [[math.ceil(t / 4)] * 2 for t in contexts]
    assert all(0 < r <= 1 + 1e-6 for step in selector.recovery for r in step)


@pytest.mark.parametrize("name", sorted(POLICIES))
def test_budget_above_context_is_exactly_dense(tiny, reference, name):
    model, _, ids = tiny
    full = decode_logits(model, ids, Selector(_policy(name), Budget(tokens=10_000)), PREFILL)
    assert torch.allclose(full, reference, rtol=0, atol=1e-5)  # lm_head over one row instead of all: rounding
    if name != "dense":
        sparse = decode_logits(model, ids, Selector(_policy(name), Budget(tokens=6)), PREFILL)
        assert (sparse - reference).abs().max() > 1e-3


@pytest.mark.parametrize("name", ["streaming", "h2o", "snapkv"])
def test_evicted_tokens_never_return(tiny, name):
    model, _, ids = tiny
    policy = _policy(name)
    masks = []
    select = policy.select

    def recording(layer, query, keys, budget, alive):
        mask = select(layer, query, keys, budget, alive)
        if layer == 1:
            masks.append(mask)
        return mask

    policy.select = recording
    decode_logits(model, ids, Selector(policy, Budget(tokens=8)), PREFILL)
    for before, after in zip(masks, masks[1:], strict=False):
        assert not (after[..., : before.shape[-1]] & ~before).any()


def test_streaming_keeps_sinks_and_recent_tokens():
    keys = torch.zeros(1, 2, 20, 4)
    alive = torch.ones(1, 2, 20, dtype=torch.bool)
    mask = StreamingLLM(sinks=4).select(0, torch.zeros(1, 4, 1, 4), keys, 10, alive)
    assert mask[0, 0].nonzero().flatten().tolist() == [0, 1, 2, 3, 14, 15, 16, 17, 18, 19]


def test_quest_picks_the_page_that_matches_the_query():
    gen = torch.Generator().manual_seed(0)
    keys = 0.1 * torch.randn(1, 1, 32, 8, generator=gen)
    query = torch.zeros(1, 2, 1, 8)
    query[..., 3] = 1.0
    keys[0, 0, 12, 3] = 5.0  # page 3 (tokens 12-15) holds the one key aligned with the query
    mask = Quest(block=4).select(0, query, keys, 5, torch.ones(1, 1, 32, dtype=torch.bool))
    assert mask[0, 0].nonzero().flatten().tolist() == [12, 13, 14, 15, 31]


def test_kept_tokens_for_a_workload_exporter(tiny):
    model, _, ids = tiny
    counts = kept_tokens(model, "h2o", 8, ids[0, :30], 5)
    assert counts == [[math.ceil((30 + s + 1) / 8)] * 2 for s in range(5)]
    assert counts == kept_table(prefill=30, decode=5, layers=2, ratio=8)  # what `models.kv workload` exports
    assert kept_tokens(model, "dense", 8, ids[0, :30], 2) == [[31, 31], [32, 32]]
    with pytest.raises(ValueError, match="needs a trained predictor"):
        kept_tokens(model, "attnpred", 8, ids[0, :30], 2)
    with pytest.raises(ValueError, match="at least 1"):
        Budget(ratio=0.5)


def test_evict_cli_writes_table_json_csv_and_plot(tiny_zoo, tmp_path, capsys):
    out = tmp_path / "ev"
    argv = ["evict", str(tiny_zoo["base"]), "--preset", "tiny", "--policies", "streaming,quest", "--ratios", "4,16"]
    argv += ["--seq-len", "48", "--prefill", "24", "--windows", "1", "--recall-examples", "3", "-o", str(out)]
    assert main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    runs = ["dense", "streaming@4x", "quest@4x", "streaming@16x", "quest@16x"]
    assert [line.split()[0] for line in lines[1:]] == runs
    report = json.loads((out / "kv_evict.json").read_text())
    assert report["results"]["dense"]["kl"] == 0 and report["results"]["streaming@16x"]["kl"] > 0
    assert report["results"]["quest@16x"]["mean_kept"] < report["results"]["quest@4x"]["mean_kept"]
    assert (out / "kv_evict.csv").read_text().count("\n") == 6
    assert (out / "kv_evict.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--policies", "attnpred"], "needs --predictor"),
        (["--policies", "lru"], "--policies 'lru'"),
        (["--ratios", "0.5,8"], "--ratios '0.5,8'"),
        (["--predictor", "{missing}"], "none is not a folder"),
        (["--prefill", "48"], "--prefill 48"),
        (["--calibration-step", "-1"], "--calibration-step -1"),
    ],
)
def test_evict_bad_input_exits_2_with_one_line(tiny_zoo, tmp_path, capsys, args, words):
    out = tmp_path / "ev"
    args = [a.format(missing=tmp_path / "none") for a in args]
    argv = ["evict", str(tiny_zoo["base"]), "--preset", "tiny", "--seq-len", "48", "--prefill", "24", *args]
    argv += ["-o", str(out)]
    assert words in one_line_error(main, argv, capsys)
    assert not out.exists()
