"""models.export and the end-to-end proof: a quantized zoo model run through the simulated MixPE array."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from hw.config import ArrayConfig
from models import zoo
from models.export import export, main
from models.quant import QuantConfig, capture_operands, evaluate, quantize_model, set_engine
from sim.gemm import run_gemm
from sim.perf_model import MemoryConfig
from sim.replay import exact_check
from sim.workload import Attention, Linear, load_workload

Q = QuantConfig(wbits=4, group=32, act="int8", quantize_lm_head=True)


def _cycle_model_engine(calls: list):
    """An engine running every GEMM on a 4 x 4 MixPE array's cycle-exact model."""

    def engine(ops, pe):
        calls.append(ops.shape)
        return run_gemm(ArrayConfig(pe, 4, 4), ops)[0]

    return engine


@pytest.mark.parametrize("act", ["int8", "fp16"])
def test_zoo_model_on_the_simulated_array_equals_torch(tiny_zoo, act: str) -> None:
    """Logits and perplexity through the cycle model equal the torch model's exactly, for FP16 too:
    the PE aligns FP16 to 2^-24 and never rounds, so both paths compute the same integers."""
    model, tokenizer = zoo.load(tiny_zoo["base"])
    q = quantize_model(model, QuantConfig(wbits=4, group=32, act=act, quantize_lm_head=True))
    seqs = zoo.token_windows(tokenizer, "code", "test", seq_len=24, limit=2, preset="tiny")
    ids = seqs[0][None]
    with torch.no_grad():
        torch_logits = q(input_ids=ids).logits
    torch_scores = evaluate(q, seqs)
    calls: list = []
    set_engine(q, _cycle_model_engine(calls))
    with torch.no_grad():
        array_logits = q(input_ids=ids).logits
    assert len(calls) == 2 * 7 + 1  # every decoder linear and lm_head ran on the array
    assert torch.equal(array_logits, torch_logits)
    assert evaluate(q, seqs) == torch_scores
    set_engine(q, None)
    fp, _ = zoo.load(tiny_zoo["base"])
    with torch.no_grad():
        fp_logits = fp(input_ids=ids).logits
    # ...and the quantized model is still the model: close to FP32, not equal to it.
    assert not torch.equal(fp_logits, torch_logits)
    assert torch.corrcoef(torch.stack([fp_logits.flatten(), torch_logits.flatten()]))[0, 1] > 0.9


def test_tensor_export_replays_exactly(tiny_zoo, tmp_path) -> None:
    w = export(str(tiny_zoo["base"]), prefill=40, decode=2, qcfg=Q, tensors=True, preset="tiny")
    shape = export(str(tiny_zoo["base"]), prefill=40, decode=2, qcfg=Q, preset="tiny")
    assert w.totals() == shape.totals()  # the real run is the same GEMMs the shape model counts
    assert len(w.tensors) == 3 * (2 * 7 + 1)
    assert sum(isinstance(op, Attention) for op in w.ops) == 2 * 3
    w.save(tmp_path / "w.json")
    loaded = load_workload(tmp_path / "w.json")
    assert loaded.meta["quant"]["wbits"] == 4 and set(loaded.meta["frac_bits"]) == set(w.tensors)

    # The prefill operands are those of the quantized model on the same prompt.
    model, tokenizer = zoo.load(tiny_zoo["base"])
    q = quantize_model(model, Q)
    prompt = zoo.token_windows(tokenizer, "english", "test", seq_len=40, limit=1, preset="tiny")[0][None]
    name = "model.layers.1.mlp.down_proj"
    expected = capture_operands(q, prompt)[name]
    got = loaded.operands(f"prefill.{name}")
    assert all(np.array_equal(getattr(got, p), getattr(expected, p)) for p in ("act", "q", "scale", "zero"))
    decode_ops = [op for op in loaded.ops if op.name.startswith("decode.t2.") and op.name in loaded.tensors]
    assert decode_ops and all(op.m == 1 for op in decode_ops)

    checks = exact_check(loaded, "mixpe", 4, 4, MemoryConfig())
    assert len(checks) == len(w.tensors)
    assert all(c["outputs_match_torch"] and c["cycles_model"] == c["cycles_tile_model"] for c in checks)


def test_cli_shape_export_and_uneven_groups(tiny_zoo, tmp_path, capsys) -> None:
    out = tmp_path / "shape"
    args = [str(tiny_zoo["base"]), "--preset", "tiny", "--group", "48", "--prefill", "16", "--decode", "2"]
    assert main([*args, "--fp-lm-head", "--json", "-o", str(out)]) == 0
    totals = json.loads(capsys.readouterr().out)
    w = load_workload(out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shape"] and totals["output"] == str(out / "workload.json")
    assert totals["ops"] == len(w.ops) and w.meta["host_ops"] == ["lm_head"]
    assert not any("lm_head" in op.name for op in w.ops)
    groups = {op.name.rsplit(".", 1)[-1]: op.group for op in w.ops if isinstance(op, Linear)}
    assert groups["q_proj"] == 32 and groups["down_proj"] == 40  # 48 fits neither 64 nor 160
    assert main([*args, "--uneven", "error", "-o", str(tmp_path / "no")]) == 2
    assert "group" in capsys.readouterr().err


@pytest.mark.parametrize(
    "case,match",
    [
        ("missing", "no checkpoint folder"),
        ("gpt2", "unsupported architecture 'gpt2'"),
        ("wbits", "weight bits 5"),
        ("batch", "--batch 1"),
        ("long", "exceeds the model's"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(tiny_zoo, tmp_path, capsys, case: str, match: str) -> None:
    model = str(tiny_zoo["base"])
    extra: list[str] = []
    if case == "missing":
        model = str(tmp_path / "nowhere")
    elif case == "gpt2":
        (tmp_path / "gpt2").mkdir()
        (tmp_path / "gpt2" / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
        model = str(tmp_path / "gpt2")
    elif case == "wbits":
        extra = ["--wbits", "5"]
    elif case == "batch":
        extra = ["--tensors", "--batch", "2"]
    else:
        extra = ["--tensors", "--prefill", "4000"]
    out = tmp_path / "out" / "w"
    assert (
        main([model, "--preset", "tiny", "--group", "32", "--prefill", "8", "--decode", "1", *extra, "-o", str(out)])
        == 2
    )
    err = capsys.readouterr().err.strip()
    assert match in err and "\n" not in err
    assert not out.exists() and (not out.parent.exists() or not any(out.parent.iterdir()))


def test_demo_runs_a_zoo_model_on_the_array(tiny_zoo) -> None:
    from models.demo import TASKS, increase_pct, on_the_array

    model, tokenizer = zoo.load(tiny_zoo["base"])
    q = quantize_model(model, Q)
    ids = zoo.token_windows(tokenizer, "math", "test", seq_len=16, limit=1, preset="tiny")[0][None]
    result = on_the_array(q, ids)
    assert result["logits_equal"] and result["gemms"] == 2 * 7 + 1 and result["cycles"] > 0
    assert all(m.engine is None for m in q.modules() if hasattr(m, "engine"))  # torch again afterwards
    ref = {t: {"ppl": 10.0} for t in TASKS}
    assert increase_pct({t: {"ppl": 11.0} for t in TASKS}, ref) == pytest.approx(10.0)
