"""Parametrisations of the alignment correction and their bounds."""

from __future__ import annotations

import math

import torch

from sfray.align.model import N_PARAMS, cayley_rotation, clamp_theta, delta_matrix, describe


def _pivot() -> torch.Tensor:
    return torch.tensor([[0.1, -0.2, 0.3]], dtype=torch.float64)


def test_zero_parameters_are_the_identity():
    for kind, n in N_PARAMS.items():
        d = delta_matrix(torch.zeros(1, n, dtype=torch.float64), kind, _pivot())
        assert torch.allclose(d[0], torch.eye(4, dtype=torch.float64), atol=1e-15)


def test_rigid_and_similarity_keep_the_pivot_and_their_shape():
    g = torch.Generator().manual_seed(0)
    theta = torch.randn(1, 7, dtype=torch.float64, generator=g) * 0.2
    pivot = _pivot()
    rigid = delta_matrix(theta[:, :6].clone().index_fill_(1, torch.tensor([3, 4, 5]), 0.0), "rigid", pivot)[0]
    r = rigid[:3, :3]
    assert torch.allclose(r @ r.T, torch.eye(3, dtype=torch.float64), atol=1e-12) and torch.det(r) > 0
    assert torch.allclose(rigid[:3, :3] @ pivot[0] + rigid[:3, 3], pivot[0], atol=1e-12)  # rotates about it
    sim = delta_matrix(theta, "similarity", pivot)[0]
    assert abs(describe(sim)["scale"] - math.exp(theta[0, 6].item())) < 1e-12
    assert describe(sim)["anisotropy"] < 1e-12


def test_cayley_angle_and_bounds():
    w = torch.tensor([[0.0, 0.3, 0.0]], dtype=torch.float64)
    ang = math.degrees(math.acos((torch.trace(cayley_rotation(w)[0]).item() - 1) / 2))
    assert abs(ang - math.degrees(2 * math.atan(0.15))) < 1e-9
    theta = torch.tensor([[0.0, 1.0, 0.0, 0.3, 0.0, 0.0, 0.5]], dtype=torch.float64)
    c = clamp_theta(theta, "similarity", max_rotation_deg=3.0, max_translation=0.05, max_scale_change=0.05)
    d = describe(delta_matrix(c, "similarity", torch.zeros(1, 3, dtype=torch.float64))[0])
    assert abs(d["rotation_deg"] - 3.0) < 1e-9 and abs(d["translation"] - 0.05) < 1e-9
    assert abs(d["scale"] - 1.05) < 1e-9
