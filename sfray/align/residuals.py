"""Alignment residuals with correspondences fixed by one rasterization of the mapped mesh.

Why residuals and not a soft rasterizer: the map has only 6-12 parameters, so a Gauss-Newton /
Levenberg-Marquardt fit on robust residuals converges in a handful of iterations where Adam through
a soft silhouette needs hundreds and a blur schedule. Each outer iteration rasterizes the mesh
under the current map (hard z-buffer, exact), and fixes *which* surface points are compared:

* **depth**: every pixel covered by both the mesh and the generator contributes the mesh point it
  hits and the generator's surface point on the same pixel ray (its depth back-projected);
  residual = their distance along the mesh normal (point-to-plane, world units). At the current
  map this is the depth difference times the normal's tilt; unlike a plain z difference it lets
  the surfaces slide along each other, so the fit converges in a few steps instead of crawling.
* **silhouette**: every pixel on the mesh's silhouette contributes the mesh point it hits; the
  residual is the generator's signed distance to *its* silhouette at that point's projection,
  linearised about the current projection (pixels), offset by the half pixel an edge pixel's
  centre sits inside its own outline. Zero iff the two outlines coincide, and
  differentiable in the map -- the distance field plays the role of a soft silhouette.
* **chamfer**: visible mesh points vs the generator's surface points, nearest neighbours in both
  directions; residual = the offset along the mesh normal (world units). Point-to-point offsets
  between two independent samplings of a partial surface pull the mesh inwards at the rim of the
  visible region (a shrinking bias of about 1% in scale in our tests); along the normal the
  tangential sampling noise drops out.
* **landmark**: projected landmarks minus targets (detector or ground truth), pixels.

Given fixed correspondences each residual is a smooth function of theta (matmuls and one
division), so forward-mode autodiff gives the exact Jacobian.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from sfray.align.model import delta_matrix
from sfray.align.observe import FitBatch, pixel_rays
from sfray.geometry.projection import to_screen_perspective
from sfray.geometry.rasterizer import face_attributes, interpolate, rasterize
from sfray.geometry.resample import sample_bilinear

TERMS = ("depth", "silhouette", "chamfer", "landmark")
#: Signed distance of a 4-connected edge pixel's centre to its own mask's outline (pixels).
EDGE_SDF = 0.5
#: Depth pixels must lie this far (pixels) inside the generator's outline.
INTERIOR_PX = 1.0


@dataclass
class Correspondences:
    """Fixed matches for one linearisation. ``*_b`` are sample indices of each point."""

    depth_q: Tensor  # (Nd, 3) pre-map world points hit by the mesh
    depth_b: Tensor
    depth_target: Tensor  # (Nd, 3) generator surface point on the same pixel ray (world)
    depth_normal: Tensor  # (Nd, 3) unit mesh normal there (under the current map)
    sil_q: Tensor  # (Ns, 3) pre-map silhouette points
    sil_b: Tensor
    sil_p0: Tensor  # (Ns, 2) their current projection (pixels)
    sil_sdf0: Tensor  # (Ns,) generator signed distance there
    sil_grad0: Tensor  # (Ns, 2) its gradient
    ch_q: Tensor  # (Nc, 3) pre-map mesh points
    ch_b: Tensor
    ch_target: Tensor  # (Nc, 3) matched generator points (world)
    ch_normal: Tensor  # (Nc, 3) unit mesh normal at the mesh point
    ch_group: Tensor  # (Nc,) 0 = mesh -> generator, 1 = generator -> mesh
    lm_q: Tensor  # (Nl, 3) pre-map landmarks with a target
    lm_b: Tensor
    lm_target: Tensor  # (Nl, 2) pixels

    def counts(self) -> dict[str, int]:
        return {"depth": int(self.depth_q.shape[0]), "silhouette": int(self.sil_q.shape[0]),
                "chamfer": int(self.ch_q.shape[0]), "landmark": int(self.lm_q.shape[0])}


def map_points(points: Tensor, maps: Tensor, b: Tensor) -> Tensor:
    """points (N, 3), maps (G, 4, 4), b (N,) group per point -> mapped points (N, 3)."""
    if maps.shape[0] == 1:  # one global map: a plain matmul, no per-point gather
        return points @ maps[0, :3, :3].T + maps[0, :3, 3]
    m = maps[b]
    return torch.einsum("nij,nj->ni", m[:, :3, :3], points) + m[:, :3, 3]


def project(points: Tensor, batch: FitBatch, b: Tensor) -> tuple[Tensor, Tensor]:
    """World points (N, 3) of samples b -> pixels (N, 2) at the fitting resolution, camera z (N,)."""
    w2c = batch.world2cam[b]
    cam = torch.einsum("nij,nj->ni", w2c[:, :3, :3], points) + w2c[:, :3, 3]
    k = batch.intrinsics[b]
    uvw = torch.einsum("nij,nj->ni", k, cam)
    return uvw[:, :2] / uvw[:, 2:3], cam[:, 2]


def _silhouette_pixels(cover: Tensor) -> Tensor:
    """(B, r, r) bool -> covered pixels with an uncovered 4-neighbour, away from the image border."""
    c = cover
    inner = torch.zeros_like(c)
    inner[:, 1:-1, 1:-1] = (c[:, :-2, 1:-1] & c[:, 2:, 1:-1] & c[:, 1:-1, :-2] & c[:, 1:-1, 2:])[:, :, :]
    edge = c & ~inner
    edge[:, 0, :] = edge[:, -1, :] = edge[:, :, 0] = edge[:, :, -1] = False
    return edge


def _subsample(idx: Tensor, n: int, gen: torch.Generator) -> Tensor:
    if idx.shape[0] <= n:
        return idx
    return idx[torch.randperm(idx.shape[0], generator=gen)[:n].to(idx.device)]


def match(batch: FitBatch, maps: Tensor, groups: Tensor, *, max_points: int = 1500,
          seed: int = 0) -> tuple[Correspondences, Tensor]:
    """Rasterize the mesh under ``maps[groups[i]]`` and fix the correspondences.

    maps (G, 4, 4) current full maps; groups (B,) map index per sample. Returns the
    correspondences and the mesh coverage (B, r, r) (for diagnostics).
    """
    gen = torch.Generator().manual_seed(int(seed))
    r, b = batch.resolution, len(batch)
    dev = batch.mesh_world.device
    bidx = torch.arange(b, device=dev)
    per_sample = maps[groups]  # (B, 4, 4)
    mapped = (torch.einsum("bij,bnj->bni", per_sample[:, :3, :3], batch.mesh_world)
              + per_sample[:, None, :3, 3])
    cam = torch.einsum("bij,bnj->bni", batch.world2cam[:, :3, :3], mapped) + batch.world2cam[:, None, :3, 3]
    k_norm = batch.intrinsics.clone()
    k_norm[:, :2] /= r
    screen = to_screen_perspective(cam, k_norm, r)
    frags = rasterize(screen.to(torch.float32), batch.faces, r, perspective_correct=True)
    cover = frags.face_index >= 0
    q_img = interpolate(frags, face_attributes(batch.mesh_world, batch.faces))  # (B, r, r, 3) pre-map
    pix_b = bidx[:, None, None].expand(b, r, r)

    # depth only well inside both outlines: at the rim a pixel's generator depth averages partly
    # covered sub-pixels and the mesh is hit at grazing angles, both biased
    edge = _silhouette_pixels(cover)
    both = cover & ~edge & (batch.gen_sdf <= -INTERIOR_PX)
    sel = _subsample(both.reshape(-1).nonzero().squeeze(1), max_points * b, gen)
    depth_q, depth_b = q_img.reshape(-1, 3)[sel], pix_b.reshape(-1)[sel]
    rays = pixel_rays(r, batch.intrinsics) * batch.gen_depth.unsqueeze(-1)  # camera-space points
    g_cam = rays.reshape(-1, 3)[sel]
    c2w = batch.cam2world[depth_b]
    depth_t = torch.einsum("nij,nj->ni", c2w[:, :3, :3], g_cam) + c2w[:, :3, 3]
    tri = mapped[bidx[:, None, None], batch.faces[None]]  # (B, F, 3, 3)
    fn = torch.linalg.cross(tri[:, :, 1] - tri[:, :, 0], tri[:, :, 2] - tri[:, :, 0], dim=-1)
    fn = torch.nn.functional.normalize(fn, dim=-1)
    face = frags.face_index.clamp_min(0)
    depth_n = fn[bidx[:, None, None], face].reshape(-1, 3)[sel]

    sel = edge.reshape(-1).nonzero().squeeze(1)
    sil_q, sil_b = q_img.reshape(-1, 3)[sel], pix_b.reshape(-1)[sel]
    sil_p0, _ = project(map_points(sil_q, maps, groups[sil_b]), batch, sil_b)
    sil_sdf0 = sample_bilinear(batch.gen_sdf, sil_b, sil_p0)
    sil_grad0 = sample_bilinear(batch.gen_sdf_grad, sil_b, sil_p0)

    ch_q, ch_b, ch_t, ch_g, ch_n = [], [], [], [], []
    for i in range(b):
        g = batch.gen_points[i]
        pix = cover[i].reshape(-1).nonzero().squeeze(1)
        if g.shape[0] == 0 or pix.shape[0] == 0:
            continue
        pix = _subsample(pix, max_points, gen)
        q = q_img[i].reshape(-1, 3)[pix]
        n = fn[i][face[i].reshape(-1)[pix]]
        qm = map_points(q, maps, groups[i].expand(q.shape[0]))
        d = torch.cdist(qm, g)
        back = d.argmin(dim=0)
        ch_q += [q, q[back]]
        ch_n += [n, n[back]]
        ch_t += [g[d.argmin(dim=1)], g]
        ch_g += [torch.zeros(q.shape[0], dtype=torch.long, device=dev),
                 torch.ones(g.shape[0], dtype=torch.long, device=dev)]
        ch_b.append(torch.full((q.shape[0] + g.shape[0],), i, dtype=torch.long, device=dev))
    empty3 = torch.zeros(0, 3, dtype=torch.float64, device=dev)
    emptyl = torch.zeros(0, dtype=torch.long, device=dev)

    has = torch.isfinite(batch.landmark_target).all(dim=-1)  # (B, 68)
    lm_q = batch.landmarks_world[has]
    lm_b = bidx[:, None].expand_as(has)[has]
    corr = Correspondences(
        depth_q, depth_b, depth_t, depth_n, sil_q, sil_b, sil_p0, sil_sdf0, sil_grad0,
        torch.cat(ch_q) if ch_q else empty3, torch.cat(ch_b) if ch_b else emptyl,
        torch.cat(ch_t) if ch_t else empty3, torch.cat(ch_n) if ch_n else empty3,
        torch.cat(ch_g) if ch_g else emptyl,
        lm_q, lm_b, batch.landmark_target[has],
    )
    return corr, cover


def residuals(theta: Tensor, corr: Correspondences, batch: FitBatch, base: Tensor, groups: Tensor,
              kind: str, pivot: Tensor) -> dict[str, Tensor]:
    """Residuals of every term for parameters theta (G, P) on top of base maps (G, 4, 4).

    Returned unscaled: depth (Nd,) world units along the normal, silhouette (Ns,) px, chamfer (Nc,)
    world units along the normal,
    landmark (Nl, 2) px.
    """
    maps = delta_matrix(theta, kind, pivot) @ base
    out: dict[str, Tensor] = {}
    x = map_points(corr.depth_q, maps, groups[corr.depth_b])
    out["depth"] = ((x - corr.depth_target) * corr.depth_normal).sum(dim=-1)
    x = map_points(corr.sil_q, maps, groups[corr.sil_b])
    p, _ = project(x, batch, corr.sil_b)
    # an edge pixel's centre lies half a pixel inside its own outline (its signed distance under the
    # same discrete transform is -0.5), so aligned outlines give sdf = -0.5 there, not 0
    out["silhouette"] = corr.sil_sdf0 + ((p - corr.sil_p0) * corr.sil_grad0).sum(dim=-1) + EDGE_SDF
    x = map_points(corr.ch_q, maps, groups[corr.ch_b])
    out["chamfer"] = ((x - corr.ch_target) * corr.ch_normal).sum(dim=-1)
    x = map_points(corr.lm_q, maps, groups[corr.lm_b])
    p, _ = project(x, batch, corr.lm_b)
    out["landmark"] = p - corr.lm_target
    return out


def term_groups(corr: Correspondences, groups: Tensor) -> dict[str, Tensor]:
    """Map-group index of every residual row (for per-group normalisation)."""
    return {"depth": groups[corr.depth_b], "silhouette": groups[corr.sil_b],
            "chamfer": groups[corr.ch_b], "landmark": groups[corr.lm_b]}
