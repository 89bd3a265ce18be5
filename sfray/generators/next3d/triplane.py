"""Tri-plane feature sampling and the OSG decoder (docs/next3d.md §2.10, §2.11).

A world point X is scaled to g = 2X/box_warp and projected onto each plane k as the first two
components of g·inverse(A_k); the plane is bilinearly sampled there (zeros outside). Next3D's third
axis matrix differs from EG3D's; the matrices are read from the checkpoint (``renderer.plane_axes``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from sfray.generators.next3d.layers import FullyConnectedLayer


def next3d_plane_axes() -> torch.Tensor:
    """(3, 3, 3) released Next3D axes: I -> (X, Y); rows (x, z, y) -> (X, Z); rows (z, y, x) -> (Z, Y)."""
    return torch.tensor([
        [[1, 0, 0], [0, 1, 0], [0, 0, 1]],
        [[1, 0, 0], [0, 0, 1], [0, 1, 0]],
        [[0, 0, 1], [0, 1, 0], [1, 0, 0]],
    ], dtype=torch.float32)


def eg3d_plane_axes() -> torch.Tensor:
    """(3, 3, 3) EG3D's axes (third plane (Z, X)); only for comparison and checkpoint reports."""
    return torch.tensor([
        [[1, 0, 0], [0, 1, 0], [0, 0, 1]],
        [[1, 0, 0], [0, 0, 1], [0, 1, 0]],
        [[0, 0, 1], [1, 0, 0], [0, 1, 0]],
    ], dtype=torch.float32)


def project_onto_planes(plane_axes: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
    """coords (B, M, 3) -> (B, n_planes, M, 2): first two components of coords · inverse(A_k)."""
    inv = torch.linalg.inv(plane_axes.to(torch.float32)).to(coords.dtype)  # (P, 3, 3)
    proj = torch.einsum("bmi,pij->bpmj", coords, inv)
    return proj[..., :2]


def sample_from_planes(plane_axes: torch.Tensor, planes: torch.Tensor, coords: torch.Tensor,
                       box_warp: float = 1.0) -> torch.Tensor:
    """planes (B, P, C, H, W), coords (B, M, 3) world -> features (B, P, M, C)."""
    b, p, c, h, w = planes.shape
    m = coords.shape[1]
    grid = project_onto_planes(plane_axes, (2.0 / box_warp) * coords).reshape(b * p, 1, m, 2)
    out = F.grid_sample(planes.reshape(b * p, c, h, w), grid.to(planes.dtype), mode="bilinear",
                        padding_mode="zeros", align_corners=False)  # (B*P, C, 1, M)
    return out.reshape(b, p, c, m).permute(0, 1, 3, 2)


class OSGDecoder(nn.Module):
    """Mean over planes -> FC 32->64 -> softplus -> FC 64->1+32; sigma raw, features sigmoid·1.002-0.001."""

    def __init__(self, n_features: int, hidden_dim: int = 64, output_dim: int = 32, lr_multiplier: float = 1.0):
        super().__init__()
        self.hidden_dim, self.output_dim = hidden_dim, output_dim
        self.net = nn.Sequential(
            FullyConnectedLayer(n_features, hidden_dim, lr_multiplier=lr_multiplier),
            nn.Softplus(),
            FullyConnectedLayer(hidden_dim, 1 + output_dim, lr_multiplier=lr_multiplier),
        )

    def forward(self, sampled: torch.Tensor) -> dict[str, torch.Tensor]:
        """sampled (B, P, M, C) -> {'rgb': (B, M, output_dim), 'sigma': (B, M, 1)} (view direction unused)."""
        x = sampled.mean(dim=1)
        b, m, c = x.shape
        x = self.net(x.reshape(b * m, c)).reshape(b, m, -1)
        rgb = torch.sigmoid(x[..., 1:]) * (1 + 2 * 0.001) - 0.001
        return {"rgb": rgb, "sigma": x[..., 0:1]}
