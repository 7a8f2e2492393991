"""The mixed-precision KV cache on the tiny zoo model: exactness at 16 bits, generate(), quality vs bits."""

import pytest
import torch

from models import zoo
from models.kv import KVConfig, KVConfigError, KVQuantizedCache, decode_logits, evaluate, recall_accuracy
from models.kv.evaluate import compare
from models.zoo.data import task_examples
from models.zoo.evaluate import score_texts
from models.zoo.presets import get_preset

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def tiny(tiny_zoo):
    model, tokenizer = zoo.load(tiny_zoo["base"])
    ids = torch.stack(zoo.token_windows(tokenizer, "english", "test", 96, 4, "tiny"))
    return model, tokenizer, ids


@torch.no_grad()
def test_kv16_matches_the_default_cache_and_a_full_forward(tiny):
    model, _, ids = tiny
    logits = decode_logits(model, ids, KVConfig.preset("KV16", 2), prefill=16)
    out = model(input_ids=ids[:, :16], use_cache=True)
    default = [out.logits[:, -1]]
    for t in range(16, ids.shape[1] - 1):
        out = model(input_ids=ids[:, t : t + 1], cache=out.cache, use_cache=True)
        default.append(out.logits[:, -1])
    assert torch.equal(logits, torch.stack(default, 1))
    full = model(input_ids=ids).logits[:, 15:-1]
    torch.testing.assert_close(logits, full, atol=1e-4, rtol=1e-4)


@torch.no_grad()
def test_fewer_bits_give_larger_kl(tiny):
    model, _, ids = tiny
    reference = decode_logits(model, ids, KVConfig.preset("KV16", 2), prefill=16)
    kls = []
    for bits in (8, 4, 2):
        logits = decode_logits(model, ids, KVConfig.uniform(bits, bits, 2), prefill=16)
        kls.append(compare(reference, logits, ids[:, 16:])["kl"])
    assert 0 < 10 * kls[0] < kls[1] and 10 * kls[1] < kls[2], kls
    # The residual window keeps recent tokens exact, which lowers KL at the same bits.
    windowed = decode_logits(model, ids, KVConfig.uniform(2, 2, 2, residual_length=32), prefill=16)
    assert compare(reference, windowed, ids[:, 16:])["kl"] < kls[-1]


@torch.no_grad()
def test_generate_with_the_cache(tiny):
    model, _, ids = tiny
    prompt = ids[:2, :20]
    plain = model.generate(prompt, max_new_tokens=24, do_sample=False)
    kv16_cache = KVQuantizedCache(KVConfig.preset("KV16", 2))
    kv16 = model.generate(prompt, cache=kv16_cache, max_new_tokens=24, do_sample=False)
    assert torch.equal(plain, kv16)
    beams = dict(max_new_tokens=12, do_sample=False, num_beams=3)  # reorder_cache on every step
    beam16 = model.generate(prompt, cache=KVQuantizedCache(KVConfig.preset("KV16", 2)), **beams)
    assert torch.equal(model.generate(prompt, **beams), beam16)
    cache = KVQuantizedCache(KVConfig(pairs=((4, 2), (2, 2)), group_size=8, residual_length=4), model.config)
    out = model.generate(prompt, cache=cache, max_new_tokens=24, do_sample=False)
    assert out.shape == (2, 44) and torch.equal(out[:, :20], prompt)
    assert cache.get_seq_length() == 43  # the last generated token is never fed back
    layer = cache.layers[1]
    assert layer._quantized_keys is not None and layer._quantized_values is not None and 4 <= layer.keys.shape[-2] < 12
    exact_bits = 16 * 2 * 2 * 2 * 43 * 16 * 2  # 16 bits x (K, V) x batch x kv heads x tokens x head_dim x layers
    assert cache.stored_bits() < 0.55 * exact_bits  # with 16-bit scales and zero points per group of 8


def test_cache_rejects_a_config_for_another_model(tiny):
    model, _, _ = tiny
    with pytest.raises(KVConfigError, match="3 layer pairs but the model has 2 layers"):
        KVQuantizedCache(KVConfig.preset("KV8", 3), model.config)


def test_recall_and_evaluate(tiny):
    model, tokenizer, _ = tiny
    examples = task_examples("recall", "test", get_preset("tiny"), 0)[:12]
    answers = [len(tokenizer(e.answer, add_special_tokens=False)["input_ids"]) for e in examples]
    zoo_exact = score_texts(model, tokenizer, [e.text for e in examples], answers)["exact_match"]
    assert recall_accuracy(model, tokenizer, examples, KVConfig.preset("KV16", 2)) == pytest.approx(zoo_exact)
    configs = [KVConfig.preset("KV4", 2), KVConfig.uniform(2, 2, 2, name="KV2")]
    results = evaluate(model, tokenizer, configs, "tiny", seq_len=64, prefill=16, windows=2, recall_examples=4)
    assert list(results) == ["KV16", "KV4", "KV2"]
    assert results["KV16"]["kl"] == 0 and results["KV16"]["top1_agree"] == 1
    assert 0 < results["KV4"]["kl"] < results["KV2"]["kl"]
    assert results["KV2"]["stored_kbit_per_window"] < results["KV4"]["stored_kbit_per_window"]
    with pytest.raises(ValueError, match="prefill 64"):
        evaluate(model, tokenizer, configs, "tiny", seq_len=64, prefill=64)
