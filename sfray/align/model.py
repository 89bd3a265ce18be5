"""Parametrisations of the alignment map for the Gauss-Newton fit: affine, similarity, rigid.

The fit solves for a small correction ``D(theta)`` applied after the starting map ``A0``
(``A = D(theta) @ A0``). ``D`` acts about a pivot ``c`` (the head's centre), so rotation/scale and
translation are nearly decoupled and the normal equations stay well conditioned::

    D(theta): x -> c + L(theta) (x - c) + t(theta)

* ``affine`` (12): ``L = I + theta[:9]`` (the authors' 3 -> 4 -> 3 MLP is an affine map too);
* ``similarity`` (7): ``L = exp(theta[6]) R(theta[:3])``;
* ``rigid`` (6): ``L = R(theta[:3])``;

with ``t = theta[3:6]`` (rigid/similarity) or ``theta[9:12]`` (affine). ``R`` is the Cayley
transform of the rotation vector, smooth at zero (no ``|w|`` in a denominator, so forward-mode
Jacobians at theta = 0 are exact) and exactly orthogonal; for small angles it equals the rotation
by ``w`` to second order.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

N_PARAMS = {"affine": 12, "similarity": 7, "rigid": 6}


def skew(w: Tensor) -> Tensor:
    """(..., 3) -> (..., 3, 3) cross-product matrices."""
    z = torch.zeros_like(w[..., 0])
    return torch.stack([
        torch.stack([z, -w[..., 2], w[..., 1]], dim=-1),
        torch.stack([w[..., 2], z, -w[..., 0]], dim=-1),
        torch.stack([-w[..., 1], w[..., 0], z], dim=-1),
    ], dim=-2)


def cayley_rotation(w: Tensor) -> Tensor:
    """(..., 3) rotation vector -> (..., 3, 3) rotation ``(I - K/2)^-1 (I + K/2)``, K = skew(w)."""
    k = skew(w) / 2
    eye = torch.eye(3, dtype=w.dtype, device=w.device).expand_as(k)
    return torch.linalg.solve(eye - k, eye + k)


def linear_and_translation(theta: Tensor, kind: str) -> tuple[Tensor, Tensor]:
    """theta (G, P) -> L (G, 3, 3) and t (G, 3)."""
    g = theta.shape[0]
    if kind == "affine":
        eye = torch.eye(3, dtype=theta.dtype, device=theta.device)
        return eye + theta[:, :9].reshape(g, 3, 3), theta[:, 9:12]
    rot = cayley_rotation(theta[:, :3])
    if kind == "similarity":
        rot = rot * torch.exp(theta[:, 6]).reshape(g, 1, 1)
    elif kind != "rigid":
        raise ValueError(f"unknown alignment model '{kind}' (affine | similarity | rigid)")
    return rot, theta[:, 3:6]


def delta_matrix(theta: Tensor, kind: str, pivot: Tensor) -> Tensor:
    """theta (G, P), pivot (G, 3) -> (G, 4, 4) correction maps ``D(theta)`` about the pivot."""
    lin, t = linear_and_translation(theta, kind)
    offset = pivot + t - (lin @ pivot.unsqueeze(-1)).squeeze(-1)
    top = torch.cat([lin, offset.unsqueeze(-1)], dim=-1)
    bottom = torch.zeros(theta.shape[0], 1, 4, dtype=theta.dtype, device=theta.device)
    bottom[..., 3] = 1.0
    return torch.cat([top, bottom], dim=-2)


def clamp_theta(theta: Tensor, kind: str, *, max_rotation_deg: float, max_translation: float,
                max_scale_change: float) -> Tensor:
    """Project theta (G, P) into the bounded set used by per-sample refinement."""
    theta = theta.clone()
    t_slice = slice(9, 12) if kind == "affine" else slice(3, 6)
    t = theta[:, t_slice]
    norm = t.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    theta[:, t_slice] = t * (max_translation / norm).clamp(max=1.0)
    if kind == "affine":
        theta[:, :9] = theta[:, :9].clamp(-max_scale_change, max_scale_change)
        return theta
    # Cayley: the rotation angle is 2 atan(|w| / 2)
    max_w = 2.0 * math.tan(math.radians(max_rotation_deg) / 2.0)
    w = theta[:, :3]
    wn = w.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    theta[:, :3] = w * (max_w / wn).clamp(max=1.0)
    if kind == "similarity":
        theta[:, 6] = theta[:, 6].clamp(math.log(1 - max_scale_change), math.log(1 + max_scale_change))
    return theta


def describe(matrix: Tensor) -> dict[str, float]:
    """Summary of a (4, 4) map: rotation angle (deg), mean scale, translation norm, max |A - I|."""
    m = matrix.to(torch.float64)
    lin = m[:3, :3]
    u, s, vh = torch.linalg.svd(lin)
    rot = u @ vh
    cos = ((torch.trace(rot) - 1) / 2).clamp(-1.0, 1.0)
    return {
        "rotation_deg": math.degrees(float(torch.arccos(cos))),
        "scale": float(s.mean()),
        "anisotropy": float(s.max() / s.min() - 1.0),
        "translation": float(m[:3, 3].norm()),
        "max_abs_minus_identity": float((m - torch.eye(4, dtype=torch.float64)).abs().max()),
    }
