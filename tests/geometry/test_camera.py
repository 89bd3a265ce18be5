"""Cameras: label layout, EG3D focal formula, look-at sampler geometry, projection."""

import math

import pytest
import torch

from sfray.conventions import DEFAULT_CAMERA_PIVOT, EG3D_FOV_DIVISOR, FFHQ_FOCAL, FFHQ_FOV_DEG
from sfray.geometry.camera import (
    camera_label_to_matrices,
    focal_to_fov,
    fov_to_focal,
    frontal_camera_label,
    intrinsics_from_focal,
    look_at_cam2world,
    matrices_to_camera_label,
    project_points,
    true_fov_deg,
    world_to_camera,
)


def test_label_matrices_round_trip():
    g = torch.Generator().manual_seed(0)
    c2w = look_at_cam2world(torch.rand(5, generator=g) + 1, torch.rand(5, generator=g) + 1)
    k = intrinsics_from_focal(torch.rand(5, generator=g) + 3)
    label = matrices_to_camera_label(c2w, k)
    assert label.shape == (5, 25)
    c2w2, k2 = camera_label_to_matrices(label)
    assert torch.equal(c2w2, c2w) and torch.equal(k2, k)
    assert torch.equal(matrices_to_camera_label(c2w2, k2), label)
    # row-major layout: translation at indices 3, 7, 11; focal at 16 and 20; principal point 18, 21
    assert torch.equal(label[:, [3, 7, 11]], c2w[:, :3, 3])
    assert torch.equal(label[:, 16], k[:, 0, 0]) and torch.equal(label[:, 20], k[:, 1, 1])
    assert torch.all(label[:, [18, 21]] == 0.5)


def test_eg3d_focal_formula():
    # docs/next3d.md §4 quotes 4.2634 for 18.837 deg; the FFHQ labels hold 4.2647, which the formula gives at
    # 18.8311 deg. We follow the formula (what the generator computes from a fov).
    f = fov_to_focal(FFHQ_FOV_DEG)
    assert f == pytest.approx(4.2634, abs=1e-4)
    assert abs(f - FFHQ_FOCAL) < 1.5e-3
    assert focal_to_fov(FFHQ_FOCAL) == pytest.approx(18.831, abs=1e-3)
    # 1.414, not 2: the EG3D "fov" is about sqrt(2) times the true image FOV
    assert EG3D_FOV_DIVISOR == 1.414
    assert true_fov_deg(FFHQ_FOCAL) == pytest.approx(13.37, abs=0.01)
    assert focal_to_fov(fov_to_focal(22.0)) == pytest.approx(22.0, abs=1e-9)
    t = torch.tensor([12.0, 18.837, 27.0], dtype=torch.float64)
    one_by_one = torch.tensor([fov_to_focal(float(v)) for v in t], dtype=torch.float64)
    assert torch.allclose(fov_to_focal(t), one_by_one)


def test_frontal_camera_axes_and_centre():
    c2w, k = camera_label_to_matrices(frontal_camera_label())
    assert torch.allclose(c2w[:3, :3], torch.diag(torch.tensor([1.0, -1.0, -1.0])), atol=1e-7)
    assert torch.allclose(c2w[:3, 3], torch.tensor([0.0, 0.0, 2.7]), atol=1e-7)
    assert torch.equal(c2w[3], torch.tensor([0.0, 0.0, 0.0, 1.0]))
    assert k[0, 0] == pytest.approx(fov_to_focal(FFHQ_FOV_DEG), rel=1e-6)


@pytest.mark.parametrize("resolution", [512, 64, (256, 512)])
def test_frontal_camera_projects_pivot_to_image_centre(resolution):
    label = frontal_camera_label(radius=2.7, pivot=DEFAULT_CAMERA_PIVOT)
    pix, depth = project_points(torch.tensor([[DEFAULT_CAMERA_PIVOT]]), label, resolution)
    h, w = (resolution, resolution) if isinstance(resolution, int) else resolution
    assert torch.allclose(pix[0, 0], torch.tensor([w / 2, h / 2]), atol=1e-4)
    assert depth[0, 0].item() == pytest.approx(2.7 - 0.2, abs=1e-6)


def test_projection_pixel_convention():
    # A point one focal-normalised unit right and below the axis lands at (0.5 + f X/Z) * W:
    # world +x is image right, world +y is image up for the frontal camera.
    label = frontal_camera_label()
    f = label[16].item()
    pts = torch.tensor([[[0.1, 0.0, 0.2], [0.0, 0.1, 0.2]]])
    pix, _ = project_points(pts, label, 100)
    assert pix[0, 0, 0].item() == pytest.approx(50 + f * 0.1 / 2.5 * 100, abs=1e-3)
    assert pix[0, 1, 1].item() == pytest.approx(50 - f * 0.1 / 2.5 * 100, abs=1e-3)


def test_look_at_pitch_is_nonlinear_and_yaw_moves_to_plus_x():
    centre = lambda h, v: look_at_cam2world(h, v)[0, :3, 3]  # noqa: E731
    c = centre(math.pi / 2, math.pi / 2 + 0.8)
    polar = math.acos(c[1].item() / 2.7)
    assert polar - math.pi / 2 == pytest.approx(0.534, abs=2e-3)  # ~30.6 deg, not 0.8 rad
    assert c[1] < 0  # positive pitch offset: camera below
    up = centre(math.pi / 2, math.pi / 2 - 0.2)
    assert up[1].item() == pytest.approx(0.344, abs=1e-3)  # docs/next3d.md §4: b = -0.2 -> height 0.344
    right = centre(math.pi / 2 + 0.3, math.pi / 2)
    assert right[0] > 0 and right[1].abs() < 1e-6
    # yaw is linear: the azimuth of the camera changes by exactly the offset
    assert math.atan2(right[0].item(), right[2].item()) == pytest.approx(0.3, abs=1e-6)


def test_look_at_orthonormal_and_looks_at_target():
    g = torch.Generator().manual_seed(1)
    h = math.pi / 2 + (torch.rand(16, generator=g) - 0.5) * 1.6
    v = math.pi / 2 + (torch.rand(16, generator=g) - 0.5) * 1.6
    c2w = look_at_cam2world(h, v, DEFAULT_CAMERA_PIVOT, 2.7, dtype=torch.float64)
    r = c2w[:, :3, :3]
    eye = torch.eye(3, dtype=torch.float64).expand(16, 3, 3)
    assert torch.allclose(r.transpose(1, 2) @ r, eye, atol=1e-12)
    assert torch.allclose(torch.linalg.det(r), torch.ones(16, dtype=torch.float64))
    assert torch.allclose(c2w[:, :3, 3].norm(dim=1), torch.full((16,), 2.7, dtype=torch.float64))
    assert torch.all(r[:, 1, 0].abs() < 1e-12)  # no roll: the camera x axis stays horizontal
    label = matrices_to_camera_label(c2w, intrinsics_from_focal(torch.full((16,), 4.0), dtype=torch.float64))
    pivot = torch.tensor([DEFAULT_CAMERA_PIVOT], dtype=torch.float64).expand(16, 1, 3)
    pix, _ = project_points(pivot, label, 64)
    assert torch.allclose(pix, torch.full_like(pix, 32.0), atol=1e-9)


def test_world_to_camera_inverts_cam2world():
    c2w = look_at_cam2world(torch.tensor([1.2, 1.9]), torch.tensor([1.4, 1.7]), dtype=torch.float64)
    cam = torch.tensor([[[0.1, -0.2, 2.0], [0.0, 0.0, 1.0]]], dtype=torch.float64).expand(2, -1, -1)
    world = torch.einsum("bij,bnj->bni", c2w[:, :3, :3], cam) + c2w[:, None, :3, 3]
    assert torch.allclose(world_to_camera(world, c2w), cam, atol=1e-12)
