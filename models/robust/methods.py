"""The smoothing defenses, as small pluggable classes sharing one harness (models.robust.harness).

Each method draws randomized versions of a text (a list of words) and turns a certified lower bound
p_A_lower into radii, in word edits ("radius"). FRS: fuzzed randomization plus BMPS's K noisy model copies;
Uniform: the same wiping at one rate everywhere (plain randomized smoothing of text); RanMASK: random
masking; SAFER: random in-set substitution; Text-CRS, one class per certified operation: TextCRS (Gaussian
noise on word embeddings, Cohen's l2 radius in substitutions), TextCRSDelete (Bernoulli word deletion,
deleted words) and TextCRSReorder (uniform noise on word positions, adjacent transpositions). Text-CRS's
insertion certificate is not implemented.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import numpy as np
import torch

from models.robust.certify import (
    cohen_radius,
    deletion_radius,
    frs_radius,
    ranmask_radius,
    reorder_l1,
    reorder_radius,
    safer_radius,
)
from models.robust.classifier import TextClassifier
from models.robust.fuzz import FuzzResult, fuzz
from models.robust.randomize import (
    Neighbours,
    delete,
    fuzzed_rates,
    mask,
    shuffle_positions,
    substitute,
    wipe_with_rates,
)
from models.robust.smoothing import ParameterSmoothing


class Method(ABC):
    """Base: no preparation, no parameter smoothing, no embedding noise."""

    name = "method"
    smoothing: ParameterSmoothing | None = None
    embedding_noise = 0.0

    def prepare(self, clf: TextClassifier, texts: list[str]) -> list:
        """Per-text context computed once before sampling (e.g. FRS's vulnerable area)."""
        return [None] * len(texts)

    @abstractmethod
    def draw(self, words: list[str], ctx, rng: np.random.Generator) -> str:
        """One randomized version of the text."""

    @abstractmethod
    def radii(self, p_a_lower: float, words: list[str], ctx) -> dict[str, float]:
        """Certified radii (word edits, -1: not certified) for a lower bound p_A_lower on the top class."""

    def settings(self) -> dict:
        return {"name": self.name}


@dataclass
class Uniform(Method):
    """Every word wiped (deleted or replaced by a neighbour) with probability omega; FRS Theorem 1 radius."""

    neighbours: Neighbours
    omega: float = 0.7
    name = "uniform"

    def draw(self, words, ctx, rng):
        return wipe_with_rates(words, np.full(len(words), self.omega), self.neighbours, rng)

    def radii(self, p_a_lower, words, ctx):
        return {"radius": frs_radius(p_a_lower, self.omega)}

    def settings(self):
        return {"name": self.name, "omega": self.omega}


@dataclass
class FRS(Method):
    """Fuzzed randomized smoothing: MCTS finds each text's vulnerable area, words there are wiped with
    omega_h and elsewhere with omega_l (same expected count as omega_m), on K noisy model copies.
    radius: Corollary 1 (omega_h; assumes the trigger lies in the found area); radius_outside: the same
    bound with omega_l, for an edit outside the area."""

    neighbours: Neighbours
    omega_m: float = 0.7
    omega_h: float = 0.95
    smoothing: ParameterSmoothing | None = field(default_factory=ParameterSmoothing)
    fuzz_budget: int = 32
    fuzz_area: float = 0.25
    fuzz_c: float = 0.5
    max_edits: int = 4
    seed: int = 0
    fuzz_seconds: list[float] = field(default_factory=list)
    name = "frs"

    def prepare(self, clf, texts):
        found = fuzz(texts, clf.predict_proba, self.fuzz_budget, self.fuzz_c, self.max_edits, self.fuzz_area, self.seed)
        self.fuzz_seconds.extend(r.seconds for r in found)
        return found

    def draw(self, words, ctx: FuzzResult, rng):
        return wipe_with_rates(words, fuzzed_rates(ctx.area, self.omega_m, self.omega_h), self.neighbours, rng)

    def radii(self, p_a_lower, words, ctx: FuzzResult):
        rates = fuzzed_rates(ctx.area, self.omega_m, self.omega_h)
        return {
            "radius": frs_radius(p_a_lower, float(rates.max())),
            "radius_outside": frs_radius(p_a_lower, float(rates.min())),
        }

    def settings(self):
        keys = ("omega_m", "omega_h", "fuzz_budget", "fuzz_area", "fuzz_c", "max_edits", "seed")
        out = {"name": self.name, **{k: getattr(self, k) for k in keys}}
        out["smoothing"] = None if self.smoothing is None else self.smoothing.as_dict()
        return out


@dataclass
class RanMask(Method):
    """RanMASK: round(rate * n) of n words replaced by [MASK]; radius in substituted words."""

    rate: float = 0.7
    mask_token: str = "[MASK]"
    name = "ranmask"

    def masked(self, n: int) -> int:
        return min(n, round(self.rate * n))

    def draw(self, words, ctx, rng):
        return mask(words, self.masked(len(words)), self.mask_token, rng)

    def radii(self, p_a_lower, words, ctx):
        return {"radius": ranmask_radius(p_a_lower, len(words), self.masked(len(words)))}

    def settings(self):
        return {"name": self.name, "rate": self.rate}


@dataclass
class Safer(Method):
    """SAFER: every word replaced by a uniform draw of its embedding-neighbour set; radius in in-set
    substitutions."""

    neighbours: Neighbours
    name = "safer"

    def prepare(self, clf, texts):
        # only words with substitutes can be attacked in SAFER's threat model
        return [[self.neighbours.overlap(w) for w in t.split() if len(self.neighbours.of(w)) > 1] for t in texts]

    def draw(self, words, ctx, rng):
        return substitute(words, self.neighbours, rng)

    def radii(self, p_a_lower, words, ctx):
        return {"radius": safer_radius(p_a_lower, ctx)}

    def settings(self):
        return {"name": self.name, "set_size": self.neighbours.size}


@dataclass
class TextCRS(Method):
    """Text-CRS's embedding-space smoothing: Gaussian noise of std sigma on every word embedding; Cohen's l2
    radius R = sigma Phi^-1(p_A_lower) ("l2"), converted to the most in-set substitutions whose embedding
    shifts (the largest ones of the text's words first) have an l2 norm within R ("radius")."""

    neighbours: Neighbours
    sigma: float = 0.02  # per dimension; MiniLM word embeddings have std 0.056 per dimension, norm ~1.1
    name = "textcrs"

    @property
    def embedding_noise(self) -> float:
        return self.sigma

    def prepare(self, clf, texts):
        vocab = clf.tokenizer.get_vocab()
        emb = clf.model.get_input_embeddings().weight.detach()
        shifts = []
        for t in texts:
            per_word = []
            for w in t.split():
                ids = [vocab[v.lower()] for v in self.neighbours.of(w) if v.lower() in vocab]
                if len(ids) > 1:
                    per_word.append(float(torch.cdist(emb[ids[:1]], emb[ids[1:]]).max()))
            shifts.append(sorted(per_word, reverse=True))
        return shifts

    def draw(self, words, ctx, rng):
        return " ".join(words)

    def radii(self, p_a_lower, words, ctx):
        l2 = cohen_radius(p_a_lower, self.sigma) if p_a_lower > 0.5 else -1.0
        if l2 < 0:
            return {"radius": -1, "l2": l2}
        used = np.sqrt(np.cumsum(np.square(ctx))) if ctx else np.zeros(0)
        return {"radius": int((used <= l2).sum()) if math.isfinite(l2) else len(ctx), "l2": l2}

    def settings(self):
        return {"name": self.name, "sigma": self.sigma, "set_size": self.neighbours.size}


@dataclass
class TextCRSDelete(Method):
    """Text-CRS's word-deletion smoothing: every word deleted independently with probability p (Bernoulli);
    radius in deleted words, certify.deletion_radius."""

    p: float = 0.7
    name = "textcrs-del"

    def draw(self, words, ctx, rng):
        return delete(words, self.p, rng)

    def radii(self, p_a_lower, words, ctx):
        return {"radius": deletion_radius(p_a_lower, self.p, len(words))}

    def settings(self):
        return {"name": self.name, "p": self.p}


@dataclass
class TextCRSReorder(Method):
    """Text-CRS's word-reordering smoothing: uniform noise U[-window, window] on every word's position, words
    read in noisy-position order; radius in adjacent transpositions (certify.reorder_radius), "l1" the
    certified l1 shift of the positions."""

    # positions; the snippet length, so a word can land anywhere (near bag-of-words): the radius grows with
    # the window while the order left to classify on shrinks
    window: float = 16.0
    name = "textcrs-order"

    def draw(self, words, ctx, rng):
        return shuffle_positions(words, self.window, rng)

    def radii(self, p_a_lower, words, ctx):
        return {
            "radius": reorder_radius(p_a_lower, self.window, len(words)),
            "l1": reorder_l1(p_a_lower, self.window),
        }

    def settings(self):
        return {"name": self.name, "window": self.window}
