"""Point visibility against a rendered mesh: inside the image and on the surface the image shows.

A landmark lies on the mesh, so it is visible when the rendered surface *at its position* is the
landmark's own surface: some pixel of the ``window`` x ``window`` block centred on the pixel that
holds the landmark is covered by the mesh at a depth within ``tolerance`` of the landmark's depth
(docs/conventions.md). The block reaches one pixel beyond the landmark's own (for the default
window of 3) because a point on the outline sits on the boundary between the head and what is
behind it, and the tolerance absorbs how far the surface recedes across a pixel seen at a grazing
angle. A point hidden by another part of the head (a far-side jaw point behind the cheek) sees
only surfaces much nearer than itself and is invisible; a point seen next to the background or
to a farther surface (a contour point on the outline) is visible.

Two users: the annotator flags its landmarks with it (``landmarks_visible``), and the camera
contour (``sfray.head.contour``) slides each jaw point to the first point of its curve that the
image shows. :func:`head_points_to_screen` is the projection both share with the rasterized mesh.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from sfray.conventions import VISIBILITY_TOLERANCE
from sfray.geometry.camera import camera_label_to_matrices, world_to_camera
from sfray.geometry.projection import to_screen_perspective
from sfray.geometry.transform import transform_points

#: Side (pixels) of the block round a point's pixel searched for its surface.
VISIBILITY_WINDOW = 3


def landmark_visibility(pixels: torch.Tensor, depth: torch.Tensor, zbuf: torch.Tensor, tolerance: float,
                        window: int = VISIBILITY_WINDOW) -> torch.Tensor:
    """(B, N) bool from landmark pixels (B, N, 2), camera z (B, N) and a z-buffer (B, H, W).

    ``zbuf`` holds +inf (or any non-finite value) where no face covers a pixel. Points outside the
    image (or behind the camera, z <= 0, or non-finite) are invisible.
    """
    b, h, w = zbuf.shape
    x, y = pixels[..., 0], pixels[..., 1]
    finite = torch.isfinite(x) & torch.isfinite(y) & torch.isfinite(depth)
    inside = finite & (x >= 0) & (x < w) & (y >= 0) & (y < h) & (depth > 0)
    col = torch.where(finite, x, torch.zeros_like(x)).floor().long().clamp(0, w - 1)
    row = torch.where(finite, y, torch.zeros_like(y)).floor().long().clamp(0, h - 1)
    r = window // 2
    # unfold the padded z-buffer into each pixel's block: (B, window^2, H * W)
    z = torch.where(torch.isfinite(zbuf), zbuf, torch.full_like(zbuf, float("nan"))).to(depth.dtype)
    blocks = F.unfold(F.pad(z[:, None], (r, r, r, r), value=float("nan")), window)
    idx = (row * w + col)[:, None, :].expand(b, blocks.shape[1], -1)
    near = torch.gather(blocks, 2, idx)  # (B, window^2, N)
    same_surface = ((near - depth[:, None, :]).abs() <= tolerance).any(dim=1)  # NaN compares False
    return inside & same_surface


def head_points_to_screen(points_head: torch.Tensor, head_to_world: torch.Tensor, camera: torch.Tensor,
                          resolution: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Head-space points (B, N, 3) -> (world, camera, screen), each (B, N, 3) float64.

    Screen is (x, y) pixels at ``resolution`` and camera z, the rasterizer's input. Float64 so
    that landmark pixels do not jitter with float32 rounding at 512+ px.
    """
    world = transform_points(head_to_world.to(torch.float64), points_head.to(torch.float64))
    c2w, k = camera_label_to_matrices(camera.to(torch.float64))
    cam = world_to_camera(world, c2w)
    return world, cam, to_screen_perspective(cam, k, resolution)


class ZBufferVisibility:
    """``visible(points_head) -> (B, N) bool`` against one rendered z-buffer of the same samples.

    ``zbuf`` (B, H, W) camera z of the mesh (+inf where empty, square images), ``head_to_world``
    (B, 4, 4) and ``camera`` (B, 25) the transform and labels it was rendered with.
    """

    def __init__(self, zbuf: torch.Tensor, head_to_world: torch.Tensor, camera: torch.Tensor,
                 tolerance: float = VISIBILITY_TOLERANCE):
        self.zbuf = zbuf.to(torch.float64)
        self.head_to_world, self.camera = head_to_world, camera
        self.resolution = int(zbuf.shape[-1])
        self.tolerance = float(tolerance)

    def __call__(self, points_head: torch.Tensor) -> torch.Tensor:
        _, _, screen = head_points_to_screen(points_head, self.head_to_world, self.camera, self.resolution)
        return landmark_visibility(screen[..., :2], screen[..., 2], self.zbuf, self.tolerance)


def render_visibility(vertices: torch.Tensor, faces: torch.Tensor, head_to_world: torch.Tensor,
                      camera: torch.Tensor, resolution: int, *, tolerance: float = VISIBILITY_TOLERANCE,
                      rasterize: Callable[..., Any] | None = None) -> ZBufferVisibility:
    """Rasterize head-space meshes (B, V, 3) at ``resolution`` exactly as the annotator does and
    return their :class:`ZBufferVisibility` (for callers without an annotation z-buffer)."""
    if rasterize is None:
        from sfray.geometry.rasterizer import rasterize
    _, _, screen = head_points_to_screen(vertices, head_to_world, camera, resolution)
    frags = rasterize(screen.to(torch.float32), faces, (resolution, resolution), perspective_correct=True)
    return ZBufferVisibility(frags.zbuf, head_to_world, camera, tolerance)
