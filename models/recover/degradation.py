"""Per-sample scores from forward passes: PASER's capability degradation (JSD between the original and the
pruned model) and the instruction-following difficulty (IFD) used by the quality baseline.

Deliberate differences from BokwaiHo/PASER: the JSD is averaged over the predicted tokens of the whole sample
(instruction + response, as trained), not summed over the instruction's positions (a sum grows with length);
lengths are counted in tokens, not characters.
"""

from __future__ import annotations

import numpy as np
import torch
from tqdm import tqdm

from models.recover.instructions import Sample, encode

BATCH = 16


def pad_batch(seqs: list[list[int]], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(ids, attention mask), each (len(seqs), longest) int64: token lists right-padded with `pad`."""
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.tensor(s)
        mask[i, : len(s)] = 1
    return ids, mask


def _token_nll(model, ids: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, T-1) next-token NLL (nats) and (B, T-1, V) log-probabilities of `model` on the batch."""
    logp = torch.log_softmax(model(input_ids=ids, attention_mask=mask).logits[:, :-1].float(), dim=-1)
    return -logp.gather(-1, ids[:, 1:].unsqueeze(-1)).squeeze(-1), logp


def jsd(logp: torch.Tensor, logq: torch.Tensor) -> torch.Tensor:
    """Jensen-Shannon divergence (nats) between the distributions given as log-probabilities over the last axis."""
    logm = torch.logsumexp(torch.stack([logp, logq]), dim=0) - np.log(2.0)
    kl_pm = (logp.exp() * (logp - logm)).sum(-1)
    kl_qm = (logq.exp() * (logq - logm)).sum(-1)
    return 0.5 * (kl_pm + kl_qm)


def _length_batches(tokenizer, samples: list[Sample], max_tokens: int):
    """(sample indices, encodings) batches of similar length, so little of each batch is padding."""
    enc = [encode(tokenizer, s, max_tokens) for s in samples]
    order = sorted(range(len(enc)), key=lambda i: len(enc[i][0]))
    for b in range(0, len(order), BATCH):
        idx = order[b : b + BATCH]
        yield idx, [enc[i] for i in idx]


@torch.no_grad()
def degradation(
    original, pruned, tokenizer, samples: list[Sample], max_tokens: int = 256, progress: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """(tokens, jsd): per sample the length of its encoding and the mean JSD(original, pruned) over its
    predicted tokens (nats), from one forward of each model."""
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    tokens, div = np.zeros(len(samples), np.int64), np.zeros(len(samples))
    original.eval()
    pruned.eval()
    batches = _length_batches(tokenizer, samples, max_tokens)
    for idx, enc in tqdm(batches, total=-(-len(samples) // BATCH), desc="degradation (JSD)", disable=not progress):
        ids, mask = pad_batch([e[0] for e in enc], pad)
        d = jsd(_token_nll(original, ids, mask)[1], _token_nll(pruned, ids, mask)[1])
        valid = mask[:, 1:].bool()
        for i, (seq, _) in enumerate(enc):
            tokens[idx[i]] = len(seq)
            div[idx[i]] = d[i][valid[i]].mean().item()
    return tokens, div


@torch.no_grad()
def ifd_scores(model, tokenizer, samples: list[Sample], max_tokens: int = 256, progress: bool = False) -> np.ndarray:
    """Instruction-following difficulty (Cherry-LLM) per sample under `model`: PPL(response | instruction) /
    PPL(response alone, as BOS + response + EOS); 1.0 where the `max_tokens` cut left no response."""
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    bos = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
    out = np.zeros(len(samples))
    model.eval()
    batches = _length_batches(tokenizer, samples, max_tokens)
    for idx, enc in tqdm(batches, total=-(-len(samples) // BATCH), desc="IFD", disable=not progress):
        nll = _token_nll(model, *pad_batch([e[0] for e in enc], pad))[0]
        resp = [bos + seq[start:] for seq, start in enc]
        nll_alone = _token_nll(model, *pad_batch([r if len(r) > 1 else r + [pad] for r in resp], pad))[0]
        for i, (seq, start) in enumerate(enc):
            # position t predicts token t+1: response tokens start..len-1 are predicted at start-1..len-2
            if start >= len(seq):  # the cut left no response token: the instruction cannot help (IFD 1)
                out[idx[i]] = 1.0
                continue
            cond = nll[i, max(start - 1, 0) : len(seq) - 1].mean().item()
            alone = nll_alone[i, : len(resp[i]) - 1].mean().item()
            out[idx[i]] = np.exp(cond - alone)
    return out
