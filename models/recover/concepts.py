"""PASER's negative-tuning mitigation: RAKE key phrases as concepts and the Concept Consistency Graph filter.

Concepts are a sample's top RAKE phrases (Rose et al. 2010, as `rake_nltk` computes them: candidate phrases are
the runs of words between stop words and punctuation; a word scores degree/frequency, a phrase the sum of its
words), written here so no NLTK corpus download is needed. The graph rule is the one in BokwaiHo/PASER: a sample
is rejected when two of its concepts are already nodes of the graph with no edge between them (they have been
seen, but never together: the sample relates them in a way no accepted sample did); otherwise it is accepted and
its concepts are joined into a clique. The paper's exact rule (e.g. similarity thresholds) is unverified.
"""

from __future__ import annotations

import itertools
import re
from collections import Counter, defaultdict

STOP_WORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before being below between
    both but by can could did do does doing down during each few for from further had has have having he her here
    hers herself him himself his how i if in into is it its itself just me more most my myself no nor not now of
    off on once only or other our ours ourselves out over own same she should so some such than that the their
    theirs them themselves then there these they this those through to too under until up very was we were what
    when where which while who whom why will with would you your yours yourself yourselves""".split()
)
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_']*|\d+")
_BREAK = re.compile(r"[^\w\s']+|\n")


def rake_phrases(text: str) -> list[tuple[str, float]]:
    """Candidate phrases of `text` with their RAKE scores, best first (ties in order of appearance)."""
    phrases: list[tuple[str, ...]] = []
    for chunk in _BREAK.split(text.lower()):
        run: list[str] = []
        for w in _WORD.findall(chunk):
            if w in STOP_WORDS:
                if run:
                    phrases.append(tuple(run))
                run = []
            else:
                run.append(w)
        if run:
            phrases.append(tuple(run))
    freq: Counter[str] = Counter()
    degree: defaultdict[str, int] = defaultdict(int)
    for p in phrases:
        for w in p:
            freq[w] += 1
            degree[w] += len(p)
    scores: dict[str, float] = {}
    for p in phrases:
        scores.setdefault(" ".join(p), sum(degree[w] / freq[w] for w in p))
    return sorted(scores.items(), key=lambda kv: -kv[1])


def concepts(text: str, limit: int = 5) -> list[str]:
    """The `limit` best RAKE phrases of `text` (lower case)."""
    return [p for p, _ in rake_phrases(text)[:limit]]


class ConceptGraph:
    """The Concept Consistency Graph: concepts as nodes, an edge for every pair seen in one accepted sample."""

    def __init__(self) -> None:
        self.edges: defaultdict[str, set[str]] = defaultdict(set)

    def consistent(self, items: list[str]) -> bool:
        """False if two of `items` are both nodes without an edge between them."""
        known = [c for c in dict.fromkeys(items) if c in self.edges]
        return all(b in self.edges[a] for a, b in itertools.combinations(known, 2))

    def add(self, items: list[str]) -> None:
        """Add `items` as nodes joined into a clique."""
        items = list(dict.fromkeys(items))
        for c in items:
            self.edges[c]  # noqa: B018  (creates the node)
        for a, b in itertools.combinations(items, 2):
            self.edges[a].add(b)
            self.edges[b].add(a)
