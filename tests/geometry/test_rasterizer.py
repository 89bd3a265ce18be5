"""The pure-PyTorch rasterizer against analytic cases and a brute-force float64 reference."""

import math

import numpy as np
import pytest
import torch

from sfray.errors import ConfigError
from sfray.geometry.rasterizer import (
    EMPTY_DEPTH,
    face_attributes,
    get_rasterizer,
    interpolate,
    rasterize,
    to_screen_orthographic,
    to_screen_perspective,
)


def _centres(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates (H, W) each: x = col + 0.5, y = row + 0.5."""
    ys, xs = np.meshgrid(np.arange(h) + 0.5, np.arange(w) + 0.5, indexing="ij")
    return xs, ys


def _bary_np(tri: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Screen-space barycentrics (..., 3) of points wrt a 2D triangle (3, 2), float64 Cramer's rule."""
    (x0, y0), (x1, y1), (x2, y2) = tri[:, :2]
    det = (x1 - x0) * (y2 - y0) - (x2 - x0) * (y1 - y0)
    l1 = ((xs - x0) * (y2 - y0) - (x2 - x0) * (ys - y0)) / det
    l2 = ((x1 - x0) * (ys - y0) - (xs - x0) * (y1 - y0)) / det
    return np.stack([1 - l1 - l2, l1, l2], axis=-1)


def _one(tri, h, w, **kw):
    verts = torch.tensor([tri], dtype=torch.float32)
    return rasterize(verts, torch.tensor([[0, 1, 2]]), (h, w), **kw)


# ------------------------------------------------------------------------------------------
# Analytic coverage, depth and barycentrics
# ------------------------------------------------------------------------------------------
def test_screen_aligned_triangle_pixels_depth_bary():
    h, w = 12, 13
    xy = np.array([[1.2, 1.3], [9.7, 1.3], [1.2, 9.6]])
    z = 0.1 * xy[:, 0] + 0.2 * xy[:, 1] + 3.0  # a plane: depth is linear in screen space
    tri = np.concatenate([xy, z[:, None]], 1)
    xs, ys = _centres(h, w)
    lam = _bary_np(tri, xs, ys)
    assert np.abs(lam).min() > 1e-6  # no pixel centre on an edge: the expected set is unambiguous
    expected = (lam > 0).all(-1)
    frags = _one(tri.tolist(), h, w, perspective_correct=False)
    assert torch.equal(frags.coverage[0], torch.from_numpy(expected))
    assert expected.sum() > 20
    cov = frags.coverage[0].numpy()
    assert np.allclose(frags.bary[0].numpy()[cov], lam[cov], atol=1e-5)
    assert np.allclose(frags.zbuf[0].numpy()[cov], (0.1 * xs + 0.2 * ys + 3.0)[cov], atol=1e-5)
    assert torch.all(frags.face_index[0][~frags.coverage[0]] == -1)
    assert torch.all(frags.zbuf[0][~frags.coverage[0]] == EMPTY_DEPTH)
    assert torch.all(frags.bary[0][~frags.coverage[0]] == 0)


def test_screen_aligned_square_two_triangles():
    h, w = 10, 10
    x0, x1, y0, y1 = 2.3, 7.6, 1.2, 6.8
    verts = torch.tensor([[[x0, y0, 2.0], [x1, y0, 2.0], [x1, y1, 2.0], [x0, y1, 2.0]]])
    faces = torch.tensor([[0, 1, 2], [0, 2, 3]])
    frags = rasterize(verts, faces, (h, w), perspective_correct=False)
    xs, ys = _centres(h, w)
    expected = (xs > x0) & (xs < x1) & (ys > y0) & (ys < y1)
    assert torch.equal(frags.coverage[0], torch.from_numpy(expected))
    assert torch.allclose(frags.zbuf[0][frags.coverage[0]], torch.tensor(2.0), rtol=1e-6)
    # barycentrics reproduce the pixel centre from the winning face's corners
    pos = interpolate(frags, face_attributes(verts[..., :2], faces))[0].numpy()
    assert np.allclose(pos[expected], np.stack([xs, ys], -1)[expected], atol=1e-5)


def test_top_left_rule_on_vertices_at_pixel_centres():
    # A square with corners on pixel centres: centres on the left and top edges are in, right and
    # bottom edges are out (top-left rule), whatever the winding; the diagonal goes to one face.
    n = 8
    corners = [[0.5, 0.5, 1.0], [6.5, 0.5, 1.0], [6.5, 6.5, 1.0], [0.5, 6.5, 1.0]]
    for faces in ([[0, 1, 2], [0, 2, 3]], [[0, 2, 1], [0, 3, 2]]):
        frags = rasterize(torch.tensor([corners]), torch.tensor(faces), (n, n), perspective_correct=False)
        expected = torch.zeros(n, n, dtype=torch.bool)
        expected[0:6, 0:6] = True
        assert torch.equal(frags.coverage[0], expected)


# ------------------------------------------------------------------------------------------
# Shared edges: every pixel exactly once
# ------------------------------------------------------------------------------------------
def _coverage_count(verts: torch.Tensor, faces: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Rasterize each face alone (batch of one-face meshes) and count how many cover each pixel."""
    f = faces.shape[0]
    frags = rasterize(verts.expand(f, -1, -1), faces[:, None, :], (h, w), perspective_correct=False)
    return frags.coverage.sum(0)


def _grid_mesh(n: int, lo: float, hi: float, jitter: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    t = torch.linspace(lo, hi, n + 1)
    yy, xx = torch.meshgrid(t, t, indexing="ij")
    interior = torch.zeros_like(xx, dtype=torch.bool)
    interior[1:-1, 1:-1] = True
    xx = xx + interior * (torch.rand(xx.shape, generator=g) - 0.5) * jitter
    yy = yy + interior * (torch.rand(yy.shape, generator=g) - 0.5) * jitter
    verts = torch.stack([xx, yy, torch.ones_like(xx)], -1).reshape(1, -1, 3)
    faces = []
    for i in range(n):
        for j in range(n):
            a, c = i * (n + 1) + j, (i + 1) * (n + 1) + j
            b, d = a + 1, c + 1
            faces += [[a, b, d], [a, d, c]] if (i + j) % 2 else [[a, b, c], [b, d, c]]
    return verts, torch.tensor(faces)


@pytest.mark.parametrize("jitter,seed", [(0.0, 0), (2.0, 1), (3.3, 2)])
def test_shared_edges_cover_each_pixel_exactly_once(jitter, seed):
    # the un-jittered grid puts vertices and diagonals exactly on pixel centres (ties everywhere)
    verts, faces = _grid_mesh(6, 2.5, 26.5, jitter, seed)
    count = _coverage_count(verts, faces, 30, 30)
    assert count.max() == 1
    xs, ys = _centres(30, 30)
    inside = torch.from_numpy((xs > 2.5) & (xs < 26.5) & (ys > 2.5) & (ys < 26.5))
    assert torch.all(count[inside] == 1)
    on_top_left = torch.from_numpy(((xs == 2.5) & (ys >= 2.5) & (ys < 26.5))
                                   | ((ys == 2.5) & (xs >= 2.5) & (xs < 26.5)))
    assert torch.equal(count > 0, inside | on_top_left)  # outer boundary: the top-left rule
    # and the full mesh covers exactly the union
    full = rasterize(verts, faces, (30, 30), perspective_correct=False).coverage[0]
    assert torch.equal(full, count == 1)


def test_fan_around_a_pixel_centre_covers_it_once():
    k = 7
    ang = torch.arange(k) * (2 * math.pi / k) + 0.3
    ring = torch.stack([8.5 + 5 * torch.cos(ang), 8.5 + 5 * torch.sin(ang), torch.ones(k)], -1)
    verts = torch.cat([torch.tensor([[8.5, 8.5, 1.0]]), ring])[None]
    faces = torch.tensor([[0, 1 + i, 1 + (i + 1) % k] for i in range(k)])
    count = _coverage_count(verts, faces, 17, 17)
    assert count.max() == 1 and count[8, 8] == 1


# ------------------------------------------------------------------------------------------
# Depth test, perspective correction, culling
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("perspective", [False, True])
def test_nearer_face_wins_in_either_order(perspective):
    near = [[1.0, 1.0, 2.0], [11.0, 1.5, 2.0], [2.0, 11.0, 2.0]]
    far = [[0.5, 2.0, 3.0], [11.5, 2.0, 3.0], [6.0, 11.5, 3.0]]
    for order in ((near, far), (far, near)):
        verts = torch.tensor([order[0] + order[1]])
        faces = torch.tensor([[0, 1, 2], [3, 4, 5]])
        frags = rasterize(verts, faces, (12, 12), perspective_correct=perspective)
        near_id = 0 if order[0] is near else 1
        alone = _one(near, 12, 12, perspective_correct=perspective).coverage[0]
        assert torch.all(frags.face_index[0][alone] == near_id)
        assert torch.allclose(frags.zbuf[0][alone], torch.tensor(2.0), rtol=1e-6)
        assert torch.allclose(frags.zbuf[0][frags.coverage[0] & ~alone], torch.tensor(3.0), rtol=1e-6)


def test_perspective_barycentrics_match_ray_plane_intersection():
    h, w, f = 40, 48, 1.1
    k = torch.tensor([[f, 0.0, 0.5], [0.0, f * w / h, 0.5], [0.0, 0.0, 1.0]])  # square pixels
    cam = torch.tensor([[[-0.5, -0.4, 2.0], [0.7, -0.3, 4.5], [-0.1, 0.6, 6.0]]], dtype=torch.float64)
    screen = to_screen_perspective(cam.float(), k, (h, w))
    frags = rasterize(screen, torch.tensor([[0, 1, 2]]), (h, w), perspective_correct=True)
    cov = frags.coverage[0].numpy()
    assert cov.sum() > 100
    # closed form: the ray through each pixel centre meets the triangle's plane at X = t d
    xs, ys = _centres(h, w)
    a, b, c = cam[0].numpy()
    d = np.stack([(xs / w - 0.5) / f, (ys / h - 0.5) / (f * w / h), np.ones_like(xs)], -1)
    n = np.cross(b - a, c - a)
    x = d * (n @ a / (d @ n))[..., None]
    area = np.linalg.norm(n)
    sub = [np.cross(c - b, x - b), np.cross(a - c, x - c), np.cross(b - a, x - a)]
    lam = np.stack([s @ n for s in sub], -1) / area**2
    assert np.allclose(frags.bary[0].numpy()[cov], lam[cov], atol=1e-5)
    assert np.allclose(frags.zbuf[0].numpy()[cov], x[..., 2][cov], rtol=1e-5)
    pos = interpolate(frags, cam.float().unsqueeze(1))[0].numpy()
    assert np.allclose(pos[cov], x[cov], atol=1e-4)
    flat = rasterize(screen, torch.tensor([[0, 1, 2]]), (h, w), perspective_correct=False)
    assert torch.equal(flat.coverage, frags.coverage)
    assert (flat.bary[0].numpy()[cov] - lam[cov]).__abs__().max() > 0.05  # the test has teeth


def test_backface_culling_keeps_negative_screen_area():
    # screen (y down): a = counter-clockwise as displayed (negative signed area), b = clockwise
    a = [[2.0, 2.0, 1.0], [2.0, 8.0, 1.0], [8.0, 2.0, 1.0]]
    b = [[12.0, 2.0, 1.0], [18.0, 2.0, 1.0], [12.0, 8.0, 1.0]]
    verts = torch.tensor([a + b])
    faces = torch.tensor([[0, 1, 2], [3, 4, 5]])
    both = rasterize(verts, faces, (10, 20), perspective_correct=False)
    culled = rasterize(verts, faces, (10, 20), perspective_correct=False, cull_backfaces=True)
    assert set(both.face_index.unique().tolist()) == {-1, 0, 1}
    assert set(culled.face_index.unique().tolist()) == {-1, 0}
    assert torch.equal(culled.coverage, both.face_index == 0)


def test_culling_matches_outward_normal_towards_viewer():
    # perspective: OpenCV camera at the origin looking down +z
    k = torch.tensor([[1.0, 0.0, 0.5], [0.0, 1.0, 0.5], [0.0, 0.0, 1.0]])
    tri = torch.tensor([[-0.3, -0.3, 2.0], [0.3, -0.2, 2.2], [0.0, 0.3, 1.9]])
    normal = torch.linalg.cross(tri[1] - tri[0], tri[2] - tri[0])
    facing = bool(normal @ (torch.zeros(3) - tri.mean(0)) > 0)
    for winding, expect_kept in (([0, 1, 2], facing), ([0, 2, 1], not facing)):
        screen = to_screen_perspective(tri[winding][None], k, 16)
        kept = rasterize(screen, torch.tensor([[0, 1, 2]]), 16, cull_backfaces=True).coverage.any()
        assert bool(kept) == expect_kept
    # orthographic view from +z of a y-up world: CCW in the world (normal +z, towards the viewer)
    world = torch.tensor([[[0.0, 0.0, 0.0], [1.0, 0.0, 0.1], [0.0, 1.0, 0.2]]])
    screen = to_screen_orthographic(world, torch.tensor([8.0, -8.0]), 12.0, depth_sign=-1.0)
    assert rasterize(screen, torch.tensor([[0, 1, 2]]), 24, perspective_correct=False,
                     cull_backfaces=True).coverage.any()
    assert not rasterize(screen, torch.tensor([[0, 2, 1]]), 24, perspective_correct=False,
                         cull_backfaces=True).coverage.any()


# ------------------------------------------------------------------------------------------
# Batches, random meshes against a brute-force reference, chunking, edge cases
# ------------------------------------------------------------------------------------------
def _random_soup(b: int, f: int, h: int, w: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    centre = torch.rand(b, f, 1, 2, generator=g) * torch.tensor([w + 4.0, h + 4.0]) - 2
    xy = centre + (torch.rand(b, f, 3, 2, generator=g) - 0.5) * 14
    z = 1 + 2 * torch.rand(b, f, 3, 1, generator=g)
    verts = torch.cat([xy, z], -1).reshape(b, f * 3, 3)
    return verts, torch.arange(f * 3).reshape(f, 3)


def _reference(verts: np.ndarray, faces: np.ndarray, h: int, w: int, perspective: bool):
    """Brute force over all faces x pixels in float64; also flags pixels too close to call."""
    xs, ys = _centres(h, w)
    best = np.full((h, w), np.inf)
    second = np.full((h, w), np.inf)
    idx = np.full((h, w), -1)
    ambiguous = np.zeros((h, w), dtype=bool)
    for fi, face in enumerate(faces):
        tri = verts[face]
        lam = _bary_np(tri, xs, ys)
        ambiguous |= (np.abs(lam) < 1e-5).any(-1) & (lam > -1e-5).all(-1)
        inside = (lam > 0).all(-1)
        z = tri[:, 2]
        depth = 1 / (lam / z).sum(-1) if perspective else lam @ z
        depth = np.where(inside, depth, np.inf)
        closer = depth < best
        second = np.where(closer, best, np.minimum(second, depth))
        idx = np.where(closer, fi, idx)
        best = np.where(closer, depth, best)
    with np.errstate(invalid="ignore"):  # inf - inf on pixels no face covers
        ambiguous |= np.isfinite(second) & (second - best < 1e-5)
    return idx, best, ambiguous


@pytest.mark.parametrize("perspective", [False, True])
def test_random_meshes_match_brute_force(perspective):
    h, w = 23, 31
    verts, faces = _random_soup(3, 25, h, w, seed=11 if perspective else 12)
    frags = rasterize(verts, faces, (h, w), perspective_correct=perspective)
    for i in range(3):
        idx, depth, amb = _reference(verts[i].double().numpy(), faces.numpy(), h, w, perspective)
        ok = ~amb
        assert amb.mean() < 0.1
        assert np.array_equal(frags.face_index[i].numpy()[ok], idx[ok])
        cov = ok & (idx >= 0)
        assert np.allclose(frags.zbuf[i].numpy()[cov], depth[cov], rtol=1e-5)


def test_batch_equals_single_calls_and_chunking_is_invisible():
    h, w = 20, 20
    verts, faces = _random_soup(8, 30, h, w, seed=5)
    batch = rasterize(verts, faces, (h, w))
    for i in range(8):
        one = rasterize(verts[i:i + 1], faces, (h, w))
        assert torch.equal(batch.face_index[i], one.face_index[0])
        assert torch.equal(batch.bary[i], one.bary[0])
        assert torch.equal(batch.zbuf[i], one.zbuf[0])
    chunked = rasterize(verts, faces, (h, w), faces_chunk=7, samples_chunk=50)
    assert torch.equal(chunked.face_index, batch.face_index)
    assert torch.equal(chunked.zbuf, batch.zbuf)
    # per-mesh topology (B, F, 3) gives the same as the shared one
    per_mesh = rasterize(verts, faces.expand(8, -1, -1), (h, w))
    assert torch.equal(per_mesh.face_index, batch.face_index)


def test_edge_cases():
    empty = rasterize(torch.zeros(2, 0, 3), torch.zeros(0, 3, dtype=torch.long), (4, 5))
    assert empty.face_index.shape == (2, 4, 5) and not empty.coverage.any()
    assert empty.bary.shape == (2, 4, 5, 3) and torch.all(empty.zbuf == EMPTY_DEPTH)
    tris = torch.tensor([[
        [-10.0, -10.0, 1.0], [-5.0, -10.0, 1.0], [-10.0, -5.0, 1.0],  # outside the image
        [1.0, 1.0, 1.0], [3.0, 3.0, 1.0], [5.0, 5.0, 1.0],  # zero area
        [1.0, 1.0, -1.0], [6.0, 1.0, 1.0], [1.0, 6.0, 1.0],  # behind the camera (perspective)
        [1.0, 1.0, float("nan")], [6.0, 1.0, 1.0], [1.0, 6.0, 1.0],  # not finite
    ]])
    faces = torch.arange(12).reshape(4, 3)
    assert not rasterize(tris, faces, (8, 8), perspective_correct=True).coverage.any()
    ortho = rasterize(tris, faces, (8, 8), perspective_correct=False)
    assert set(ortho.face_index.unique().tolist()) == {-1, 2}
    huge = torch.tensor([[[-1e4, -1e4, 2.0], [1e4, -1e4, 2.0], [0.0, 1e4, 2.0]]])
    assert rasterize(huge, torch.tensor([[0, 1, 2]]), (6, 9)).coverage.all()


def test_interpolate_shared_and_batched_attributes():
    verts, faces = _random_soup(2, 10, 16, 16, seed=9)
    frags = rasterize(verts, faces, (16, 16), perspective_correct=False)
    attrs = torch.rand(10, 3, 4)
    shared = interpolate(frags, attrs)
    batched = interpolate(frags, attrs.expand(2, -1, -1, -1))
    assert shared.shape == (2, 16, 16, 4) and torch.equal(shared, batched)
    assert torch.all(shared[~frags.coverage] == 0)
    const = interpolate(frags, torch.full((10, 3, 1), 7.0))
    assert torch.allclose(const[frags.coverage], torch.tensor(7.0))


def test_get_rasterizer():
    assert get_rasterizer("torch") is rasterize
    with pytest.raises(ConfigError, match="annotate.raster_backend"):
        get_rasterizer("opengl")
    try:
        import pytorch3d  # noqa: F401
    except ImportError:
        with pytest.raises(ConfigError, match="pytorch3d"):
            get_rasterizer("pytorch3d")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    verts, faces = _random_soup(4, 40, 32, 40, seed=3)
    cpu = rasterize(verts, faces, (32, 40))
    gpu = rasterize(verts.cuda(), faces.cuda(), (32, 40))
    assert torch.equal(gpu.face_index.cpu(), cpu.face_index)
    assert torch.allclose(gpu.bary.cpu(), cpu.bary, atol=1e-6)
    assert torch.allclose(gpu.zbuf.cpu(), cpu.zbuf, rtol=1e-6)
