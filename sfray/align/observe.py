"""What the alignment losses look at: a generator batch resampled to the fitting resolution.

:func:`observe` turns a :class:`~sfray.generators.base.GeneratorOutput` into a :class:`FitBatch`:
the mesh and landmarks in the generator's world *before* any alignment map (``mesh_to_world`` of
the generator), the cameras, and the generator's own geometry as the losses need it -- its depth
and foreground mask at ``r x r``, the signed distance to its silhouette (pixels), surface points
back-projected from its depth (and density samples when the generator exposes them), and optional
landmark targets. Everything is float64 on the CPU or the output's device.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from sfray.conventions import Extra
from sfray.generators.base import GeneratorOutput
from sfray.geometry.camera import camera_label_to_matrices
from sfray.geometry.resample import resample_coverage
from sfray.geometry.transform import transform_points

#: Normalised density above which a volume sample counts as surface (the authors' 0.4).
DENSITY_SURFACE = 0.4


@dataclass
class FitBatch:
    """A batch of B samples as the alignment losses see it (r = fitting resolution)."""

    resolution: int
    faces: Tensor  # (F, 3) int64
    mesh_world: Tensor  # (B, V, 3) head mesh in world, generator's mesh_to_world only
    landmarks_world: Tensor  # (B, 68, 3) dynamic-contour landmarks, same space
    cam2world: Tensor  # (B, 4, 4)
    world2cam: Tensor  # (B, 4, 4)
    intrinsics: Tensor  # (B, 3, 3) in pixels at r (normalised K scaled by r)
    gen_depth: Tensor  # (B, r, r) generator camera z (0 outside its mask)
    gen_mask: Tensor  # (B, r, r) bool generator foreground
    gen_sdf: Tensor  # (B, r, r) signed distance to the generator silhouette, pixels, > 0 outside
    gen_sdf_grad: Tensor  # (B, r, r, 2) d sdf / d (x, y)
    gen_points: list[Tensor]  # B x (Ni, 3) generator surface points (world)
    landmark_target: Tensor  # (B, 68, 2) pixels at r, NaN where unknown

    def __len__(self) -> int:
        return int(self.mesh_world.shape[0])

    def select(self, i: int) -> FitBatch:
        """Sample ``i`` as a batch of one."""
        s = slice(i, i + 1)
        return FitBatch(self.resolution, self.faces, self.mesh_world[s], self.landmarks_world[s],
                        self.cam2world[s], self.world2cam[s], self.intrinsics[s], self.gen_depth[s],
                        self.gen_mask[s], self.gen_sdf[s], self.gen_sdf_grad[s], self.gen_points[s],
                        self.landmark_target[s])

    @staticmethod
    def concat(items: list[FitBatch]) -> FitBatch:
        first = items[0]
        cat = lambda name: torch.cat([getattr(b, name) for b in items])  # noqa: E731
        return FitBatch(first.resolution, first.faces, cat("mesh_world"), cat("landmarks_world"),
                        cat("cam2world"), cat("world2cam"), cat("intrinsics"), cat("gen_depth"),
                        cat("gen_mask"), cat("gen_sdf"), cat("gen_sdf_grad"),
                        [p for b in items for p in b.gen_points], cat("landmark_target"))


def signed_distance(coverage: Tensor) -> tuple[Tensor, Tensor]:
    """Soft coverage (B, r, r) -> signed distance to the silhouette in pixels (> 0 outside) and its
    gradient (B, r, r, 2) as d/dx, d/dy.

    Away from the outline: scipy's exact Euclidean distance transform of the mask (coverage >= 0.5),
    shifted by the half pixel between a border pixel's centre and the outline. On partially covered
    pixels the coverage itself locates the outline to a fraction of a pixel (a straight edge at
    signed distance d from the centre covers 0.5 - d of a unit pixel), so there sdf = 0.5 - coverage.
    """
    from scipy.ndimage import distance_transform_edt

    c = coverage.detach().cpu().numpy().astype(np.float64)
    m = c >= 0.5
    sdf = np.zeros(m.shape, dtype=np.float64)
    for i in range(m.shape[0]):
        if m[i].any() and (~m[i]).any():
            outside = (distance_transform_edt(~m[i]) - 0.5) * (~m[i])
            sdf[i] = outside - (distance_transform_edt(m[i]) - 0.5) * m[i]
        else:
            sdf[i] = -1.0e3 if m[i].all() else 1.0e3
    partial = (c > 0.0) & (c < 1.0) & (np.abs(sdf) <= 0.5)
    sdf = np.where(partial, 0.5 - c, sdf)
    gy, gx = np.gradient(sdf, axis=(1, 2))
    out = torch.from_numpy(sdf).to(coverage.device)
    grad = torch.from_numpy(np.stack([gx, gy], axis=-1)).to(coverage.device)
    return out, grad


def pixel_rays(r: int, intrinsics: Tensor) -> Tensor:
    """(B, r, r, 3) camera-space directions with z = 1 through every pixel centre."""
    c = torch.arange(r, dtype=torch.float64, device=intrinsics.device) + 0.5
    yy, xx = torch.meshgrid(c, c, indexing="ij")
    k = intrinsics
    x = (xx[None] - k[:, 0, 2, None, None]) / k[:, 0, 0, None, None]
    y = (yy[None] - k[:, 1, 2, None, None]) / k[:, 1, 1, None, None]
    return torch.stack([x, y, torch.ones_like(x)], dim=-1)


def backproject(depth: Tensor, mask: Tensor, intrinsics: Tensor, cam2world: Tensor, max_points: int,
                generator: torch.Generator | None = None) -> list[Tensor]:
    """Foreground pixels of depth (B, r, r) -> B lists of world points (<= max_points each)."""
    rays = pixel_rays(depth.shape[-1], intrinsics)
    cam = rays * depth.unsqueeze(-1)
    pts = []
    for i in range(depth.shape[0]):
        p = cam[i][mask[i]]
        if p.shape[0] > max_points:
            idx = torch.randperm(p.shape[0], generator=generator)[:max_points].to(p.device)
            p = p[idx]
        pts.append(p @ cam2world[i, :3, :3].T + cam2world[i, :3, 3])
    return pts


def density_surface_points(out: GeneratorOutput, i: int, max_points: int,
                           generator: torch.Generator | None = None) -> Tensor | None:
    """Volume samples of sample ``i`` whose min-max-normalised density exceeds DENSITY_SURFACE."""
    pts, sigma = out.extras.get(Extra.DENSITY_POINTS), out.extras.get(Extra.DENSITY_SIGMA)
    if pts is None or sigma is None:
        return None
    p, s = pts[i].reshape(-1, 3).to(torch.float64), sigma[i].reshape(-1).to(torch.float64)
    s = (s - s.min()) / (s.max() - s.min()).clamp_min(1e-12)
    p = p[s > DENSITY_SURFACE]
    if p.shape[0] > max_points:
        p = p[torch.randperm(p.shape[0], generator=generator)[:max_points].to(p.device)]
    return p


def observe(out: GeneratorOutput, faces: Tensor, resolution: int, *, max_points: int = 1500,
            landmark_target: Tensor | None = None, seed: int = 0,
            head_landmarks: Tensor | None = None) -> FitBatch:
    """Build the :class:`FitBatch` of a generator batch at ``resolution``.

    ``landmark_target`` (B, 68, 2) are pixels at the *generator's* resolution (detector output or
    ground truth), NaN where unknown; they are rescaled to ``resolution`` here.
    ``head_landmarks`` (B, 68, 3) replaces ``out.head_landmarks`` (e.g. the annotator's
    camera-following contour, so the fit compares the points the annotation will contain).
    """
    r = int(resolution)
    f64 = torch.float64
    rng = torch.Generator().manual_seed(int(seed))
    m2w = out.mesh_to_world.to(f64)
    mesh = transform_points(m2w, out.head_vertices.to(f64))
    lms = transform_points(m2w, (out.head_landmarks if head_landmarks is None else head_landmarks).to(f64))
    c2w, k_norm = camera_label_to_matrices(out.camera.to(f64))
    k = k_norm.clone()
    k[:, :2] *= r
    depth, coverage = resample_coverage(out.depth, out.mask, r)
    mask = coverage >= 0.5
    depth = depth * mask
    sdf, grad = signed_distance(coverage)
    points = backproject(depth, sdf <= -1.0, k, c2w, max_points, rng)  # rim depths are blends: skip them
    for i in range(len(points)):
        extra = density_surface_points(out, i, max_points, rng)
        if extra is not None:
            points[i] = torch.cat([points[i], extra.to(points[i].device)])
    b = mesh.shape[0]
    if landmark_target is None:
        target = torch.full((b, lms.shape[1], 2), float("nan"), dtype=f64, device=mesh.device)
    else:
        target = landmark_target.to(mesh.device, f64) * (r / float(out.image.shape[-1]))
    return FitBatch(r, faces.to(mesh.device, torch.int64), mesh, lms, c2w, torch.linalg.inv(c2w), k,
                    depth, mask, sdf, grad, points, target)
