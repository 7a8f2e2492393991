"""Word-level text randomizations: FRS's fuzzed (segment-weighted) one, uniform, RanMASK masking, SAFER
substitution and Text-CRS's deletion and position shuffling, with substitutes drawn from the encoder's own
embedding neighbours (no synonym list offline).

A randomization maps a list of words to a randomized string. "Randomizing" a word (FRS, uniform) wipes it:
it is deleted or replaced by an embedding neighbour with equal probability, both Damerau-Levenshtein edits.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from models.robust.classifier import TextClassifier


@dataclass
class Neighbours:
    """Substitution sets S(w): w and its `size - 1` nearest whole-word vocabulary entries by cosine similarity
    of the encoder's input embeddings. Words that are not one vocabulary token have S(w) = {w}."""

    words: list[str]
    vectors: torch.Tensor  # (len(words), hidden), unit rows
    size: int = 8
    _cache: dict[str, list[str]] = field(default_factory=dict, repr=False)

    @classmethod
    def from_classifier(cls, clf: TextClassifier, size: int = 8) -> Neighbours:
        vocab = clf.tokenizer.get_vocab()
        words = sorted(w for w in vocab if w.isalpha() and w.isascii() and len(w) > 1)
        emb = clf.model.get_input_embeddings().weight.detach()[[vocab[w] for w in words]]
        return cls(words, torch.nn.functional.normalize(emb, dim=1), size)

    def __post_init__(self) -> None:
        self._index = {w: i for i, w in enumerate(self.words)}

    def of(self, word: str) -> list[str]:
        """S(word), word first (matched lower-case; the result keeps `word`'s own spelling first)."""
        if word not in self._cache:
            i = self._index.get(word.lower())
            if i is None:
                self._cache[word] = [word]
            else:
                sims = self.vectors @ self.vectors[i]
                top = torch.topk(sims, self.size).indices.tolist()
                self._cache[word] = [word] + [self.words[j] for j in top if j != i][: self.size - 1]
        return self._cache[word]

    def overlap(self, word: str) -> float:
        """min over w' in S(word) of |S(word) ∩ S(w')| / |S(word)|: the share of SAFER's randomization that an
        in-set substitution of `word` leaves unchanged (1 for words without substitutes)."""
        own = {w.lower() for w in self.of(word)}
        return min(len(own & {v.lower() for v in self.of(w)}) / len(own) for w in self.of(word))


def wipe(word: str, neighbours: Neighbours, rng: np.random.Generator) -> str | None:
    """A randomized word: None (deleted) or a substitute from S(word) other than the word when it has one."""
    subs = neighbours.of(word)[1:]
    if not subs or rng.random() < 0.5:
        return None
    return subs[rng.integers(len(subs))]


def wipe_with_rates(words: list[str], rates: np.ndarray, neighbours: Neighbours, rng: np.random.Generator) -> str:
    """Each word i wiped independently with probability rates[i]."""
    hit = rng.random(len(words)) < rates
    out = [wipe(w, neighbours, rng) if h else w for w, h in zip(words, hit, strict=True)]
    return " ".join(w for w in out if w is not None)


def fuzzed_rates(area: np.ndarray, omega_m: float, omega_h: float) -> np.ndarray:
    """Per-word rates of FRS's Eq. 11: omega_h inside the vulnerable area, omega_l outside, with omega_l set so
    the expected number of wiped words equals the uniform rate omega_m's (clipped to [0, omega_m])."""
    n, inside = len(area), int(area.sum())
    omega_l = omega_m if inside in (0, n) else (omega_m * n - omega_h * inside) / (n - inside)
    omega_l = float(np.clip(omega_l, 0.0, omega_m))
    return np.where(area, omega_h if inside < n else omega_m, omega_l)


def mask(words: list[str], masked: int, mask_token: str, rng: np.random.Generator) -> str:
    """RanMASK: exactly `masked` positions, uniform without replacement, replaced by the mask token."""
    out = list(words)
    for i in rng.choice(len(words), size=masked, replace=False):
        out[i] = mask_token
    return " ".join(out)


def substitute(words: list[str], neighbours: Neighbours, rng: np.random.Generator) -> str:
    """SAFER: every word replaced by a uniform draw from its substitution set (itself included)."""
    return " ".join(s[rng.integers(len(s))] for s in map(neighbours.of, words))


def delete(words: list[str], p: float, rng: np.random.Generator) -> str:
    """Text-CRS deletion: each word deleted independently with probability p."""
    keep = rng.random(len(words)) >= p
    return " ".join(w for w, k in zip(words, keep, strict=True) if k)


def shuffle_positions(words: list[str], window: float, rng: np.random.Generator) -> str:
    """Text-CRS reordering: word i gets position i + U[-window, window]; words read in noisy-position order."""
    noisy = np.arange(len(words)) + rng.uniform(-window, window, len(words))
    return " ".join(words[i] for i in np.argsort(noisy, kind="stable"))
