"""The KV quantizer and one cache layer, without a model: error bounds, grouping, the residual window."""

import pytest
import torch

from models.kv import MixedPrecisionLayer, dequantize, quantize

pytestmark = pytest.mark.usefixtures("one_thread")


def _states(tokens: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(2, 3, tokens, 16, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("bits", [8, 4, 2])
@pytest.mark.parametrize(("dim", "group"), [(-2, 8), (-1, 8), (-1, 16)])
def test_round_trip_within_half_a_step(bits, dim, group):
    x = _states(32)
    q = quantize(x, bits, dim, group)
    err = (dequantize(q) - x).abs()
    step = q.scale.expand_as(q.codes.float()).flatten(q.dim, q.dim + 1)
    assert dequantize(q).shape == x.shape and dequantize(q).dtype == x.dtype
    assert q.codes.dtype == torch.uint8 and int(q.codes.max()) <= 2**bits - 1
    assert (err <= step / 2 + 1e-6).all()
    assert err.max() > 0  # random data is not on the grid


def test_error_shrinks_with_bits_and_constant_groups_are_exact():
    x = _states(32)
    errors = [(dequantize(quantize(x, b, -2, 8)) - x).abs().mean().item() for b in (2, 4, 8)]
    assert errors[0] > 3 * errors[1] > 9 * errors[2]
    const = torch.full((1, 1, 8, 4), 0.37)
    assert torch.equal(dequantize(quantize(const, 2, -2, 8)), const)


def test_keys_per_channel_values_per_token_grouping():
    x = _states(32)
    keys = quantize(x, 4, -2, 8)  # per channel: one (min, scale) per 8 tokens per channel
    values = quantize(x, 4, -1, 8)  # per token: one per 8 channels per token
    assert keys.scale.shape == (2, 3, 4, 1, 16)
    assert values.scale.shape == (2, 3, 32, 2, 1)
    # An outlier channel (as keys have, KIVI's reason for per-channel keys) only coarsens its own channel's steps.
    y = x.clone()
    y[..., 5] += 50
    k = quantize(y, 4, -2, 8)
    other = [c for c in range(16) if c != 5]
    assert torch.equal(k.scale[..., other], keys.scale[..., other])
    assert (quantize(y, 4, -1, 8).scale[..., 0, :] > keys.scale.max()).all()


def test_layer_keeps_the_residual_window_exact_and_quantizes_the_rest():
    residual, group = 8, 4
    layer = MixedPrecisionLayer(key_bits=2, value_bits=2, group_size=group, residual_length=residual)
    k_all, v_all = _states(40, 1), _states(40, 2)
    keys, values = layer.update(k_all[..., :10, :], v_all[..., :10, :])
    assert torch.equal(keys, k_all[..., :10, :]) and torch.equal(values, v_all[..., :10, :])  # the prefill is exact
    for t in range(10, 40):
        keys, values = layer.update(k_all[..., t : t + 1, :], v_all[..., t : t + 1, :])
        if t == 20:
            early_keys, early_values = keys[..., :8, :], values[..., :8, :]
        assert keys.shape[-2] == values.shape[-2] == t + 1 == layer.get_seq_length()
        exact = t + 1 - residual
        assert torch.equal(keys[..., exact:, :], k_all[..., exact : t + 1, :])
        assert torch.equal(values[..., exact:, :], v_all[..., exact : t + 1, :])
    # After the last update: values older than the window are quantized per token, keys in whole token groups.
    assert layer.values.shape[-2] == residual and layer._quantized_values.codes.shape[2] == 40 - residual
    # Stored codes are never requantized: the oldest tokens read back the same as when they were first stored.
    assert torch.equal(keys[..., :8, :], early_keys) and torch.equal(values[..., :8, :], early_values)
    assert residual <= layer.keys.shape[-2] < residual + group
    quantized_keys = 40 - layer.keys.shape[-2]
    assert quantized_keys % group == 0
    old_keys, _ = layer.update(k_all[..., :1, :], v_all[..., :1, :])
    assert not torch.equal(old_keys[..., :quantized_keys, :], k_all[..., :quantized_keys, :])
    assert (old_keys[..., :quantized_keys, :] - k_all[..., :quantized_keys, :]).abs().max() < 2


def test_full_precision_layer_is_exact_and_storage_shrinks_with_bits():
    k, v = _states(64, 3), _states(64, 4)
    exact = MixedPrecisionLayer(16, 16, 32, 0)
    exact.update(k[..., :40, :], v[..., :40, :])
    keys, values = exact.update(k[..., 40:, :], v[..., 40:, :])
    assert torch.equal(keys, k) and torch.equal(values, v)
    stored = []
    for kb, vb in [(16, 16), (8, 8), (8, 4), (4, 4), (2, 2)]:
        layer = MixedPrecisionLayer(kb, vb, 32, 0)
        layer.update(k, v)
        stored.append(layer.stored_bits())
    assert stored[0] == 16 * 2 * k.numel()
    assert stored == sorted(stored, reverse=True) and len(set(stored)) == len(stored)
