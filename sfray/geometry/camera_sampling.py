"""Camera labels from uniform variates, for the presets of ``CameraConfig`` (docs/synthforge.md).

Samplers take **uniform variates** ``u`` in [0, 1) with columns (yaw, pitch, fov) -- the order of
``sfray.sampling.draw.CAMERA_VARIATES`` -- and map each column linearly onto its range, so i.i.d.,
Sobol and farthest-point strategies all drive the same code and respect the same limits.

Presets (all orbit the world origin at ``camera.radius`` and look at ``camera.pivot``, defaults 2.7
and (0, 0, 0.2); the "fov" is EG3D's, turned into a focal by ``fov_to_focal``):

* ``release`` -- the authors' released generator: yaw, pitch ~ U(-0.8, 0.8) rad fed to EG3D's
  ``LookAtPoseSampler`` as h = pi/2 + yaw, v = pi/2 + pitch, so the vertical angle goes through the
  arccos mapping (pitch +-0.8 is a polar-angle change of +-0.534 rad); fov ~ U(18, 24).
* ``paper`` -- the paper's text: azimuth, elevation ~ U[-pi/4, pi/4], FOV ~ U[12, 27]. We read
  azimuth/elevation as **plain spherical angles** of the camera position: theta = pi/2 + azimuth
  and polar angle phi = pi/2 + pitch, with no arccos (an elevation is a geometric angle; the arccos
  belongs to EG3D's sampler, not to the words). Pitch keeps the release's sign (positive = camera
  below the head), which leaves the symmetric distribution unchanged. The FOV is read as EG3D's
  "fov" like the release (the paper's pipeline is the same code), not as the true image FOV.
* ``custom`` -- ``camera.yaw_range``, ``camera.pitch_range``, ``camera.fov_range`` through the
  release's look-at mapping (arccos on the vertical angle).

``paper`` and ``release`` pin their ranges: a config that sets one of the three ranges away from the
schema default together with one of these presets is rejected rather than silently ignored.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import Tensor

from sfray.config.registries import CAMERA_PRESETS
from sfray.config.schema import CameraConfig
from sfray.errors import ConfigError
from sfray.geometry.camera import (
    fov_to_focal,
    intrinsics_from_focal,
    look_at_cam2world,
    matrices_to_camera_label,
    orbit_cam2world,
)

#: The vertical angle goes through EG3D's arccos mapping (``look_at_cam2world``).
VERTICAL_LOOKAT = "lookat_arccos"
#: The vertical angle is the polar-angle offset itself (``orbit_cam2world``).
VERTICAL_LINEAR = "linear"

_RANGE_KEYS = ("yaw_range", "pitch_range", "fov_range")
#: The pinned ranges of each preset (docs/synthforge.md); ``custom`` reads the config's own.
PRESETS: dict[str, dict[str, Any] | None] = {
    "release": CAMERA_PRESETS.add("release", {
        "yaw_range": (-0.8, 0.8), "pitch_range": (-0.8, 0.8), "fov_range": (18.0, 24.0),
        "vertical_mapping": VERTICAL_LOOKAT}),
    "paper": CAMERA_PRESETS.add("paper", {
        "yaw_range": (-math.pi / 4, math.pi / 4), "pitch_range": (-math.pi / 4, math.pi / 4),
        "fov_range": (12.0, 27.0), "vertical_mapping": VERTICAL_LINEAR}),
    "custom": CAMERA_PRESETS.add("custom", None),
}


def effective_camera_ranges(cfg: CameraConfig) -> dict[str, Any]:
    """Resolve ``cfg.preset`` into concrete ranges.

    Returns ``{"preset", "yaw_range", "pitch_range" (radians), "fov_range" (EG3D fov degrees),
    "vertical_mapping" ("lookat_arccos" | "linear"), "radius", "pivot"}`` with (low, high) tuples.
    """
    pinned = CAMERA_PRESETS.get(cfg.preset)
    if pinned is None:
        ranges: dict[str, Any] = {k: tuple(float(x) for x in getattr(cfg, k)) for k in _RANGE_KEYS}
        ranges["vertical_mapping"] = VERTICAL_LOOKAT
    else:
        defaults = CameraConfig()
        for k in _RANGE_KEYS:
            if [float(x) for x in getattr(cfg, k)] != [float(x) for x in getattr(defaults, k)]:
                raise ConfigError(
                    f"config key 'camera.{k}' is only read with camera.preset=custom; preset "
                    f"'{cfg.preset}' pins it to {list(pinned[k])}. Set camera.preset=custom "
                    f"or remove camera.{k}")
        ranges = dict(pinned)
    ranges["preset"] = cfg.preset
    ranges["radius"] = float(cfg.radius)
    ranges["pivot"] = tuple(float(x) for x in cfg.pivot)
    return ranges


def camera_labels_from_angles(yaw: Tensor, pitch: Tensor, fov_deg: Tensor, *, vertical_mapping: str,
                              radius: float, pivot: tuple[float, ...],
                              dtype: torch.dtype = torch.float32) -> Tensor:
    """Yaw, pitch offsets (radians, (B,)) and EG3D fov (degrees, (B,)) -> labels (B, 25).

    yaw is added to pi/2 as the horizontal angle (yaw > 0 puts the camera on +x); pitch is added to
    pi/2 as the vertical angle, through the arccos mapping or linearly (``vertical_mapping``).
    """
    yaw64, pitch64, fov64 = (torch.as_tensor(t, dtype=torch.float64).reshape(-1)
                             for t in (yaw, pitch, fov_deg))
    if vertical_mapping == VERTICAL_LOOKAT:
        c2w = look_at_cam2world(math.pi / 2 + yaw64, math.pi / 2 + pitch64, pivot, radius, torch.float64)
    elif vertical_mapping == VERTICAL_LINEAR:
        c2w = orbit_cam2world(math.pi / 2 + yaw64, math.pi / 2 + pitch64, pivot, radius, torch.float64)
    else:
        raise ValueError(
            f"vertical_mapping must be '{VERTICAL_LOOKAT}' or '{VERTICAL_LINEAR}', got {vertical_mapping!r}")
    k = intrinsics_from_focal(fov_to_focal(fov64), dtype=torch.float64)
    return matrices_to_camera_label(c2w, k).to(dtype)


def camera_labels_from_uniform(u: Tensor | np.ndarray, cfg: CameraConfig) -> Tensor:
    """Uniform variates (B, 3) in [0, 1), columns (yaw, pitch, fov) -> camera labels (B, 25) float32.

    Each column is the quantile of its range: value = low + u * (high - low). Deterministic in u;
    the result is on u's device when u is a tensor (CPU for numpy input).
    """
    device = u.device if isinstance(u, Tensor) else torch.device("cpu")
    u64 = torch.as_tensor(np.asarray(u.detach().cpu()) if isinstance(u, Tensor) else np.asarray(u),
                          dtype=torch.float64)
    if u64.dim() != 2 or u64.shape[1] != 3:
        raise ValueError(f"camera variates must have shape (B, 3) (yaw, pitch, fov), got {tuple(u64.shape)}")
    if u64.numel() and (bool((u64 < 0).any()) or bool((u64 > 1).any())):
        raise ValueError("camera variates must lie in [0, 1]")
    r = effective_camera_ranges(cfg)
    values = []
    for col, key in enumerate(_RANGE_KEYS):
        lo, hi = r[key]
        values.append(lo + u64[:, col] * (hi - lo))
    labels = camera_labels_from_angles(*values, vertical_mapping=r["vertical_mapping"], radius=r["radius"],
                                       pivot=r["pivot"])
    return labels.to(device)
