"""GPTQ (Frantar et al. 2022, arXiv 2210.17323) into the accelerator's group-wise integer format.

For one linear layer with calibration inputs X (tokens x k), GPTQ minimises ||X W^T - X Q^T||^2
column by column: after quantizing input column j, the rounding error is spread over the not yet
quantized columns through the inverse Hessian H^-1 = (2 X^T X)^-1, using the upper Cholesky factor
of H^-1 so every step is a rank-1 update; updates are applied lazily per block of columns.
Group scales and zero points are computed when a group starts, from the error-updated weights.
"""

from __future__ import annotations

import torch

from models.quant.weights import QuantizedWeight, group_params, layer_frac_bits, pack, quantize_values

BLOCK = 128


class Hessian:
    """Running H = 2/N * sum x x^T over calibration inputs of one layer (float64, k x k)."""

    def __init__(self, in_features: int) -> None:
        self.h = torch.zeros(in_features, in_features, dtype=torch.float64)
        self.rows = 0

    def add(self, x: torch.Tensor) -> None:
        """Accumulate inputs x (..., k)."""
        x = x.detach().reshape(-1, x.shape[-1]).cpu().double()
        n = x.shape[0]
        self.h *= self.rows / (self.rows + n)
        self.rows += n
        x = x * (2.0 / self.rows) ** 0.5
        self.h += x.T @ x


def gptq_quantize(
    weight: torch.Tensor,
    hessian: torch.Tensor,
    wbits: int,
    group: int,
    wformat: str = "unsigned",
    damp: float = 0.01,
    act_order: bool = False,
) -> QuantizedWeight:
    """GPTQ-quantize a torch Linear weight (out, in) given H (in x in).

    F is fixed up front from the unmodified weights with one bit of headroom, since error feedback
    can widen a group's range and every S of the layer must fit 16 bits (S is clamped to 2**16 - 1
    as a last resort). With act_order the columns are visited by decreasing H diagonal, and the
    group parameters are computed up front from the unmodified weights ("static groups"), so a
    group remains G consecutive input features as the hardware requires.
    """
    n, k = weight.shape
    w = weight.detach().double().clone()
    h = hessian.double().clone()
    dead = torch.diag(h) == 0
    h[dead, dead] = 1
    w[:, dead] = 0
    frac_bits = layer_frac_bits(weight, group, wbits, wformat) - 1

    groups = k // group
    s_all = torch.zeros(n, groups, dtype=torch.int64)
    z_all = torch.zeros(n, groups, dtype=torch.int64)
    sc_all = torch.zeros(n, groups, dtype=torch.float64)
    if act_order:
        s_all, z_all, sc_all = group_params(w.reshape(n, groups, group), wbits, wformat, frac_bits)
        perm = torch.argsort(torch.diag(h), descending=True)
    else:
        perm = torch.arange(k)
    w = w[:, perm]
    h = h[perm][:, perm]

    h += damp * torch.mean(torch.diag(h)) * torch.eye(k, dtype=torch.float64)
    hinv = torch.linalg.cholesky(torch.cholesky_inverse(torch.linalg.cholesky(h)), upper=True)

    q = torch.zeros(n, k, dtype=torch.int64)
    # Blocks are whole groups, so (without act order) a group never starts mid-way through
    # weights that still await this block's updates.
    block = group * max(1, BLOCK // group)
    for b0 in range(0, k, block):
        b1 = min(b0 + block, k)
        w1 = w[:, b0:b1].clone()
        err = torch.zeros_like(w1)
        hinv1 = hinv[b0:b1, b0:b1]
        for i in range(b1 - b0):
            col = b0 + i
            g = int(perm[col]) // group
            if not act_order and col % group == 0:
                s_all[:, g], z_all[:, g], sc_all[:, g] = group_params(w1[:, i : i + group], wbits, wformat, frac_bits)
            wc = w1[:, i]
            qc = quantize_values(wc, sc_all[:, g], z_all[:, g], wbits, wformat)
            q[:, col] = qc
            e = (wc - sc_all[:, g] * (qc - z_all[:, g])) / hinv1[i, i]
            w1[:, i:] -= e[:, None] * hinv1[i, i:][None, :]
            err[:, i] = e
        w[:, b1:] -= err @ hinv[b0:b1, b1:]

    q = q[:, torch.argsort(perm)]
    return pack(q, s_all, z_all, frac_bits, group, wbits, wformat)
