"""pytorch3d-compatible rasterization of the Next3D texture views (``raster_compat=pytorch3d``).

The released weights were trained with the texture views rasterized by pytorch3d's
``rasterize_meshes``, whose barycentric weights divide by (area + 1e-8) in its -1..1 screen units
and therefore do not sum to one; interpolated UVs and depths shrink by A/(A + 1e-8), which moves
small triangles closer and changes some depth-test winners. This module restates that kernel's
arithmetic in float32 torch ops, vectorised over (face, bounding-box pixel) pairs, so the same
inputs give the same fragments bit for bit (the per-pixel restatement in
``tests/generators/next3d/pytorch3d_reference.py`` checks it). Every convention reproduced here is
listed in docs/next3d.md, "Texture rasterization: numerical conventions":

* the released view transform in float32 (rotation matrices from float32 sin/cos, so 90-degree
  views carry cos = -4.4e-8 instead of 0; batched matmul; shift, scale, depth offset 10);
* pixel centres in pytorch3d's screen units (+x left, +y up; row 0 at y = +1);
* faces skipped when culled (signed area < 0), near-degenerate (|area| <= 1e-8), reaching z < 1e-8,
  or when the pixel centre lies outside their bounding box;
* weights w_i = e_i / float32(area + 1e-8) with the edge functions e_i as pytorch3d writes them,
  depth w0 z0 + w1 z1 + w2 z2, a pixel inside iff every w_i > 0 (strict);
* nearest depth wins; exact depth ties go to the lower face index.
"""

from __future__ import annotations

import torch
from torch import Tensor

from sfray.geometry.rasterizer import EMPTY_DEPTH, Fragments
from sfray.generators.next3d.world import VIEW_ANGLES_DEG, VIEW_DEPTH_OFFSET

#: pytorch3d's ``kEpsilon`` (a double constant: sums with it are rounded back to float32).
K_EPSILON = 1e-8
#: Bounds the (face, bounding-box pixel) pairs evaluated at once (memory only, never the result).
PAIRS_PER_CHUNK = 1 << 21
_INT64_MAX = torch.iinfo(torch.int64).max
_LOW32 = 0xFFFFFFFF


def released_rotation(view: str, device: torch.device | str | None = None) -> Tensor:
    """(3, 3) float32 rotation of a texture view as the release builds it (Rz·Ry·Rx, float32 trig)."""
    angles = torch.tensor([[int(a) for a in VIEW_ANGLES_DEG[view]]])  # an integer tensor, as released
    rad = angles * torch.pi / 180.0  # promoted to float32
    s, c = torch.sin(rad)[0], torch.cos(rad)[0]
    cx, cy, cz, sx, sy, sz = c[0], c[1], c[2], s[0], s[1], s[2]
    rows = [
        [cz * cy, cz * sy * sx - sz * cx, cz * sy * cx + sz * sx],
        [sz * cy, sz * sy * sx + cz * cx, sz * sy * cx - cz * sx],
        [-sy, cy * sx, cy * cx],
    ]
    return torch.stack([torch.stack(r) for r in rows]).to(device)


def released_view_coords(points: Tensor, view: str, orth_scale: Tensor | float,
                         orth_shift: Tensor | tuple) -> Tensor:
    """Head-space points (B, N, 3) -> (u, v, depth) of one view, computed the released way in float32.

    Same quantities as ``world.orth_view_coords`` (u right, v down, smaller depth nearer) up to
    float32 rounding of the rotation; pytorch3d receives (-u, -v, depth).
    """
    p = points.float().clone()
    b = p.shape[0]
    p[..., 1] = -p[..., 1]
    rot = released_rotation(view, p.device).expand(b, 3, 3)
    scale = torch.as_tensor(orth_scale, dtype=torch.float32, device=p.device).reshape(1, 1, -1)[..., :1]
    shift = torch.as_tensor(orth_shift, dtype=torch.float32, device=p.device).reshape(1, 1, 3)
    q = (torch.bmm(p, rot) + shift) * scale
    return torch.stack([q[..., 0], -q[..., 1], -q[..., 2] + VIEW_DEPTH_OFFSET], dim=-1)


def pixel_centres(size: int, other: int, device: torch.device | str | None = None) -> Tensor:
    """(size,) float32 screen coordinate of output pixel k along an axis of ``size`` pixels.

    pytorch3d numbers pixels from +1 down to -1 (+y up, +x left): output index k samples its
    pixel ``size - 1 - k`` at -r/2 + (r·i + r/2)/size, r = 2 (the shorter side) or 2·size/other.
    """
    f32 = torch.float32
    rng = torch.tensor(2.0, dtype=f32)
    if size > other:
        rng = (size * rng) / other
    offset = rng / 2.0
    i = torch.arange(size - 1, -1, -1, dtype=f32)
    return (-offset + (rng * i + offset) / size).to(device)


def _index_range(centres_desc: Tensor, lo: Tensor, hi: Tensor) -> tuple[Tensor, Tensor]:
    """First and last output index whose (strictly decreasing) centre lies in [lo, hi] (empty: last < first)."""
    asc = centres_desc.flip(0).contiguous()
    n = asc.shape[0]
    j0 = torch.searchsorted(asc, lo.contiguous(), right=False)  # first ascending index with c >= lo
    j1 = torch.searchsorted(asc, hi.contiguous(), right=True) - 1  # last with c <= hi
    return n - 1 - j1, n - 1 - j0


def _expand(counts: Tensor) -> tuple[Tensor, Tensor]:
    """counts (n,) -> (owner (S,), rank within owner (S,)) for S = counts.sum() items."""
    total = int(counts.sum())
    owner = torch.repeat_interleave(torch.arange(counts.shape[0], device=counts.device), counts, output_size=total)
    start = torch.cumsum(counts, 0) - counts
    return owner, torch.arange(total, device=counts.device) - start[owner]


class _Faces:
    """Per-face float32 terms of the kernel for the B*F faces of a batch (global id = b * F + f)."""

    def __init__(self, tri: Tensor, cull_backfaces: bool):
        x, y, z = tri[..., 0], tri[..., 1], tri[..., 2]  # (n, 3) each
        self.x, self.y, self.z = x, y, z
        x0, x1, x2, y0, y1, y2 = x[:, 0], x[:, 1], x[:, 2], y[:, 0], y[:, 1], y[:, 2]
        # culling / degeneracy use the signed area of (v0, v1, v2) written with v0 as the point
        face_area = (x0 - x1) * (y2 - y1) - (y0 - y1) * (x2 - x1)
        # the barycentric denominator is the area written from v2, plus epsilon in double
        area = (x2 - x0) * (y1 - y0) - (y2 - y0) * (x1 - x0)
        self.area = (area.double() + K_EPSILON).float()
        zmin = torch.minimum(z[:, 0], torch.minimum(z[:, 1], z[:, 2]))
        valid = torch.isfinite(tri).all(dim=(1, 2))
        valid &= ~(face_area.double().abs() <= K_EPSILON)
        valid &= ~(zmin.double() < K_EPSILON)
        if cull_backfaces:
            valid &= ~(face_area < 0)
        self.valid = valid
        # edge i runs v[i+1] -> v[i+2]; keep the differences the kernel forms once per face
        self.dx = torch.stack([x2 - x1, x0 - x2, x1 - x0], 1)
        self.dy = torch.stack([y2 - y1, y0 - y2, y1 - y0], 1)
        self.xmin, self.xmax = x.amin(1), x.amax(1)
        self.ymin, self.ymax = y.amin(1), y.amax(1)

    def weights(self, g: Tensor, px: Tensor, py: Tensor) -> tuple[Tensor, Tensor]:
        """Weights (S, 3) and depth (S,) of faces ``g`` at points (px, py), in the kernel's op order."""
        x, y, dx, dy = self.x[g], self.y[g], self.dx[g], self.dy[g]
        e = []
        for i in range(3):  # EdgeFunction(p, v[i+1], v[i+2]) = (p.x - a.x)(c.y - a.y) - (p.y - a.y)(c.x - a.x)
            a = (i + 1) % 3
            e.append((px - x[:, a]) * dy[:, i] - (py - y[:, a]) * dx[:, i])
        area = self.area[g]
        w = torch.stack([e[0] / area, e[1] / area, e[2] / area], 1)
        z = self.z[g]
        depth = w[:, 0] * z[:, 0] + w[:, 1] * z[:, 1] + w[:, 2] * z[:, 2]
        return w, depth


def _ordered_key(depth: Tensor, face: Tensor) -> Tensor:
    """float32 depth and int64 face id -> int64 keys ordered by (depth, face)."""
    bits = (depth + 0.0).contiguous().view(torch.int32)  # +0.0 folds -0.0 into +0.0
    ordered = torch.where(bits < 0, bits ^ 0x7FFFFFFF, bits).long()
    return (ordered << 32) | face


def rasterize_ndc(verts: Tensor, faces: Tensor, image_size: int | tuple[int, int], *,
                  cull_backfaces: bool = True, pairs_chunk: int | None = None) -> Fragments:
    """pytorch3d's ``rasterize_meshes`` (1 face per pixel, no blur, no perspective correction).

    verts (B, V, 3) in pytorch3d's screen units (x left, y up, depth z); faces (F, 3) shared.
    Returns :class:`Fragments` in pytorch3d's output layout (row 0 at y = +1, column 0 at x = +1):
    ``bary`` holds pytorch3d's weights (they sum to A/(A + 1e-8)), ``zbuf`` its depth; empty
    pixels get face -1, weights 0 and depth +inf (pytorch3d writes -1 there).
    """
    h, w = (image_size, image_size) if isinstance(image_size, int) else (int(image_size[0]), int(image_size[1]))
    b, device = verts.shape[0], verts.device
    faces = faces.to(device).long()
    f = faces.shape[0]
    tri = verts.float()[:, faces].reshape(b * f, 3, 3)
    fc = _Faces(tri, cull_backfaces)
    xs, ys = pixel_centres(w, h, device), pixel_centres(h, w, device)
    c0, c1 = _index_range(xs, fc.xmin, fc.xmax)
    r0, r1 = _index_range(ys, fc.ymin, fc.ymax)
    ncol, nrow = (c1 - c0 + 1).clamp_min(0), (r1 - r0 + 1).clamp_min(0)
    count = torch.where(fc.valid, ncol * nrow, 0)
    keys = torch.full((b * h * w,), _INT64_MAX, dtype=torch.int64, device=device)
    ids = torch.nonzero(count).squeeze(1)
    budget = int(pairs_chunk or PAIRS_PER_CHUNK)
    cum = torch.cumsum(count[ids], 0).cpu()
    start = 0
    while start < ids.shape[0]:
        before = int(cum[start - 1]) if start else 0
        end = max(int(torch.searchsorted(cum, before + budget, right=True)), start + 1)
        sel = ids[start:end]
        owner, k = _expand(count[sel])
        g = sel[owner]
        row = r0[g] + k // ncol[g]
        col = c0[g] + k % ncol[g]
        wts, depth = fc.weights(g, xs[col], ys[row])
        inside = (wts > 0).all(dim=1) & ~(depth < 0)
        g, row, col, depth = g[inside], row[inside], col[inside], depth[inside]
        pix = (g // f * h + row) * w + col
        keys.scatter_reduce_(0, pix, _ordered_key(depth, g % f), reduce="amin", include_self=True)
        start = end
    return _resolve(keys, fc, b, f, h, w, xs, ys)


def _resolve(keys: Tensor, fc: _Faces, b: int, f: int, h: int, w: int, xs: Tensor, ys: Tensor) -> Fragments:
    """Winning keys -> Fragments; the winners' weights and depth are recomputed with the same ops."""
    device = keys.device
    pix = torch.nonzero(keys != _INT64_MAX).squeeze(1)
    face = keys.index_select(0, pix) & _LOW32
    rem = pix % (h * w)
    g = (pix // (h * w)) * f + face
    wts, depth = fc.weights(g, xs[rem % w], ys[rem // w])
    face_index = torch.full((b * h * w,), -1, dtype=torch.int64, device=device)
    face_index[pix] = face
    bary = torch.zeros(b * h * w, 3, dtype=torch.float32, device=device)
    bary[pix] = wts
    zbuf = torch.full((b * h * w,), EMPTY_DEPTH, dtype=torch.float32, device=device)
    zbuf[pix] = depth
    return Fragments(face_index.view(b, h, w), bary.view(b, h, w, 3), zbuf.view(b, h, w))


def interpolate_face_attributes(fragments: Fragments, face_attrs: Tensor) -> Tensor:
    """The released interpolation: sum_i w_i·attr_i over the winning face's corners, 0 where empty.

    face_attrs (F, 3, D); returns (B, H, W, D). The weights are pytorch3d's (not renormalised), and
    the product/sum run on the same (B, H, W, 1, 3, D) layout as the release.
    """
    b, h, w = fragments.face_index.shape
    d = face_attrs.shape[-1]
    covered = fragments.face_index >= 0
    vals = face_attrs[fragments.face_index.clamp_min(0)].reshape(b, h, w, 1, 3, d)
    out = (fragments.bary.reshape(b, h, w, 1, 3)[..., None] * vals.to(fragments.bary.dtype)).sum(dim=-2)
    out = out[:, :, :, 0]
    return torch.where(covered[..., None], out, torch.zeros_like(out))
