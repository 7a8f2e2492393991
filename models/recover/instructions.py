"""The recovery instruction pool: (instruction, response) pairs built from the zoo's training data.

Four capabilities, each from the zoo's *train* split only (evaluation uses the held-out split):
arithmetic (the zoo's word problems, "Q: ... A:" -> " 42"), recall (key-value lists, "... . ab =" -> " 17"),
code (Python standard-library source: "Continue this Python code:" + lines -> the next lines, or "Write the body
of this Python function:" + a def line -> its body) and English (man pages and package docs: "Continue this
text:" + lines -> the next lines, or "Explain what the command X does." -> its man-page NAME line and what
follows). The capability label is kept for analysis only; no selection method reads it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import numpy as np

from models.recover.errors import RecoverError

CAPABILITIES = ("arithmetic", "recall", "code", "english")
PROMPT_CHARS = 320  # at most this many characters of context in a continuation instruction
RESPONSE_CHARS = 320  # at most this many characters of response


@dataclass(frozen=True)
class Sample:
    """One recovery example: the model is trained on `instruction + response`."""

    instruction: str  # ends with the separator the response follows ("\n" or "A:")
    response: str
    capability: str  # one of CAPABILITIES, for analysis only

    @property
    def text(self) -> str:
        return self.instruction + self.response


def _lines_at(text: str, rng: np.random.Generator) -> tuple[str, str] | None:
    """A (context, continuation) split of `text` at line boundaries, each at most PROMPT/RESPONSE_CHARS."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if len(lines) < 4:
        return None
    start = int(rng.integers(0, len(lines) - 3))
    ctx, resp, i = [], [], start
    while i < len(lines) and sum(len(x) + 1 for x in ctx) + len(lines[i]) < PROMPT_CHARS and len(ctx) < 6:
        ctx.append(lines[i])
        i += 1
    while i < len(lines) and sum(len(x) + 1 for x in resp) + len(lines[i]) < RESPONSE_CHARS and len(resp) < 6:
        resp.append(lines[i])
        i += 1
    if not ctx or not resp:
        return None
    return "\n".join(ctx), "\n".join(resp)


def _function_body(text: str, rng: np.random.Generator) -> tuple[str, str] | None:
    """A (def line, body) pair of one function in `text`, or None if it has none."""
    lines = text.splitlines()
    defs = [i for i, ln in enumerate(lines) if ln.lstrip().startswith("def ") and ln.rstrip().endswith(":")]
    if not defs:
        return None
    i = defs[int(rng.integers(len(defs)))]
    indent = len(lines[i]) - len(lines[i].lstrip())
    body = []
    for ln in lines[i + 1 :]:
        if ln.strip() and len(ln) - len(ln.lstrip()) <= indent:
            break
        if sum(len(x) + 1 for x in body) + len(ln) >= RESPONSE_CHARS:
            break
        body.append(ln)
    body = [ln for ln in body if ln.strip()]
    return (lines[i].strip(), "\n".join(body)) if body else None


def _man_name(text: str) -> tuple[str, str] | None:
    """(command, description) from a man page's NAME section ("NAME\\ncmd - what it does"), or None."""
    lines = text.splitlines()
    if len(lines) < 2 or lines[0].strip() != "NAME" or " - " not in lines[1]:
        return None
    command = lines[1].split(" - ", 1)[0].split(",")[0].strip()
    desc = []
    for ln in lines[1:]:
        if sum(len(x) + 1 for x in desc) + len(ln) >= RESPONSE_CHARS:
            break
        desc.append(ln)
    return (command, "\n".join(desc)) if command and desc else None


def _text_samples(texts: list[str], capability: str, n: int, rng: np.random.Generator) -> list[Sample]:
    out: list[Sample] = []
    tries = 0
    while len(out) < n and tries < 20 * n and texts:
        tries += 1
        text = texts[int(rng.integers(len(texts)))]
        structured = rng.random() < 0.3
        if structured and capability == "code" and (pair := _function_body(text, rng)):
            out.append(Sample(f"Write the body of this Python function:\n{pair[0]}\n", pair[1], capability))
        elif structured and capability == "english" and (pair := _man_name(text)):
            out.append(Sample(f"Explain what the command {pair[0]} does.\n", pair[1], capability))
        elif pair := _lines_at(text, rng):
            what = "Python code" if capability == "code" else "text"
            out.append(Sample(f"Continue this {what}:\n{pair[0]}\n", pair[1], capability))
    return out


def build_pool(preset: str = "default", sizes: dict[str, int] | None = None, seed: int = 0) -> list[Sample]:
    """The recovery pool: `sizes[capability]` samples of each capability (default 400 code, 400 English, 400
    arithmetic, 100 recall) from the zoo preset's training split, drawn with `seed`, interleaved in a seeded
    random order."""
    from models import zoo
    from models.zoo.data import task_examples
    from models.zoo.presets import get_preset

    sizes = {"arithmetic": 400, "recall": 100, "code": 400, "english": 400} if sizes is None else sizes
    unknown = set(sizes) - set(CAPABILITIES)
    if unknown:
        raise RecoverError(f"unknown capability {sorted(unknown)[0]!r}: use {', '.join(CAPABILITIES)}")
    rng = np.random.default_rng([seed, 7])
    p = get_preset(preset)
    pool: list[Sample] = []
    for cap, task in (("arithmetic", "math"), ("recall", "recall")):
        examples = task_examples(task, "train", p, seed)
        pick = rng.choice(len(examples), size=min(sizes.get(cap, 0), len(examples)), replace=False)
        pool += [Sample(examples[i].prompt, examples[i].answer, cap) for i in pick]
    for cap in ("code", "english"):
        if sizes.get(cap, 0):
            pool += _text_samples(zoo.task_texts(cap, "train", preset, seed), cap, sizes[cap], rng)
    order = rng.permutation(len(pool))
    return [pool[i] for i in order]


def to_json(samples: list[Sample]) -> list[dict]:
    return [asdict(s) for s in samples]


def from_json(rows: object) -> list[Sample]:
    """Samples from a JSON list of {"instruction", "response", "capability"} objects; RecoverError if malformed."""
    if not isinstance(rows, list):
        raise RecoverError("the samples must be a JSON list of {instruction, response, capability} objects")
    out = []
    for i, r in enumerate(rows):
        if not isinstance(r, dict) or not all(isinstance(r.get(k), str) for k in ("instruction", "response")):
            raise RecoverError(f"sample {i} is not an object with string 'instruction' and 'response' fields")
        out.append(Sample(r["instruction"], r["response"], str(r.get("capability", ""))))
    return out


def load_pool(path) -> list[Sample]:
    """A user's pool from a JSON file (a list of samples, as to_json writes them)."""
    try:
        rows = json.loads(open(path, encoding="utf-8").read())
    except json.JSONDecodeError as e:
        raise RecoverError(f"{path} is not valid JSON ({e.msg} at line {e.lineno}): fix or regenerate it") from e
    return from_json(rows)


def encode(tokenizer, sample: Sample, max_tokens: int = 256) -> tuple[list[int], int]:
    """Token ids BOS + instruction + response + EOS (cut to `max_tokens`) and the index of the first response
    token; instruction and response are tokenized separately, so the boundary is exact."""
    bos = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
    eos = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    inst = tokenizer(sample.instruction, add_special_tokens=False)["input_ids"]
    resp = tokenizer(sample.response, add_special_tokens=False)["input_ids"]
    ids = (bos + inst + resp + eos)[:max_tokens]
    return ids, min(len(bos) + len(inst), len(ids))
