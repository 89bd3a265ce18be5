"""The rasterizer's span (CPU default) and bounding-box (CUDA default) backends give identical fragments.

Identical means bit for bit: face ids, barycentrics and depths, on meshes built to stress the
places where two enumerations could disagree -- slivers thinner than a pixel, edges and vertices
exactly on pixel centres shared by several faces, exact depth ties -- in both interpolation modes,
with and without culling, and across chunk boundaries.
"""

from __future__ import annotations

import pytest
import torch

from sfray.geometry.rasterizer import BACKENDS, default_backend, rasterize


def assert_same(verts, faces, size, **kw):
    span = rasterize(verts, faces, size, backend="span", samples_chunk=97, **kw)
    bbox = rasterize(verts, faces, size, backend="bbox", samples_chunk=61, **kw)
    assert torch.equal(span.face_index, bbox.face_index)
    assert torch.equal(span.bary, bbox.bary)
    assert torch.equal(span.zbuf, bbox.zbuf)
    return span


def grid_mesh(n: int, size: int, z: torch.Tensor | None = None):
    """An n x n grid of quads whose vertices sit exactly on pixel centres, split both ways."""
    t = torch.linspace(0.5, size - 0.5, n + 1)
    yy, xx = torch.meshgrid(t, t, indexing="ij")
    zz = torch.full_like(xx, 2.0) if z is None else z
    verts = torch.stack([xx, yy, zz], -1).reshape(1, -1, 3)
    faces = []
    for i in range(n):
        for j in range(n):
            a, b, c, d = i * (n + 1) + j, i * (n + 1) + j + 1, (i + 1) * (n + 1) + j, (i + 1) * (n + 1) + j + 1
            faces += [[a, b, d], [a, d, c]] if (i + j) % 2 else [[a, b, c], [b, d, c]]
    return verts, torch.tensor(faces)


@pytest.mark.parametrize("perspective_correct", [False, True])
@pytest.mark.parametrize("cull", [False, True])
def test_random_soups(perspective_correct, cull):
    g = torch.Generator().manual_seed(3)
    for _ in range(6):
        n = 50
        v = torch.rand(2, 3 * n, 3, generator=g) * 44 - 6
        v[..., 2] = torch.rand(2, 3 * n, generator=g) * 3 + 0.5
        out = assert_same(v, torch.arange(3 * n).reshape(n, 3), (32, 37),
                          perspective_correct=perspective_correct, cull_backfaces=cull)
    assert out.coverage.any() and not out.coverage.all()


def test_shared_edges_and_vertices_on_pixel_centres():
    verts, faces = grid_mesh(6, 24)
    out = assert_same(verts, faces, 24, perspective_correct=False)
    inside = out.coverage[0, 1:-1, 1:-1]  # the grid spans pixel centres 0.5 .. 23.5
    assert inside.all()  # no cracks on shared edges through pixel centres (top-left rule)
    g = torch.Generator().manual_seed(1)
    bumpy = 2 + torch.rand(7, 7, generator=g)
    assert_same(*grid_mesh(6, 24, bumpy), 24, perspective_correct=True, cull_backfaces=True)


def test_slivers():
    g = torch.Generator().manual_seed(5)
    tris = []
    for _ in range(80):  # long, needle-thin triangles at every angle, some exactly through centres
        p = torch.rand(2, generator=g) * 30
        d = torch.randn(2, generator=g)
        d = d / d.norm() * (5 + 20 * torch.rand(1, generator=g))
        n = torch.stack([-d[1], d[0]]) / d.norm() * (10 ** (-6 * torch.rand(1, generator=g)))
        a, b, c = p, p + d, p + d / 2 + n
        if torch.rand(1, generator=g) < 0.3:
            a, b, c = a.round() + 0.5, b.round() + 0.5, c
        z = torch.rand(3, generator=g) + 1
        tris.append(torch.stack([torch.cat([a, z[:1]]), torch.cat([b, z[1:2]]), torch.cat([c, z[2:]])]))
    verts = torch.stack(tris).reshape(1, -1, 3)
    faces = torch.arange(verts.shape[1]).reshape(-1, 3)
    out = assert_same(verts, faces, 32, perspective_correct=False)
    assert out.coverage.sum() > 30


def test_depth_ties():
    verts, faces = grid_mesh(4, 16)
    dup = torch.cat([faces, faces.flip(0), faces[:, [1, 2, 0]]])  # every pixel covered 3 times at one depth
    out = assert_same(verts, dup, 16, perspective_correct=False)
    covered = out.face_index[out.coverage]
    assert (covered < len(faces)).all()  # exact ties go to the lowest index
    tilted = verts.clone()
    tilted[..., 2] = 1 + 0.01 * tilted[..., 0] + 0.003 * tilted[..., 1]  # coplanar, not constant depth
    assert_same(tilted, dup, 16, perspective_correct=True)


def test_backend_choice():
    assert default_backend("cpu") == "span" and default_backend("cuda") == "bbox"
    assert set(BACKENDS) == {"auto", "span", "bbox"}
    verts, faces = grid_mesh(2, 8)
    with pytest.raises(ValueError, match="backend"):
        rasterize(verts, faces, 8, backend="tiles")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_bbox_matches_cpu_span():
    verts, faces = grid_mesh(6, 24, 2 + torch.rand(7, 7, generator=torch.Generator().manual_seed(2)))
    cpu = rasterize(verts, faces, 24, backend="span")
    gpu = rasterize(verts.cuda(), faces.cuda(), 24)  # auto: bbox on CUDA
    assert torch.equal(gpu.face_index.cpu(), cpu.face_index)
    torch.testing.assert_close(gpu.bary.cpu(), cpu.bary, atol=1e-6, rtol=0)
    torch.testing.assert_close(gpu.zbuf.cpu(), cpu.zbuf, atol=0, rtol=1e-6)
