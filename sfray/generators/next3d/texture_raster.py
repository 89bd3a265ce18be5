"""Rasterize the neural-textured head mesh into Next3D's four orthographic views (docs/next3d.md §2.4, §2.5).

Per view (front, right, left, top) the mesh is rasterized with backface culling and nearest-wins;
each covered pixel gets its UV by screen-space barycentric interpolation and samples the neural
texture there (empty pixels sample the texture centre, a released quirk). Alpha is coverage times
the UV face/eye mask, and holes enclosed by the face (the open mouth, nostrils) are filled with
alpha 1. The front view's landmarks give the mouth box.

Two rasterization modes (``RASTER_COMPAT``, docs/next3d.md "Texture rasterization: numerical
conventions"): ``pytorch3d`` reproduces the kernel the released weights were trained with
(``raster_compat.py``: its barycentric epsilon, pixel centres, strict inside test, culling and tie
rule, and the released float32 view transform); ``exact`` uses ``sfray.geometry.rasterizer``
(exactly normalised barycentrics, top-left tie rule).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from sfray.generators.next3d import raster_compat
from sfray.generators.next3d.world import orth_view_coords, view_direction
from sfray.config import registries as reg

VIEWS = ("front", "right", "left", "top")
#: Outer-lip landmarks (iBUG 48..59) and the two mouth corners that define the box centre.
OUTER_LIP = slice(48, 60)
MOUTH_CORNERS = (48, 54)
MOUTH_BOX_SCALE = 1.2
_FOUR_CONNECTED = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]])

RasterizeFn = Callable[..., object]

#: Texture rasterization modes (config key ``generator.next3d.raster_compat``): name -> description.
RASTER_COMPAT = reg.RASTER_COMPAT
RASTER_COMPAT.add("pytorch3d", "pytorch3d's rasterize_meshes arithmetic, as the released weights were trained")
RASTER_COMPAT.add("exact", "sfray's rasterizer: exactly normalised barycentrics, top-left tie rule")
DEFAULT_RASTER_COMPAT = "pytorch3d"


@dataclass
class TextureViews:
    """Rasterized texture planes; R = raster size, C = texture channels."""

    features: torch.Tensor  # (B, 4, C, R, R) texture sampled at each pixel's UV, views F, R, L, T
    alpha: torch.Tensor  # (B, 4, 1, R, R) coverage x UV face mask, holes filled
    landmarks_uv: torch.Tensor  # (B, 68, 2) front-view grid coordinates of the landmarks


def _default_rasterize() -> RasterizeFn:
    from sfray.geometry.rasterizer import rasterize

    return rasterize


def _default_rasterize_ndc() -> RasterizeFn:
    """The ``pytorch3d`` mode's kernel (tests swap in the per-pixel reference here)."""
    return raster_compat.rasterize_ndc


@functools.lru_cache(maxsize=8)
def rasterizer_keeps_positive_area(rasterize: RasterizeFn) -> bool:
    """Probe which winding ``rasterize(..., cull_backfaces=True)`` keeps.

    The answer is measured, not assumed: one triangle whose signed area (b-a)x(c-a) is positive in
    pixel coordinates (x right, y down) is rasterized with culling on.
    """
    verts = torch.tensor([[[0.5, 0.5, 1.0], [7.5, 0.5, 1.0], [0.5, 7.5, 1.0]]])
    faces = torch.tensor([[0, 1, 2]])
    frags = rasterize(verts, faces, (8, 8), perspective_correct=False, cull_backfaces=True)
    return bool((frags.face_index >= 0).any())


def front_facing_area_sign(view: str) -> float:
    """Sign of the pixel-space signed area of a triangle whose normal points at the view's viewer."""
    d = view_direction(view).double()
    helper = torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64)
    if abs(float(d @ helper)) > 0.9:
        helper = torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64)
    e1 = torch.linalg.cross(helper, d)
    e2 = torch.linalg.cross(d, e1)  # (e1 x e2) points along d: counter-clockwise seen from the viewer
    tri = torch.stack([torch.zeros(3, dtype=torch.float64), e1, e2])[None]
    uv = orth_view_coords(tri, view)[0, :, :2]
    area = (uv[1, 0] - uv[0, 0]) * (uv[2, 1] - uv[0, 1]) - (uv[1, 1] - uv[0, 1]) * (uv[2, 0] - uv[0, 0])
    return float(torch.sign(area))


def rasterize_uv(points: torch.Tensor, faces: torch.Tensor, face_uvcoords: torch.Tensor, view: str,
                 size: int, orth_scale: torch.Tensor | float, orth_shift: torch.Tensor | tuple,
                 rasterize: RasterizeFn | None = None, compat: str = "exact") -> tuple[torch.Tensor, torch.Tensor]:
    """UV coordinates seen through one orthographic view.

    points (B, V, 3) head space; faces (F, 3); face_uvcoords (F, 3, 3) = (2s-1, 1-2t, 1) per corner.
    Returns uv (B, R, R, 2) (zero on empty pixels) and coverage (B, R, R) in {0, 1}. A triangle is
    kept iff its normal (b-a)x(c-a) points towards the viewer; the nearest kept triangle wins.
    ``compat`` picks the mode (module docstring); ``rasterize`` overrides the mode's kernel.
    """
    RASTER_COMPAT.check(compat)
    if compat == "pytorch3d":
        return _rasterize_uv_pytorch3d(points, faces, face_uvcoords, view, size, orth_scale, orth_shift,
                                       rasterize or _default_rasterize_ndc())
    rasterize = rasterize or _default_rasterize()
    coords = orth_view_coords(points.float(), view, orth_scale, orth_shift)
    pix = torch.stack([(coords[..., 0] + 1) * (size / 2), (coords[..., 1] + 1) * (size / 2), coords[..., 2]], -1)
    keeps_positive = rasterizer_keeps_positive_area(rasterize)
    if (front_facing_area_sign(view) > 0) != keeps_positive:
        faces, face_uvcoords = faces[:, [0, 2, 1]], face_uvcoords[:, [0, 2, 1]]
    frags = rasterize(pix, faces, (size, size), perspective_correct=False, cull_backfaces=True)
    face_index, bary = frags.face_index, frags.bary
    covered = face_index >= 0
    corner_uv = face_uvcoords[face_index.clamp(min=0), :, :2].to(bary.dtype)  # (B, R, R, 3, 2)
    uv = (bary.unsqueeze(-1) * corner_uv).sum(dim=-2)
    uv = torch.where(covered.unsqueeze(-1), uv, torch.zeros_like(uv))
    return uv.float(), covered.float()


def _rasterize_uv_pytorch3d(points: torch.Tensor, faces: torch.Tensor, face_uvcoords: torch.Tensor, view: str,
                            size: int, orth_scale: torch.Tensor | float, orth_shift: torch.Tensor | tuple,
                            rasterize: RasterizeFn) -> tuple[torch.Tensor, torch.Tensor]:
    """The released call: screen (-u, -v, depth), corners in the order (a, c, b), culling on."""
    q = raster_compat.released_view_coords(points, view, orth_scale, orth_shift)
    ndc = torch.stack([-q[..., 0], -q[..., 1], q[..., 2]], dim=-1)
    order = [0, 2, 1]
    frags = rasterize(ndc, faces[:, order], (size, size), cull_backfaces=True)
    uv = raster_compat.interpolate_face_attributes(frags, face_uvcoords[:, order].float())[..., :2]
    return uv, (frags.face_index >= 0).float()


def fill_holes(alpha: torch.Tensor) -> torch.Tensor:
    """Give alpha 1 to every pixel outside the background region connected to pixel (0, 0).

    alpha (..., R, R). The region is the 4-connected component of pixel (0, 0) within
    {s <= 255·alpha <= s + 254}, s = 255·alpha(0, 0) (the released flood fill with a fixed range);
    pixels in it keep alpha, all others (face, enclosed holes such as an open mouth) become 1.
    """
    flat = alpha.detach().reshape(-1, *alpha.shape[-2:]).float().cpu().numpy()
    keep = np.zeros(flat.shape, dtype=bool)
    for i, a in enumerate(flat):
        v = a * np.float32(255.0)
        s = v[0, 0]
        labels, _ = ndimage.label((v >= s) & (v <= s + 254), structure=_FOUR_CONNECTED)
        keep[i] = labels == labels[0, 0]
    keep_t = torch.from_numpy(keep).to(alpha.device).reshape(alpha.shape)
    return torch.where(keep_t, alpha, torch.ones_like(alpha))


def render_texture_views(textures: torch.Tensor, uv_face_mask: torch.Tensor, points: torch.Tensor,
                         landmarks: torch.Tensor, faces: torch.Tensor, face_uvcoords: torch.Tensor,
                         orth_scale: torch.Tensor | float, orth_shift: torch.Tensor | tuple, size: int,
                         fill_mouth: bool = True, rasterize: RasterizeFn | None = None,
                         compat: str = "exact") -> TextureViews:
    """Steps 5-10 of docs/next3d.md §2.4 for all four views.

    textures (B, C, T, T) neural texture in UV space (row 0 = top of the UV map); uv_face_mask
    (1, 1, U, U); points (B, V, 3) and landmarks (B, 68, 3) in head space; ``compat`` the mode.
    """
    b = textures.shape[0]
    mask = uv_face_mask.to(textures.dtype).expand(b, -1, -1, -1)
    feats, alphas = [], []
    for view in VIEWS:
        uv, covered = rasterize_uv(points, faces, face_uvcoords, view, size, orth_scale, orth_shift, rasterize,
                                   compat)
        grid = uv.to(textures.dtype)
        feats.append(F.grid_sample(textures, grid, mode="bilinear", padding_mode="zeros", align_corners=False))
        m = F.grid_sample(mask, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        alpha = covered.unsqueeze(1).to(m.dtype) * m
        alphas.append(fill_holes(alpha) if fill_mouth else alpha)
    if compat == "pytorch3d":
        lms = raster_compat.released_view_coords(landmarks, "front", orth_scale, orth_shift)[..., :2]
    else:
        lms = orth_view_coords(landmarks.float(), "front", orth_scale, orth_shift)[..., :2]
    return TextureViews(torch.stack(feats, 1), torch.stack(alphas, 1), lms)


def mouth_box(landmarks_uv: np.ndarray, size: int) -> tuple[int, int, int, int]:
    """Square mouth box (row0, row1, col0, col1) from front-view landmarks (68, 2) (docs/next3d.md §2.5).

    Pixel coords P = uv·size/2 + size/2 (no -0.5), centre = mean of the mouth corners, side
    s = int(1.2·max extent of the outer lip); ``int`` truncates toward zero as released. Boxes a
    degenerate mesh would push outside the plane are clamped into it (never hit by real faces).
    """
    p = landmarks_uv.astype(np.float32) * np.float32(size / 2) + np.float32(size / 2)
    lip = p[OUTER_LIP]
    centre = (p[MOUTH_CORNERS[0]] + p[MOUTH_CORNERS[1]]) / np.float32(2)
    extent = max(lip[:, 0].max() - lip[:, 0].min(), lip[:, 1].max() - lip[:, 1].min())
    s = int(MOUTH_BOX_SCALE * float(extent))
    r0, r1 = int(centre[1] - s // 2), int(centre[1] + s // 2)
    c0, c1 = int(centre[0] - s // 2), int(centre[0] + s // 2)
    h = min(max(r1 - r0, 2), size)
    r0 = min(max(r0, 0), size - h)
    c0 = min(max(c0, 0), size - h)
    c1 = min(max(c1, c0 + 1), size)
    return r0, r0 + h, c0, c1


def paste_mouth(front: torch.Tensor, boxes: list[tuple[int, int, int, int]], mouth_net: Callable,
                ws: torch.Tensor, in_size: int, noise_mode: str, rng: list | None) -> torch.Tensor:
    """Crop each box of ``front`` (B, C, R, R), resize to in_size², run the mouth StyleUNet and paste
    its output, resized to (h, h) with h the box height, over the box (docs/next3d.md §2.6)."""
    crops = [
        F.interpolate(front[i:i + 1, :, r0:r1, c0:c1], size=(in_size, in_size), mode="bilinear",
                      align_corners=False, antialias=True)
        for i, (r0, r1, c0, c1) in enumerate(boxes)
    ]
    mouth = mouth_net(torch.cat(crops), ws, noise_mode=noise_mode, rng=rng)
    out = front.clone()
    for i, (r0, r1, c0, _c1) in enumerate(boxes):
        h = r1 - r0
        patch = F.interpolate(mouth[i:i + 1], size=(h, h), mode="bilinear", align_corners=False, antialias=True)
        out[i, :, r0:r1, c0:c0 + h] = patch[0].to(out.dtype)
    return out
