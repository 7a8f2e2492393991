"""One harness for every method: Monte Carlo vote counts, certification, clean accuracy and ASR.

A method's n draws of text i use the random stream (seed, i); with parameter smoothing, draw j is scored by
noisy copy j mod K, and each copy is made once per call for all texts (one in-place noising per copy).
`transform` (e.g. quantization) is applied to the model, or to each noisy copy, before scoring.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

from models.robust.certify import cohen_certify
from models.robust.classifier import TextClassifier
from models.robust.data import Sample
from models.robust.methods import Method

Transform = Callable[[torch.nn.Module], torch.nn.Module]


def _scorer(clf: TextClassifier, model: torch.nn.Module, transform: Transform | None) -> TextClassifier:
    return TextClassifier(model if transform is None else transform(model), clf.tokenizer)


def vote_counts(
    clf: TextClassifier,
    method: Method,
    texts: list[str],
    ctxs: list,
    n: int,
    seed: int,
    transform: Transform | None = None,
) -> np.ndarray:
    """(len(texts), classes) int counts of the base classifier's top class over n randomized draws each."""
    draws = []
    for i, (t, ctx) in enumerate(zip(texts, ctxs, strict=True)):
        rng = np.random.default_rng([seed, i])
        draws.append([method.draw(t.split(), ctx, rng) for _ in range(n)])
    counts = np.zeros((len(texts), clf.num_labels), dtype=np.int64)
    gen = torch.Generator().manual_seed(seed)

    def score(scorer: TextClassifier, js: range) -> None:
        flat = [d[j] for d in draws for j in js]
        if not flat:
            return
        top = scorer.predict_proba(flat, embedding_noise=method.embedding_noise, generator=gen).argmax(-1)
        for i, label in enumerate(top.reshape(len(texts), len(js))):
            np.add.at(counts[i], label, 1)

    if method.smoothing is None:
        score(_scorer(clf, clf.model, transform), range(n))
        return counts
    k_copies = method.smoothing.copies
    for k in range(k_copies):
        with method.smoothing.copy(clf.model, k) as noisy:
            score(_scorer(clf, noisy, transform), range(k, n, k_copies))
    return counts


@dataclass(frozen=True)
class MonteCarlo:
    """n0: selection draws; n: estimation draws; alpha: certification failure probability; n_attack: draws
    per triggered text for ASR (majority vote); seed: every random stream."""

    n0: int = 8
    n: int = 48
    alpha: float = 0.05
    n_attack: int = 24
    seed: int = 0


def certify_samples(
    clf: TextClassifier, method: Method, samples: list[Sample], mc: MonteCarlo, transform: Transform | None = None
) -> list[dict]:
    """Per sample: label, smoothed prediction (majority over n0 + n draws), Cohen's certificate and radii."""
    texts = [s.text for s in samples]
    ctxs = method.prepare(clf, texts)
    sel = vote_counts(clf, method, texts, ctxs, mc.n0, mc.seed, transform)
    est = vote_counts(clf, method, texts, ctxs, mc.n, mc.seed + 1, transform)
    rows = []
    for s, ctx, a, b in zip(samples, ctxs, sel, est, strict=True):
        cert = cohen_certify(a, b, mc.alpha)
        words = s.text.split()
        radii = method.radii(cert.p_a_lower, words, ctx)
        ok = not cert.abstained and cert.label == s.label
        rows.append(
            {
                "label": s.label,
                "prediction": int(np.argmax(a + b)),
                "certified_label": cert.label,
                "p_a_lower": cert.p_a_lower,
                "words": len(words),
                **{k: (v if ok else -1) for k, v in radii.items()},
            }
        )
    return rows


def attack_success(
    clf: TextClassifier,
    method: Method,
    triggered: list[Sample],
    target: int,
    mc: MonteCarlo,
    transform: Transform | None = None,
) -> float:
    """Fraction of triggered non-target samples whose smoothed (majority) prediction is the target."""
    if not triggered:
        return 0.0
    texts = [s.text for s in triggered]
    counts = vote_counts(clf, method, texts, method.prepare(clf, texts), mc.n_attack, mc.seed + 2, transform)
    return float((counts.argmax(-1) == target).mean())


def smoothed_accuracy(clf: TextClassifier, method: Method, samples: list[Sample], mc: MonteCarlo) -> float:
    """Fraction of samples whose smoothed (majority of mc.n_attack draws) prediction is their label."""
    texts = [s.text for s in samples]
    counts = vote_counts(clf, method, texts, method.prepare(clf, texts), mc.n_attack, mc.seed + 3)
    return float((counts.argmax(-1) == np.array([s.label for s in samples])).mean())


def summarize(rows: list[dict], asr: float, seconds: float) -> dict:
    """Clean accuracy, ASR, certified accuracy per radius (0..max) and the average certified radius (in
    words, and as R_r = radius / words), counting uncertified or wrong samples as radius 0."""
    radius = np.array([r["radius"] for r in rows])
    words = np.array([r["words"] for r in rows])
    top = int(radius.max()) if len(radius) else -1
    return {
        "clean_accuracy": float(np.mean([r["prediction"] == r["label"] for r in rows])),
        "asr": asr,
        "certified_accuracy": {str(k): float((radius >= k).mean()) for k in range(0, max(top, 0) + 1)},
        "average_radius": float(np.clip(radius, 0, None).mean()),
        "average_radius_fraction": float((np.clip(radius, 0, None) / words).mean()),
        "seconds": seconds,
    }


def evaluate_method(
    clf: TextClassifier,
    method: Method,
    clean: list[Sample],
    triggered: list[Sample],
    target: int,
    mc: MonteCarlo,
    transform: Transform | None = None,
    progress: bool = True,
) -> tuple[dict, list[dict]]:
    """(summary, per-sample rows) of one method on clean samples (certification) and triggered ones (ASR)."""
    t0 = time.perf_counter()
    with tqdm(total=2, desc=method.name, disable=not progress, leave=False) as bar:
        rows = certify_samples(clf, method, clean, mc, transform)
        bar.update()
        asr = attack_success(clf, method, triggered, target, mc, transform)
        bar.update()
    return summarize(rows, asr, time.perf_counter() - t0), rows
