"""CMoE on the default zoo base model: perplexity vs activated FFN parameters, before and after a short fine-tune.

Layouts (d_ff = 688 on the default preset): S2A2E16 = 25% (--shared 86, 14 routed experts, top-2) and S4A4E16 =
50% (--shared 172, 12 routed experts, top-4), as CMoE names them (S shared, A active routed, E total experts of 43
neurons). Each is carved training-free from --calib windows of zoo training text (English and code), scored on
held-out windows per task (code, english, math) and on the zoo's task accuracies (math exact match and answer
top-1, key-value recall; teacher-forced, zoo.evaluate), then fine-tuned for --steps steps (batch 4 windows, MoE layers
only) and scored again. Because the zoo base model is itself under-trained, the same fine-tune is also applied to
the dense model (carved with every neuron shared, which is exactly the dense FFN) as the fair reference. The
routed prefill workload (models.moe.workload) of one held-out code window gives the MLP MACs vs dense, and its
replay on a 16 x 16 MixPE array (W4A8, group fitted to each layer; sim.replay, PE costs from synthesis) the
cycles and energy of the whole prefill vs the dense model's.

    python -m bench.cmoe [--preset default] [--steps 150]

Prints a table and writes bench/results/cmoe.json and bench/results/cmoe.png; one torch thread.
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import torch

from bench import save_results
from models import zoo
from models.moe import activated_parameters, carve, finetune, routed_workload, training_windows
from models.moe.__main__ import TASKS, task_ppl
from sim.files import atomic_write
from sim.perf_model import MemoryConfig
from sim.replay import replay

SEQ = 128
# name -> (shared experts, active routed, total) in units of d_ff / 16 neurons.
LAYOUTS = {"S2A2E16 (25%)": (2, 2, 16), "S4A4E16 (50%)": (4, 4, 16)}
# task accuracies of zoo.evaluate (held-out examples, teacher-forced): name -> (task, key)
ACCURACY = {
    "math EM": ("math", "exact_match"),
    "math ans-top1": ("math", "answer_top1"),
    "recall": ("recall", "exact_match"),
}


def _mlp_macs(workload) -> int:
    return sum(
        op.macs
        for op in workload.ops
        if op.kind == "moe_expert" or ".shared_expert." in op.name or op.name.endswith(".router")
    )


def _replay(workload) -> dict:
    """Cycles and energy (J) of the workload on a 16 x 16 MixPE array with the default memory."""
    totals = replay(workload, "mixpe", 16, 16, MemoryConfig()).totals
    return {"cycles": totals["cycles"], "energy_j": totals["energy_j"]}


def _plot(rows: dict, dense: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(TASKS), figsize=(10, 3.2))
    for ax, task in zip(axes, TASKS, strict=True):
        for stage, marker in (("carved", "o"), ("finetuned", "s")):
            xs = [100 * r["activated"]["ffn_ratio"] for r in rows.values()]
            ax.plot(xs, [r["ppl"][stage][task] for r in rows.values()], marker=marker, label=stage)
        ax.axhline(dense["dense"][task], color="gray", ls="--", label="dense")
        ax.axhline(dense["dense_finetuned"][task], color="black", ls=":", label="dense, same fine-tune")
        ax.set_title(task, fontsize=9)
        ax.set_xlabel("activated FFN parameters (%)")
    axes[0].set_ylabel("perplexity")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110))
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench.cmoe", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--preset", default="default", help="zoo preset (default: default)")
    p.add_argument("--calib", type=int, default=16, help=f"calibration windows of {SEQ} tokens (default 16)")
    p.add_argument("--eval-windows", type=int, default=8, help=f"held-out windows of {SEQ} tokens per task")
    p.add_argument("--steps", type=int, default=150, help="fine-tune steps, batch 4 windows (default 150)")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    t_all = time.time()
    dense, tokenizer = zoo.load("base", args.preset)
    calib = zoo.calibration_windows(tokenizer, SEQ, args.calib, args.preset)
    data = training_windows(tokenizer, args.preset, SEQ, 4 * args.steps)
    probe = zoo.token_windows(tokenizer, "code", "test", SEQ, 1, args.preset)[0]

    def ppl(m):
        return task_ppl(m, tokenizer, args.preset, SEQ, args.eval_windows, 0)

    def accuracy(m) -> dict[str, float]:
        scores = zoo.evaluate(m, tokenizer, args.preset)
        return {name: scores[task][key] for name, (task, key) in ACCURACY.items()}

    d = dense.config.intermediate_size
    ref = {"dense": ppl(dense), "dense_accuracy": accuracy(dense)}
    same, _ = carve(dense, calib, 0, 0, d, progress=False)  # every neuron shared: exactly the dense FFN
    t0 = time.time()
    finetune(same, data, args.steps, progress=False)
    ref["dense_finetuned"] = ppl(same)
    ref["dense_finetuned_accuracy"] = accuracy(same)
    ref["dense_finetune_seconds"] = round(time.time() - t0, 2)
    dense_w = routed_workload(same, probe)
    dense_mlp, dense_hw = _mlp_macs(dense_w), _replay(dense_w)
    ref["dense_replay"] = dense_hw
    rows = {}
    for name, (n_shared, top_k, total) in LAYOUTS.items():
        experts, shared = total - n_shared, n_shared * d // total
        model, stats = carve(dense, calib, experts, top_k, shared, progress=False)
        row = {
            "experts": experts,
            "top_k": top_k,
            "shared": shared,
            "carve_seconds": round(stats["seconds"], 3),
            "activated": activated_parameters(model),
            "ppl": {"carved": ppl(model)},
            "accuracy": {"carved": accuracy(model)},
        }
        t0 = time.time()
        row["finetune"] = finetune(model, data, args.steps, progress=False)
        row["finetune_seconds"] = round(time.time() - t0, 2)
        row["ppl"]["finetuned"] = ppl(model)
        row["accuracy"]["finetuned"] = accuracy(model)
        w = routed_workload(model, probe)
        row["workload"] = {
            "prefill": SEQ,
            "mlp_macs": _mlp_macs(w),
            "mlp_macs_ratio_vs_dense": _mlp_macs(w) / dense_mlp,
            "replay": _replay(w),
            "routed_counts": w.meta["routed_counts"],
        }
        row["increase_pct"] = {
            stage: {t: 100 * (row["ppl"][stage][t] / ref["dense"][t] - 1) for t in TASKS}
            for stage in ("carved", "finetuned")
        }
        row["increase_vs_dense_finetuned_pct"] = {
            t: 100 * (row["ppl"]["finetuned"][t] / ref["dense_finetuned"][t] - 1) for t in TASKS
        }
        rows[name] = row
        print(f"{name}: carved in {row['carve_seconds']:.2f} s", flush=True)

    print(
        f"\nzoo base ({args.preset}), perplexity per held-out task ({args.eval_windows} x {SEQ} tokens); "
        f"fine-tune {args.steps} steps x 4 x {SEQ} tokens"
    )
    print(
        f"{'model':<34}"
        + "".join(f"{t:>10}" for t in TASKS)
        + "".join(f"{a + ' %':>16}" for a in ACCURACY)
        + f"{'carve s':>9}{'MLP MACs':>10}"
    )

    def line(label: str, ppls: dict, acc: dict, extra: str = "") -> None:
        cells = "".join(f"{ppls[t]:>10.3f}" for t in TASKS) + "".join(f"{100 * acc[a]:>16.1f}" for a in ACCURACY)
        print(f"{label:<34}{cells}{extra}")

    line("dense", ref["dense"], ref["dense_accuracy"])
    line("dense + same fine-tune", ref["dense_finetuned"], ref["dense_finetuned_accuracy"])
    for name, r in rows.items():
        for stage in ("carved", "finetuned"):
            extra = (
                f"{r['carve_seconds']:>9.2f}{100 * r['workload']['mlp_macs_ratio_vs_dense']:>9.1f}%"
                if stage == "carved"
                else ""
            )
            line(f"{name} {stage}", r["ppl"][stage], r["accuracy"][stage], extra)
    d = ref["dense_replay"]
    print(
        f"\nprefill of {SEQ} tokens on a 16x16 MixPE array: dense {d['cycles']:,} cycles, {1e3 * d['energy_j']:.3f} mJ"
    )
    for name, r in rows.items():
        h = r["workload"]["replay"]
        print(
            f"  {name}: {h['cycles']:,} cycles ({100 * h['cycles'] / d['cycles']:.1f}%), "
            f"{1e3 * h['energy_j']:.3f} mJ ({100 * h['energy_j'] / d['energy_j']:.1f}%)"
        )
    result = {
        "settings": {**vars(args), "seq_len": SEQ, "threads": 1, "batch": 4, "layouts": LAYOUTS},
        "reference": ref,
        "layouts": rows,
        "total_seconds": round(time.time() - t_all, 1),
        "machine": {"python": platform.python_version(), "torch": torch.__version__},
    }
    path = save_results("cmoe", result, lambda png: _plot(rows, ref, png))
    print(f"total {result['total_seconds']} s; wrote {path} and cmoe.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
