"""Modeled decode throughput with a compressed KV cache, relative to KV8, on the MixPE array.

For each model shape and prompt length S, models.kv.workload builds the decode phase (T steps, batch B) under
each KV setting, and sim.replay runs it on a 32 x 32 MixPE array (W4A8, group 128; PE area, clock and energy
from synthesis, cached) with the default memory (256/512 KiB buffers, 32 bytes per cycle of DRAM).
Throughput is B x T / (seconds of all decode ops); the gain is that over KV8's at the same S.

Settings: KV16, KV8, KV4 and KIVI-2 (2-bit with a 32-token FP16 residual window) on every shape; the tuned
KVTuner configs of bench/results/kvtuner.json, one per tuning seed, on the zoo shape they were tuned for (when
its layer count matches); and KV8 with a cache kept to context / R tokens (R = 4, 8, 16: the budget
AttentionPredictor is evaluated at; the predictor's own cost is not in these numbers). Shapes: the zoo preset's
model (--preset, default deep: 12 layers, hidden 128) and llama-2-7b (32 layers, 4096).

Statistics: the replay is deterministic, so the only random input is the tuned config of each KVTuner seed
(`seeds` in the JSON are kvtuner.json's). Every figure holds mean and 95% CI over those seeds (a setting that no
seed changes has n = 1 and a zero-width CI), and a tuned config is called faster than KV4 only when the CI of
the paired gain difference (same shape, batch, prompt and seed) excludes 0. There are no evaluation windows:
each case is one modeled decode.

    python -m bench.kv_decode [--preset deep] [--decode 16] [--batch 1 8] [--prompts 512 2048 8192 32768]

Prints a table and writes bench/results/kv_decode.json and .png (kv_decode_PRESET for another preset; the
tuned configs come from the same preset's kvtuner JSON).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from bench import MODEL_PRESET, RESULTS, result_stem
from models.kv.config import KVConfig
from models.kv.workload import decode_workload, kept_table
from models.stats import paired, summary
from models.zoo.presets import PRESETS, get_preset
from sim.files import atomic_write
from sim.model_shapes import MODELS, ModelShape
from sim.perf_model import MemoryConfig
from sim.replay import main_precision, pe_config, replay, synthesized_cost

UNIFORM = ("KV16", "KV8", "KV4", "KIVI-2")
RATIOS = (4, 8, 16)
PAPER = {"KVTuner": "+38.3% throughput vs KV8 (Llama-3.1-8B)", "AttentionPredictor": "16x KV compression"}


def zoo_shape(preset: str) -> ModelShape:
    """The model shape of a zoo preset's Llama."""
    p = get_preset(preset)
    return ModelShape(
        hidden=p.hidden_size,
        intermediate=p.intermediate_size,
        layers=p.num_layers,
        heads=p.num_heads,
        kv_heads=p.num_kv_heads,
        vocab=p.vocab_size,
    )


def tuned_configs(path: Path, layers: int) -> tuple[list[int], dict[str, list[KVConfig]]]:
    """(the tuning seeds, tuned config name -> one config per seed) of a kvtuner.json, if its configs have
    `layers` layers; ([], {}) otherwise or when there is no such file."""
    if not path.is_file():
        return [], {}
    tuning = json.loads(path.read_text()).get("tuning", [])
    configs: dict[str, list[KVConfig]] = {}
    for run in tuning:
        for name, cfg in run["tuned_configs"].items():
            configs.setdefault(name, []).append(KVConfig.from_dict(cfg, str(path)))
    if not configs or any(len(c.pairs) != layers for cs in configs.values() for c in cs):
        return [], {}
    return [run["seed"] for run in tuning], configs


def settings(shape_name: str, layers: int, tuned: dict[str, list[KVConfig]]) -> dict[str, tuple[list[KVConfig], float]]:
    """Name -> (KV configs: one, or one per tuning seed; compression ratio) compared on one shape."""
    out = {name: ([KVConfig.preset(name, layers)], 1.0) for name in UNIFORM}
    if shape_name.startswith("zoo-"):
        out |= {name: (configs, 1.0) for name, configs in tuned.items()}
    out |= {f"KV8 keep 1/{r}": ([KVConfig.preset("KV8", layers)], float(r)) for r in RATIOS}
    return out


def _plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cases = sorted({(r["shape"], r["batch"]) for r in rows})
    color = {name: f"C{i}" for i, name in enumerate(dict.fromkeys(r["setting"] for r in rows))}  # same in every panel
    fig, axes = plt.subplots(1, len(cases), figsize=(4.2 * len(cases), 3.6), squeeze=False)
    for ax, (shape, batch) in zip(axes[0], cases, strict=True):
        for name in dict.fromkeys(r["setting"] for r in rows if r["shape"] == shape):
            pts = [r for r in rows if (r["shape"], r["batch"], r["setting"]) == (shape, batch, name)]
            ax.plot([r["prompt"] for r in pts], [r["gain_vs_kv8"] for r in pts], "o-", ms=3, c=color[name], label=name)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("prompt tokens S")
        ax.set_ylabel("decode throughput / KV8's")
        ax.set_title(f"{shape}, batch {batch}", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6)
    fig.tight_layout()
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=120))
    plt.close(fig)


def figures(rows: list[dict], seed: int) -> list[dict]:
    """One row per (shape, batch, prompt, setting): kv_avg_bits, ratio, and mean with 95% CI over the tuning
    seeds of tokens_per_s, gain_vs_kv8, dram_mb_per_token and energy_uj_per_token."""
    out: dict[tuple, list[dict]] = {}
    for r in rows:
        out.setdefault((r["shape"], r["batch"], r["prompt"], r["setting"]), []).append(r)
    keys = ("tokens_per_s", "gain_vs_kv8", "dram_mb_per_token", "energy_uj_per_token")
    return [
        dict(shape=k[0], batch=k[1], prompt=k[2], setting=k[3], ratio=rs[0]["ratio"])
        | {"kv_avg_bits": float(np.mean([r["kv_avg_bits"] for r in rs]))}
        | {key: summary([r[key] for r in rs], seed) for key in keys}
        for k, rs in out.items()
    ]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench.kv_decode", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--preset", choices=list(PRESETS), default=MODEL_PRESET, help="zoo preset's shape (default deep)")
    p.add_argument("--decode", type=int, default=16, help="decode steps T per case (default 16)")
    p.add_argument("--batch", type=int, nargs="+", default=[1, 8], help="batch sizes B (default 1 8)")
    p.add_argument("--prompts", type=int, nargs="+", default=[512, 2048, 8192, 32768], help="prompt lengths S")
    args = p.parse_args(argv)

    zoo_name = f"zoo-{args.preset}"
    shapes = {zoo_name: zoo_shape(args.preset), "llama-2-7b": MODELS["llama-2-7b"]}
    seeds, tuned = tuned_configs(result_stem("kvtuner", args.preset).with_suffix(".json"), shapes[zoo_name].layers)
    compared = {name: settings(name, shape.layers, tuned) for name, shape in shapes.items()}
    mem = MemoryConfig()
    rows: list[dict] = []
    cost = None
    start = time.perf_counter()
    cases = [(s, b, n) for s in shapes for b in args.batch for n in args.prompts]
    for shape_name, batch, prompt in tqdm(cases, desc="decode replays"):
        shape = shapes[shape_name]
        case: list[dict] = []
        for name, (configs, ratio) in compared[shape_name].items():
            kept = kept_table(prompt, args.decode, shape.layers, ratio)
            for i, kv in enumerate(configs):
                w = decode_workload(shape_name, shape, kv, prompt, args.decode, kept, batch=batch)
                cost = cost or synthesized_cost(pe_config("mixpe", main_precision(w)))  # same PE for every case
                totals = replay(w, "mixpe", 32, 32, mem, pe_cost=cost).totals
                case.append(
                    dict(
                        shape=shape_name,
                        batch=batch,
                        prompt=prompt,
                        setting=name,
                        seed=seeds[i] if len(configs) > 1 else None,
                        kv_avg_bits=kv.avg_bits,
                        ratio=ratio,
                        tokens_per_s=batch * args.decode / totals["seconds"],
                        dram_mb_per_token=totals["dram_bytes"] / (batch * args.decode) / 1e6,
                        energy_uj_per_token=totals["energy_j"] * 1e6 / (batch * args.decode),
                    )
                )
        kv8 = next(r["tokens_per_s"] for r in case if r["setting"] == "KV8")
        rows += [r | {"gain_vs_kv8": r["tokens_per_s"] / kv8} for r in case]
    seconds = time.perf_counter() - start
    table = figures(rows, seeds[0] if seeds else 0)

    comparisons = {}
    for name in tuned:
        mine = [r for r in rows if r["setting"] == name]
        kv4 = {(r["shape"], r["batch"], r["prompt"]): r["gain_vs_kv8"] for r in rows if r["setting"] == "KV4"}
        gains = [r["gain_vs_kv8"] for r in mine]
        comparisons[f"{name}-KV4"] = {
            "gain_vs_kv8": paired(gains, [kv4[(r["shape"], r["batch"], r["prompt"])] for r in mine], True, seeds[0])
        }

    print(f"decode throughput gain vs KV8 (T = {args.decode} steps; MixPE 32x32, W4A8 g128); tuned: mean over seeds")
    for shape_name in shapes:
        for batch in args.batch:
            print(f"\n{shape_name}, batch {batch}: " + "  ".join(f"S={n:>6}" for n in args.prompts))
            for name in dict.fromkeys(r["setting"] for r in table if r["shape"] == shape_name):
                gains = [
                    r["gain_vs_kv8"]["mean"]
                    for r in table
                    if (r["shape"], r["batch"], r["setting"]) == (shape_name, batch, name)
                ]
                print(f"  {name:<16}" + "  ".join(f"{g:8.2f}x" for g in gains))
    for name, c in comparisons.items():
        g = c["gain_vs_kv8"]
        print(
            f"{name}: gain difference {g['mean']:+.3f} [{g['ci95'][0]:+.3f}, {g['ci95'][1]:+.3f}] "
            f"(faster: {'tuned' if g['better'] == 'a' else 'KV4' if g['better'] == 'b' else 'neither'})"
        )
    if not tuned:
        print(f"no tuned configs: the {args.preset} preset's kvtuner JSON is missing or tuned on another shape")
    print(f"\npaper: {PAPER}; replay time {seconds:.1f} s")
    RESULTS.mkdir(exist_ok=True)
    payload = dict(
        settings=dict(
            preset=args.preset,
            decode=args.decode,
            batch=args.batch,
            prompts=args.prompts,
            array="mixpe 32x32",
            weights="W4A8 group 128",
            memory=mem.__dict__,
        ),
        seeds=seeds,
        machine=platform.machine(),
        paper=PAPER,
        seconds=seconds,
        figures=table,
        comparisons=comparisons,
        rows=rows,
    )
    stem = result_stem("kv_decode", args.preset)
    atomic_write(stem.with_suffix(".json"), json.dumps(payload, indent=1))
    _plot([r | {"gain_vs_kv8": r["gain_vs_kv8"]["mean"]} for r in table], stem.with_suffix(".png"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
