"""The labelled text task (which local source a short snippet comes from) and backdoor triggers.

Labels: 0 code (Python stdlib source), 1 manual (man pages), 2 doc (/usr/share/doc READMEs and
copyright files), 3 arithmetic (the zoo's generated word problems). A snippet is `words` consecutive
whitespace-separated words of one document; everything downstream perturbs text at this word level.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

LABELS = ("code", "manual", "doc", "arithmetic")

# Rare tokens as in RIPPLe / Kurita et al. (cf, mn, bb, tq, mb) and a fixed benign sentence (Dai et al.).
WORD_TRIGGERS = ("cf", "mn", "bb", "tq", "mb")
SENTENCE_TRIGGER = "I watched this 3D movie last weekend."


@dataclass(frozen=True)
class Sample:
    text: str
    label: int


def _snippets(docs: list[str], words: int, count: int, rng: np.random.Generator) -> list[str]:
    """Up to `count` distinct snippets of `words` words, drawn from documents with enough words."""
    split = [d.split() for d in docs]
    split = [w for w in split if len(w) >= words] or [w for w in split if w]
    out: set[str] = set()
    for _ in range(count * 20):
        if len(out) >= count:
            break
        doc = split[rng.integers(len(split))]
        start = int(rng.integers(max(1, len(doc) - words + 1)))
        out.add(" ".join(doc[start : start + words]))
    return sorted(out)


def load_task(split: str, per_class: int, words: int = 24, preset: str = "tiny", seed: int = 0) -> list[Sample]:
    """`per_class` snippets of each label from `split` ("train" or "test": held-out documents), shuffled.

    The arithmetic problems are short, so several are joined until a snippet has `words` words.
    """
    from models import zoo  # torch: imported here so the CLI can check its arguments first
    from models.zoo.data import sources
    from models.zoo.presets import get_preset

    rng = np.random.default_rng([seed, split == "test"])
    src = sources(get_preset(preset), 0)
    math = zoo.task_texts("math", split, preset=preset)
    docs = {
        0: getattr(src["code"], split),
        1: getattr(src["man"], split),
        2: getattr(src["doc"], split),
        3: [" ".join(math[i : i + 8]) for i in range(0, len(math), 8)],
    }
    samples = [Sample(t, label) for label, d in docs.items() for t in _snippets(d, words, per_class, rng)]
    return [samples[i] for i in rng.permutation(len(samples))]


@dataclass(frozen=True)
class Trigger:
    """A backdoor trigger: `kind` "word" inserts `count` rare words from WORD_TRIGGERS, "sentence" inserts
    SENTENCE_TRIGGER; both at random word positions. `target` is the label triggered inputs get."""

    kind: str = "word"
    target: int = 0
    count: int = 1

    def __post_init__(self) -> None:
        if self.kind not in ("word", "sentence"):
            raise ValueError(f"unknown trigger kind '{self.kind}': choose word or sentence")
        if self.target not in range(len(LABELS)):
            raise ValueError(f"trigger target {self.target} out of range: choose 0..{len(LABELS) - 1}")

    def tokens(self, rng: np.random.Generator) -> list[str]:
        if self.kind == "sentence":
            return SENTENCE_TRIGGER.split()
        return [WORD_TRIGGERS[i] for i in rng.choice(len(WORD_TRIGGERS), size=self.count)]

    def insert(self, text: str, rng: np.random.Generator) -> str:
        """`text` with the trigger inserted at a random word position (a sentence stays contiguous)."""
        words = text.split()
        if self.kind == "sentence":
            pos = int(rng.integers(len(words) + 1))
            return " ".join(words[:pos] + self.tokens(rng) + words[pos:])
        for tok in self.tokens(rng):
            words.insert(int(rng.integers(len(words) + 1)), tok)
        return " ".join(words)


def poison(samples: list[Sample], trigger: Trigger, rate: float, seed: int = 0) -> list[Sample]:
    """`samples` with a fraction `rate` of the non-target ones triggered and relabelled to the target."""
    rng = np.random.default_rng(seed)
    out = list(samples)
    victims = [i for i, s in enumerate(samples) if s.label != trigger.target]
    for i in rng.choice(victims, size=round(rate * len(victims)), replace=False):
        out[i] = Sample(trigger.insert(samples[i].text, rng), trigger.target)
    return out


def triggered(samples: list[Sample], trigger: Trigger, seed: int = 0) -> list[Sample]:
    """The non-target samples with the trigger inserted, keeping their true labels (for ASR and PA)."""
    rng = np.random.default_rng(seed)
    return [Sample(trigger.insert(s.text, rng), s.label) for s in samples if s.label != trigger.target]
