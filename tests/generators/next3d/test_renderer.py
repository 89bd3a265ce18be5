"""Rays, volume rendering and importance sampling (docs/next3d.md §2.10-2.14)."""

from __future__ import annotations

import math

import pytest
import torch

from sfray.generators.next3d.layers import seeded_generators
from sfray.generators.next3d.renderer import march, ray_sampler, render_planes, sample_importance, sample_stratified
from sfray.generators.next3d.triplane import OSGDecoder, next3d_plane_axes, project_onto_planes, sample_from_planes

FRONTAL = torch.tensor([[1.0, 0, 0, 0], [0, -1, 0, 0], [0, 0, -1, 2.7], [0, 0, 0, 1]])
K = torch.tensor([[4.2647, 0, 0.5], [0, 4.2647, 0.5], [0, 0, 1.0]])


def raw_density(sigma: float) -> float:
    """Raw decoder output whose softplus(x - 1) equals sigma."""
    return 1.0 + math.log(math.expm1(sigma))


def test_constant_density_closed_form():
    sigma, t0, t1, n = 0.8, 2.0, 3.5, 33
    depths = torch.linspace(t0, t1, n).reshape(1, 1, n, 1)
    dens = torch.full((1, 1, n, 1), raw_density(sigma))
    colors = torch.full((1, 1, n, 4), 0.25)
    rgb, depth, w = march(colors, dens, depths)
    total = w.sum().item()
    assert total == pytest.approx(1 - math.exp(-sigma * (t1 - t0)), rel=1e-5)
    torch.testing.assert_close(rgb, torch.full((1, 1, 4), 2 * 0.25 * total - 1))
    # closed-form weighted mean depth of the discrete midpoint quadrature
    dt = (t1 - t0) / (n - 1)
    ws = [(1 - math.exp(-sigma * dt)) * math.exp(-sigma * dt * k) for k in range(n - 1)]
    mids = [t0 + dt * (k + 0.5) for k in range(n - 1)]
    assert depth.item() == pytest.approx(sum(a * b for a, b in zip(ws, mids)) / sum(ws), rel=1e-5)


def test_weights_sum_at_most_one_and_depth_in_range():
    g = torch.Generator().manual_seed(0)
    depths, _ = torch.sort(torch.rand(2, 50, 40, 1, generator=g) * 1.05 + 2.25, dim=2)
    dens = torch.randn(2, 50, 40, 1, generator=g) * 20
    dens[0, 0] = -100.0  # an empty ray
    _, depth, w = march(torch.rand(2, 50, 40, 3, generator=g), dens, depths)
    assert (w >= 0).all() and (w.sum(2) <= 1 + 1e-6).all()
    assert (depth >= depths.min()).all() and (depth <= depths.max()).all()
    assert depth[0, 0].item() == pytest.approx(depths.max().item())  # NaN -> inf -> clamped to the max


def test_stratified_samples_are_jittered_in_their_bins_and_seeded():
    d1 = sample_stratified(2, 5, 2.25, 3.3, 48, torch.device("cpu"), seeded_generators([1, 2], "cpu"))
    d2 = sample_stratified(2, 5, 2.25, 3.3, 48, torch.device("cpu"), seeded_generators([1, 3], "cpu"))
    base = torch.linspace(2.25, 3.3, 48).reshape(1, 1, -1, 1)
    frac = (d1 - base) / (1.05 / 47)
    assert (frac >= 0).all() and (frac < 1).all()
    assert torch.equal(d1[0], d2[0]) and not torch.equal(d1[1], d2[1])


def test_importance_samples_follow_the_weights():
    depths = torch.linspace(2.25, 3.3, 48).reshape(1, 1, 48, 1).repeat(1, 3, 1, 1)
    w = torch.zeros(1, 3, 47, 1)
    w[:, :, 20] = 1.0  # all weight in one interval
    fine = sample_importance(depths, w, 64, seeded_generators([0], "cpu"))
    assert fine.shape == (1, 3, 64, 1)
    lo, hi = depths[0, 0, 18, 0].item(), depths[0, 0, 23, 0].item()
    inside = ((fine >= lo) & (fine <= hi)).float().mean().item()
    assert inside > 0.8  # the +0.01 floor and the max/avg pooling spread only a little mass elsewhere
    assert (fine >= 2.25).all() and (fine <= 3.3).all()


def test_rays_round_trip_through_the_intrinsics():
    res = 8
    origins, dirs = ray_sampler(FRONTAL[None], K[None], res)
    assert origins.shape == dirs.shape == (1, res * res, 3)
    torch.testing.assert_close(dirs.norm(dim=-1), torch.ones(1, res * res))
    torch.testing.assert_close(origins[0, 0], torch.tensor([0.0, 0.0, 2.7]))
    # project a point on each ray back with world2cam and K: it must land on that pixel centre
    pts = origins + 2.5 * dirs
    w2c = torch.linalg.inv(FRONTAL)
    cam = pts[0] @ w2c[:3, :3].T + w2c[:3, 3]
    uv = (cam @ K.T)[:, :2] / cam[:, 2:3]
    i, j = torch.meshgrid(torch.arange(res), torch.arange(res), indexing="ij")
    want = torch.stack([(j.reshape(-1) + 0.5) / res, (i.reshape(-1) + 0.5) / res], -1)
    torch.testing.assert_close(uv, want, atol=1e-5, rtol=0)
    assert dirs[0, 0, 0] < 0 and dirs[0, 0, 1] > 0  # top-left pixel looks left (-x) and up (+y world)


def test_plane_projection_axes():
    axes = next3d_plane_axes()
    p = torch.tensor([[[0.1, 0.2, 0.3]]])
    proj = project_onto_planes(axes, p)[0, :, 0]
    torch.testing.assert_close(proj, torch.tensor([[0.1, 0.2], [0.1, 0.3], [0.3, 0.2]]))


def test_sample_from_planes_reads_the_right_texel():
    planes = torch.zeros(1, 3, 1, 4, 4)
    planes[0, 0, 0, 1, 3] = 1.0  # plane 0 (X, Y): column 3 -> X in (0.25, 0.5), row 1 -> Y in (-0.25, 0)
    x = torch.tensor([[[(3 + 0.5) / 4 - 0.5, (1 + 0.5) / 4 - 0.5, 0.0]]])  # world with box_warp 1
    feats = sample_from_planes(next3d_plane_axes(), planes, x, box_warp=1.0)
    assert feats.shape == (1, 3, 1, 1) and feats[0, 0, 0, 0].item() == pytest.approx(1.0)


def test_render_planes_end_to_end_and_seeded():
    torch.manual_seed(0)
    planes = torch.randn(2, 3, 8, 16, 16)
    dec = OSGDecoder(8, 16, 8)
    origins, dirs = ray_sampler(FRONTAL[None].repeat(2, 1, 1), K[None].repeat(2, 1, 1), 4)
    opts = {"ray_start": 2.25, "ray_end": 3.3, "depth_resolution": 12, "depth_resolution_importance": 12, "box_warp": 1}
    f1, d1, a1 = render_planes(planes, dec, next3d_plane_axes(), origins, dirs, opts, seeded_generators([4, 5], "cpu"))
    f2, d2, a2 = render_planes(planes, dec, next3d_plane_axes(), origins, dirs, opts, seeded_generators([4, 5], "cpu"))
    assert f1.shape == (2, 16, 8) and d1.shape == a1.shape == (2, 16, 1)
    assert torch.equal(f1, f2) and torch.equal(d1, d2)
    assert (d1 >= 2.25).all() and (d1 <= 3.3).all() and (a1 <= 1 + 1e-6).all()
