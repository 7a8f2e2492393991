"""hw/float_arith.py in the Amaranth simulator against numpy's IEEE float16/float32, on random and corner operands."""

import numpy as np
from amaranth.hdl import Module, Signal, signed
from amaranth.sim import Simulator

from hw.float_arith import fp16_product_fp32, fp16_scaled_int, fp32_accumulate, fp32_mul_fp16, int_to_fp32
from sim.float_model import FP32_NAN_BITS, random_fp16_scales


def _evaluate(build, inputs: dict[str, tuple[object, np.ndarray]]) -> np.ndarray:
    """Drive each input signal with its values and read the function's output for each (unsigned)."""
    m = Module()
    signals = {name: Signal(shape, name=name) for name, (shape, _) in inputs.items()}
    out = build(m, **signals)
    n = len(next(iter(inputs.values()))[1])
    got = np.zeros(n, np.int64)

    async def bench(ctx):
        for i in range(n):
            for name, (_, values) in inputs.items():
                ctx.set(signals[name], int(values[i]))
            got[i] = ctx.get(out)

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()
    return got


def _bits32(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float32)
    return np.where(np.isnan(x), FP32_NAN_BITS, x.view(np.uint32).astype(np.int64))


def _finite_fp16(rng, n):
    bits = rng.integers(0, 1 << 16, n)
    return np.where((bits >> 10) & 0x1F == 0x1F, bits & ~0x4000, bits)


def test_dequantizer_product_and_scale_round_like_ieee():
    rng = np.random.default_rng(0)
    n = 600
    corners = [0x7BFF, 0xFBFF, 0x0001, 0x83FF, 0x0400, 0x3C00, 0, 0x8000]
    scale = np.concatenate([random_fp16_scales(rng, n - len(corners)), corners])
    k = rng.integers(-15, 16, n)
    got_w = _evaluate(lambda m, s, k: fp16_scaled_int(m, s, k), {"s": (16, scale), "k": (signed(5), k)})
    s32 = scale.astype(np.uint16).view(np.float16).astype(np.float32)
    with np.errstate(over="ignore"):
        want_w = (s32 * k.astype(np.float32)).astype(np.float16)
    assert np.array_equal(got_w, want_w.view(np.uint16).astype(np.int64))
    assert np.isinf(want_w).any()

    act = _finite_fp16(rng, n)
    act[:5] = [0, 0x8000, 0x0001, 0x7BFF, 0x03FF]
    got_p = _evaluate(lambda m, a, w: fp16_product_fp32(m, a, w), {"a": (16, act), "w": (16, got_w)})
    with np.errstate(invalid="ignore"):
        want_p = act.astype(np.uint16).view(np.float16).astype(np.float32) * want_w.astype(np.float32)
    assert np.array_equal(got_p, _bits32(want_p))

    d = rng.integers(-(2**58), 2**58, n) >> rng.integers(0, 58, n)
    got_d = _evaluate(lambda m, d: int_to_fp32(m, d, -24), {"d": (signed(59), d)})
    want_d = d.astype(np.float32) * np.float32(2.0**-24)
    assert np.array_equal(got_d, _bits32(want_d))
    got_g = _evaluate(lambda m, x, s: fp32_mul_fp16(m, x, s), {"x": (32, got_d), "s": (16, scale)})
    assert np.array_equal(got_g, _bits32(want_d * s32))


def test_fp32_accumulate_adds_like_ieee():
    """Random sums, near cancellations, ties, Inf and NaN; `restart` gives +0 + x."""
    rng = np.random.default_rng(1)
    n = 1500
    x = (rng.standard_normal(n) * 2.0 ** rng.integers(-40, 40, n)).astype(np.float32)
    y = (rng.standard_normal(n) * 2.0 ** rng.integers(-40, 40, n)).astype(np.float32)
    y[::4] = -x[::4] * np.float32(1 + 2.0**-20)  # cancellation
    y[1::4] = x[1::4] * np.float32(2.0**-24)  # exactly half an ulp: a tie
    y[2::16] = np.inf
    x[3::16] = -np.inf
    y[3::32] = np.inf
    x[4::64] = np.nan
    y[5::16] = -x[5::16]  # exact zero: +0
    restart = (rng.random(n) < 0.1).astype(np.int64)
    xb, yb = _bits32(x), _bits32(y)
    got = _evaluate(
        lambda m, acc, x, r: fp32_accumulate(m, acc, x, r), {"acc": (32, xb), "x": (32, yb), "r": (1, restart)}
    )
    with np.errstate(invalid="ignore", over="ignore"):
        want = np.where(restart == 1, np.float32(0) + y, x + y)
    assert np.array_equal(got, _bits32(want))
    assert np.isnan(want).any() and np.isinf(want).any() and (want == 0).any()
