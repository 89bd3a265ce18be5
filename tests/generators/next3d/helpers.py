"""Test helpers: a brute-force reference rasterizer and a small synthetic head with UVs and landmarks."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from sfray.generators.next3d.generator import Topology


@dataclass
class RefFragments:
    face_index: torch.Tensor  # (B, H, W) long, -1 empty
    bary: torch.Tensor  # (B, H, W, 3)
    zbuf: torch.Tensor  # (B, H, W)


def reference_rasterize(verts: torch.Tensor, faces: torch.Tensor, image_size: tuple[int, int], *,
                        perspective_correct: bool = True, cull_backfaces: bool = False) -> RefFragments:
    """Every pixel centre against every triangle (pixel coords, x right, y down; smaller z nearer).

    With culling, triangles with non-positive signed area (b-a)x(c-a) in pixel coordinates are dropped.
    """
    h, w = image_size
    b = verts.shape[0]
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float64) + 0.5,
                            torch.arange(w, dtype=torch.float64) + 0.5, indexing="ij")
    p = torch.stack([xs.reshape(-1), ys.reshape(-1)], -1)  # (P, 2)
    face_index = torch.full((b, h * w), -1, dtype=torch.long)
    bary_out = torch.zeros(b, h * w, 3, dtype=torch.float64)
    zbuf = torch.full((b, h * w), float("inf"), dtype=torch.float64)
    for bi in range(b):
        tri = verts[bi].double()[faces]  # (F, 3, 3)
        a, bb, c = tri[:, 0], tri[:, 1], tri[:, 2]
        area = (bb[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (bb[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])
        for start in range(0, faces.shape[0], 512):
            sl = slice(start, start + 512)
            ar = area[sl]
            ok = ar.abs() > 1e-12
            if cull_backfaces:
                ok = ok & (ar > 0)
            def edge(v0, v1):
                return ((v1[:, None, 0] - v0[:, None, 0]) * (p[None, :, 1] - v0[:, None, 1])
                        - (v1[:, None, 1] - v0[:, None, 1]) * (p[None, :, 0] - v0[:, None, 0]))
            w0 = edge(bb[sl], c[sl]) / ar[:, None]
            w1 = edge(c[sl], a[sl]) / ar[:, None]
            w2 = edge(a[sl], bb[sl]) / ar[:, None]
            inside = (w0 >= 0) & (w1 >= 0) & (w2 >= 0) & ok[:, None]
            z = w0 * a[sl, None, 2] + w1 * bb[sl, None, 2] + w2 * c[sl, None, 2]
            z = torch.where(inside, z, torch.full_like(z, float("inf")))
            zmin, arg = z.min(dim=0)
            better = zmin < zbuf[bi]
            idx = arg + start
            zbuf[bi] = torch.where(better, zmin, zbuf[bi])
            face_index[bi] = torch.where(better, idx, face_index[bi])
            sel = torch.stack([w0, w1, w2], -1)[arg, torch.arange(p.shape[0])]
            bary_out[bi] = torch.where(better[:, None], sel, bary_out[bi])
    return RefFragments(face_index.reshape(b, h, w), bary_out.reshape(b, h, w, 3).float(),
                        zbuf.reshape(b, h, w).float())


def sfray_or_reference_rasterize():
    """sfray's rasterizer once it exists, else the reference (keeps these tests independent of it)."""
    try:
        from sfray.geometry.rasterizer import rasterize
    except ImportError:
        return reference_rasterize
    return rasterize


@dataclass
class SyntheticHead:
    topology: Topology
    n_rings: int
    n_segments: int

    def vertices(self, mouth_open: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """mouth_open (B,) -> vertices (B, V, 3) and landmarks (B, 68, 3) in head space (metres)."""
        base = torch.as_tensor(self._base, dtype=torch.float32)
        b = mouth_open.shape[0]
        v = base.unsqueeze(0).repeat(b, 1, 1)
        # lower face moves down with the "jaw": front vertices below the mouth line
        lower = (base[:, 1] < MOUTH_Y) & (base[:, 2] > 0)
        fall = torch.clamp((MOUTH_Y - base[:, 1]) / 0.05, max=1.0) * lower
        v[:, :, 1] -= mouth_open[:, None] * 0.03 * fall
        lms = landmarks_on(v, mouth_open)
        return v, lms


CENTRE = (0.0, -0.03, -0.03)
RADII = (0.09, 0.12, 0.10)
MOUTH_Y = -0.08


def landmarks_on(v: torch.Tensor, mouth_open: torch.Tensor) -> torch.Tensor:
    """68 points in front of the surface; 48..59 an ellipse around the mouth that opens downwards."""
    b = v.shape[0]
    lms = torch.zeros(b, 68, 3)
    ang = torch.linspace(0, 2 * math.pi, 69)[:-1]
    lms[:, :, 0] = 0.06 * torch.cos(ang)
    lms[:, :, 1] = -0.02 + 0.06 * torch.sin(ang)
    lms[:, :, 2] = 0.07
    t = torch.arange(12) * (2 * math.pi / 12)  # 48 = right corner, 54 = left corner
    half_h = 0.012 + 0.04 * mouth_open[:, None]
    lms[:, 48:60, 0] = -0.025 * torch.cos(t)
    lms[:, 48:60, 1] = MOUTH_Y + torch.where(torch.sin(t) > 0, 0.012 * torch.sin(t), half_h * torch.sin(t))
    lms[:, 48:60, 2] = 0.065
    return lms


def make_synthetic_head(n_rings: int = 24, n_segments: int = 32, uv_mask_size: int = 64) -> SyntheticHead:
    """An ellipsoid head with an equirectangular UV map (seam at the back) and outward winding."""
    verts, uvs = [], []
    for i in range(n_rings + 1):
        theta = math.pi * i / n_rings  # 0 at the top (+y)
        for j in range(n_segments + 1):
            phi = 2 * math.pi * j / n_segments  # 0 at the back (-z)
            x = -math.sin(theta) * math.sin(phi)
            y = math.cos(theta)
            z = -math.sin(theta) * math.cos(phi)
            verts.append((CENTRE[0] + RADII[0] * x, CENTRE[1] + RADII[1] * y, CENTRE[2] + RADII[2] * z))
            uvs.append((j / n_segments, 1 - i / n_rings))
    faces = []
    row = n_segments + 1
    for i in range(n_rings):
        for j in range(n_segments):
            a, b_, c, d = i * row + j, i * row + j + 1, (i + 1) * row + j, (i + 1) * row + j + 1
            faces += [(a, c, b_), (b_, c, d)]
    faces = np.asarray(faces, dtype=np.int64)
    v = np.asarray(verts)
    # orient every face outward (normal along the position relative to the centre)
    tri = v[faces]
    n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    out = (n * (tri.mean(1) - np.asarray(CENTRE))).sum(1) < 0
    faces[out] = faces[out][:, [0, 2, 1]]
    keep = np.abs(n).sum(1) > 1e-12
    faces = faces[keep]
    used = np.unique(faces)  # drop vertices no face uses (pole duplicates): V = faces.max() + 1
    remap = np.full(len(v), -1, dtype=np.int64)
    remap[used] = np.arange(len(used))
    faces, v, uvs = remap[faces], v[used], [uvs[i] for i in used]
    yy, xx = np.meshgrid(np.linspace(0, 1, uv_mask_size), np.linspace(0, 1, uv_mask_size), indexing="ij")
    mask = ((np.abs(xx - 0.5) < 0.3) & (yy > 0.2) & (yy < 0.85)).astype(np.float32)  # front of the face
    topo = Topology(faces=faces, uv_coords=np.asarray(uvs, dtype=np.float32), uv_faces=faces.copy(),
                    uv_face_mask=mask)
    head = SyntheticHead(topo, n_rings, n_segments)
    head._base = v.astype(np.float32)
    return head


@dataclass
class FakeHeadOutput:
    vertices: torch.Tensor
    landmarks: torch.Tensor
    landmarks_fixed: torch.Tensor
    joints: torch.Tensor


class FakeHead(torch.nn.Module):
    """The HeadModel interface over the synthetic head: expression[:, 0] opens the mouth."""

    def __init__(self, synthetic: SyntheticHead, n_shape: int = 4, n_expression: int = 3):
        super().__init__()
        self.synthetic = synthetic
        self.n_shape, self.n_expression = n_shape, n_expression
        topo = synthetic.topology
        label = np.full((32, 32), 19, dtype=np.uint8)  # background
        label[6:28, 6:26] = 0  # "face"
        self.assets = type("Assets", (), {"faces": topo.faces, "uv_coords": topo.uv_coords,
                                          "uv_faces": topo.uv_faces, "uv_label_map": label,
                                          "num_vertices": len(synthetic._base)})()

    def forward(self, shape, expression, pose) -> FakeHeadOutput:
        v, lms = self.synthetic.vertices(expression[:, 0].float().cpu())
        v = v * (1 + 0.05 * shape[:, :1].cpu())[:, :, None]
        dev = expression.device
        return FakeHeadOutput(v.to(dev), lms.to(dev), lms.to(dev), torch.zeros(len(v), 5, 3, device=dev))
