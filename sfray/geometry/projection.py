"""Camera space -> screen space: the pixel coordinates the rasterizer consumes.

Screen points are ``(x, y, depth)``: ``x, y`` in pixels following ``sfray.conventions`` ((0, 0) is
the top-left corner of the top-left pixel, x right, y down, pixel (row i, col j) centred at
(j + 0.5, i + 0.5)); ``depth`` is what the z-buffer compares, smaller = nearer.

Normalised intrinsics map a camera-space point to a normalised image coordinate u in [0, 1] across
the image (u = 0 the left edge of column 0, u = 1 the right edge of column W - 1); the pixel
coordinate is simply ``u * W``. So the normalised principal point 0.5 lands on pixel coordinate W/2,
the shared edge of the two middle columns (the geometric image centre), and the centre of column
j is u = (j + 0.5) / W, which is where EG3D's ray sampler shoots its rays.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor


def _image_hw(image_size: int | Sequence[int]) -> tuple[int, int]:
    """``512`` or ``(H, W)`` -> ``(H, W)``."""
    if isinstance(image_size, int):
        return image_size, image_size
    h, w = (int(s) for s in image_size)
    return h, w


def to_screen_perspective(points_cam: Tensor, intrinsics_norm: Tensor,
                          image_size: int | Sequence[int]) -> Tensor:
    """Pinhole projection of camera-space points to pixels, keeping camera z as depth.

    points_cam (B, N, 3) in OpenCV camera axes (x right, y down, z forward, z > 0 in front);
    intrinsics_norm (B, 3, 3) or (3, 3) normalised by image size (last row (0, 0, 1));
    image_size ``int`` or ``(H, W)``. Returns (B, N, 3): ``(x_pix, y_pix, z)``. Points with z <= 0
    are behind the camera and get non-finite or mirrored pixels; callers decide what to do.
    """
    h, w = _image_hw(image_size)
    k = intrinsics_norm.to(points_cam.dtype)
    if k.dim() == 2:
        k = k.unsqueeze(0)
    uvw = torch.einsum("bij,bnj->bni", k.expand(points_cam.shape[0], -1, -1), points_cam)
    z = points_cam[..., 2]
    x = uvw[..., 0] / uvw[..., 2] * w
    y = uvw[..., 1] / uvw[..., 2] * h
    return torch.stack([x, y, z], dim=-1)


def to_screen_orthographic(points: Tensor, scale: float | Tensor, offset: float | Tensor,
                           depth_sign: float = 1.0) -> Tensor:
    """Orthographic projection: ``xy * scale + offset`` in pixels, depth ``depth_sign * z``.

    points (B, N, 3); ``scale`` and ``offset`` are numbers or tensors broadcastable to (B, N, 2)
    (per-axis values as a (2,) tensor). Pass ``depth_sign=-1`` when the viewer looks down -z (so the
    largest z is nearest). For backface culling the mapping should keep the frame right-handed
    (x right, y down, depth away from the viewer); a mirroring scale flips which faces are kept.
    """
    xy = points[..., :2] * scale + offset
    return torch.cat([xy, points[..., 2:3] * depth_sign], dim=-1)
