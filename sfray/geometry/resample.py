"""Resampling generator maps between resolutions, and bilinear lookups at sub-pixel positions.

Shared by the quality figures (``sfray.annotate.quality``) and the alignment losses
(``sfray.align``): both compare the mesh's depth/mask with the generator's, which live at
different resolutions (a Next3D generator renders depth at its neural rendering resolution).
Pixel coordinates follow ``sfray.conventions`` ((0, 0) is the top-left corner; centres at +0.5).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def resample_coverage(depth: Tensor, mask: Tensor, r: int) -> tuple[Tensor, Tensor]:
    """Generator depth (B, H, W) and soft mask (B, H, W) -> (B, r, r) depth and soft coverage.

    At an integer ratio the filter is the exact box (the coarse pixel's coverage is the mean of its
    fine pixels' coverage, which :func:`signed_distance` relies on); otherwise a centred
    antialiased bilinear kernel (an uncentred box over a non-integer ratio would shift the outline
    by a fraction of a pixel, which the silhouette loss would faithfully turn into a scale error).
    Depth is averaged over foreground only (no blending with the background).
    """
    if depth.shape[-2:] == (r, r):
        return depth.to(torch.float64), mask.to(torch.float64).clamp(0, 1)
    m = mask.to(torch.float64).clamp(0, 1).unsqueeze(1)
    fg = (m >= 0.5).to(torch.float64)
    d = depth.to(torch.float64).unsqueeze(1)

    h, w = depth.shape[-2:]

    def filt(x: Tensor) -> Tensor:
        if h == w and h % r == 0:  # integer ratio: a box filter keeps "coverage" exact
            return F.avg_pool2d(x, h // r)
        return F.interpolate(x, size=(r, r), mode="bilinear", align_corners=False, antialias=True)

    soft = filt(m).clamp(0, 1)
    num, den = filt(d * fg), filt(fg)
    out_d = torch.where(den > 1e-6, num / den.clamp_min(1e-6), torch.zeros_like(num))
    return out_d.squeeze(1), soft.squeeze(1)


def resample_depth_mask(depth: Tensor, mask: Tensor, r: int) -> tuple[Tensor, Tensor]:
    """Like :func:`resample_coverage` but with a bool mask (coverage >= 0.5) and depth 0 outside."""
    d, cov = resample_coverage(depth, mask, r)
    keep = cov >= 0.5
    return d * keep, keep


def sample_bilinear(img: Tensor, b: Tensor, xy: Tensor) -> Tensor:
    """Sample img (B, H, W[, C]) at pixel coords xy (N, 2) (sfray convention) of images b; bilinear,
    clamped to the image."""
    h, w = img.shape[1], img.shape[2]
    x = (xy[:, 0] - 0.5).clamp(0, w - 1.000001)
    y = (xy[:, 1] - 0.5).clamp(0, h - 1.000001)
    x0, y0 = x.floor().long(), y.floor().long()
    fx, fy = x - x0, y - y0
    if img.dim() == 4:
        fx, fy = fx[:, None], fy[:, None]
    v00, v01 = img[b, y0, x0], img[b, y0, x0 + 1]
    v10, v11 = img[b, y0 + 1, x0], img[b, y0 + 1, x0 + 1]
    return (v00 * (1 - fx) + v01 * fx) * (1 - fy) + (v10 * (1 - fx) + v11 * fx) * fy
