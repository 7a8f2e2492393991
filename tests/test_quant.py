"""models.quant: the integer weight format, RTN and GPTQ, and QuantLinear bit-exact against sim/."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn
from transformers import LlamaConfig, LlamaForCausalLM

from hw.config import ArrayConfig, PEConfig
from models.quant import (
    QuantConfig,
    QuantError,
    QuantLinear,
    capture_operands,
    compare,
    evaluate,
    gptq_quantize,
    perplexity,
    quantize_model,
    rtn_quantize,
    set_engine,
    to_workload,
)
from models.quant.gptq import Hessian
from sim.gemm import run_gemm
from sim.reference import reference_gemm
from sim.workload import load_workload

FORMATS = [(b, f) for b in (2, 3, 4, 8) for f in ("unsigned", "signed")]


@pytest.fixture(scope="module")
def tiny():
    """A seeded random 2-layer Llama (hidden 64, vocab 256) and calibration tokens (8 x 64)."""
    torch.manual_seed(0)
    cfg = LlamaConfig(
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=256,
        max_position_embeddings=128,
        attn_implementation="eager",
    )
    model = LlamaForCausalLM(cfg).eval()
    tokens = torch.randint(0, 256, (8, 64), generator=torch.Generator().manual_seed(1))
    return model, tokens


def _weight(n: int = 48, k: int = 128, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    # Heavy-ish tails and an offset per row, so asymmetric ranges and clipping are exercised.
    return torch.randn(n, k, generator=g) * 0.05 + torch.randn(n, 1, generator=g) * 0.01


@pytest.mark.parametrize("wbits,wformat", FORMATS)
def test_dequantize_is_exactly_the_hardware_weight(wbits: int, wformat: str) -> None:
    w = _weight()
    qw = rtn_quantize(w, wbits, 32, wformat)
    q, s, z = qw.q.long().numpy(), qw.scale.long().numpy(), qw.zero.long().numpy()
    assert q.shape == (128, 48) and s.shape == z.shape == (4, 48)
    if wformat == "signed":
        assert q.min() >= -(1 << (wbits - 1)) and q.max() < 1 << (wbits - 1) and not z.any()
    else:
        assert q.min() >= 0 and q.max() < 1 << wbits and z.min() >= 0 and z.max() < 1 << wbits
    assert s.min() >= 1 and s.max() <= 0xFFFF
    # F is the largest that fits: one more frac bit would overflow the largest S.
    assert s.max() * 2 > 0xFFFF
    g = np.arange(128) // 32
    expected = (s[g] * (q - z[g])).astype(np.float64) * 2.0**-qw.frac_bits
    got = qw.dequantize()
    assert got.dtype == torch.float32 and got.shape == (48, 128)
    assert np.array_equal(got.numpy().astype(np.float64), expected.T)
    # Round-to-nearest against the rounded scale: error at most half a step (plus clipping slack).
    step = (s[g] * 2.0**-qw.frac_bits).T
    assert np.all(np.abs(got.numpy() - w.numpy()) <= 0.51 * step + 1e-12)


@pytest.mark.parametrize("wbits,bound", [(8, 0.01), (4, 0.12), (3, 0.25)])
def test_rtn_error_small(wbits: int, bound: float) -> None:
    w = _weight()
    for wformat in ("unsigned", "signed"):
        err = (rtn_quantize(w, wbits, 32, wformat).dequantize() - w).norm() / w.norm()
        assert err < bound, (wformat, float(err))


def _linear_inputs(model: nn.Module, tokens: torch.Tensor) -> dict[str, tuple[nn.Linear, torch.Tensor]]:
    """Every decoder linear of the FP model with its inputs on the calibration tokens (rows x k)."""
    seen: dict[str, list[torch.Tensor]] = {}
    handles = []
    for name, m in model.model.layers.named_modules():
        if isinstance(m, nn.Linear):
            seen[name] = []
            handles.append(
                m.register_forward_hook(
                    lambda _m, inp, _o, n=name: seen[n].append(inp[0].reshape(-1, inp[0].shape[-1]))
                )
            )
    with torch.no_grad():
        model(input_ids=tokens, use_cache=False)
    for h in handles:
        h.remove()
    return {n: (model.model.layers.get_submodule(n), torch.cat(xs)) for n, xs in seen.items()}


@pytest.mark.parametrize("wbits", [3, 2])
@pytest.mark.parametrize("act_order", [False, True])
def test_gptq_beats_rtn_on_layer_outputs(tiny, wbits: int, act_order: bool) -> None:
    model, tokens = tiny
    rtn_err = gptq_err = 0.0
    wins = 0
    layers = _linear_inputs(model, tokens)
    for lin, x in layers.values():
        x = x.double()
        hess = Hessian(lin.in_features)
        hess.add(x)
        ref = x @ lin.weight.detach().double().T
        e_rtn = float((ref - x @ rtn_quantize(lin.weight, wbits, 32).dequantize().double().T).square().sum())
        qw = gptq_quantize(lin.weight, hess.h, wbits, 32, act_order=act_order)
        e_gptq = float((ref - x @ qw.dequantize().double().T).square().sum())
        rtn_err += e_rtn
        gptq_err += e_gptq
        wins += e_gptq < e_rtn
    assert gptq_err < 0.9 * rtn_err, (gptq_err, rtn_err)
    assert wins == len(layers)


def _qlinear(wbits: int, wformat: str, act: str, method: str = "rtn") -> QuantLinear:
    torch.manual_seed(wbits)
    lin = nn.Linear(128, 24)
    x = torch.randn(64, 128)
    if method == "rtn":
        qw = rtn_quantize(lin.weight, wbits, 32, wformat)
    else:
        hess = Hessian(128)
        hess.add(x)
        qw = gptq_quantize(lin.weight, hess.h, wbits, 32, wformat)
    return QuantLinear(qw, lin.bias, act)


def _inputs() -> torch.Tensor:
    x = torch.randn(7, 128, generator=torch.Generator().manual_seed(5)) * 3
    x[1, 5] = 300.0  # an outlier token
    x[2] = 0.0  # an all-zero token
    x[3, :4] = torch.tensor([1e-6, -6e-8, 65000.0, -(2.0**-24)])  # FP16 subnormals and near-max
    return x


@pytest.mark.parametrize("act", ["int8", "fp16"])
@pytest.mark.parametrize("wbits,wformat", FORMATS)
def test_quantlinear_integers_equal_numpy_reference(wbits: int, wformat: str, act: str) -> None:
    ql = _qlinear(wbits, wformat, act, "gptq" if wbits == 3 else "rtn")
    x = _inputs()
    ops = ql.to_operands(x)
    pe = PEConfig("mixpe", wbits, wformat, act, 32)
    ops.validate(pe)
    ref = reference_gemm(pe, ops)
    y_int, row_scale = ql.integer_output(x)
    assert y_int.dtype == torch.int64 and np.array_equal(y_int.numpy(), ref)
    assert np.array_equal(ql.accumulate(ops), ref)
    # The host's rescaling gives forward().
    y = ql(x)
    expected = (torch.from_numpy(ref).double() * row_scale * 2.0**-ql.frac_bits).float() + ql.bias
    assert torch.equal(y, expected)
    # And it means x @ dequant(W)^T + b up to activation rounding.
    close = x @ ql.qweight.dequantize().T + ql.bias
    rows = [0, 4, 5, 6]
    tol = 0.03 if act == "int8" else 2e-3
    assert torch.allclose(y[rows], close[rows], rtol=tol, atol=tol * close[rows].abs().max().item())


@pytest.mark.parametrize("act", ["int8", "fp16"])
def test_engine_hook_runs_the_cycle_model(act: str) -> None:
    ql = _qlinear(4, "unsigned", act)
    x = _inputs()[[0, 4, 5]]
    expected = ql(x)
    calls = []

    def engine(ops, pe):
        calls.append(ops.shape)
        return run_gemm(ArrayConfig(pe, 4, 4), ops)[0]

    ql.engine = engine
    assert torch.equal(ql(x.reshape(3, 1, 128)).reshape(3, 24), expected)
    assert calls == [(3, 24, 128)]


def test_quantize_model_replaces_decoder_linears(tiny, tmp_path) -> None:
    model, tokens = tiny
    fp_ppl = perplexity(model, tokens[:2])
    with torch.no_grad():
        loss = model(input_ids=tokens[:1], labels=tokens[:1]).loss
    assert perplexity(model, tokens[:1]) == pytest.approx(float(torch.exp(loss)), rel=1e-5)
    assert 0 <= evaluate(model, tokens[:2])["top1"] <= 1

    q8 = quantize_model(copy.deepcopy(model), QuantConfig(wbits=8, group=32, act="fp16"))
    quant = [n for n, m in q8.named_modules() if isinstance(m, QuantLinear)]
    assert len(quant) == 2 * 7 and all(n.startswith("model.layers.") for n in quant)
    assert type(q8.lm_head) is nn.Linear
    assert not any(type(m) is nn.Linear for m in q8.model.layers.modules())
    assert perplexity(q8, tokens[:2]) == pytest.approx(fp_ppl, rel=2e-3)
    assert abs(compare(model, q8, tokens[:2])["increase_pct"]) < 0.2

    q3 = quantize_model(copy.deepcopy(model), QuantConfig(wbits=3, group=32, method="gptq", calib_samples=4), tokens)
    assert torch.isfinite(torch.tensor(perplexity(q3, tokens[:2])))
    ops = capture_operands(q3, tokens[:1])
    assert set(ops) == {n for n, m in q3.named_modules() if isinstance(m, QuantLinear)}
    name = "model.layers.1.mlp.down_proj"
    assert ops[name].shape == (64, 64, 128)
    assert np.array_equal(
        reference_gemm(q3.get_submodule(name).pe_config(), ops[name]), q3.get_submodule(name).accumulate(ops[name])
    )
    to_workload(q3, tokens[:1], "tiny-w3").save(tmp_path / "w.json")
    loaded = load_workload(tmp_path / "w.json")
    assert [op.name for op in loaded.ops] == list(ops) and loaded.op(name).wbits == 3
    assert loaded.meta["frac_bits"][name] == q3.get_submodule(name).frac_bits
    for part in ("act", "q", "scale", "zero"):
        assert np.array_equal(getattr(loaded.operands(name), part), getattr(ops[name], part))

    head = quantize_model(copy.deepcopy(model), QuantConfig(wbits=4, group=32, quantize_lm_head=True))
    assert isinstance(head.lm_head, QuantLinear)
    set_engine(head, lambda ops, pe: reference_gemm(pe, ops))
    assert perplexity(head, tokens[:1]) > 0


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"wbits": 5}, "weight bits 5"),
        ({"group": 0}, "group size 0"),
        ({"method": "awq"}, "unknown method"),
        ({"act": "fp8"}, "unknown activation"),
        ({"wformat": "nf4"}, "unknown weight format"),
        ({"calib_samples": 0}, "calib_samples"),
    ],
)
def test_bad_configs_raise_one_line(kwargs: dict, match: str) -> None:
    with pytest.raises(QuantError, match=match) as info:
        QuantConfig(**kwargs)
    assert "\n" not in str(info.value)


def test_bad_model_settings_raise_one_line(tiny) -> None:
    model, tokens = tiny
    before = copy.deepcopy(model.state_dict())
    with pytest.raises(QuantError, match="does not divide in_features=64") as info:
        quantize_model(model, QuantConfig(group=48))
    assert "\n" not in str(info.value)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # nothing changed
    uneven = quantize_model(copy.deepcopy(model), QuantConfig(group=48, uneven="divisor"))
    assert uneven.model.layers[0].mlp.up_proj.group == 32 and uneven.model.layers[0].mlp.down_proj.group == 32
    with pytest.raises(QuantError, match="calibration tokens"):
        quantize_model(copy.deepcopy(model), QuantConfig(group=32, method="gptq"), [])
    with pytest.raises(QuantError, match="calibration tokens"):
        quantize_model(copy.deepcopy(model), QuantConfig(group=32, method="gptq"))
    with pytest.raises(QuantError, match="FP16 range"):
        _qlinear(4, "unsigned", "fp16")(torch.full((1, 128), 1e5))
