"""A written-down reference of pytorch3d's mesh rasterizer, one pixel at a time, in float32 NumPy.

Restates the naive CPU kernel of pytorch3d's ``rasterize_meshes`` for the settings Next3D uses
(1 face per pixel, blur 0, no perspective correction, optional backface culling), with every
arithmetic step as a NumPy float32 scalar operation in the kernel's order, so the result is what
the kernel computes bit for bit (float32, no fused multiply-add):

for every output pixel (row yi, column xi), with screen point p = (X[xi], Y[yi]) where output
index k of an axis of S pixels samples pixel i = S - 1 - k at -r/2 + (r·i + r/2)/S
(r = 2, or 2·S/S_other on the longer side), and for every face f in index order:

1. skip f if culling and its area E(v0; v1, v2) < 0, if |that area| <= 1e-8, if its smallest z
   is below 1e-8, or if p lies outside its (x, y) bounding box;
2. w0 = E(p; v1, v2)/A, w1 = E(p; v2, v0)/A, w2 = E(p; v0, v1)/A with
   E(p; a, c) = (p.x - a.x)(c.y - a.y) - (p.y - a.y)(c.x - a.x) and A = float32(E(v2; v0, v1) + 1e-8)
   (the 1e-8 is a double, the sum rounded to float32);
3. z = w0·z0 + w1·z1 + w2·z2; skip if z < 0, skip unless w0 > 0 and w1 > 0 and w2 > 0;
4. keep f if nothing is kept yet or z < the kept depth (so an exact tie keeps the lower index).

Only the bounding-box test of step 1 is vectorised (over faces, with the same comparisons) so
full-size views finish in seconds; everything else is the literal loop.
"""

from __future__ import annotations

import numpy as np
import torch

from sfray.geometry.rasterizer import EMPTY_DEPTH, Fragments

F32 = np.float32
EPS = 1e-8  # a Python float = C double


def ndc_centre(i: int, s1: int, s2: int) -> np.float32:
    """Screen coordinate of pixel index i along an axis of s1 pixels (s2 = the other axis)."""
    rng = F32(2.0)
    if s1 > s2:
        rng = F32(F32(s1) * rng) / F32(s2)
    offset = rng / F32(2.0)
    return -offset + (rng * F32(i) + offset) / F32(s1)


def edge(px, py, ax, ay, cx, cy) -> np.float32:
    return (px - ax) * (cy - ay) - (py - ay) * (cx - ax)


def rasterize_one(face_verts: np.ndarray, h: int, w: int, cull_backfaces: bool
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """face_verts (F, 3, 3) float32 screen-space corners -> pix_to_face (H, W) (-1 empty),
    zbuf (H, W) and bary (H, W, 3) (-1 where empty, as pytorch3d writes them)."""
    fv = np.asarray(face_verts, dtype=F32)
    pix_to_face = np.full((h, w), -1, dtype=np.int64)
    zbuf = np.full((h, w), -1, dtype=F32)
    bary = np.full((h, w, 3), -1, dtype=F32)
    xmin, xmax = fv[:, :, 0].min(1), fv[:, :, 0].max(1)
    ymin, ymax = fv[:, :, 1].min(1), fv[:, :, 1].max(1)
    for yi in range(h):
        yf = ndc_centre(h - 1 - yi, h, w)
        rows = np.nonzero((ymin <= yf) & (yf <= ymax))[0]  # not outside the bounding box in y
        for xi in range(w):
            xf = ndc_centre(w - 1 - xi, w, h)
            cand = rows[(xmin[rows] <= xf) & (xf <= xmax[rows])]  # ... nor in x (index order kept)
            best = None
            for f in cand:
                (x0, y0, z0), (x1, y1, z1), (x2, y2, z2) = (tuple(F32(c) for c in fv[f, k]) for k in range(3))
                face_area = edge(x0, y0, x1, y1, x2, y2)
                if cull_backfaces and face_area < 0:
                    continue
                if float(face_area) <= EPS and float(face_area) >= -EPS:
                    continue
                if float(min(z0, min(z1, z2))) < EPS:
                    continue
                area = F32(float(edge(x2, y2, x0, y0, x1, y1)) + EPS)
                w0 = edge(xf, yf, x1, y1, x2, y2) / area
                w1 = edge(xf, yf, x2, y2, x0, y0) / area
                w2 = edge(xf, yf, x0, y0, x1, y1) / area
                pz = w0 * z0 + w1 * z1 + w2 * z2
                if pz < 0:
                    continue
                if not (w0 > 0 and w1 > 0 and w2 > 0):
                    continue
                if best is None or pz < best[0]:
                    best = (pz, f, w0, w1, w2)
            if best is not None:
                zbuf[yi, xi], pix_to_face[yi, xi] = best[0], best[1]
                bary[yi, xi] = best[2:]
    return pix_to_face, zbuf, bary


def reference_rasterize_ndc(verts: torch.Tensor, faces: torch.Tensor, image_size, *,
                            cull_backfaces: bool = True) -> Fragments:
    """Drop-in for ``raster_compat.rasterize_ndc`` (same arguments, sfray's empty-pixel values)."""
    h, w = (image_size, image_size) if isinstance(image_size, int) else tuple(int(s) for s in image_size)
    f_np = faces.detach().cpu().numpy()
    out_f, out_b, out_z = [], [], []
    for v in verts.detach().cpu().float().numpy():
        p2f, zb, bc = rasterize_one(v[f_np], h, w, cull_backfaces)
        covered = p2f >= 0
        out_f.append(p2f)
        out_b.append(np.where(covered[..., None], bc, F32(0)))
        out_z.append(np.where(covered, zb, F32(EMPTY_DEPTH)))
    dev = verts.device
    return Fragments(torch.from_numpy(np.stack(out_f)).to(dev), torch.from_numpy(np.stack(out_b)).to(dev),
                     torch.from_numpy(np.stack(out_z)).to(dev))
