"""FRS's vulnerable-area search: Monte Carlo tree search over coarse-to-fine text segments.

The tree's root is the whole text (a list of words); a node's two children are its halves, down to single
words. Each iteration selects a path by UCB1 (mean reward + C sqrt(ln N_parent / n_child), unvisited
children first), mutates the reached segment with at most `max_edits` random Damerau-Levenshtein edits
inside it (delete, substitute, transpose, insert), and backs the reward up the path. The reward is
FRS's Eq. 8, KL(P(y | mutated) || P(y | original)). All texts' trees run in lockstep so each iteration is
one batched model call. The vulnerable area is the `area` fraction of words whose deepest visited segment
has the highest mean reward.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

Predict = Callable[[list[str]], np.ndarray]  # texts -> (len, classes) probabilities

# Substitutes and insertions for mutations: frequent English words (a fixed, seed-independent pool).
FILLERS = tuple(
    "the of and to in is that for it as with was on be by at this from or an are not have which one all but "
    "can had they their has more been there when will would so no if out about what up some into time".split()
)


@dataclass
class FuzzResult:
    """area: (len(words),) bool, the vulnerable words; scores: per-word mean reward of its deepest visited
    segment (nats); seconds: wall time of the whole search for this text (its share of batched calls)."""

    area: np.ndarray
    scores: np.ndarray
    seconds: float


def kl(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """KL(p || q) per row, in nats."""
    p, q = np.clip(p, 1e-12, 1), np.clip(q, 1e-12, 1)
    return (p * np.log(p / q)).sum(-1)


def mutate(words: list[str], start: int, end: int, max_edits: int, rng: np.random.Generator) -> list[str]:
    """`words` with DL edits at 1..max_edits distinct positions inside [start, end): delete or substitute
    (0.4 each), transpose with the next word or insert a word before it (0.1 each)."""
    out = list(words)
    count = int(rng.integers(1, min(max_edits, end - start) + 1))
    for i in sorted(rng.choice(np.arange(start, end), size=count, replace=False), reverse=True):
        op = rng.choice(4, p=(0.4, 0.4, 0.1, 0.1))
        if op == 0:
            del out[i]
            end -= 1
        elif op == 1:
            out[i] = FILLERS[rng.integers(len(FILLERS))]
        elif op == 2 and i + 1 < end:
            out[i], out[i + 1] = out[i + 1], out[i]
        else:
            out.insert(i, FILLERS[rng.integers(len(FILLERS))])
            end += 1
    return out


class _Tree:
    """Visit counts and reward sums of one text's segments (start, end)."""

    def __init__(self, words: list[str], c: float):
        self.words, self.c = words, c
        self.visits: dict[tuple[int, int], int] = {}
        self.reward: dict[tuple[int, int], float] = {}

    @staticmethod
    def children(node: tuple[int, int]) -> list[tuple[int, int]]:
        s, e = node
        if e - s < 2:
            return []
        m = (s + e) // 2
        return [(s, m), (m, e)]

    def ucb(self, child: tuple[int, int], parent_visits: int) -> float:
        n = self.visits.get(child, 0)
        if n == 0:
            return math.inf
        return self.reward[child] / n + self.c * math.sqrt(math.log(parent_visits) / n)

    def select(self) -> list[tuple[int, int]]:
        path = [(0, len(self.words))]
        while self.visits.get(path[-1], 0) and self.children(path[-1]):
            parent_n = self.visits[path[-1]]
            path.append(max(self.children(path[-1]), key=lambda ch: self.ucb(ch, parent_n)))
        return path

    def backup(self, path: list[tuple[int, int]], reward: float) -> None:
        for node in path:
            self.visits[node] = self.visits.get(node, 0) + 1
            self.reward[node] = self.reward.get(node, 0.0) + reward

    def scores(self) -> np.ndarray:
        """Per word: mean reward of the deepest (shortest) visited segment containing it."""
        best = np.zeros(len(self.words))
        span = np.full(len(self.words), np.inf)
        for (s, e), n in self.visits.items():
            shorter = span[s:e] > e - s
            best[s:e][shorter] = self.reward[(s, e)] / n
            span[s:e][shorter] = e - s
        return best


def fuzz(
    texts: list[str],
    predict: Predict,
    budget: int = 32,
    c: float = 0.5,
    max_edits: int = 4,
    area: float = 0.25,
    seed: int = 0,
) -> list[FuzzResult]:
    """Vulnerable areas of `texts` after `budget` MCTS iterations each (budget model evaluations per text, plus
    one for the original). c: UCB exploration constant; max_edits: FRS's Λ, the most edits per mutation;
    area: fraction of each text's words (at least one) marked vulnerable."""
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    trees = [_Tree(t.split(), c) for t in texts]
    base = predict(texts)
    for _ in range(budget):
        paths = [tree.select() for tree in trees]
        mutants = [" ".join(mutate(t.words, *p[-1], max_edits, rng)) for t, p in zip(trees, paths, strict=True)]
        rewards = kl(predict(mutants), base)
        for tree, path, r in zip(trees, paths, rewards, strict=True):
            tree.backup(path, float(r))
    per_text = (time.perf_counter() - t0) / max(1, len(texts))
    results = []
    for tree in trees:
        scores = tree.scores()
        k = max(1, math.ceil(area * len(scores))) if len(scores) else 0
        mask = np.zeros(len(scores), dtype=bool)
        mask[np.argsort(-scores, kind="stable")[:k]] = True
        results.append(FuzzResult(mask, scores, per_text))
    return results
