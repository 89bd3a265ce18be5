"""Where the head mesh sits for Next3D: the orthographic texture views and head -> world (docs/next3d.md §2.4, §3).

Two consumers rely on this one module: the network's rasterization of the textured mesh into its
four orthographic views (:func:`orth_view_coords`, the released recipe), and the annotator, which
maps the same mesh into the generator's world through :func:`mesh_to_world` (``GeneratorOutput
.mesh_to_world``). Both are built from ``ORTH_SCALE`` / ``ORTH_SHIFT`` / ``WORLD_Z_OFFSET`` of
``sfray.conventions`` (a checkpoint's own ``orth_scale``/``orth_shift`` replace the first two).

Two head -> world conventions exist:

* ``"network"`` (default; the generator's own geometry). The front tri-plane slot is the only one
  geometrically aligned with the static tri-plane; its view puts FLAME point (x, y, z) at grid
  (5x, 5(y+0.01)), i.e. world X = 2.5·x, Y = 2.5·(y + 0.01) (the y flip before the shift turns
  ORTH_SHIFT's -0.01 into +0.01). Depth is not constrained by the front plane; we take
  Z = 2.5·(z - 0.01) + √2/10: the shift of the top view plus SynthForge's empirical offset.
* ``"synthforge"``: the authors' annotation transform, world = (p + ORTH_SHIFT)·ORTH_SCALE/2 +
  (0, 0, √2/10), i.e. Y = 2.5·(y - 0.01). It differs from the network by 0.05 world units in Y;
  use it only together with their learned alignment map (``fixMapMLP01.pth``), which was trained
  on top of it.
"""

from __future__ import annotations

import math
from typing import Literal

import torch

from sfray.conventions import ORTH_SCALE, ORTH_SHIFT, WORLD_Z_OFFSET

#: Euler angles (degrees, [pitch-x, yaw-y, roll-z]) of the four texture views, in plane order F, R, L, T.
VIEW_ANGLES_DEG: dict[str, tuple[float, float, float]] = {
    "front": (0.0, 0.0, 0.0),
    "right": (0.0, 90.0, 0.0),
    "left": (0.0, -90.0, 0.0),
    "top": (90.0, 0.0, 0.0),
}
#: Depth offset added to the view's depth axis so that every point lies in front of the camera.
VIEW_DEPTH_OFFSET = 10.0

Convention = Literal["network", "synthforge"]


def euler_to_matrix(angles_deg: tuple[float, float, float], dtype: torch.dtype = torch.float32,
                    device: torch.device | str | None = None) -> torch.Tensor:
    """R = Rz·Ry·Rx (right-handed, standard matrices) from [x, y, z] angles in degrees: (3, 3)."""
    ax, ay, az = (math.radians(a) for a in angles_deg)
    cx, sx, cy, sy, cz, sz = math.cos(ax), math.sin(ax), math.cos(ay), math.sin(ay), math.cos(az), math.sin(az)
    rx = torch.tensor([[1, 0, 0], [0, cx, -sx], [0, sx, cx]], dtype=torch.float64)
    ry = torch.tensor([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]], dtype=torch.float64)
    rz = torch.tensor([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]], dtype=torch.float64)
    r = rz @ ry @ rx
    r = torch.where(r.abs() < 1e-12, torch.zeros_like(r), r)  # exact zeros at 90 degrees
    return r.to(dtype=dtype, device=device)


def orth_view_coords(points: torch.Tensor, view: str, orth_scale: torch.Tensor | float = ORTH_SCALE,
                     orth_shift: torch.Tensor | tuple[float, float, float] = ORTH_SHIFT) -> torch.Tensor:
    """Head-space points (B, N, 3) -> (B, N, 3) = (u, v, depth) of one orthographic texture view.

    u (column) and v (row) are grid-sample coordinates in [-1, 1] (align_corners=False); depth is
    smaller for nearer points. Recipe of docs/next3d.md §2.4: flip y, row vector times R(view), add the
    shift, scale, negate components 1 and 2, add the depth offset; the released rasterizer then
    negates x and y into pytorch3d NDC, whose +x is left and +y up, which cancels into (u, v) here.
    """
    r = euler_to_matrix(VIEW_ANGLES_DEG[view], dtype=points.dtype, device=points.device)
    scale = torch.as_tensor(orth_scale, dtype=points.dtype, device=points.device).reshape(-1)[0]
    shift = torch.as_tensor(orth_shift, dtype=points.dtype, device=points.device).reshape(3)
    flip = torch.tensor([1.0, -1.0, 1.0], dtype=points.dtype, device=points.device)
    q = ((points * flip) @ r + shift) * scale
    q = q * torch.tensor([1.0, -1.0, -1.0], dtype=points.dtype, device=points.device)
    depth = q[..., 2] + VIEW_DEPTH_OFFSET
    return torch.stack([q[..., 0], q[..., 1], depth], dim=-1)


def view_direction(view: str) -> torch.Tensor:
    """Unit vector in head space pointing from the mesh towards the view's viewer, (3,)."""
    r = euler_to_matrix(VIEW_ANGLES_DEG[view], dtype=torch.float64)
    # depth = -(flip(p)·R)_2 * scale + const, so the viewer lies along +flip(R[:, 2]).
    d = r[:, 2] * torch.tensor([1.0, -1.0, 1.0], dtype=torch.float64)
    return d.to(torch.float32)


def mesh_to_world(batch: int = 1, convention: Convention = "network", *,
                  orth_scale: float = ORTH_SCALE, orth_shift: tuple[float, float, float] = ORTH_SHIFT,
                  z_offset: float = WORLD_Z_OFFSET, dtype: torch.dtype = torch.float32,
                  device: torch.device | str | None = None) -> torch.Tensor:
    """Head-model space -> generator world as (batch, 4, 4) homogeneous matrices (module docstring)."""
    s = orth_scale / 2.0
    sx, sy, sz = orth_shift
    if convention == "network":
        t = (s * sx, -s * sy, s * sz + z_offset)
    elif convention == "synthforge":
        t = (s * sx, s * sy, s * sz + z_offset)
    else:
        raise ValueError(f"unknown head->world convention {convention!r}")
    m = torch.eye(4, dtype=torch.float64)
    m[:3, :3] *= s
    m[:3, 3] = torch.tensor(t, dtype=torch.float64)
    return m.to(dtype=dtype, device=device).unsqueeze(0).repeat(batch, 1, 1)


def apply_transform(m: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """(B, 4, 4) affine transforms applied to (B, N, 3) points."""
    return points @ m[:, :3, :3].transpose(1, 2) + m[:, None, :3, 3]
