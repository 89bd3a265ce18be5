"""Orthographic texture views, culling rule, hole filling and the mouth box (docs/next3d.md §2.4, §2.5, §3)."""

from __future__ import annotations

from collections import deque

import numpy as np
import pytest
import torch

from sfray.conventions import ORTH_SCALE, ORTH_SHIFT
from sfray.generators.next3d.texture_raster import VIEWS, fill_holes, mouth_box, rasterize_uv
from sfray.generators.next3d.world import apply_transform, mesh_to_world, orth_view_coords, view_direction

from .helpers import make_synthetic_head, reference_rasterize, sfray_or_reference_rasterize


def test_view_coords_match_the_spec_table():
    p = torch.randn(1, 50, 3, dtype=torch.float64) * 0.1
    x, y, z = p[..., 0], p[..., 1], p[..., 2]
    table = {  # docs/next3d.md §2.4: (u, v) and the coordinate that grows towards the viewer
        "front": (5 * x, 5 * (y + 0.01), z), "right": (-5 * z, 5 * (y + 0.01), x),
        "left": (5 * z, 5 * (y + 0.01), -x), "top": (5 * x, -5 * (z - 0.01), y),
    }
    for view, (u, v, towards) in table.items():
        q = orth_view_coords(p, view)
        torch.testing.assert_close(q[..., 0], u)
        torch.testing.assert_close(q[..., 1], v)
        torch.testing.assert_close(q[..., 2], 10 - 5 * (towards - 0.01))  # depth offset 10, shift -0.01
        # nearer to the viewer = smaller depth, along exactly the table's axis
        order = torch.argsort(q[0, :, 2])
        assert torch.all(towards[0, order][:-1] >= towards[0, order][1:])
        torch.testing.assert_close(view_direction(view).double(),
                                   torch.eye(3, dtype=torch.float64)[[2, 0, 0, 1][VIEWS.index(view)]]
                                   * (-1 if view == "left" else 1))


def test_mesh_to_world_agrees_with_the_front_plane():
    """The annotator's transform (network convention) puts a point where the front slot samples it."""
    p = torch.randn(2, 30, 3) * 0.1
    world = apply_transform(mesh_to_world(2), p)
    uv = orth_view_coords(p, "front")[..., :2]
    torch.testing.assert_close(uv, 2 * world[..., :2])  # front slot = (gX, gY) = 2·(X, Y) for box_warp 1
    sf = apply_transform(mesh_to_world(2, "synthforge"), p)  # SynthForge: (p + shift)·2.5 + (0, 0, √2/10)
    expected = (p + torch.tensor(ORTH_SHIFT)) * ORTH_SCALE / 2
    expected[..., 2] += 2 ** 0.5 / 10
    torch.testing.assert_close(sf, expected)
    torch.testing.assert_close(world[..., 2], sf[..., 2])
    torch.testing.assert_close(world[..., 1] - sf[..., 1], torch.full_like(sf[..., 1], 0.05))


@pytest.mark.parametrize("view", VIEWS)
def test_culling_keeps_triangles_facing_the_viewer(view):
    """rasterize_uv with the rasterizer's own culling == explicit normal test + no culling."""
    head = make_synthetic_head(n_rings=10, n_segments=12)
    v, _ = head.vertices(torch.tensor([0.5]))
    faces = torch.as_tensor(head.topology.faces)
    uvs = torch.as_tensor(head.topology.uv_coords)
    fuv = torch.stack([2 * uvs[:, 0] - 1, 1 - 2 * uvs[:, 1], torch.ones(len(uvs))], -1)[faces]
    size = 24
    rast = sfray_or_reference_rasterize()
    uv, cov = rasterize_uv(v, faces, fuv, view, size, ORTH_SCALE, ORTH_SHIFT, rast)
    tri = v[0][faces]
    normal = torch.linalg.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    keep = (normal @ view_direction(view)) > 0
    q = orth_view_coords(v, view)
    pix = torch.stack([(q[..., 0] + 1) * size / 2, (q[..., 1] + 1) * size / 2, q[..., 2]], -1)
    ref = reference_rasterize(pix, faces[keep], (size, size), perspective_correct=False)
    ref_cov = (ref.face_index >= 0).float()
    ref_uv = (ref.bary.unsqueeze(-1) * fuv[keep][ref.face_index.clamp(min=0), :, :2]).sum(-2) * ref_cov[..., None]
    assert (cov != ref_cov).float().mean() < 0.01  # edge pixels may differ between rasterizers
    both = (cov * ref_cov).bool()
    assert both.sum() > 20
    # UV agree on pixels where both see the same surface (seam pixels may pick the other copy)
    close = ((uv - ref_uv).norm(dim=-1) < 1e-3)[both].float().mean()
    assert close > 0.97
    assert (uv[cov == 0] == 0).all()


def bfs_fill(alpha: np.ndarray) -> np.ndarray:
    """Independent 4-connected flood fill from (0, 0) with OpenCV's fixed-range rule, then alpha=1 elsewhere."""
    v = alpha.astype(np.float32) * np.float32(255)
    s = v[0, 0]
    h, w = v.shape
    seen = np.zeros((h, w), bool)
    q = deque([(0, 0)])
    seen[0, 0] = True
    while q:
        r, c = q.popleft()
        for dr, dc in ((1, 0), (-1, 0), (0, 1), (0, -1)):
            rr, cc = r + dr, c + dc
            if 0 <= rr < h and 0 <= cc < w and not seen[rr, cc] and s <= v[rr, cc] <= s + 254:
                seen[rr, cc] = True
                q.append((rr, cc))
    return np.where(seen, alpha, 1.0)


def test_fill_holes_ring_and_random_masks():
    a = np.zeros((12, 12), np.float32)
    a[2:10, 2:10] = 1.0
    a[4:8, 4:8] = 0.0  # an enclosed hole (open mouth)
    a[2, 5] = 0.5  # partial coverage on the outer edge stays
    out = fill_holes(torch.from_numpy(a)[None, None])[0, 0].numpy()
    assert (out[4:8, 4:8] == 1).all() and out[0, 0] == 0 and out[2, 5] == 0.5
    rng = np.random.default_rng(0)
    for _ in range(20):
        m = (rng.random((16, 16)) > 0.45).astype(np.float32) * rng.choice([1.0, 0.3, 0.999], size=(16, 16))
        np.testing.assert_array_equal(fill_holes(torch.from_numpy(m))[...].numpy(), bfs_fill(m))


def test_mouth_box_formula():
    lms = np.zeros((68, 2), np.float32)
    size = 256
    # outer lip in pixels: cols 100..140, rows 90..110 -> extent 40, s = 48; centre from 48 and 54
    pix = np.array([[100, 100], [110, 95], [120, 90], [130, 95], [140, 100], [135, 105], [140, 100],
                    [130, 108], [120, 110], [110, 108], [105, 105], [102, 101]], np.float32)
    pix[6] = [140, 100]  # point 54 (left corner)
    lms[48:60] = (pix - size / 2) / (size / 2)
    r0, r1, c0, c1 = mouth_box(lms, size)
    assert (r0, r1, c0, c1) == (100 - 24, 100 + 24, 120 - 24, 120 + 24)
    lms2 = lms.copy()
    lms2[48:60] += np.float32(0.7 / 128)  # +0.7 px: int() truncates (rounding would give 77, 97)
    assert mouth_box(lms2, size) == (76, 124, 96, 144)
