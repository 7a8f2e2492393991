"""Generated tasks with exact answers: arithmetic word problems and key-value recall, and their scoring.

Each example is a prompt and an answer; its text is `prompt + answer`. A model answers by continuing the
prompt; `score` gives 1.0 for exactly the right answer and 0.0 for anything else.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

NAMES = ("Ann", "Ben", "Cara", "Dev", "Eli", "Fay", "Gus", "Hana", "Ivo", "Jo", "Kim", "Lee", "Mia", "Ned", "Oz")
ITEMS = ("apples", "books", "coins", "pens", "cards", "shells", "stamps", "eggs", "marbles", "boxes")
KEY_CHARS = "abcdefghijklmnopqrstuvwxyz"

# Distinct seed offsets so train and test examples come from separate random streams.
_SPLIT_OFFSET = {"train": 1_000_003, "test": 2_000_003}


@dataclass(frozen=True)
class Example:
    prompt: str
    answer: str  # what must follow the prompt, with its leading space

    @property
    def text(self) -> str:
        return self.prompt + self.answer


def _rng(seed: int, split: str, salt: int) -> np.random.Generator:
    if split not in _SPLIT_OFFSET:
        raise ValueError(f"unknown split {split!r}: use train or test")
    return np.random.default_rng([seed, _SPLIT_OFFSET[split], salt])


def is_test_problem(op: int, a: int, b: int) -> bool:
    """About one (operation, operands) triple in ten is held out: test problems never occur in training."""
    return zlib.crc32(f"{op},{a},{b}".encode()) % 10 == 0


def arithmetic(n: int, split: str = "test", seed: int = 0) -> list[Example]:
    """`n` word problems (+, -, ×) whose answer is the exact integer result."""
    rng = _rng(seed, split, 1)
    out = []
    while len(out) < n:
        name, other = rng.choice(NAMES, size=2, replace=False)
        item = str(rng.choice(ITEMS))
        op = int(rng.integers(3))
        if op == 0:
            a, b = (int(x) for x in rng.integers(1, 100, size=2))
            q, ans = f"{name} has {a} {item} and gets {b} more from {other}. How many {item} does {name} have?", a + b
        elif op == 1:
            a = int(rng.integers(2, 100))
            b = int(rng.integers(1, a))
            q, ans = f"{name} has {a} {item} and gives {b} to {other}. How many {item} does {name} have left?", a - b
        else:
            a, b = (int(x) for x in rng.integers(2, 13, size=2))
            q, ans = f"{name} buys {a} bags of {item} with {b} {item} in each. How many {item} does {name} buy?", a * b
        if is_test_problem(op, a, b) == (split == "test"):
            out.append(Example(f"Q: {q} A:", f" {ans}"))
    return out


def recall(n: int, pairs: int, split: str = "test", seed: int = 0) -> list[Example]:
    """`n` key-value recall sequences: `pairs` distinct two-letter keys with two-digit values, then one key
    asked again; the answer is its value."""
    rng = _rng(seed, split, 2 + 1000 * pairs)
    out = []
    keys_all = [a + b for a in KEY_CHARS for b in KEY_CHARS]
    for _ in range(n):
        keys = rng.choice(keys_all, size=pairs, replace=False)
        values = rng.integers(10, 100, size=pairs)
        asked = int(rng.integers(pairs))
        body = " ".join(f"{k}={v}" for k, v in zip(keys, values, strict=True))
        out.append(Example(f"recall: {body} . {keys[asked]} =", f" {values[asked]}"))
    return out


def score(predicted: str, answer: str) -> float:
    """1.0 if `predicted` is exactly `answer` (surrounding whitespace ignored), else 0.0."""
    return float(predicted.strip() == answer.strip())


def solve_arithmetic(prompt: str) -> int:
    """The exact answer of an `arithmetic` prompt, read back from its words (a check independent of the generator)."""
    words = prompt.replace("?", " ").replace(".", " ").split()
    nums = [int(w) for w in words if w.isdigit()]
    if " gets " in prompt:
        return nums[0] + nums[1]
    if " gives " in prompt:
        return nums[0] - nums[1]
    return nums[0] * nums[1]


def solve_recall(prompt: str) -> int:
    """The exact answer of a `recall` prompt, read back from its text."""
    body, asked = prompt.removeprefix("recall: ").rsplit(" . ", 1)
    table = dict(pair.split("=") for pair in body.split())
    return int(table[asked.removesuffix(" =")])
