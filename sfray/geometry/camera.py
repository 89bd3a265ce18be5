"""EG3D / Next3D cameras: the 25-number label, EG3D's focal formula, the look-at orbit, projection.

Conventions (``sfray.conventions``, docs/conventions.md): the label is the row-major 4x4 cam2world (OpenCV
camera axes: x right, y down, z forward; world y up, frontal camera on +z) followed by the row-major
3x3 intrinsics normalised by image size. Pixels of :func:`project_points` are ``u * size`` for the
normalised image coordinate u, so (0, 0) is the top-left *corner* of the image and the normalised
principal point 0.5 is pixel coordinate ``size / 2`` (see ``sfray.geometry.projection``).

Two EG3D quirks are reproduced on purpose (docs/conventions.md), because the generator was trained
with them: the focal from a "fov" divides by 1.414 instead of 2 (:func:`fov_to_focal`), and the
look-at sampler maps its vertical angle through ``arccos(1 - 2 v / pi)`` (:func:`look_at_cam2world`).

Camera matrices are built in float64 and returned in the requested dtype (float32 by default), so
the frontal camera is exact to float32 rounding.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from sfray.conventions import (
    CAMERA_LABEL_DIM,
    DEFAULT_CAMERA_PIVOT,
    DEFAULT_CAMERA_RADIUS,
    EG3D_FOV_DIVISOR,
    FFHQ_FOV_DEG,
)
from sfray.geometry.projection import _image_hw, to_screen_perspective

#: EG3D's look-at sampler clamps the vertical angle to [eps, pi - eps] (no camera at the poles).
LOOKAT_VERTICAL_EPS = 1e-5

Number = float | int
TensorLike = Tensor | Number | Sequence[float]


def _f64(x: TensorLike, device: torch.device | None = None) -> Tensor:
    return torch.as_tensor(x, dtype=torch.float64, device=device)


# --------------------------------------------------------------------------------------------
# Focal length <-> EG3D "fov"
# --------------------------------------------------------------------------------------------
def fov_to_focal(fov_deg: Number | Tensor) -> Number | Tensor:
    """EG3D's ``FOV_to_intrinsics`` focal: f = 1 / (1.414 * tan(fov / 2)), normalised by image size.

    This is what the generator computes from a "fov", so sfray uses it verbatim. Note that 18.837
    deg gives 4.26339, not the 4.2647 stored in the FFHQ labels (a constant of EG3D's dataset
    preprocessing); the formula reaches 4.2647 at 18.8311 deg. The choice of pi (3.14159 in
    EG3D's code) changes it by 1e-6 relative, 1.414 instead of sqrt(2) by 1.5e-4.
    """
    if isinstance(fov_deg, Tensor):
        return 1.0 / (EG3D_FOV_DIVISOR * torch.tan(torch.deg2rad(fov_deg) / 2))
    return 1.0 / (EG3D_FOV_DIVISOR * math.tan(math.radians(fov_deg) / 2))


def focal_to_fov(focal: Number | Tensor) -> Number | Tensor:
    """Inverse of :func:`fov_to_focal`: the EG3D "fov" (degrees) that gives this normalised focal."""
    if isinstance(focal, Tensor):
        return torch.rad2deg(2 * torch.atan(1.0 / (EG3D_FOV_DIVISOR * focal)))
    return math.degrees(2 * math.atan(1.0 / (EG3D_FOV_DIVISOR * focal)))


def true_fov_deg(focal: Number | Tensor) -> Number | Tensor:
    """The real field of view across the image (degrees) for a normalised focal: 2 atan(0.5 / f).

    About ``fov / 1.414`` for EG3D's "fov" (13.37 deg for the FFHQ focal).
    """
    if isinstance(focal, Tensor):
        return torch.rad2deg(2 * torch.atan(0.5 / focal))
    return math.degrees(2 * math.atan(0.5 / focal))


def intrinsics_from_focal(focal: TensorLike, principal: Sequence[float] = (0.5, 0.5),
                          dtype: torch.dtype = torch.float32) -> Tensor:
    """Normalised intrinsics [[f, 0, cx], [0, f, cy], [0, 0, 1]]; focal scalar or (B,) -> (B, 3, 3)."""
    f = _f64(focal, focal.device if isinstance(focal, Tensor) else None).reshape(-1)
    k = torch.zeros(f.shape[0], 3, 3, dtype=torch.float64, device=f.device)
    k[:, 0, 0] = f
    k[:, 1, 1] = f
    k[:, 0, 2] = float(principal[0])
    k[:, 1, 2] = float(principal[1])
    k[:, 2, 2] = 1.0
    return k.to(dtype)


# --------------------------------------------------------------------------------------------
# Label <-> matrices
# --------------------------------------------------------------------------------------------
def camera_label_to_matrices(label: Tensor) -> tuple[Tensor, Tensor]:
    """Label (..., 25) -> cam2world (..., 4, 4) and normalised intrinsics (..., 3, 3)."""
    if label.shape[-1] != CAMERA_LABEL_DIM:
        raise ValueError(f"camera label must have {CAMERA_LABEL_DIM} numbers, got shape {tuple(label.shape)}")
    lead = label.shape[:-1]
    return label[..., :16].reshape(*lead, 4, 4), label[..., 16:].reshape(*lead, 3, 3)


def matrices_to_camera_label(cam2world: Tensor, intrinsics: Tensor) -> Tensor:
    """cam2world (..., 4, 4) and normalised intrinsics (..., 3, 3) -> label (..., 25)."""
    lead = torch.broadcast_shapes(cam2world.shape[:-2], intrinsics.shape[:-2])
    c2w = cam2world.expand(*lead, 4, 4).reshape(*lead, 16)
    k = intrinsics.to(cam2world.dtype).expand(*lead, 3, 3).reshape(*lead, 9)
    return torch.cat([c2w, k], dim=-1)


# --------------------------------------------------------------------------------------------
# Orbit cameras
# --------------------------------------------------------------------------------------------
def orbit_cam2world(theta: TensorLike, phi: TensorLike, lookat: TensorLike = DEFAULT_CAMERA_PIVOT,
                    radius: TensorLike = DEFAULT_CAMERA_RADIUS, dtype: torch.dtype = torch.float32) -> Tensor:
    """Camera on the sphere of ``radius`` around the **world origin**, looking at ``lookat``.

    theta is the horizontal angle (pi/2 = frontal on +z, larger moves the camera towards +x), phi
    the polar angle from world +y (pi/2 = level, larger moves the camera down). theta, phi and
    radius are scalars or (B,); lookat (3,) or (B, 3). Returns cam2world (B, 4, 4) with OpenCV axes
    built like EG3D: forward = normalize(lookat - centre), right = -normalize(up0 x forward) with
    up0 = +y, down = normalize(forward x right); columns (right, down, forward, centre).
    """
    device = next((v.device for v in (theta, phi, lookat, radius) if isinstance(v, Tensor)), None)
    th, ph, r = (_f64(v, device).reshape(-1) for v in (theta, phi, radius))
    target = _f64(lookat, device).reshape(-1, 3)
    b = max(th.shape[0], ph.shape[0], r.shape[0], target.shape[0])
    th, ph, r, target = th.expand(b), ph.expand(b), r.expand(b), target.expand(b, 3)
    centre = torch.stack([
        r * torch.sin(ph) * torch.cos(math.pi - th),
        r * torch.cos(ph),
        r * torch.sin(ph) * torch.sin(math.pi - th),
    ], dim=-1)
    forward = torch.nn.functional.normalize(target - centre, dim=-1)
    up0 = torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64, device=th.device).expand(b, 3)
    right = -torch.nn.functional.normalize(torch.linalg.cross(up0, forward, dim=-1), dim=-1)
    down = torch.nn.functional.normalize(torch.linalg.cross(forward, right, dim=-1), dim=-1)
    c2w = torch.eye(4, dtype=torch.float64, device=th.device).repeat(b, 1, 1)
    c2w[:, :3, 0], c2w[:, :3, 1], c2w[:, :3, 2], c2w[:, :3, 3] = right, down, forward, centre
    return c2w.to(dtype)


def look_at_cam2world(horizontal: TensorLike, vertical: TensorLike,
                      lookat: TensorLike = DEFAULT_CAMERA_PIVOT, radius: TensorLike = DEFAULT_CAMERA_RADIUS,
                      dtype: torch.dtype = torch.float32) -> Tensor:
    """EG3D's ``LookAtPoseSampler`` without noise: (h, v) -> cam2world (B, 4, 4).

    v is clamped to [1e-5, pi - 1e-5], theta = h and phi = arccos(1 - 2 v / pi) (the nonlinear
    vertical mapping: v = pi/2 + 0.8 gives phi = pi/2 + 0.534). h = pi/2 + a with a > 0 moves the
    camera to +x (the subject's left); v = pi/2 + b with b < 0 moves it up.
    """
    v = _f64(vertical, vertical.device if isinstance(vertical, Tensor) else None)
    v = v.clamp(LOOKAT_VERTICAL_EPS, math.pi - LOOKAT_VERTICAL_EPS)
    phi = torch.arccos(1 - 2 * v / math.pi)
    return orbit_cam2world(horizontal, phi, lookat, radius, dtype)


def frontal_camera_label(fov_deg: float = FFHQ_FOV_DEG, radius: float = DEFAULT_CAMERA_RADIUS,
                         pivot: Sequence[float] = DEFAULT_CAMERA_PIVOT,
                         dtype: torch.dtype = torch.float32) -> Tensor:
    """The frontal camera (h = v = pi/2) looking at ``pivot`` as a (25,) label.

    This is Next3D's conditioning camera: rotation diag(1, -1, -1), centre (0, 0, radius).
    """
    c2w = look_at_cam2world(math.pi / 2, math.pi / 2, pivot, radius, torch.float64)
    k = intrinsics_from_focal(fov_to_focal(float(fov_deg)), dtype=torch.float64)
    return matrices_to_camera_label(c2w, k)[0].to(dtype)


# --------------------------------------------------------------------------------------------
# World -> camera -> pixels
# --------------------------------------------------------------------------------------------
def world_to_camera(points_world: Tensor, cam2world: Tensor) -> Tensor:
    """points_world (B, N, 3) -> camera space (B, N, 3) with world2cam = inverse(cam2world).

    cam2world (B, 4, 4) or (4, 4). The inverse is the general one (computed in float64), as in the
    authors' annotation code, so slightly non-rigid labels (FFHQ's) are handled the same way.
    """
    w2c = torch.linalg.inv(cam2world.to(torch.float64))
    if w2c.dim() == 2:
        w2c = w2c.unsqueeze(0)
    p = points_world.to(torch.float64)
    out = torch.einsum("bij,bnj->bni", w2c[:, :3, :3].expand(p.shape[0], -1, -1), p) + w2c[:, None, :3, 3]
    return out.to(points_world.dtype)


def project_points(points_world: Tensor, camera_label: Tensor,
                   resolution: int | Sequence[int]) -> tuple[Tensor, Tensor]:
    """Project world points with a camera label.

    points_world (B, N, 3); camera_label (B, 25) or (25,); resolution ``int`` or ``(H, W)``.
    Returns pixels (B, N, 2) as (x, y) with (0, 0) the top-left corner of the image (so the
    principal point 0.5 maps to ``resolution / 2``), and depth (B, N) = camera-space z.
    """
    if camera_label.dim() == 1:
        camera_label = camera_label.unsqueeze(0)
    c2w, k = camera_label_to_matrices(camera_label)
    cam = world_to_camera(points_world, c2w)
    screen = to_screen_perspective(cam, k, _image_hw(resolution))
    return screen[..., :2], screen[..., 2]
