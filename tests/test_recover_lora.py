"""LoRA adapters and recovery fine-tuning on the tiny zoo model: identity at start, exact merge, a real drop in
loss, and a merged result that is an ordinary, loadable LlamaForCausalLM."""

import copy

import pytest
import torch
from transformers import AutoModelForCausalLM, LlamaForCausalLM

from models.recover import LoRALinear, RecoverError, Sample, add_lora, merge_lora, recovery_finetune
from models.recover.pipeline import load_model

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def pruned(tiny_zoo):
    model, tokenizer = load_model(str(tiny_zoo["base"]), "tiny", [1])
    return model, tokenizer


def _ids(tokenizer):
    return torch.tensor([tokenizer("Q: Ann has 3 pens and gets 4 more from Ben. A: 7")["input_ids"]])


def test_adapters_start_as_the_identity_and_merge_exactly(pruned):
    model, tokenizer = pruned
    m = copy.deepcopy(model)
    ids = _ids(tokenizer)
    before = m(input_ids=ids).logits
    params = add_lora(m)
    wrapped = [x for x in m.modules() if isinstance(x, LoRALinear)]
    assert len(wrapped) == 7 * m.config.num_hidden_layers and len(params) == 2 * len(wrapped)
    assert all(p.requires_grad for p in params)
    assert sum(p.requires_grad for p in m.parameters()) == len(params)  # everything else frozen
    m.eval()
    assert torch.allclose(m(input_ids=ids).logits, before, atol=1e-6)  # B = 0: the pruned model itself
    with torch.no_grad():
        for p in params:
            p.add_(0.05 * torch.randn_like(p))
    adapted = m(input_ids=ids).logits
    assert not torch.allclose(adapted, before, atol=1e-3)
    merge_lora(m)
    assert not any(isinstance(x, LoRALinear) for x in m.modules())
    assert torch.allclose(m(input_ids=ids).logits, adapted, atol=1e-4)


def test_recovery_training_lowers_the_loss_and_saves_as_plain_llama(pruned, tmp_path):
    model, tokenizer = pruned
    samples = [
        Sample(f"Q: Ann has {a} pens and gets {b} more from Ben. A:", f" {a + b}", "arithmetic")
        for a in range(2, 9)
        for b in range(3, 7)
    ]
    m = copy.deepcopy(model)
    ids = torch.tensor([tokenizer(s.text)["input_ids"] for s in samples[:8]])
    with torch.no_grad():
        loss_before = m(input_ids=ids, labels=ids).loss.item()
    stats = recovery_finetune(m, tokenizer, samples, epochs=3, batch=4, lr=3e-3, seed=0, progress=False)
    assert stats["steps"] == 3 * 7 and stats["tokens"] > 0
    with torch.no_grad():
        assert m(input_ids=ids, labels=ids).loss.item() < loss_before - 0.1
    assert type(m) is LlamaForCausalLM and not any(isinstance(x, LoRALinear) for x in m.modules())
    m.save_pretrained(tmp_path)
    back = AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    assert back.config.num_hidden_layers == model.config.num_hidden_layers
    assert torch.allclose(back(input_ids=ids).logits, m(input_ids=ids).logits, atol=1e-5)
    # same seed, same numbers
    again = copy.deepcopy(model)
    recovery_finetune(again, tokenizer, samples, epochs=3, batch=4, lr=3e-3, seed=0, progress=False)
    assert torch.equal(again(input_ids=ids).logits, m(input_ids=ids).logits)


def test_training_refuses_nothing_to_train(pruned):
    model, tokenizer = pruned
    with pytest.raises(RecoverError, match="empty"):
        recovery_finetune(copy.deepcopy(model), tokenizer, [], progress=False)
    with pytest.raises(RecoverError, match="no linear layer"):
        add_lora(torch.nn.Sequential(torch.nn.ReLU()))
