"""The κ-stereographic model of constant-curvature space (κ<0 hyperbolic, κ=0 Euclidean, κ>0 spherical).

Points are vectors x ∈ R^d (for κ<0 inside the ball ‖x‖ < 1/√|κ|). Conventions follow geoopt's
`Stereographic` manifold, which SpaceGNN builds on: tan_κ, artan_κ, Möbius addition ⊕_κ, maps at the
origin and the geodesic distance d_κ(x, y) = 2·artan_κ(‖(−x) ⊕_κ y‖), which at κ=0 is 2‖x − y‖. Every
function takes κ as a float or a 0-d tensor (a learnable curvature), works on the last dimension and is
differentiable in κ, also at κ = 0 (a Taylor series is used for |κ|·r² below TAYLOR).
"""

from __future__ import annotations

import torch
from torch import Tensor

MIN_NORM = 1e-15
# Below this |κ|·r² the closed forms lose precision in float32; the series is exact to O((κr²)^3) there.
TAYLOR = 1e-6
# Points are kept this far (relative) inside the ball boundary 1/√|κ|.
BALL_EPS = 1e-5


def _as_tensor(k: float | Tensor, like: Tensor) -> Tensor:
    return torch.as_tensor(k, dtype=like.dtype, device=like.device)


def tan_k(r: Tensor, k: float | Tensor) -> Tensor:
    """tan_κ(r): tanh(√-κ r)/√-κ for κ<0, r for κ=0, tan(√κ r)/√κ for κ>0."""
    k = _as_tensor(k, r)
    sk = k.abs().clamp_min(MIN_NORM).sqrt()
    closed = torch.where(k < 0, torch.tanh(sk * r), torch.tan(sk * r)) / sk
    series = r + k * r**3 / 3 + 2 * k**2 * r**5 / 15
    return torch.where((k * r * r).abs() < TAYLOR, series, closed)


def artan_k(r: Tensor, k: float | Tensor) -> Tensor:
    """The inverse of tan_κ: artanh(√-κ r)/√-κ for κ<0, r for κ=0, arctan(√κ r)/√κ for κ>0."""
    k = _as_tensor(k, r)
    sk = k.abs().clamp_min(MIN_NORM).sqrt()
    inner = (sk * r).clamp(max=1 - BALL_EPS)
    closed = torch.where(k < 0, torch.atanh(inner), torch.atan(sk * r)) / sk
    series = r - k * r**3 / 3 + k**2 * r**5 / 5
    return torch.where((k * r * r).abs() < TAYLOR, series, closed)


def _norm(x: Tensor) -> Tensor:
    return x.norm(dim=-1, keepdim=True).clamp_min(MIN_NORM)


def expmap0(u: Tensor, k: float | Tensor) -> Tensor:
    """Exponential map at the origin: tangent vector u (…, d) to the point tan_κ(‖u‖)·u/‖u‖."""
    n = _norm(u)
    return tan_k(n, k) * u / n


def logmap0(x: Tensor, k: float | Tensor) -> Tensor:
    """Logarithmic map at the origin, the inverse of expmap0: point x (…, d) to artan_κ(‖x‖)·x/‖x‖."""
    n = _norm(x)
    return artan_k(n, k) * x / n


def project(x: Tensor, k: float | Tensor) -> Tensor:
    """Clip ‖x‖ to (1 − BALL_EPS)/√|κ| (nothing at κ = 0).

    For κ<0 this keeps x inside the Poincaré ball. SpaceGNN's code applies the same clip for κ>0, where it
    bounds the spherical branch's norms; we follow it (see spacegnn.squash).
    """
    if not isinstance(k, Tensor) and k == 0:
        return x
    n = _norm(x)
    max_norm = (1 - BALL_EPS) / _as_tensor(k, x).abs().sqrt().clamp_min(MIN_NORM)
    return torch.where(n > max_norm, x / n * max_norm, x)


def mobius_add(x: Tensor, y: Tensor, k: float | Tensor) -> Tensor:
    """Möbius addition x ⊕_κ y (…, d); at κ = 0 it is x + y."""
    k = _as_tensor(k, x)
    xy = (x * y).sum(-1, keepdim=True)
    x2 = (x * x).sum(-1, keepdim=True)
    y2 = (y * y).sum(-1, keepdim=True)
    num = (1 - 2 * k * xy - k * y2) * x + (1 + k * x2) * y
    den = 1 - 2 * k * xy + k**2 * x2 * y2
    return num / den.clamp_min(MIN_NORM)


def dist(x: Tensor, y: Tensor, k: float | Tensor) -> Tensor:
    """Geodesic distance d_κ(x, y) = 2·artan_κ(‖(−x) ⊕_κ y‖), shape (…,); 2‖x − y‖ at κ = 0."""
    return 2 * artan_k(mobius_add(-x, y, k).norm(dim=-1), k)


def dist_taylor(x: Tensor, y: Tensor, k: float | Tensor) -> Tensor:
    """First-order expansion of d_κ in κ, which SpaceGNN uses for its edge coefficients (…,):
    2e − 2κ(e³/3 + ⟨x, y⟩·e) with e = ‖x − y‖; its error is O(κ²) (tests check it against `dist`).

    The reference notes transcribe the code's last term as ⟨x, y⟩·e², whose error is O(κ); we use the
    expansion that is actually first-order, derived from Möbius addition and artan_κ.
    """
    e = (x - y).norm(dim=-1)
    return 2 * e - 2 * _as_tensor(k, x) * (e**3 / 3 + (x * y).sum(-1) * e)
