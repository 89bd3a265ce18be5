"""Landmark visibility: inside the image and not hidden behind the mesh itself.

A landmark lies on the mesh surface, so it is visible when the z-buffer *near its pixel position*
shows a surface at (about) its own depth or farther. "Near" is the 2x2 block of pixel centres that
surrounds the landmark (its bilinear footprint), and the test keeps the **farthest** of those four
depths: a landmark that sits right at a depth edge (a contour point on the silhouette, an eye
corner beside the nose) is visible if any of its four neighbours sees it; one that is covered
everywhere around it is hidden. Empty pixels count as infinitely far (a landmark on the silhouette
with background next to it is visible). ``tolerance`` absorbs the depth difference between the
landmark and the surface sampled up to 0.7 px away (camera z, generator world units).
"""

from __future__ import annotations

import torch


def landmark_visibility(pixels: torch.Tensor, depth: torch.Tensor, zbuf: torch.Tensor,
                        tolerance: float) -> torch.Tensor:
    """(B, N) bool from landmark pixels (B, N, 2), camera z (B, N) and a z-buffer (B, H, W).

    ``zbuf`` holds +inf where no face covers a pixel. Points outside the image (or behind the
    camera, z <= 0, or non-finite) are invisible.
    """
    b, h, w = zbuf.shape
    x, y = pixels[..., 0], pixels[..., 1]
    finite = torch.isfinite(x) & torch.isfinite(y) & torch.isfinite(depth)
    inside = finite & (x >= 0) & (x < w) & (y >= 0) & (y < h) & (depth > 0)
    xs = torch.where(finite, x, torch.zeros_like(x))
    ys = torch.where(finite, y, torch.zeros_like(y))
    # the four pixel centres around (x, y): columns floor(x - 0.5) and +1, same for rows
    c0 = torch.floor(xs - 0.5).long()
    r0 = torch.floor(ys - 0.5).long()
    flat = zbuf.reshape(b, h * w)
    far = torch.full_like(depth, -float("inf"))
    for dr in (0, 1):
        for dc in (0, 1):
            r = (r0 + dr).clamp(0, h - 1)
            c = (c0 + dc).clamp(0, w - 1)
            z = torch.gather(flat, 1, r * w + c).to(depth.dtype)
            far = torch.maximum(far, z)
    return inside & (depth <= far + tolerance)
