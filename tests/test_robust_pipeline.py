"""The backdoor pipeline on a 1-layer slice of the real MiniLM: checkpoints, training, parameter smoothing,
Monte Carlo votes, quantization, RIPPLe-like poisoning and the CLI end to end (tiny sizes)."""

import json

import numpy as np
import pytest
import torch

from models.quant import QuantConfig, QuantLinear
from models.robust.__main__ import main
from models.robust.backdoor import RippleConfig, ripple_poison
from models.robust.classifier import TextClassifier
from models.robust.data import WORD_TRIGGERS, Trigger, load_task, poison, triggered
from models.robust.harness import vote_counts
from models.robust.methods import FRS, Uniform
from models.robust.quantize import quantize_linears
from models.robust.randomize import Neighbours
from models.robust.smoothing import ParameterSmoothing, top_parameters
from models.robust.train import TrainConfig, finetune
from tests.cli import exit_code

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def samples():
    return load_task("train", 4, words=10)


@pytest.fixture(scope="module")
def clf(samples):
    model = TextClassifier.from_encoder(layers=1, seed=0)
    finetune(model, poison(samples, Trigger("word", 0), 0.5), TrainConfig(steps=3, batch=8, lr=1e-3), progress=False)
    return model


def test_task_and_triggers(samples):
    assert sorted({s.label for s in samples}) == [0, 1, 2, 3]
    assert all(len(s.text.split()) <= 10 for s in samples)
    trig = triggered(samples, Trigger("word", 0, count=2))
    assert len(trig) == sum(s.label != 0 for s in samples)
    assert all(sum(w in WORD_TRIGGERS for w in s.text.split()) >= 2 for s in trig)
    poisoned = poison(samples, Trigger("sentence", 1), 1.0)
    assert all(s.label == 1 for s in poisoned)
    assert sum("3D movie" in s.text for s in poisoned) == sum(s.label != 1 for s in samples)


def test_save_and_load_give_the_same_logits(clf, samples, tmp_path):
    clf.save_pretrained(tmp_path)
    again = TextClassifier.from_pretrained(tmp_path)
    texts = [s.text for s in samples[:4]]
    assert np.allclose(clf.predict_proba(texts), again.predict_proba(texts), atol=1e-6)


def test_training_lowers_the_loss(samples):
    model = TextClassifier.from_encoder(layers=1, seed=1)
    losses = finetune(model, samples[:8], TrainConfig(steps=6, batch=8, lr=2e-3), progress=False)
    assert np.mean(losses[-2:]) < losses[0]


def test_parameter_smoothing_noises_only_the_top_and_restores_exactly(clf):
    sm = ParameterSmoothing(copies=3, sigma=0.01, layers=10)
    before = {n: p.detach().clone() for n, p in clf.model.named_parameters()}
    noised = {id(p) for p in top_parameters(clf.model, sm.layers)}
    with sm.copy(clf.model, 1) as m:
        for n, p in m.named_parameters():
            changed = not torch.equal(p, before[n])
            assert changed == (id(p) in noised), n
        emb = m.get_input_embeddings().weight
        assert torch.equal(emb, before["bert.embeddings.word_embeddings.weight"])
    assert all(torch.equal(p, before[n]) for n, p in clf.model.named_parameters())


def test_vote_counts_are_seeded_and_sum_to_the_draws(clf, samples):
    nb = Neighbours.from_classifier(clf)
    texts = [s.text for s in samples[:3]]
    frs = FRS(nb, smoothing=ParameterSmoothing(copies=2), fuzz_budget=3)
    ctx = frs.prepare(clf, texts)
    a = vote_counts(clf, frs, texts, ctx, 6, seed=5)
    b = vote_counts(clf, frs, texts, ctx, 6, seed=5)
    assert (a == b).all() and (a.sum(1) == 6).all()
    uni = Uniform(nb, 0.9)
    rng = np.random.default_rng(0)
    lens = [len(uni.draw(texts[0].split(), None, rng).split()) for _ in range(30)]
    assert np.mean(lens) < 0.6 * len(texts[0].split())  # ~half the wiped words are deleted


def test_quantized_copy_replaces_every_linear_and_stays_close(clf, samples):
    q = quantize_linears(clf.model, QuantConfig(wbits=8, group=128))
    assert not any(type(m) is torch.nn.Linear for m in q.modules())
    assert sum(isinstance(m, QuantLinear) for m in q.modules()) == 7  # 6 in the layer + the head
    texts = [s.text for s in samples[:4]]
    qp = TextClassifier(q, clf.tokenizer).predict_proba(texts)
    assert np.abs(qp - clf.predict_proba(texts)).max() < 0.05
    assert any(isinstance(m, torch.nn.Linear) for m in clf.model.modules())  # the original is untouched


def test_ripple_surgery_and_poisoning_step(samples):
    model = TextClassifier.from_encoder(layers=1, seed=2)
    losses = ripple_poison(model, samples, Trigger("word", 0), TrainConfig(steps=1, batch=4), RippleConfig(), False)
    emb = model.model.get_input_embeddings()
    vocab = model.tokenizer.get_vocab()
    rows = emb.weight[[vocab[w] for w in WORD_TRIGGERS]]
    assert torch.allclose(rows, rows[:1].expand_as(rows))
    assert len(losses) == 1 and np.isfinite(losses[0])
    with pytest.raises(ValueError, match="word triggers"):
        ripple_poison(model, samples, Trigger("sentence", 0), TrainConfig(steps=1), RippleConfig(), False)


def test_cli_rejects_bad_settings_with_exit_2(tmp_path, capsys):
    afile = tmp_path / "f"
    afile.write_text("x")
    for argv in (
        ["certify", "--methods", "frs,nope"],
        ["attack", "--layers", "9"],
        ["certify", "--omega", "1.5"],
        ["train-backdoor", "--out", str(afile)],
        ["certify", "--quant", "5"],
    ):
        code = exit_code(main, argv)
        assert code == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and err
    assert afile.read_text() == "x"


def test_cli_certify_end_to_end(tmp_path, cache, capsys):
    out = tmp_path / "run"
    argv = (
        "certify --layers 1 --steps 2 --per-class 3 --test-per-class 1 --words 8 --copies 2 --n 4 --fuzz-budget 2"
        " --methods frs,uniform,textcrs-del,textcrs-order --quant 8 --quiet --threads 1"
    ).split() + ["--out", str(out)]
    assert main(argv) == 0
    result = json.loads((out / "result.json").read_text())
    assert set(result["methods"]) == {"frs", "uniform", "textcrs-del", "textcrs-order"}
    for m in result["methods"].values():
        assert 0 <= m["clean_accuracy"] <= 1 and 0 <= m["asr"] <= 1
    assert result["methods"]["frs"]["fuzz_ms_per_sample"] > 0
    assert set(result["quantized"]) == {"32", "8"} and set(result["quantized"]["8"]) == {"frs", "uniform"}
    assert (out / "certified.png").stat().st_size > 1000
    assert (out / "result.csv").read_text().startswith("method,clean_accuracy")
    assert len(list((cache / "robust").iterdir())) == 2  # victim and frs classifiers cached
    assert "frs" in capsys.readouterr().out
