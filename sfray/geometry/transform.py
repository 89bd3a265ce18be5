"""Head-model space -> generator world, written once for every generator and the annotator.

The annotation is only as good as the agreement between the mesh the annotator projects and the
geometry the generator rendered. Both therefore take the head -> world map from this module:

* :func:`head_to_world_matrix` is the fixed similarity of the SynthForge release
  (``sfray.conventions``): ``world = (p + ORTH_SHIFT) * ORTH_SCALE / 2 + (0, 0, WORLD_Z_OFFSET)``,
  i.e. a uniform scale of 2.5 (metres -> world units) and a translation. Generators report it in
  ``GeneratorOutput.mesh_to_world``.
* :class:`sfray.geometry.alignment_map.AlignmentMap` is a global affine correction applied
  *after* it (the paper's "alignment process"; the authors' ``fixMapMLP01.pth`` is such a map).
* :func:`similarity_matrix` builds the ``faults.misalign`` test knob: a similarity about the
  world origin that the procedural renderer applies to the rendered head only.

All matrices act on column vectors: ``p' = M[:3, :3] @ p + M[:3, 3]``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from sfray.conventions import ORTH_SCALE, ORTH_SHIFT, WORLD_Z_OFFSET


def head_to_world_matrix(batch: int, device: torch.device | str | None = None,
                         dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """(B, 4, 4) head-model space (metres) -> generator world, the release's annotation transform."""
    s = ORTH_SCALE / 2.0
    m = torch.eye(4, dtype=torch.float64)
    m[:3, :3] *= s
    shift = torch.tensor(ORTH_SHIFT, dtype=torch.float64) * s
    m[:3, 3] = shift + torch.tensor([0.0, 0.0, WORLD_Z_OFFSET], dtype=torch.float64)
    return m.to(device=device, dtype=dtype).unsqueeze(0).repeat(batch, 1, 1)


def transform_points(matrix: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Apply (B, 4, 4) or (4, 4) affine matrices to (B, N, 3) points; returns (B, N, 3)."""
    m = matrix.to(points.dtype)
    if m.dim() == 2:
        return points @ m[:3, :3].T + m[:3, 3]
    return points @ m[:, :3, :3].transpose(1, 2) + m[:, None, :3, 3]


def euler_xyz_matrix(angles_deg: Sequence[float], dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """(3, 3) rotation ``Rz @ Ry @ Rx`` from [rx, ry, rz] in degrees (x applied first)."""
    ax, ay, az = (math.radians(float(a)) for a in angles_deg)
    cx, sx, cy, sy, cz, sz = math.cos(ax), math.sin(ax), math.cos(ay), math.sin(ay), math.cos(az), math.sin(az)
    rx = torch.tensor([[1.0, 0.0, 0.0], [0.0, cx, -sx], [0.0, sx, cx]], dtype=torch.float64)
    ry = torch.tensor([[cy, 0.0, sy], [0.0, 1.0, 0.0], [-sy, 0.0, cy]], dtype=torch.float64)
    rz = torch.tensor([[cz, -sz, 0.0], [sz, cz, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
    return (rz @ ry @ rx).to(dtype)


def similarity_matrix(params: Sequence[float], dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """(4, 4) similarity ``p' = s * R @ p + t`` from ``[rx, ry, rz (deg), tx, ty, tz, s]``.

    The rotation and scale act about the world origin (not the head centre), so a pure scale also
    moves the head towards or away from the origin, as a global alignment error would.
    """
    if len(params) != 7:
        raise ValueError(f"similarity needs [rx, ry, rz, tx, ty, tz, scale], got {list(params)}")
    m = torch.eye(4, dtype=torch.float64)
    m[:3, :3] = float(params[6]) * euler_xyz_matrix(params[:3])
    m[:3, 3] = torch.tensor([float(p) for p in params[3:6]], dtype=torch.float64)
    return m.to(dtype)


def is_identity(matrix: torch.Tensor, atol: float = 0.0) -> bool:
    """True when ``matrix`` (4, 4) equals the identity within ``atol``."""
    eye = torch.eye(4, dtype=matrix.dtype, device=matrix.device)
    return bool(torch.allclose(matrix, eye, atol=atol, rtol=0.0))
