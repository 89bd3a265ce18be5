"""Fixed jaw curves and the outline point chosen on them (``sfray.head.jaw_curves``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sfray.head.contour import CameraContour, face_centre
from sfray.head.jaw_curves import JawOutline, build_jaw_curves, closest_surface_points, densify
from tests.annotate.annotate_helpers import procedural_head


def _sphere(n_lat: int = 90, n_lon: int = 180) -> tuple[np.ndarray, np.ndarray]:
    """A unit UV sphere with outward winding (poles on +-y)."""
    lat = np.linspace(0.0, np.pi, n_lat + 1)[1:-1]
    lon = np.linspace(0.0, 2.0 * np.pi, n_lon, endpoint=False)
    la, lo = np.meshgrid(lat, lon, indexing="ij")
    v = np.stack([np.sin(la) * np.sin(lo), np.cos(la), np.sin(la) * np.cos(lo)], -1).reshape(-1, 3)
    v = np.concatenate([[[0.0, 1.0, 0.0]], v, [[0.0, -1.0, 0.0]]])
    ring = lambda i, j: 1 + i * n_lon + j % n_lon  # noqa: E731
    faces = [(0, ring(0, j), ring(0, j + 1)) for j in range(n_lon)]
    for i in range(n_lat - 2):
        for j in range(n_lon):
            a, b, c, d = ring(i, j), ring(i + 1, j), ring(i + 1, j + 1), ring(i, j + 1)
            faces += [(a, b, c), (a, c, d)]
    last = len(v) - 1
    faces += [(ring(n_lat - 2, j), last, ring(n_lat - 2, j + 1)) for j in range(n_lon)]
    f = np.asarray(faces, np.int64)
    tri = v[f]
    outward = np.einsum("fi,fi->f", np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), tri.mean(1)) > 0
    f[~outward] = f[~outward][:, ::-1]
    return v, f


def test_closest_surface_points_match_brute_force():
    rng = np.random.default_rng(0)
    v = rng.normal(size=(30, 3))
    f = np.arange(30).reshape(10, 3)
    p = 1.5 * rng.normal(size=(200, 3))
    faces, bary = closest_surface_points(v, f, p)
    assert (bary >= -1e-12).all() and np.allclose(bary.sum(1), 1.0)
    q = np.einsum("nkc,nk->nc", v[f[faces]], bary)
    u = np.linspace(0.0, 1.0, 301)
    uu, ww = np.meshgrid(u, u)
    keep = uu + ww <= 1.0
    uu, ww = uu[keep], ww[keep]
    dense = (v[f][:, 0, None] * (1 - uu - ww)[None, :, None] + v[f][:, 1, None] * uu[None, :, None]
             + v[f][:, 2, None] * ww[None, :, None]).reshape(-1, 3)
    best = np.sqrt(((p[:, None] - dense[None]) ** 2).sum(-1)).min(1)
    got = np.linalg.norm(q - p, axis=1)
    assert (got <= best + 1e-12).all() and (best - got).max() < 2e-3  # never worse, never off the mesh


def test_outline_point_on_a_sphere_is_where_the_camera_ray_grazes():
    """Unit sphere, camera at distance d on +z: the silhouette is the circle z = 1/d. A jaw point
    behind it slides forwards to it; one in front of it stays where it is."""
    v, f = _sphere()
    centre = np.array([0.0, 0.0, 0.8])
    behind = closest_surface_points(v, f, np.array([[-1.0, -0.05, 0.0], [0.6, -0.6, -0.2]]))
    front = closest_surface_points(v, f, np.array([[-0.7, -0.1, 0.7]]))
    anchors = (np.concatenate([behind[0], front[0]]), np.concatenate([behind[1], front[1]]))
    curves = build_jaw_curves(v, f, *anchors, centre)
    outline = JawOutline(curves, f)
    for d in (3.0, 10.0):
        verts = torch.as_tensor(v)[None]
        faces, bary, found = outline.choose(verts, torch.tensor([[0.0, 0.0, d]], dtype=torch.float64))
        p = np.einsum("kcx,kc->kx", v[f[faces[0].numpy()]], bary[0].numpy())
        assert found.all()
        np.testing.assert_allclose(p[:2, 2] / np.linalg.norm(p[:2], axis=1), 1.0 / d, atol=0.01)
        start = np.einsum("cx,c->x", v[f[anchors[0][2]]], anchors[1][2])
        np.testing.assert_allclose(p[2], start, atol=1e-12)  # faces the camera: the anchor stays


def test_curves_lie_on_the_surface_in_their_planes():
    """Every curve point is a point of a mesh face, in the plane through its anchor that holds the
    forward axis and the direction to the face centre, and the curve runs towards that centre."""
    head = procedural_head()
    contour = CameraContour(head)
    v = head.v_template.double().numpy()
    f = head.faces.numpy()
    c = contour.curves
    centre = face_centre(head)
    assert (c.start >= -1e-9).all() and (c.end >= -1e-9).all()
    np.testing.assert_allclose(c.start.sum(-1), 1.0, atol=1e-9)
    np.testing.assert_allclose(c.end.sum(-1), 1.0, atol=1e-9)
    for k in range(c.faces.shape[0]):
        n = int(c.lengths[k])
        pts = np.einsum("mcx,mc->mx", v[f[c.faces[k, :n]]], c.end[k, :n])
        p0 = c.start[k, 0] @ v[f[c.faces[k, 0]]]
        u = np.array([p0[0] - centre[0], p0[1] - centre[1], 0.0])
        normal = np.cross([0.0, 0.0, 1.0], u / np.linalg.norm(u))
        assert np.abs((pts - p0) @ normal).max() < 1e-9
        # consecutive segments join: the end of one is the start of the next, in other faces
        starts = np.einsum("mcx,mc->mx", v[f[c.faces[k, 1:n]]], c.start[k, 1:n])
        np.testing.assert_allclose(starts, pts[:-1], atol=1e-12)
        assert np.linalg.norm(pts[-1] - centre) < np.linalg.norm(p0 - centre)


def test_densified_anchors_sit_between_their_neighbours_on_the_skin():
    head = procedural_head()
    v = head.v_template.double().numpy()
    f = head.faces.numpy()
    af, ab = densify(v, f, head.dynamic_lmk_faces[0].numpy(), head.dynamic_lmk_bary[0].double().numpy(), 4)
    assert len(af) == 65
    p = np.einsum("kcx,kc->kx", v[f[af]], ab)
    np.testing.assert_allclose(p[::4], np.einsum("kcx,kc->kx", v[f[head.dynamic_lmk_faces[0].numpy()]],
                                                 head.dynamic_lmk_bary[0].double().numpy()))
    step = np.linalg.norm(np.diff(p, axis=0), axis=1)
    assert step.max() < 0.012 and step.min() > 1e-4  # ordered along the jaw, no jumps (metres)


@pytest.mark.parametrize("embedding", ["deca", "ringnet"])
def test_camera_contour_runs_on_flame_format_heads(flame_assets, flame_files, embedding):
    """FLAME files with DECA's or RingNet's embedding (the fixture's mesh is random, not a face:
    this pins that the curves build from the table's yaw-0 row and give finite points per camera)."""
    import dataclasses

    from sfray.head.flame_embedding import read_landmark_embedding
    from sfray.head.layer import HeadModel
    from tests.annotate.annotate_helpers import camera_labels

    assets = flame_assets
    if embedding == "ringnet":
        assets = dataclasses.replace(assets, landmarks=read_landmark_embedding(flame_files.static,
                                                                               flame_files.dynamic, 9976))
    head = HeadModel(assets, n_shape=10, n_expression=10, dtype=torch.float64)
    contour = CameraContour(head)
    assert contour.curves.faces.shape[0] == 65
    cams = camera_labels(torch.tensor([0.0, 0.5, -0.3]), torch.tensor([0.0, -0.5, 0.4]))
    with torch.no_grad():
        out = head(pose=torch.zeros(3, 15))
    to_world = torch.diag(torch.tensor([2.5, 2.5, 2.5, 1.0], dtype=torch.float64)).expand(3, 4, 4)
    jaw = contour.apply(out.vertices, out.landmarks, to_world, cams)
    assert jaw.shape == (3, 68, 3) and torch.isfinite(jaw).all()
    assert torch.equal(jaw[:, 17:], out.landmarks[:, 17:])
