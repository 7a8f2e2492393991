"""The steps the CLI and the benchmark share: load the original and pruned models, score the pool once, select
with any method, save and load selection files, train, evaluate, and compare methods across budgets."""

from __future__ import annotations

import copy
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from models.recover.errors import RecoverError
from models.recover.instructions import Sample, from_json, to_json
from models.recover.select import METHODS, Selection, select
from sim.files import atomic_write

SELECTION_FORMAT = 1
TASKS = ("code", "math", "english", "recall")


def parse_drop(text: str | None) -> list[int]:
    """Block indices from "1" or "1,2" (empty for None or "")."""
    if not text:
        return []
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError as e:
        raise RecoverError(f"--drop {text!r} is not a comma-separated list of block indices, e.g. 1 or 1,2") from e


def load_model(
    name_or_path: str, preset: str, drop: list[int] | None = None, device: str = "cpu", dtype: str = "float32"
):
    """A zoo model or checkpoint folder (eval mode, on `device` in `dtype`, models.device.place) and its
    tokenizer, with the decoder blocks `drop` removed (ShortGPT-style, models.prune.remove_blocks)."""
    from models import zoo
    from models.device import place
    from models.prune import remove_blocks

    model, tokenizer = zoo.load(name_or_path, preset)
    place(model, device, dtype)
    if drop:
        remove_blocks(model, drop)
    return model, tokenizer


@dataclass
class Scored:
    """A pool with the per-sample scores the methods need (computed on demand) and the seconds each took."""

    samples: list[Sample]
    tokens: np.ndarray | None = None
    jsd: np.ndarray | None = None
    clusters: np.ndarray | None = None
    ifd: np.ndarray | None = None
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def texts(self) -> list[str]:
        return [s.text for s in self.samples]


def score(
    scored: Scored,
    methods: list[str],
    original,
    pruned,
    tokenizer,
    encoder: str = "minilm",
    clusters: int = 10,
    seed: int = 0,
    progress: bool = False,
    cache: bool = True,
) -> Scored:
    """Fill in what `methods` need (tokens always; paser: embeddings, clusters, JSD; ifd: IFD), timing each;
    `cache=False` recomputes sentence embeddings even if cached (for honest timings)."""
    from models.recover.cluster import capability_clusters
    from models.recover.degradation import degradation, ifd_scores
    from models.recover.embed import embed
    from models.recover.instructions import encode

    if scored.tokens is None:
        scored.tokens = np.array([len(encode(tokenizer, s)[0]) for s in scored.samples], dtype=np.int64)
    if "paser" in methods and scored.clusters is None:
        t0 = time.perf_counter()
        emb = embed([s.instruction for s in scored.samples], encoder, original, tokenizer, progress, cache)
        t1 = time.perf_counter()
        scored.clusters = capability_clusters(emb, clusters, seed)
        t2 = time.perf_counter()
        _, scored.jsd = degradation(original, pruned, tokenizer, scored.samples, progress=progress)
        scored.seconds.update(embed=t1 - t0, cluster=t2 - t1, degradation=time.perf_counter() - t2)
    if "ifd" in methods and scored.ifd is None:
        t0 = time.perf_counter()
        scored.ifd = ifd_scores(pruned, tokenizer, scored.samples, progress=progress)
        scored.seconds["ifd"] = time.perf_counter() - t0
    return scored


def run_selection(
    method: str, scored: Scored, budget: float, seed: int = 0, ccg: bool = True, backfill: bool = True
) -> Selection:
    """`select` on a scored pool; details["selection_seconds"] adds the scoring the method needed (paser:
    embedding + clustering + JSD; ifd: IFD) to the selection step itself."""
    if method not in METHODS:
        raise RecoverError(f"unknown selection method {method!r}: use one of {', '.join(METHODS)}")
    sel = select(
        method,
        scored.texts,
        scored.tokens,
        budget,
        jsd=scored.jsd,
        clusters=scored.clusters,
        ifd=scored.ifd,
        capabilities=[s.capability for s in scored.samples],
        seed=seed,
        ccg=ccg,
        backfill=backfill,
    )
    prep = {"paser": ("embed", "cluster", "degradation"), "ifd": ("ifd",)}.get(method, ())
    sel.details["selection_seconds"] = sel.details["seconds"] + sum(scored.seconds.get(k, 0.0) for k in prep)
    return sel


def save_selection(path: Path, sel: Selection, scored: Scored, meta: dict) -> dict:
    """Write the selection file (JSON: settings, figures, and the chosen samples themselves) atomically."""
    caps = [scored.samples[i].capability for i in sel.indices]
    doc = {
        "format": SELECTION_FORMAT,
        "method": sel.method,
        **meta,
        "pool_samples": len(scored.samples),
        "pool_tokens": int(scored.tokens.sum()),
        "budget_tokens": sel.budget_tokens,
        "selected": len(sel.indices),
        "selected_tokens": sel.tokens,
        "capabilities": {c: caps.count(c) for c in sorted(set(caps))},
        "details": sel.details,
        "indices": sel.indices,
        "samples": to_json([scored.samples[i] for i in sel.indices]),
    }
    atomic_write(path, json.dumps(doc, indent=1) + "\n")
    return doc


def load_selection(path: Path) -> tuple[list[Sample], dict]:
    """The samples and the document of a selection file; RecoverError if it is missing or malformed."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise RecoverError(f"{path} does not exist: write one with `python -m models.recover select`") from e
    except json.JSONDecodeError as e:
        raise RecoverError(f"{path} is not valid JSON ({e.msg} at line {e.lineno}): rerun `select`") from e
    if not isinstance(doc, dict) or doc.get("format") != SELECTION_FORMAT or "samples" not in doc:
        raise RecoverError(f"{path} is not a selection file (format {SELECTION_FORMAT}): rerun `select`")
    samples = from_json(doc["samples"])
    if not samples:
        raise RecoverError(f"{path} selects no samples: raise --budget")
    return samples, doc


def quality(model, tokenizer, preset: str, seed: int = 0, max_tokens: int = 8000, examples: int = 150) -> dict:
    """Held-out figures per task as zoo.evaluate computes them (ppl, top1; math and recall also answer_top1 and
    exact_match), on a lighter slice: at most `max_tokens` tokens of code and English text and the first
    `examples` math and recall problems; plus the averages over the four tasks: avg ppl (geometric mean of the
    perplexities) and avg top1 (mean next-token accuracy)."""
    from models.zoo.data import task_examples, texts_for
    from models.zoo.evaluate import answer_lengths, score_texts
    from models.zoo.presets import get_preset

    p = get_preset(preset)
    ev = {}
    for task in TASKS:
        if task in ("math", "recall"):
            ex = task_examples(task, "test", p, seed)[:examples]
            ev[task] = score_texts(model, tokenizer, [e.text for e in ex], answer_lengths(tokenizer, ex))
        else:
            ev[task] = score_texts(model, tokenizer, texts_for(task, "test", p, seed), max_tokens=max_tokens)
    ev["average"] = {
        "ppl": math.exp(float(np.mean([math.log(ev[t]["ppl"]) for t in TASKS]))),
        "top1": float(np.mean([ev[t]["top1"] for t in TASKS])),
    }
    return ev


def train_copy(pruned, tokenizer, samples: list[Sample], settings: dict, progress: bool = False):
    """A LoRA-recovered copy of `pruned` (the original is left untouched) and the training figures."""
    from models.recover.lora import recovery_finetune

    model = copy.deepcopy(pruned)
    stats = recovery_finetune(model, tokenizer, samples, progress=progress, **settings)
    return model, stats


def run(
    method: str,
    budget: float,
    scored: Scored,
    pruned,
    tokenizer,
    train: dict,
    preset: str,
    seed: int = 0,
    ccg: bool = True,
    backfill: bool = True,
) -> dict:
    """Select with `method` at `budget`, LoRA-train a copy of `pruned` on the selection, and score it: one row
    of a comparison (selection figures, training figures, quality)."""
    sel = run_selection(method, scored, budget, seed, ccg, backfill)
    chosen = [scored.samples[i] for i in sel.indices]
    model, stats = train_copy(pruned, tokenizer, chosen, {**train, "seed": seed})
    caps = [s.capability for s in chosen]
    return {
        "method": method,
        "budget": budget,
        "selected": len(chosen),
        "selected_tokens": sel.tokens,
        "capabilities": {c: caps.count(c) for c in sorted(set(caps))},
        "selection_seconds": sel.details["selection_seconds"],
        "ccg_rejected": sum(c["ccg_rejected"] for c in sel.details.get("clusters", [])),
        "backfilled": sum(c["backfilled"] for c in sel.details.get("clusters", [])),
        "train": stats,
        "quality": quality(model, tokenizer, preset, seed),
    }


def compare(
    scored: Scored,
    original,
    pruned,
    tokenizer,
    budgets: list[float],
    methods: list[str],
    train: dict,
    preset: str,
    seed: int = 0,
    progress: bool = True,
) -> dict:
    """Every method at every budget ("full" once) on a pool already `score`d for `methods`, each trained with
    the same `train` settings and seed from the same pruned model, evaluated on the zoo's held-out tasks beside
    the original and the pruned model."""
    from tqdm import tqdm

    samples = scored.samples
    runs = [(m, b) for m in methods if m != "full" for b in budgets] + ([("full", 1.0)] if "full" in methods else [])
    result = {
        "reference": {
            "original": quality(original, tokenizer, preset, seed),
            "pruned": quality(pruned, tokenizer, preset, seed),
        },
        "pool": {"samples": len(samples), "tokens": int(scored.tokens.sum())},
        "scoring_seconds": scored.seconds,
        "runs": [],
    }
    if scored.clusters is not None:
        caps = sorted({s.capability for s in samples})
        result["clusters"] = [
            {
                "cluster": int(c),
                "cds": float(scored.jsd[scored.clusters == c].mean()),
                **{
                    cap: sum(1 for s, k in zip(samples, scored.clusters, strict=True) if k == c and s.capability == cap)
                    for cap in caps
                },
            }
            for c in np.unique(scored.clusters)
        ]
    for method, budget in tqdm(runs, desc="compare", disable=not progress):
        result["runs"].append(run(method, budget, scored, pruned, tokenizer, train, preset, seed))
    return result


def plot(result: dict, path: Path) -> None:
    """Quality vs budget per selection method (average perplexity and average top-1), as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for ax, key, label in ((axes[0], "ppl", "average perplexity (geo. mean)"), (axes[1], "top1", "average top-1 (%)")):
        scale = 100.0 if key == "top1" else 1.0
        for method in dict.fromkeys(r["method"] for r in result["runs"] if r["method"] != "full"):
            rows = sorted((r for r in result["runs"] if r["method"] == method), key=lambda r: r["budget"])
            ax.plot(
                [100 * r["budget"] for r in rows],
                [scale * r["quality"]["average"][key] for r in rows],
                marker="o",
                label=method,
            )
        for r in result["runs"]:
            if r["method"] == "full":
                ax.axhline(scale * r["quality"]["average"][key], color="black", ls=":", label="full set")
        ax.axhline(scale * result["reference"]["original"]["average"][key], color="gray", ls="--", label="original")
        ax.axhline(scale * result["reference"]["pruned"]["average"][key], color="red", ls="--", label="pruned")
        ax.set_xlabel("budget (% of pool tokens)")
        ax.set_ylabel(label)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110))
    plt.close(fig)
