"""Keypoint losses in heatmap form, coordinate form, or both (``loss.keypoint_form``).

- heatmap: each stack's heatmaps against Gaussian targets (``loss.heatmap_sigma`` in heatmap
  cells, peak 1) by squared error, summed over the cells and averaged over images, points and
  stacks (intermediate supervision of every stack);
- coord: the soft-argmax landmarks against the ground truth, both scaled to [-1, 1] by the input
  side; ``squared`` sums the squared point distances over the points (an L2 loss), ``euclidean``
  sums the distances themselves (the authors' released loss); then the mean over images.

docs/training.md explains the choice per preset.
"""

from __future__ import annotations

import torch


def gaussian_heatmaps(points: torch.Tensor, hw: tuple[int, int], stride: float, sigma: float) -> torch.Tensor:
    """(B, K, 2) input-pixel points -> (B, K, h, w) Gaussians centred on them in heatmap cells."""
    h, w = hw
    u = points[..., 0] / stride - 0.5  # cell j's centre sits at (j + 0.5) * stride input pixels
    v = points[..., 1] / stride - 0.5
    xs = torch.arange(w, device=points.device, dtype=torch.float32)
    ys = torch.arange(h, device=points.device, dtype=torch.float32)
    dx = (xs.view(1, 1, 1, w) - u[..., None, None]) ** 2
    dy = (ys.view(1, 1, h, 1) - v[..., None, None]) ** 2
    return torch.exp(-(dx + dy) / (2.0 * sigma * sigma))


def heatmap_loss(heatmaps: list[torch.Tensor], target: torch.Tensor) -> torch.Tensor:
    """Squared error summed over cells, mean over images, points and stacks."""
    terms = [((h.float() - target) ** 2).sum(dim=(-2, -1)).mean() for h in heatmaps]
    return torch.stack(terms).mean()


def coord_loss(pred: torch.Tensor, target: torch.Tensor, input_hw: tuple[int, int], metric: str) -> torch.Tensor:
    """(B, K, 2) predicted vs true input pixels, compared in [-1, 1] units (see module docstring)."""
    scale = torch.tensor([2.0 / input_hw[1], 2.0 / input_hw[0]], device=pred.device)
    d2 = (((pred.float() - target.float()) * scale) ** 2).sum(-1)  # (B, K)
    if metric == "squared":
        return d2.sum(-1).mean()
    if metric == "euclidean":
        return (d2 + 1e-12).sqrt().sum(-1).mean()
    raise ValueError(f"unknown keypoint coordinate metric '{metric}'")
