"""The workload format (sim/workload.py) and the built-in model workloads (sim/model_shapes.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from hw.config import PEConfig
from sim.gemm import GemmOperands, random_operands
from sim.model_shapes import MODELS, builtin_workload, expert_tokens
from sim.workload import (
    AttnPV,
    AttnQK,
    Linear,
    MoeExpert,
    Workload,
    WorkloadError,
    load_workload,
    main,
)

ROOT = Path(__file__).resolve().parents[1]


def small_workload() -> Workload:
    return Workload(
        "tiny",
        [
            Linear(name="l0.up", m=4, n=8, k=32, wbits=4, group=16, act="int8", repeat=2),
            Linear(name="l0.down", m=4, n=32, k=8, wbits=8, group=8, wformat="signed", act="fp16"),
            AttnQK(name="l0.qk", m=4, n=6, k=16, kept_tokens=6, context=10, heads=4, kv_heads=2, kv_bits=4),
            AttnPV(name="l0.pv", m=4, n=16, k=6, kept_tokens=6, context=10, heads=4, kv_heads=2, kv_bits=4),
            MoeExpert(name="l0.e3", m=3, n=8, k=32, wbits=2, group=32, expert=3, repeat=5),
        ],
        {"phase": "test", "note": [1, 2]},
    )


def with_tensors(rng: np.random.Generator) -> Workload:
    w = small_workload()
    w.tensors["l0.up"] = random_operands(PEConfig(wbits=4, group=16), 4, 8, 32, rng)
    w.tensors["l0.down"] = random_operands(PEConfig(wbits=8, wformat="signed", act="fp16", group=8), 4, 32, 8, rng)
    return w


def one_line_error(excinfo: pytest.ExceptionInfo, *parts: str) -> str:
    msg = str(excinfo.value)
    assert "\n" not in msg
    for part in parts:
        assert part in msg, (part, msg)
    return msg


def test_round_trip_shapes_only(tmp_path: Path) -> None:
    w = small_workload()
    w.save(tmp_path / "w.json")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.json"]  # no temporary file left behind
    back = load_workload(tmp_path / "w.json")
    assert (back.model, back.ops, back.meta, back.tensors) == (w.model, w.ops, w.meta, {})
    assert back.totals() == w.totals()
    assert json.loads((tmp_path / "w.json").read_text())["format"] == 1


def test_round_trip_with_tensors(tmp_path: Path) -> None:
    w = with_tensors(np.random.default_rng(1))
    w.save(tmp_path / "w.json")
    assert json.loads((tmp_path / "w.json").read_text())["tensors"] == "w.safetensors"
    back = load_workload(tmp_path / "w.json")
    assert back.ops == w.ops
    for name, ops in w.tensors.items():
        got = back.operands(name)
        assert isinstance(got, GemmOperands) and got.group == ops.group
        for part in ("act", "q", "scale", "zero"):
            np.testing.assert_array_equal(getattr(got, part), getattr(ops, part))
            assert getattr(got, part).dtype == np.int64
    with pytest.raises(KeyError):
        back.operands(back.ops[2])


def test_int16_activations_are_read_as_bits(tmp_path: Path) -> None:
    w = with_tensors(np.random.default_rng(2))
    w.save(tmp_path / "w.json")
    arrays = load_file(tmp_path / "w.safetensors")
    arrays["l0.down.act"] = arrays["l0.down.act"].view(np.int16)
    save_file(arrays, tmp_path / "w.safetensors")
    np.testing.assert_array_equal(load_workload(tmp_path / "w.json").operands("l0.down").act, w.tensors["l0.down"].act)


def test_totals() -> None:
    t = small_workload().totals()
    assert t.macs == 4 * 8 * 32 * 2 + 4 * 32 * 8 + 2 * 4 * 6 * 16 * 4 + 3 * 8 * 32 * 5
    assert t.weight_params == 8 * 32 * 2 + 32 * 8 + 8 * 32 * 5
    # 4-bit weights + per group (16-bit scale + 4-bit zero); signed 8-bit has no zero; 2-bit one group.
    bits = (32 * 8 * 4 + 2 * 8 * 20) * 2 + (8 * 32 * 8 + 1 * 32 * 16) + (32 * 8 * 2 + 8 * 18) * 5
    assert t.weight_bytes == bits / 8
    assert t.kv_bytes == 2 * (6 * 16 * 2 * 4) / 8
    assert t.gemms == 2 + 1 + 4 + 4 + 5


# (path into the manifest, new value, field the error must name)
CORRUPTIONS = [
    (("ops", 0, "wbits"), 5, "field 'wbits' is 5, expected one of 2, 3, 4, 8"),
    (("ops", 0, "group"), 12, "field 'group' is 12, expected a divisor of k=32"),
    (("ops", 0, "m"), 0, "field 'm' is 0, expected an integer >= 1"),
    (("ops", 0, "n"), "8", "field 'n' is \"8\", expected an integer"),
    (("ops", 1, "k"), 8.0, "field 'k' is 8.0, expected an integer"),
    (("ops", 1, "repeat"), True, "field 'repeat' is true"),
    (("ops", 1, "wformat"), "sign", "field 'wformat'"),
    (("ops", 1, "act"), "bf16", "field 'act' is \"bf16\", expected one of int8, fp16"),
    (("ops", 2, "kept_tokens"), 11, "field 'kept_tokens' is 11, expected at most context=10"),
    (("ops", 2, "kv_bits"), 3, "field 'kv_bits' is 3, expected one of 2, 4, 8, 16"),
    (("ops", 2, "kv_heads"), 3, "field 'kv_heads' is 3, expected a divisor of heads=4"),
    (("ops", 3, "k"), 7, "field 'k' is 7, expected kept_tokens=6"),
    (("ops", 4, "expert"), -1, "field 'expert' is -1"),
    (("ops", 4, "kind"), "conv", "field 'kind' is \"conv\", expected one of linear, attn_qk, attn_pv, moe_expert"),
    (("ops", 4, "bias"), 1, "field 'bias' is 1, expected no such field"),
    (("ops", 4, "name"), "l0.up", "field 'name' is repeated"),
]


@pytest.mark.parametrize(("where", "value", "expected"), CORRUPTIONS, ids=lambda v: str(v)[:30])
def test_corrupt_op_fields(tmp_path: Path, where: tuple, value: object, expected: str) -> None:
    small_workload().save(tmp_path / "w.json")
    manifest = json.loads((tmp_path / "w.json").read_text())
    _, index, key = where
    manifest["ops"][index][key] = value
    (tmp_path / "w.json").write_text(json.dumps(manifest))
    with pytest.raises(WorkloadError) as excinfo:
        load_workload(tmp_path / "w.json")
    name = value if key == "name" else manifest["ops"][index]["name"]
    msg = one_line_error(excinfo, f"{tmp_path / 'w.json'}: op {index} '{name}': ", expected)
    assert msg.startswith(str(tmp_path / "w.json"))


def test_missing_field(tmp_path: Path) -> None:
    small_workload().save(tmp_path / "w.json")
    manifest = json.loads((tmp_path / "w.json").read_text())
    del manifest["ops"][2]["heads"]
    (tmp_path / "w.json").write_text(json.dumps(manifest))
    with pytest.raises(WorkloadError) as excinfo:
        load_workload(tmp_path / "w.json")
    one_line_error(excinfo, "op 2 'l0.qk': field 'heads' is missing")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{not json", "not valid JSON"),
        ('{"format": 2, "model": "x", "meta": {}, "ops": []}', "field 'format' is 2, expected 1"),
        ('{"model": "x", "meta": {}, "ops": []}', "field 'format' is null, expected 1"),
        ('{"format": 1, "model": "x", "meta": {}, "ops": {}}', "field 'ops' is {}, expected a list"),
        ('{"format": 1, "model": "", "meta": {}, "ops": []}', "field 'model'"),
        ('{"format": 1, "model": "x", "meta": {}, "ops": [], "extra": 1}', "field 'extra' is unknown"),
        ('{"format": 1, "model": "x", "meta": {}, "ops": [3]}', "op 0: is 3, expected a JSON object"),
        ('{"format": 1, "model": "x", "meta": {}, "ops": [], "tensors": "/etc/x"}', "field 'tensors'"),
        (
            '{"format": 1, "model": "x", "meta": {}, "ops": [], "tensors": "none.safetensors"}',
            "expected a readable .safetensors file",
        ),
    ],
)
def test_corrupt_manifest(tmp_path: Path, text: str, expected: str) -> None:
    (tmp_path / "w.json").write_text(text)
    with pytest.raises(WorkloadError) as excinfo:
        load_workload(tmp_path / "w.json")
    one_line_error(excinfo, "w.json", expected)


def _alter(arrays: dict, key: str, fn) -> None:
    arrays[key] = fn(arrays[key])


TENSOR_CORRUPTIONS = [
    ("l0.up.q", lambda a: a[:, :4].copy(), "tensor 'l0.up.q' has shape (32, 4), expected (32, 8)"),
    ("l0.up.q", lambda a: np.full_like(a, 16), "tensor 'l0.up.q' has values 16..16, expected 0..15"),
    ("l0.up.scale", lambda a: a.astype(np.float32), "tensor 'l0.up.scale' has dtype float32"),
    ("l0.up.act", lambda a: a.astype(np.int32), "tensor 'l0.up.act' has dtype int32, expected int64, int16 or uint16"),
    ("l0.up.act", lambda a: a | 0x100, "tensor 'l0.up.act' has values"),
    ("l0.up.zero", lambda a: a[:1].copy(), "tensor 'l0.up.zero' has shape (1, 8), expected (2, 8)"),
    ("l0.down.act", lambda a: a | 0x7C00, "tensor 'l0.down.act' has FP16 Inf/NaN"),
    ("l0.down.zero", lambda a: a + 1, "tensor 'l0.down.zero' has values 1..1, expected 0..0"),
    ("l0.down.q", None, "tensor 'l0.down.q' is missing"),
    ("l0.qk.q", lambda a: a, "op 2 'l0.qk': tensor 'l0.qk.q' given for an attn_qk op"),
    ("l0.nope.q", lambda a: a, 'tensor "l0.nope.q" is unknown'),
]


@pytest.mark.parametrize(("key", "fn", "expected"), TENSOR_CORRUPTIONS, ids=[c[2][:40] for c in TENSOR_CORRUPTIONS])
def test_corrupt_tensors(tmp_path: Path, key: str, fn, expected: str) -> None:
    with_tensors(np.random.default_rng(3)).save(tmp_path / "w.json")
    arrays = load_file(tmp_path / "w.safetensors")
    if fn is None:
        del arrays[key]
    elif key in arrays:
        arrays[key] = fn(arrays[key])
    else:
        arrays[key] = arrays["l0.up.q"]
    save_file(arrays, tmp_path / "w.safetensors")
    with pytest.raises(WorkloadError) as excinfo:
        load_workload(tmp_path / "w.json")
    one_line_error(excinfo, "w.safetensors", expected)


def test_invalid_workload_is_not_saved(tmp_path: Path) -> None:
    w = with_tensors(np.random.default_rng(4))
    w.tensors["l0.up"].q[0, 0] = 99
    with pytest.raises(WorkloadError) as excinfo:
        w.save(tmp_path / "w.json")
    one_line_error(excinfo, "op 0 'l0.up': tensor 'l0.up.q' has values 0..99, expected 0..15")
    assert list(tmp_path.iterdir()) == []
    w.tensors["l0.up"].q[0, 0] = 0
    w.meta["bad"] = object()
    with pytest.raises(WorkloadError, match="field 'meta' cannot be written as JSON"):
        w.save(tmp_path / "w.json")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(WorkloadError, match="op 1 'b': field 'group' is 3, expected a divisor of k=8"):
        Workload("x", [Linear(name="a", m=1, n=1, k=8, group=8), Linear(name="b", m=1, n=1, k=8, group=3)])


def test_cli_show_and_builtin(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert (
        main(["builtin", "mistral-7b", "--prefill", "8", "--decode", "2", "--batch", "2", "-o", str(tmp_path / "m")])
        == 0
    )
    capsys.readouterr()
    assert main(["show", str(tmp_path / "m")]) == 0
    out = capsys.readouterr().out
    assert "decode.t2.layers.attn_pv" in out and out.splitlines()[-1].startswith("total: ")
    assert main(["show", "--json", str(tmp_path / "m")]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["totals"]["macs"] == load_workload(tmp_path / "m").totals().macs


@pytest.mark.parametrize(
    "args",
    [
        ["builtin", "gpt-5", "-o", "OUT"],
        ["builtin", "llama-2-7b", "--wbits", "5", "-o", "OUT"],
        ["builtin", "llama-2-7b", "--group", "100", "-o", "OUT"],
        ["builtin", "llama-2-7b", "--batch", "0", "-o", "OUT"],
        ["builtin", "llama-2-7b", "--prefill", "x", "-o", "OUT"],
        ["builtin", "llama-2-7b", "-o", "FILE/w"],
        ["show", "MISSING"],
        ["frobnicate"],
    ],
)
def test_cli_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture, args: list[str]) -> None:
    (tmp_path / "file").write_text("a user's file\n")
    args = [a.replace("OUT", str(tmp_path / "w")).replace("FILE", str(tmp_path / "file")) for a in args]
    args = [a.replace("MISSING", str(tmp_path / "missing.json")) for a in args]
    with pytest.raises(SystemExit) as excinfo:
        main(args)
    assert excinfo.value.code == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("python -m sim.workload") and err.count("\n") == 1
    assert [p.name for p in tmp_path.iterdir()] == ["file"]


def test_cli_as_module(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": 1, "model": "x", "meta": {}, "ops": [{"kind": "linear", "name": "a"}]}')
    for args, message in (
        (["show", str(bad)], f"{bad}: op 0 'a': field 'm' is missing, expected it in every linear op"),
        (["builtin", "llama-2-7b", "--kv-bits", "1", "-o", str(tmp_path / "w")], "field 'kv_bits' is 1"),
    ):
        run = subprocess.run([sys.executable, "-m", "sim.workload", *args], cwd=ROOT, capture_output=True, text=True)
        assert run.returncode == 2 and run.stdout == ""
        assert (
            len(run.stderr.splitlines()) == 1
            and run.stderr.startswith("python -m sim.workload")
            and message in run.stderr
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.json"]


def gemm_params(w: Workload) -> int:
    return sum(op.k * op.n * op.repeat for op in w.ops if isinstance(op, Linear))


def test_llama2_7b_parameter_count() -> None:
    cfg = MODELS["llama-2-7b"]
    params = gemm_params(builtin_workload("llama-2-7b", prefill=16, decode=0))
    assert params == builtin_workload("llama-2-7b", prefill=16, decode=0).totals().weight_params
    # 6.74e9 is the published total, which adds the token embedding and the RMSNorm weights (no GEMMs).
    published = params + cfg.vocab * cfg.hidden + (2 * cfg.layers + 1) * cfg.hidden
    assert published == 6_738_415_616
    assert abs(params + cfg.vocab * cfg.hidden - 6.74e9) / 6.74e9 < 0.01


def test_llama2_13b_and_mistral_parameter_counts() -> None:
    for model, total in (("llama-2-13b", 13.0e9), ("mistral-7b", 7.24e9)):
        cfg = MODELS[model]
        params = gemm_params(builtin_workload(model, prefill=4, decode=0)) + cfg.vocab * cfg.hidden
        assert abs(params - total) / total < 0.01, model


def test_mixtral_parameter_count() -> None:
    cfg = MODELS["mixtral-8x7b"]
    w = builtin_workload("mixtral-8x7b", prefill=64, decode=0)
    experts = {op.expert for op in w.ops if isinstance(op, MoeExpert)}
    assert experts == set(range(8))
    assert abs(gemm_params(w) + cfg.vocab * cfg.hidden - 46.7e9) / 46.7e9 < 0.01
    # 64 tokens x top-2 over 8 experts: 16 each.
    assert {op.m for op in w.ops if isinstance(op, MoeExpert)} == {16}


def test_expert_tokens() -> None:
    assert expert_tokens(1, 8, 2) == [1, 1, 0, 0, 0, 0, 0, 0]
    assert expert_tokens(5, 8, 2) == [2, 2, 1, 1, 1, 1, 1, 1]
    assert sum(expert_tokens(37, 8, 2)) == 74


@pytest.mark.parametrize("model", list(MODELS))
def test_builtin_shapes_and_macs(model: str) -> None:
    cfg = MODELS[model]
    s, t, b = 32, 5, 3
    w = builtin_workload(model, prefill=s, decode=t, batch=b, wbits=3, act="fp16", kv_bits=4)
    assert w.meta["decode"] == t and len(w.ops) == len({op.name for op in w.ops})
    decode = [op for op in w.ops if op.name.startswith("decode.")]
    for op in decode:
        if isinstance(op, MoeExpert):
            assert op.m <= b * cfg.top_k
        elif isinstance(op, Linear):
            assert op.m == b and op.repeat == (t if op.name.endswith("lm_head") else cfg.layers * t)
        else:
            assert op.m == 1 and op.repeat == cfg.layers * b and op.heads == cfg.heads
    contexts = sorted({op.context for op in decode if isinstance(op, AttnQK)})
    assert contexts == [s + i for i in range(1, t + 1)]
    assert all(op.wbits == 3 and op.act == "fp16" for op in w.ops if isinstance(op, Linear))
    # MACs: every token passes every projection once; attention is per sequence, head and layer.
    h, kv, i = cfg.hidden, cfg.kv_heads * cfg.head_dim, cfg.intermediate
    tokens = b * (s + t)
    mlp = 3 * h * i * (cfg.top_k if cfg.experts else 1) + h * cfg.experts
    linear = tokens * (cfg.layers * (2 * h * h + 2 * h * kv + mlp) + h * cfg.vocab)
    keys = s * s + sum(s + j for j in range(1, t + 1))
    attention = 2 * keys * cfg.head_dim * cfg.heads * cfg.layers * b
    assert w.totals().macs == linear + attention


def test_builtin_bad_arguments() -> None:
    with pytest.raises(WorkloadError, match="expected one of llama-2-7b, llama-2-13b, mistral-7b, mixtral-8x7b"):
        builtin_workload("llama-3-8b")
    with pytest.raises(WorkloadError, match="builtin 'mistral-7b': field 'kv_bits' is 3, expected one of 2, 4, 8, 16"):
        builtin_workload("mistral-7b", kv_bits=3)
    with pytest.raises(WorkloadError, match="prefill and decode are both 0"):
        builtin_workload("mistral-7b", prefill=0, decode=0)
    w = builtin_workload("llama-2-7b", prefill=0, decode=2)
    assert not any(op.name.startswith("prefill.") for op in w.ops)


def test_shapes_from_transformers_configs_match_the_builtins() -> None:
    from transformers import LlamaConfig, MixtralConfig

    from sim.model_shapes import ModelShape

    llama = LlamaConfig(
        hidden_size=4096,
        intermediate_size=11008,
        num_hidden_layers=32,
        num_attention_heads=32,
        num_key_value_heads=32,
        vocab_size=32000,
    )
    assert ModelShape.from_hf_config(llama) == MODELS["llama-2-7b"]
    assert ModelShape.from_hf_config(MixtralConfig()) == MODELS["mixtral-8x7b"]
