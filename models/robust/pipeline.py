"""The experiment end to end: the task, the backdoored classifiers (cached), and every defense evaluated.

Roles: "victim" is the ordinary fine-tune the baselines defend; "frs" is the same fine-tune done with BMPS
phase 1 (clipped, noised), which FRS defends. Attacks: "word" / "sentence" poison a fraction of the training
data; "ripple" poisons the pre-trained weights (RIPPLe-like, on the first half of the training samples as
proxy data) and the victim then fine-tunes on the clean second half. Classifiers are cached under
hw.cache.cache_root()/robust/<role>-<hash of every input>.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path

import numpy as np

from hw.cache import RESULT, cache_root, staged_entry
from models.quant import QuantConfig
from models.robust.backdoor import RippleConfig, ripple_poison
from models.robust.classifier import TextClassifier, encoder_path
from models.robust.data import Sample, Trigger, load_task, poison, triggered
from models.robust.harness import MonteCarlo, attack_success, evaluate_method, smoothed_accuracy
from models.robust.methods import FRS, Method, RanMask, Safer, TextCRS, TextCRSDelete, TextCRSReorder, Uniform
from models.robust.quantize import quantize_linears
from models.robust.randomize import Neighbours
from models.robust.smoothing import ParameterSmoothing, bmps_finetune
from models.robust.train import TrainConfig, finetune

ATTACKS = ("word", "sentence", "ripple")
ROLES = ("victim", "frs")


@dataclass(frozen=True)
class Setup:
    """attack: word | sentence | ripple; target: the label triggered inputs get; rate: poisoned fraction of
    the non-target training samples; per_class / test_per_class: samples per label; words: words per
    snippet; layers: encoder layers kept (None: all 6 of MiniLM); train: the victim's fine-tune; bmps: FRS's
    phase-1 fine-tune (same steps, plus clip and param_noise); smoothing: FRS's phase 2."""

    attack: str = "word"
    target: int = 0
    rate: float = 0.2
    per_class: int = 60
    test_per_class: int = 10
    words: int = 16
    layers: int | None = None
    train: TrainConfig = TrainConfig(steps=40, batch=16, lr=2e-4)
    bmps: TrainConfig = TrainConfig(steps=40, batch=16, lr=2e-4, clip=1.0, param_noise=1e-3)
    ripple: RippleConfig = field(default_factory=RippleConfig)
    smoothing: ParameterSmoothing = field(default_factory=ParameterSmoothing)
    preset: str = "tiny"
    seed: int = 0

    def __post_init__(self) -> None:
        if self.attack not in ATTACKS:
            raise ValueError(f"unknown attack '{self.attack}': choose {', '.join(ATTACKS)}")
        if not 0 <= self.rate <= 1:
            raise ValueError(f"poison rate {self.rate} out of range: choose a fraction in [0, 1]")

    @property
    def trigger(self) -> Trigger:
        return Trigger("sentence" if self.attack == "sentence" else "word", self.target)

    def as_dict(self) -> dict:
        return asdict(self)


def train_samples(setup: Setup) -> list[Sample]:
    return load_task("train", setup.per_class, setup.words, setup.preset, setup.seed)


def test_sets(setup: Setup) -> tuple[list[Sample], list[Sample]]:
    """(clean test samples, triggered non-target test samples with their true labels)."""
    clean = load_task("test", setup.test_per_class, setup.words, setup.preset, setup.seed)
    return clean, triggered(clean, setup.trigger, setup.seed)


def _key(setup: Setup, role: str) -> str:
    blob = json.dumps({"setup": setup.as_dict(), "role": role, "encoder": encoder_path(), "v": 1}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _cached(setup: Setup, role: str, build, progress: bool) -> TextClassifier:
    final = cache_root() / "robust" / f"{role}-{_key(setup, role)}"
    if not (final / RESULT).exists():
        clf, info = build()
        with staged_entry(final) as work:
            clf.save_pretrained(work)
            (Path(work) / RESULT).write_text(json.dumps({"setup": setup.as_dict(), "role": role, **info}, indent=1))
    return TextClassifier.from_pretrained(final)


def _ripple_base(setup: Setup, progress: bool) -> TextClassifier:
    """The weight-poisoned pre-trained classifier (attacker side), trained on the proxy half."""
    proxy = train_samples(setup)[::2]

    def build():
        clf = TextClassifier.from_encoder(layers=setup.layers, seed=setup.seed)
        losses = ripple_poison(clf, proxy, setup.trigger, setup.train, setup.ripple, progress)
        return clf, {"losses": losses}

    return _cached(setup, "ripple-poisoned", build, progress)


def classifier(setup: Setup, role: str, progress: bool = True) -> TextClassifier:
    """The fine-tuned classifier of `role` ("victim" or "frs") under setup's attack (cached)."""
    if role not in ROLES:
        raise ValueError(f"unknown role '{role}': choose {', '.join(ROLES)}")

    def build():
        if setup.attack == "ripple":
            clf = _ripple_base(setup, progress)
            data = train_samples(setup)[1::2]
        else:
            clf = TextClassifier.from_encoder(layers=setup.layers, seed=setup.seed)
            data = poison(train_samples(setup), setup.trigger, setup.rate, setup.seed)
        if role == "frs":
            losses = bmps_finetune(clf, data, setup.bmps, setup.smoothing, progress)
        else:
            losses = finetune(clf, data, setup.train, progress=progress, desc="victim fine-tune")
        return clf, {"losses": losses}

    return _cached(setup, role, build, progress)


def plain_scores(clf: TextClassifier, clean: list[Sample], trig: list[Sample], target: int) -> dict:
    """Clean accuracy and ASR of a classifier without any defense."""
    pred = clf.predict([s.text for s in clean])
    hit = clf.predict([s.text for s in trig]) if trig else np.zeros(0)
    return {
        "clean_accuracy": float(np.mean(pred == np.array([s.label for s in clean]))),
        "asr": float(np.mean(hit == target)) if trig else 0.0,
    }


METHODS = ("frs", "uniform", "ranmask", "safer", "textcrs", "textcrs-del", "textcrs-order")


def make_method(name: str, neighbours: Neighbours, setup: Setup, omega: float = 0.7, fuzz_budget: int = 24) -> Method:
    """A defense by name; uniform, RanMASK, Text-CRS deletion and FRS share the randomization budget omega (FRS's
    omega_m; RanMASK's masked fraction, Text-CRS's deletion probability)."""
    if name == "frs":
        return FRS(neighbours, omega_m=omega, smoothing=setup.smoothing, fuzz_budget=fuzz_budget, seed=setup.seed)
    if name == "uniform":
        return Uniform(neighbours, omega)
    if name == "ranmask":
        return RanMask(omega)
    if name == "safer":
        return Safer(neighbours)
    if name == "textcrs":
        return TextCRS(neighbours)
    if name == "textcrs-del":
        return TextCRSDelete(omega)
    if name == "textcrs-order":
        return TextCRSReorder()
    raise ValueError(f"unknown method '{name}': choose {', '.join(METHODS)}")


def run_defenses(
    setup: Setup,
    methods: tuple[str, ...] = METHODS,
    mc: MonteCarlo | None = None,
    omega: float = 0.7,
    fuzz_budget: int = 24,
    quant_bits: tuple[int, ...] = (),
    quant_samples: int = 8,
    progress: bool = True,
) -> dict:
    """Every method's clean accuracy, ASR and certificates under setup's attack. FRS runs on the BMPS-trained
    classifier, the baselines on the ordinary victim. quant_bits: also certify FRS and uniform on the first
    `quant_samples` clean samples with weights quantized to these bits (group 128, INT8 activations), each
    FRS copy quantized after its noise is added."""
    mc = mc or MonteCarlo()
    victim, frs_clf = classifier(setup, "victim", progress), classifier(setup, "frs", progress)
    clean, trig = test_sets(setup)
    neighbours = Neighbours.from_classifier(victim)
    out = {
        "setup": setup.as_dict(),
        "monte_carlo": asdict(mc),
        "omega": omega,
        "test": {"clean": len(clean), "triggered": len(trig)},
        "undefended": {
            "victim": plain_scores(victim, clean, trig, setup.target),
            "frs": plain_scores(frs_clf, clean, trig, setup.target),
        },
        "methods": {},
        "samples": {},
    }
    for name in methods:
        method = make_method(name, neighbours, setup, omega, fuzz_budget)
        clf = frs_clf if name == "frs" else victim
        summary, rows = evaluate_method(clf, method, clean, trig, setup.target, mc, progress=progress)
        summary["settings"] = method.settings()
        if name == "frs":
            summary["fuzz_ms_per_sample"] = 1000 * float(np.mean(method.fuzz_seconds))
            summary["average_radius_outside_area"] = float(np.mean([max(r["radius_outside"], 0) for r in rows]))
        out["methods"][name] = summary
        out["samples"][name] = rows
    if quant_bits:
        out["quantized"] = quantized_certificates(setup, mc, omega, fuzz_budget, quant_bits, quant_samples, progress)
    return out


def quantized_certificates(
    setup: Setup,
    mc: MonteCarlo,
    omega: float,
    fuzz_budget: int,
    bits: tuple[int, ...],
    samples: int = 8,
    progress: bool = True,
) -> dict:
    """FRS and uniform summaries at FP32 and at each weight width in `bits` (group 128, INT8 activations), on
    the first `samples` clean and triggered test samples; each FRS copy is quantized after its noise."""
    victim, frs_clf = classifier(setup, "victim", progress), classifier(setup, "frs", progress)
    clean, trig = test_sets(setup)
    clean, trig = clean[:samples], trig[:samples]
    neighbours = Neighbours.from_classifier(victim)
    out: dict = {}
    for wbits in (32, *bits):
        transform = None if wbits == 32 else partial(quantize_linears, cfg=QuantConfig(wbits=wbits, group=128))
        row = {}
        for name, clf in (("frs", frs_clf), ("uniform", victim)):
            method = make_method(name, neighbours, setup, omega, fuzz_budget)
            summary, _ = evaluate_method(clf, method, clean, trig, setup.target, mc, transform, progress)
            row[name] = summary
        out[str(wbits)] = row
    return out


def attack_rates(
    setup: Setup,
    methods: tuple[str, ...] = METHODS,
    mc: MonteCarlo | None = None,
    omega: float = 0.7,
    fuzz_budget: int = 24,
    progress: bool = True,
) -> dict:
    """Clean accuracy and ASR per method (smoothed majority votes of mc.n_attack draws), no certificates."""
    mc = mc or MonteCarlo()
    victim, frs_clf = classifier(setup, "victim", progress), classifier(setup, "frs", progress)
    clean, trig = test_sets(setup)
    neighbours = Neighbours.from_classifier(victim)
    out = {"setup": setup.as_dict(), "monte_carlo": asdict(mc), "omega": omega, "methods": {}}
    out["undefended"] = {
        "victim": plain_scores(victim, clean, trig, setup.target),
        "frs": plain_scores(frs_clf, clean, trig, setup.target),
    }
    for name in methods:
        method = make_method(name, neighbours, setup, omega, fuzz_budget)
        clf = frs_clf if name == "frs" else victim
        asr = attack_success(clf, method, trig, setup.target, mc)
        ca = smoothed_accuracy(clf, method, clean, mc)
        out["methods"][name] = {"clean_accuracy": ca, "asr": asr, "settings": method.settings()}
    return out
