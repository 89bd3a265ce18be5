"""Image warps by 3x3 homographies in sfray's pixel convention (corner origin, centres at +0.5).

A matrix ``M`` maps *source* pixel coordinates to *destination* pixel coordinates, both in the
corner convention that landmarks use, so ``transform_points(M, landmarks)`` and ``warp(image, M)``
always agree. kornia's warps use index coordinates (pixel centres at integers); :func:`warp`
converts. Label maps are warped with nearest sampling, and pixels that fall outside the source get
a fill value (``warp_labels``) so callers can ignore them.
"""

from __future__ import annotations

import math

import torch
from kornia.geometry.linalg import transform_points as _kornia_transform_points
from kornia.geometry.transform import warp_perspective


def _eye(batch: int, device=None, dtype=torch.float32) -> torch.Tensor:
    return torch.eye(3, device=device, dtype=dtype).expand(batch, 3, 3).clone()


def scaling(sx: torch.Tensor, sy: torch.Tensor | None = None) -> torch.Tensor:
    """(B,) scale factors -> (B, 3, 3); a pure scale keeps the corner (0, 0) fixed."""
    sy = sx if sy is None else sy
    m = _eye(sx.shape[0], sx.device, sx.dtype)
    m[:, 0, 0], m[:, 1, 1] = sx, sy
    return m


def translation(tx: torch.Tensor, ty: torch.Tensor) -> torch.Tensor:
    m = _eye(tx.shape[0], tx.device, tx.dtype)
    m[:, 0, 2], m[:, 1, 2] = tx, ty
    return m


def similarity_about(center: torch.Tensor, angle_deg: torch.Tensor, scale: torch.Tensor,
                     shift: torch.Tensor | None = None) -> torch.Tensor:
    """(B, 3, 3): rotate by ``angle_deg`` (counter-clockwise on screen) and scale about ``center``
    (B, 2), then translate by ``shift`` (B, 2) pixels."""
    a = angle_deg * (math.pi / 180.0)
    cos, sin = torch.cos(a) * scale, torch.sin(a) * scale
    m = _eye(center.shape[0], center.device, center.dtype)
    # screen y points down, so a counter-clockwise turn on screen is (x, y) -> (x cos + y sin, -x sin + y cos)
    m[:, 0, 0], m[:, 0, 1], m[:, 1, 0], m[:, 1, 1] = cos, sin, -sin, cos
    cx, cy = center[:, 0], center[:, 1]
    m[:, 0, 2] = cx - (cos * cx + sin * cy)
    m[:, 1, 2] = cy - (-sin * cx + cos * cy)
    if shift is not None:
        m[:, 0, 2] += shift[:, 0]
        m[:, 1, 2] += shift[:, 1]
    return m


def hflip(width: float, batch: int, flip: torch.Tensor | None = None, device=None) -> torch.Tensor:
    """(B, 3, 3) mirror ``x -> width - x`` where ``flip`` (B,) is true (identity elsewhere)."""
    m = _eye(batch, device)
    if flip is None:
        flip = torch.ones(batch, dtype=torch.bool, device=device)
    m[flip, 0, 0] = -1.0
    m[flip, 0, 2] = float(width)
    return m


def resize_matrix(src_hw: tuple[int, int], dst_hw: tuple[int, int], batch: int, device=None) -> torch.Tensor:
    """(B, 3, 3) mapping a ``src_hw`` pixel frame onto a ``dst_hw`` one (same field of view)."""
    s = torch.tensor([dst_hw[1] / src_hw[1], dst_hw[0] / src_hw[0]], device=device)
    return scaling(s[0].expand(batch).clone(), s[1].expand(batch).clone())


_CORNER_TO_INDEX = torch.tensor([[1.0, 0.0, -0.5], [0.0, 1.0, -0.5], [0.0, 0.0, 1.0]])
_INDEX_TO_CORNER = torch.tensor([[1.0, 0.0, 0.5], [0.0, 1.0, 0.5], [0.0, 0.0, 1.0]])


def to_index_convention(m: torch.Tensor) -> torch.Tensor:
    """The same map expressed on index coordinates (pixel centres at integers), for kornia."""
    a = _CORNER_TO_INDEX.to(m.device, m.dtype)
    b = _INDEX_TO_CORNER.to(m.device, m.dtype)
    return a @ m @ b


def warp(src: torch.Tensor, m: torch.Tensor, out_hw: tuple[int, int], mode: str = "bilinear") -> torch.Tensor:
    """Warp (B, C, H, W) by ``m`` (B, 3, 3; source -> destination pixels) into ``out_hw``; zeros outside."""
    dtype = src.dtype
    x = src if src.is_floating_point() else src.float()
    out = warp_perspective(x, to_index_convention(m.to(x.dtype)), (int(out_hw[0]), int(out_hw[1])),
                           mode=mode, padding_mode="zeros", align_corners=True)
    return out if out.dtype == dtype else out.round().to(dtype)


def warp_labels(labels: torch.Tensor, m: torch.Tensor, out_hw: tuple[int, int], fill: int) -> torch.Tensor:
    """Warp integer label maps (B, H, W) with nearest sampling; outside the source -> ``fill``."""
    shifted = (labels.float() + 1.0).unsqueeze(1)  # 0 marks "outside"
    out = warp(shifted, m, out_hw, mode="nearest")[:, 0]
    out = out.round().long() - 1
    return torch.where(out < 0, torch.full_like(out, fill), out)


def inside_mask(src_hw: tuple[int, int], m: torch.Tensor, out_hw: tuple[int, int]) -> torch.Tensor:
    """(B, H', W') bool: destination pixels whose source point lies inside the source image."""
    ones = torch.ones(m.shape[0], 1, int(src_hw[0]), int(src_hw[1]), device=m.device)
    return warp(ones, m, out_hw, mode="bilinear")[:, 0] > 0.999


def transform_points(m: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Apply (B, 3, 3) to (B, N, 2) points (corner convention in and out)."""
    return _kornia_transform_points(m.to(points.dtype), points)
