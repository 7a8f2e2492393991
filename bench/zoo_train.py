"""Zoo training speed and quality: the base model and its three variants, trained on the CPU.

Builds the zoo for each preset (default: "default" and "deep"; targets: "default" base plus three variants
trained in under 10 minutes on 2 cores, "deep" built in at most 40 minutes), then prints tokens/s of each
training run, the whole build's wall and CPU seconds (the machine may be shared: CPU seconds are the build's
own), the held-out table of base and variants on each task, whether each variant beats the base on its own
tasks, and the presets' base perplexities side by side. A cached zoo is reported from its record (figures
measured when it was built); --fresh builds in an empty temporary cache to measure again.

Writes bench/results/zoo_train.json. With --recall RECIPE it reports the recall model instead
(models.zoo.recall: per curriculum stage tokens, wall and CPU seconds, tokens per CPU second and final loss,
then the held-out dense recall with its bootstrap 95% CI) and writes bench/results/zoo_recall_RECIPE.json.

    python -m bench.zoo_train [--preset default deep] [--seed 0] [--fresh] [--recall default]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
from pathlib import Path

from models.zoo import recall, zoo
from models.zoo.data import TASKS
from models.zoo.evaluate import table
from models.zoo.presets import PRESETS
from sim.files import atomic_write

RESULTS = Path(__file__).resolve().parent / "results" / "zoo_train.json"


BUILD_TARGET_S = {"deep": 40 * 60}  # the deep preset's build target, seconds on 2 cores


def _report(preset: str, seed: int, fresh: bool) -> dict:
    """Build (or find) one preset's zoo, print its record and return it."""
    if fresh:
        with tempfile.TemporaryDirectory() as tmp:
            os.environ["MIXKIT_CACHE"] = tmp
            result = zoo.build_result(preset, seed)
    else:
        result = zoo.build_result(preset, seed)
    print(f"preset {preset}, seed {seed}, {result['parameters']:,} parameters")
    for name, src in result["corpus"].items():
        print(
            f"  corpus {name:<5} {src['files_used']:>5} of {src['files_found']:>5} files, "
            f"{src['chars_used']:>10,} chars"
        )
    for name, tr in result["training"].items():
        cpu = f"{tr['cpu_seconds']:>7.1f} s CPU" if "cpu_seconds" in tr else "  (CPU not recorded)"
        print(
            f"  train {name:<8} {tr['tokens']:>9,} tokens {tr['seconds']:>7.1f} s {cpu} {tr['tokens_per_s']:>7.0f} "
            f"tokens/s loss {tr['final_loss']:.3f}"
        )
    print(f"  data preparation {result['prep_seconds']:.1f} s; all training {result['train_seconds']:.1f} s")
    if "build_seconds" in result:
        target = BUILD_TARGET_S.get(preset)
        verdict = "" if target is None else f" (target <= {target} s: wall {result['build_seconds'] <= target}, "
        verdict += "" if target is None else f"CPU {result['build_cpu_seconds'] <= target})"
        print(f"  whole build {result['build_seconds']:.0f} s wall, {result['build_cpu_seconds']:.0f} s CPU{verdict}")
    print(table(result["evaluation"]))
    for variant, own in result["checks"].items():
        print(
            f"  {variant:<8} beats base: "
            + "; ".join(f"{t} ppl {c['ppl']}, accuracy {c['accuracy']}" for t, c in own.items())
        )
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.zoo_train", description=__doc__)
    p.add_argument("--preset", nargs="+", choices=list(PRESETS), default=["default", "deep"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--fresh", action="store_true", help="train again in an empty temporary cache")
    p.add_argument("--recall", choices=list(recall.RECIPES), help="report the recall model of this recipe instead")
    args = p.parse_args(argv)
    if args.recall:
        return _recall(args)
    results = {preset: _report(preset, args.seed, args.fresh) for preset in args.preset}
    base_ppl = {task: {n: r["evaluation"]["base"][task]["ppl"] for n, r in results.items()} for task in TASKS}
    print(
        "base model perplexity: "
        + "; ".join(f"{t} " + ", ".join(f"{n} {v:.2f}" for n, v in by.items()) for t, by in base_ppl.items())
    )
    out = {
        "seed": args.seed,
        "presets": {
            preset: {"settings": PRESETS[preset].__dict__, "result": result} for preset, result in results.items()
        },
        "base_ppl": base_ppl,
        "build_target_seconds": BUILD_TARGET_S,
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(RESULTS, json.dumps(out, indent=1) + "\n")
    return 0


def _recall(args: argparse.Namespace) -> int:
    if args.fresh:
        with tempfile.TemporaryDirectory() as tmp:
            os.environ["MIXKIT_CACHE"] = tmp
            result = json.loads((recall.build_recall(args.recall, args.seed) / "result.json").read_text())
    else:
        result = json.loads((recall.build_recall(args.recall, args.seed) / "result.json").read_text())
    print(f"recall model {args.recall}, seed {args.seed}, {result['parameters']:,} parameters")
    for st in result["training"]:
        sh = st["shape"]
        print(
            f"  stage {sh['length']:>4} tokens {sh['pairs']:>3} pairs {sh['queries']:>3} questions, copies "
            f"{st['copy_fraction']:.2f}: {st['steps']:>5} steps x {st['batch']:>3} = {st['tokens']:>9,} tokens, "
            f"{st['seconds']:>7.1f} s wall, {st['cpu_seconds']:>7.1f} s CPU, "
            f"{st['tokens_per_cpu_s']:>7.0f} tokens/CPU s, "
            f"loss {st['final_loss']:.3f}"
        )
    d = result["dense_recall"]
    print(
        f"  training {result['train_seconds']:.0f} s wall, {result['train_cpu_seconds']:.0f} s on one thread's CPU; "
        f"held-out dense recall {100 * d['mean']:.1f}% [{100 * d['ci95'][0]:.1f}, {100 * d['ci95'][1]:.1f}]"
    )
    out = {"recipe": args.recall, "seed": args.seed, "seeds": [args.seed], "result": result}
    path = RESULTS.parent / f"zoo_recall_{args.recall}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
