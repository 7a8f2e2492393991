"""sim/float_model.py reproduces IEEE float16/float32 round-to-nearest-even (against numpy and exact rationals)."""

from fractions import Fraction

import numba
import numpy as np
import pytest

from hw.config import ArrayConfig, PEConfig
from sim.float_model import (
    FP32_NAN_BITS,
    dequant_fp32_step,
    f32_bits,
    f32_from_bits,
    mixpe_fp32_step,
    random_fp16_scales,
    round_fp16,
)
from sim.gemm import random_operands, run_gemm
from sim.reference import reference_gemm


@numba.njit(cache=True)
def _round_all(scales, ks):
    out = np.empty((scales.size, ks.size), np.float32)
    for i in range(scales.size):
        s = scales[i]
        e = (s >> 10) & 0x1F
        mant = (s & 0x3FF) | (0x400 if e else 0)
        for j in range(ks.size):
            out[i, j] = round_fp16(bool(s & 0x8000) != (ks[j] < 0), mant * abs(ks[j]), max(e, 1) - 25)
    return out


def test_fp16_rounding_matches_numpy_for_every_finite_scale_and_weight():
    """Every finite FP16 scale times every q - z of 4-bit weights: ties, subnormals, overflow to Inf."""
    scales = np.arange(1 << 16, dtype=np.int64)
    scales = scales[((scales >> 10) & 0x1F) != 0x1F]
    ks = np.arange(-15, 16, dtype=np.int64)
    got = _round_all(scales, ks)
    s32 = scales.astype(np.uint16).view(np.float16).astype(np.float32)
    with np.errstate(over="ignore"):
        want = (s32[:, None] * ks[None].astype(np.float32)).astype(np.float16)
    np.testing.assert_array_equal(got.view(np.int32), want.astype(np.float32).view(np.int32))
    assert np.isinf(got).any() and (np.abs(got[got != 0]) < 2.0**-14).any()  # both corners were reached


@numba.njit(cache=True)
def _add_all(x, y):
    out = np.empty(x.size, np.int64)
    for i in range(x.size):
        out[i] = f32_bits(np.float32(f32_from_bits(x[i]) + f32_from_bits(y[i])))
    return out


@numba.njit(cache=True)
def _to_f32_all(d):
    out = np.empty(d.size, np.float32)
    for i in range(d.size):
        out[i] = np.float32(d[i])
    return out


def _rne_float32(n: int) -> float:
    """Python-exact round-to-nearest-even of an integer to 24 significant bits."""
    mag, shift = abs(n), max(0, abs(n).bit_length() - 24)
    kept, rest = mag >> shift, Fraction(mag & ((1 << shift) - 1), 1 << shift) if shift else Fraction(0)
    if rest > Fraction(1, 2) or (rest == Fraction(1, 2) and kept & 1):
        kept += 1
    return float((kept << shift) * (1 if n >= 0 else -1))


def test_float32_add_and_int_conversion_match_numpy_and_exact_rounding():
    rng = np.random.default_rng(0)
    x = rng.integers(-(2**31), 2**31, 20000)
    y = rng.integers(-(2**31), 2**31, 20000)
    near = (x ^ rng.integers(0, 1 << 8, x.size)) ^ (1 << 31)  # opposite sign, near magnitude: cancellation
    y[::3] = near[::3]
    y[1::7] = (x[1::7] & ~0x7FFFFFFF) | 0x7F7FFFFF  # the largest finite: sums overflow to Inf
    y = np.where(rng.random(x.size) < 0.1, rng.integers(0, 1 << 23, x.size), y)  # FP32 subnormals
    xf = x.astype(np.int32).view(np.float32)
    yf = y.astype(np.int32).view(np.float32)
    with np.errstate(over="ignore", invalid="ignore"):
        want = xf + yf
    want_bits = np.where(np.isnan(want), FP32_NAN_BITS, want.view(np.int32).astype(np.int64))
    assert np.array_equal(_add_all(x, y), want_bits)
    assert np.isinf(want).any() and (want == 0).any()

    # ties: an integer exactly halfway between two float32 neighbours rounds to the even one
    base = rng.integers(1 << 23, 1 << 24, 2000) * 2 + 1  # 25 significant bits, the last one a half
    ints = np.concatenate([base << rng.integers(0, 30, base.size), rng.integers(-(2**58), 2**58, 4000)])
    got = _to_f32_all(ints)
    assert [float(v) for v in got] == [_rne_float32(int(n)) for n in ints]
    np.testing.assert_array_equal(got, ints.astype(np.float32))


def test_pe_steps_match_numpy_float32():
    """One dequant operand and one MixPE group, against numpy's float16/float32 arithmetic."""
    rng = np.random.default_rng(1)
    n = 5000
    y = np.float32(rng.standard_normal(n) * 2.0 ** rng.integers(-20, 30, n)).astype(np.float32)
    scale = random_fp16_scales(rng, n)
    s = scale.astype(np.uint16).view(np.float16).astype(np.float32)
    act = rng.integers(0, 1 << 16, n)
    act = np.where((act >> 10) & 0x1F == 0x1F, act & ~0x4000, act)
    a16 = act.astype(np.uint16).view(np.float16).astype(np.float32)
    a_int = np.rint(a16.astype(np.float64) * 2.0**24).astype(np.int64)
    k = rng.integers(-15, 16, n)
    d = rng.integers(-(2**52), 2**52, n) >> rng.integers(0, 52, n)
    y_bits = y.view(np.int32).astype(np.int64)
    with np.errstate(over="ignore", invalid="ignore"):
        w = (s * k.astype(np.float32)).astype(np.float16).astype(np.float32)
        want_dq = y + a16 * w
        want_mx = y + (d.astype(np.float32) * np.float32(2.0**-24)) * s
    got_dq = [dequant_fp32_step(y_bits[i], a_int[i], k[i], scale[i]) for i in range(n)]
    got_mx = [mixpe_fp32_step(y_bits[i], d[i], scale[i]) for i in range(n)]
    for got, want in ((got_dq, want_dq), (got_mx, want_mx)):
        want_bits = np.where(np.isnan(want), FP32_NAN_BITS, want.view(np.int32).astype(np.int64))
        np.testing.assert_array_equal(np.array(got), want_bits)
    assert np.isinf(w).any() and np.isinf(want_dq).any()  # overflowing weights were exercised


@pytest.mark.parametrize("pe", ["dequant", "mixpe"])
def test_fp32_array_model_matches_numpy_reference_and_real_product(pe):
    """The cycle model's FP32 GEMM equals the numpy reference bit for bit, and is close to float64 math."""
    cfg = PEConfig(pe, 4, "unsigned", "fp16", 8, accumulate="fp32")
    rng = np.random.default_rng(3)
    ops = random_operands(cfg, 6, 5, 32, rng, fp16="normal")
    ops.scale[:] = rng.integers(0x2000, 0x3000, ops.scale.shape)  # finite weights: compare with float64
    y, _ = run_gemm(ArrayConfig(cfg, 4, 4), ops)
    assert np.array_equal(y, reference_gemm(cfg, ops))
    a = ops.act.astype(np.uint16).view(np.float16).astype(np.float64)
    g = np.arange(32) // 8
    w = ops.scale.astype(np.uint16).view(np.float16).astype(np.float64)[g] * (ops.q - ops.zero[g])
    real = a @ w
    got = y.astype(np.int32).view(np.float32).astype(np.float64)
    np.testing.assert_allclose(got, real, rtol=1e-3, atol=1e-3 * np.abs(real).max())


def test_fp32_config_rules():
    assert PEConfig("dequant", 4, "unsigned", "fp16", 128, accumulate="fp32").name() == "dequant_w4u_afp16_g128_fp32"
    assert PEConfig("mixpe", 4, "unsigned", "fp16", 128, accumulate="fp32").latency == 4
    assert PEConfig("dequant").latency == 2
    for bad in ({"act": "int8"}, {"acc_bits": 48}, {"pe": "int8", "wbits": 8, "wformat": "signed", "act": "int8"}):
        with pytest.raises(ValueError, match="FP32|fp32"):
            PEConfig(**{"pe": "dequant", "act": "fp16", "accumulate": "fp32", **bad})
