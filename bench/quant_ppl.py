"""Perplexity cost of MixPE-format quantization: FP32 against RTN and GPTQ at W8/W4/W3/W2, group 128.

Uses the zoo's base model and held-out task texts (`models.zoo.load("base", preset)`,
`models.zoo.task_texts(task, "test", preset)`) when models.zoo provides them; otherwise it trains a
small byte-level Llama here (hidden 128, 4 layers, `--train-steps` steps on the Python standard
library and /usr/share/common-licenses text) and says so in its output. Every weight format is
unsigned with a zero point; a layer whose in_features 128 does not divide gets the largest divisor
below 128 as its group (recorded in the results as layer_groups); activations are INT8 per token or
FP16. GPTQ calibrates on training texts, never on the held-out texts it is scored on.

Prints a table and writes bench/results/quant_ppl.json.

    python -m bench.quant_ppl [--preset default] [--calib 32] [--eval-tokens 16000]
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import sysconfig
import time
from pathlib import Path

import numpy as np
import torch

from models.quant import QuantConfig, QuantLinear, evaluate, quantize_model
from sim.files import atomic_write

RESULTS = Path(__file__).resolve().parent / "results" / "quant_ppl.json"
# The fallback model, trained once per step count (the training data and seed are fixed).
CACHE = Path(os.environ.get("MIXKIT_CACHE", Path.home() / ".cache" / "mixkit")) / "quant_bench"
BITS = (8, 4, 3, 2)
GROUP = 128
SEQ = 128


def _chunks(ids: list[int], seq: int) -> list[torch.Tensor]:
    return [torch.tensor(ids[i : i + seq]) for i in range(0, len(ids) - seq + 1, seq)]


def _zoo(preset: str, eval_tokens: int, calib: int) -> tuple[torch.nn.Module, dict, list, str] | None:
    """(model, held-out sequences per task, calibration sequences, source) from models.zoo, if it is ready."""
    try:
        from models import zoo

        model, tok = zoo.load("base", preset=preset)
        tasks = {}
        for task in ("code", "math", "english", "recall"):
            ids = tok("\n".join(zoo.task_texts(task, "test", preset=preset)))["input_ids"]
            tasks[task] = _chunks(ids, SEQ)[: max(1, eval_tokens // SEQ)]
        train = tok("\n".join(zoo.task_texts("english", "train", preset=preset)))["input_ids"]
        code = tok("\n".join(zoo.task_texts("code", "train", preset=preset)))["input_ids"]
        cal = [s for pair in zip(_chunks(train, SEQ), _chunks(code, SEQ), strict=False) for s in pair][:calib]
    except (ImportError, AttributeError):
        return None
    return model.float().eval(), tasks, cal, f"models.zoo base model, preset '{preset}'"


def _local_texts() -> dict[str, tuple[bytes, bytes]]:
    """(train, held-out) bytes per task from files on every machine; whole files never straddle splits."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    code = sorted(p for p in stdlib.glob("*.py"))
    english = sorted(p for p in Path("/usr/share/common-licenses").glob("*") if p.is_file())
    out = {}
    for task, files in (("code", code), ("english", english)):
        data = [p.read_bytes() for p in files]
        held = b"\n".join(data[::5])
        train = b"\n".join(d for i, d in enumerate(data) if i % 5)
        out[task] = (train, held)
    return out


def _train(model: torch.nn.Module, train: dict[str, torch.Tensor], steps: int) -> None:
    """AdamW with one-cycle lr, batches of 16 x 128 bytes alternating code and English."""
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps, pct_start=0.1)
    rng = np.random.default_rng(0)
    model.train()
    for step in range(steps):
        stream = train["code" if step % 2 else "english"]
        starts = rng.integers(0, len(stream) - SEQ, 16)
        batch = torch.stack([stream[s : s + SEQ] for s in starts])
        loss = model(input_ids=batch, labels=batch).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()


def _trained_local(steps: int, eval_tokens: int, calib: int) -> tuple[torch.nn.Module, dict, list, str]:
    """Train a byte-level Llama (vocab 256) for `steps` AdamW steps of 16 x 128 tokens."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    texts = _local_texts()
    cfg = LlamaConfig(
        vocab_size=256,
        hidden_size=128,
        intermediate_size=384,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=SEQ,
        attn_implementation="eager",
    )
    model = LlamaForCausalLM(cfg)
    train = {t: torch.frombuffer(bytearray(tr), dtype=torch.uint8).long() for t, (tr, _) in texts.items()}
    cached = CACHE / f"byte_llama_v1_steps{steps}.pt"
    if cached.exists():
        model.load_state_dict(torch.load(cached))
    else:
        _train(model, train, steps)
        cached.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(cached, lambda tmp: torch.save(model.state_dict(), tmp))
    model.eval()
    tasks = {t: _chunks(list(held), SEQ)[: max(1, eval_tokens // SEQ)] for t, (_, held) in texts.items()}
    cal_rng = np.random.default_rng(1)
    cal = []
    for i in range(calib):
        stream = train["code" if i % 2 else "english"]
        s = int(cal_rng.integers(0, len(stream) - SEQ))
        cal.append(stream[s : s + SEQ])
    source = f"models.zoo not ready: byte-level Llama (hidden 128, 4 layers) trained here for {steps} steps"
    return model, tasks, cal, source


def _eval(model: torch.nn.Module, tasks: dict) -> tuple[dict[str, float], dict[str, float]]:
    """(perplexity, top-1 next-token accuracy) per task."""
    scores = {task: evaluate(model, seqs) for task, seqs in tasks.items()}
    return {t: s["ppl"] for t, s in scores.items()}, {t: s["top1"] for t, s in scores.items()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.quant_ppl", description=__doc__)
    p.add_argument("--preset", default="default", help="zoo preset")
    p.add_argument("--calib", type=int, default=32, help="GPTQ calibration sequences of 128 tokens")
    p.add_argument("--eval-tokens", type=int, default=16_000, help="held-out tokens scored per task")
    p.add_argument("--train-steps", type=int, default=400, help="fallback model's training steps")
    args = p.parse_args(argv)
    torch.set_num_threads(2)

    t0 = time.time()
    loaded = _zoo(args.preset, args.eval_tokens, args.calib)
    model, tasks, cal, source = loaded or _trained_local(args.train_steps, args.eval_tokens, args.calib)
    print(f"model: {source} ({time.time() - t0:.0f} s)", flush=True)
    fp, fp_top1 = _eval(model, tasks)
    head = "".join(f"{t:>16}" for t in tasks)
    print(f"{'config (ppl, vs fp32)':<24}{head}{'mean incr.':>12}{'top-1':>8}{'time s':>8}")
    print(
        f"{'fp32':<24}" + "".join(f"{fp[t]:>16.3f}" for t in tasks) + f"{'':>12}{np.mean(list(fp_top1.values())):>8.3f}"
    )

    rows = []
    for act in ("int8", "fp16"):
        for wbits in BITS:
            for method in ("rtn", "gptq"):
                cfg = QuantConfig(
                    wbits=wbits, group=GROUP, act=act, method=method, calib_samples=args.calib, uneven="divisor"
                )
                t = time.time()
                qm = quantize_model(copy.deepcopy(model), cfg, cal)
                ppl, top1 = _eval(qm, tasks)
                incr = {k: 100.0 * (ppl[k] / fp[k] - 1.0) for k in tasks}
                mean = float(np.mean(list(incr.values())))
                seconds = time.time() - t
                rows.append(
                    {
                        **cfg.as_dict(),
                        "name": cfg.name(),
                        "ppl": ppl,
                        "top1": top1,
                        "increase_pct": incr,
                        "mean_increase_pct": mean,
                        "seconds": seconds,
                    }
                )
                cells = "".join(f"{ppl[k]:>9.3f}{incr[k]:>+6.1f}%" for k in tasks)
                acc = np.mean(list(top1.values()))
                print(f"{cfg.name():<24}{cells}{mean:>+11.2f}%{acc:>8.3f}{seconds:>8.1f}", flush=True)

    by = {r["name"]: r for r in rows}
    checks = {
        f"gptq_beats_rtn_w{b}_a{a}": by[f"w{b}u_g{GROUP}_a{a}_gptq"]["mean_increase_pct"]
        < by[f"w{b}u_g{GROUP}_a{a}_rtn"]["mean_increase_pct"]
        for a in ("int8", "fp16")
        for b in (3, 2)
    }
    print("GPTQ beats RTN:", ", ".join(f"{k}={v}" for k, v in checks.items()))
    result = {
        "model": source,
        "group": GROUP,
        "layer_groups": sorted({(m.in_features, m.group) for m in qm.modules() if isinstance(m, QuantLinear)}),
        "seq_len": SEQ,
        "calib_sequences": len(cal),
        "eval_tokens_per_task": {t: sum(len(s) for s in seqs) for t, seqs in tasks.items()},
        "fp32_ppl": fp,
        "fp32_top1": fp_top1,
        "quantized": rows,
        "checks": checks,
        "seconds": time.time() - t0,
        "machine": {"python": platform.python_version(), "torch": torch.__version__, "threads": 2},
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(RESULTS, json.dumps(result, indent=1) + "\n")
    print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
