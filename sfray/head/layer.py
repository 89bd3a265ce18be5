"""A batched, differentiable FLAME-style head layer built from :class:`~sfray.head.assets.HeadAssets`.

One implementation serves the real FLAME model and the procedural head, so vertices, landmarks and
joints mean the same thing whichever drives a generator. The maths is standard FLAME:

1. ``v_shaped = v_template + shapedirs @ beta + exprdirs @ psi``;
2. joints regressed from the *shaped* (unposed) mesh: ``J = J_regressor @ v_shaped``;
3. pose correctives from ``R_j - I`` of every non-root joint (``posedirs``);
4. linear blend skinning along the kinematic tree ``parents``.

Landmarks are barycentric points on the posed mesh: 17 contour points picked from the dynamic table
by head yaw (:func:`dynamic_contour_rows`), then 51 static points, i.e. iBUG-68 order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from sfray.conventions import DYNAMIC_CONTOUR_MAX_DEG, JOINT_NAMES
from sfray.errors import AssetError, ConfigError
from sfray.head.assets import HeadAssets

#: Index of the neck joint; the root->neck chain decides which contour row is used (FLAME/DECA).
NECK_JOINT = JOINT_NAMES.index("neck")


@dataclass
class HeadOutput:
    """What one forward pass of the head layer returns (head-model space, metres)."""

    vertices: torch.Tensor  # (B, V, 3) posed mesh
    landmarks: torch.Tensor  # (B, 68, 3) 17 yaw-dependent contour points, then 51 static (iBUG-68)
    landmarks_fixed: torch.Tensor  # (B, 68, 3) the fixed ("full") 68-point embedding, for 3D use
    joints: torch.Tensor  # (B, J, 3) posed joint positions


# ---------------------------------------------------------------------------------------------
# Pure functions (usable without a HeadModel)
# ---------------------------------------------------------------------------------------------


def batch_rodrigues(rotvec: torch.Tensor) -> torch.Tensor:
    """Axis-angle ``(N, 3)`` -> rotation matrices ``(N, 3, 3)``.

    Uses ``R = I + a K + b K^2`` with ``K`` the skew matrix of the *unnormalised* vector and Taylor
    series of ``a = sin t / t`` and ``b = (1 - cos t) / t^2`` near zero, so a zero rotation gives the
    identity exactly and gradients stay finite there (no epsilon added to the angle).
    """
    theta2 = (rotvec * rotvec).sum(-1)
    small = theta2 < 1e-8
    safe2 = torch.where(small, torch.ones_like(theta2), theta2)
    theta = torch.sqrt(safe2)
    a = torch.where(small, 1.0 - theta2 / 6.0, torch.sin(theta) / theta)
    b = torch.where(small, 0.5 - theta2 / 24.0, (1.0 - torch.cos(theta)) / safe2)
    x, y, z = rotvec.unbind(-1)
    zero = torch.zeros_like(x)
    k = torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], dim=-1).reshape(-1, 3, 3)
    eye = torch.eye(3, dtype=rotvec.dtype, device=rotvec.device).expand_as(k)
    return eye + a[:, None, None] * k + b[:, None, None] * (k @ k)


def yaw_degrees(rot: torch.Tensor) -> torch.Tensor:
    """Rotation about +y of ``(B, 3, 3)`` matrices in degrees, as FLAME/DECA read it.

    ``atan2(-R[2,0], sqrt(R[0,0]^2 + R[1,0]^2))``: the middle angle of a z-y-x Euler split, in
    [-90, 90]. Positive yaw turns the face (which looks towards +z) towards +x, the subject's left.
    """
    sy = torch.sqrt(rot[:, 0, 0] ** 2 + rot[:, 1, 0] ** 2)
    return torch.rad2deg(torch.atan2(-rot[:, 2, 0], sy))


def dynamic_contour_rows(yaw_deg: torch.Tensor) -> torch.Tensor:
    """Row of the 79-row dynamic contour table for each *table* yaw (degrees), ``(B,)`` long.

    The table yaw is the negated head yaw (:func:`yaw_degrees`), as the reference implementations
    compute it; :meth:`HeadModel.contour_rows` does the negation.

    The convention of RingNet's ``flame_dynamic_embedding.npy`` and DECA's ``landmark_embedding.npy``
    (and of FLAME_PyTorch/DECA's ``_find_dynamic_lmk_idx_and_bcoords``): the yaw is rounded to whole
    degrees (``torch.round``, half to even) and clamped to [-39, 39]; a yaw ``y >= 0`` uses row ``y``
    (rows 0..39) and a yaw ``y < 0`` uses row ``39 - y`` (rows 40..78 for -1..-39).
    """
    m = DYNAMIC_CONTOUR_MAX_DEG
    y = torch.round(yaw_deg).clamp(-m, m).to(torch.long)
    return torch.where(y < 0, m - y, y)


def vertices_to_landmarks(vertices: torch.Tensor, faces: torch.Tensor, lmk_faces: torch.Tensor,
                          lmk_bary: torch.Tensor) -> torch.Tensor:
    """Barycentric points on a mesh -> ``(B, L, 3)``.

    vertices ``(B, V, 3)``, faces ``(F, 3)``, lmk_faces ``(B, L)`` or ``(L,)``, lmk_bary ``(B, L, 3)``
    or ``(L, 3)``.
    """
    b = vertices.shape[0]
    if lmk_faces.dim() == 1:
        lmk_faces = lmk_faces.unsqueeze(0).expand(b, -1)
    if lmk_bary.dim() == 2:
        lmk_bary = lmk_bary.unsqueeze(0).expand(b, -1, -1)
    corner_ids = faces[lmk_faces]  # (B, L, 3)
    batch = torch.arange(b, device=vertices.device)[:, None, None]
    corners = vertices[batch, corner_ids]  # (B, L, 3 corners, 3 xyz)
    return torch.einsum("blkc,blk->blc", corners, lmk_bary.to(vertices.dtype))


def regress_joints(j_regressor: torch.Tensor, vertices: torch.Tensor) -> torch.Tensor:
    """``J = J_regressor @ v`` per batch item -> ``(B, J, 3)``, the same bits whatever the thread count.

    j_regressor ``(J, V)``, vertices ``(B, V, 3)``. A BLAS matmul with this shape (a long reduction
    over V into a handful of outputs) splits V across threads, so its float32 result changed in the
    last bits between one and two intra-op threads and moved a record's bytes
    (docs/reliability.md, "Record bytes and the thread count"). Here every product is taken in
    float64 (exact for float32 inputs), summed over V by a pairwise tree of elementwise adds whose
    order is fixed by the regressor alone, and rounded once to the vertices' dtype. Only vertices
    some joint weighs enter (a tenth of the procedural head's), which keeps it cheap.
    """
    used = torch.nonzero(j_regressor.ne(0).any(0)).squeeze(1)
    weights = j_regressor[:, used].to(torch.float64)
    terms = weights[None, :, :, None] * vertices[:, used].to(torch.float64)[:, None]  # (B, J, V', 3)
    return _pairwise_sum(terms, dim=2).to(vertices.dtype)


def _pairwise_sum(x: torch.Tensor, dim: int) -> torch.Tensor:
    """Sum over ``dim`` as a balanced tree of elementwise adds (zero-padded to a power of two): each
    output element is a fixed sequence of IEEE additions, unlike ``sum``/``matmul``, which may split
    a long reduction differently with the number of threads."""
    n = x.shape[dim]
    width = 1 << max(n - 1, 0).bit_length()
    if width > n:
        pad = list(x.shape)
        pad[dim] = width - n
        x = torch.cat([x, x.new_zeros(pad)], dim=dim)
    while x.shape[dim] > 1:
        half = x.shape[dim] // 2
        x = x.narrow(dim, 0, half) + x.narrow(dim, half, half)
    return x.squeeze(dim)


def lbs(betas: torch.Tensor, pose: torch.Tensor, v_template: torch.Tensor, blenddirs: torch.Tensor,
        posedirs: torch.Tensor, j_regressor: torch.Tensor, parents: list[int] | tuple[int, ...],
        lbs_weights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Standard FLAME/SMPL linear blend skinning -> posed vertices ``(B, V, 3)``, joints ``(B, J, 3)``.

    betas ``(B, K)``; pose ``(B, 3 J)`` axis-angle per joint; v_template ``(V, 3)``; blenddirs
    ``(K, 3 V)`` (shape then expression directions, vertex-major xyz); posedirs ``(9 (J-1), 3 V)``
    whose row ``9 (j-1) + 3 r + c`` multiplies ``(R_j - I)[r, c]``; j_regressor ``(J, V)``; parents a
    sequence with ``parents[0] == -1`` and ``parents[j] < j``; lbs_weights ``(V, J)``.
    """
    b = betas.shape[0]
    nv = v_template.shape[0]
    nj = j_regressor.shape[0]
    v_shaped = v_template.unsqueeze(0) + (betas @ blenddirs).view(b, nv, 3)
    joints = regress_joints(j_regressor, v_shaped)

    rot = batch_rodrigues(pose.reshape(-1, 3)).view(b, nj, 3, 3)
    eye = torch.eye(3, dtype=rot.dtype, device=rot.device)
    pose_feature = (rot[:, 1:] - eye).reshape(b, -1)
    v_posed = v_shaped + (pose_feature @ posedirs).view(b, nv, 3)

    # Local transforms [R_j | J_j - J_parent], chained root to leaves.
    rel = joints.clone()
    rel[:, 1:] = joints[:, 1:] - joints[:, list(parents[1:])]
    local = torch.zeros(b, nj, 4, 4, dtype=rot.dtype, device=rot.device)
    local[:, :, :3, :3] = rot
    local[:, :, :3, 3] = rel
    local[:, :, 3, 3] = 1.0
    chain = [local[:, 0]]
    for j in range(1, nj):
        chain.append(chain[parents[j]] @ local[:, j])
    world = torch.stack(chain, dim=1)  # (B, J, 4, 4)
    posed_joints = world[:, :, :3, 3]

    # Remove the rest-pose joint location so each transform acts on rest-pose vertices.
    skin = world.clone()
    skin[:, :, :3, 3] = world[:, :, :3, 3] - (world[:, :, :3, :3] @ joints.unsqueeze(-1)).squeeze(-1)
    per_vertex = (lbs_weights.to(skin.dtype) @ skin.reshape(b, nj, 16)).view(b, nv, 4, 4)
    verts = (per_vertex[:, :, :3, :3] @ v_posed.unsqueeze(-1)).squeeze(-1) + per_vertex[:, :, :3, 3]
    return verts, posed_joints


# ---------------------------------------------------------------------------------------------
# The module
# ---------------------------------------------------------------------------------------------

_DTYPES = {"float32": torch.float32, "float64": torch.float64}


def _as_dtype(dtype: torch.dtype | str) -> torch.dtype:
    if isinstance(dtype, str):
        if dtype not in _DTYPES:
            raise ConfigError(f"head.dtype: '{dtype}' is not float32 | float64")
        return _DTYPES[dtype]
    if dtype not in (torch.float32, torch.float64):
        raise ConfigError(f"head.dtype: {dtype} is not torch.float32 | torch.float64")
    return dtype


def _has_embedding(assets: HeadAssets) -> bool:
    lm = assets.landmarks
    return lm.static_faces.size > 0 and lm.dynamic_faces.size > 0 and lm.full_faces.size > 0


def _check_shapes(a: HeadAssets, nj: int) -> None:
    """One clear error for inconsistent assets instead of a shape error deep inside ``lbs``."""
    nv, nf = a.num_vertices, a.num_faces
    want = {
        "v_template": (a.v_template, (nv, 3)),
        "faces": (a.faces, (nf, 3)),
        "shapedirs": (a.shapedirs, (nv, 3, a.num_shape)),
        "exprdirs": (a.exprdirs, (nv, 3, a.num_expression)),
        "posedirs": (a.posedirs, (nv, 3, 9 * (nj - 1))),
        "j_regressor": (a.j_regressor, (nj, nv)),
        "lbs_weights": (a.lbs_weights, (nv, nj)),
        "uv_faces": (a.uv_faces, (nf, 3) if np.asarray(a.uv_faces).size else (0, 3)),
    }
    for name, (arr, shape) in want.items():
        if tuple(np.shape(arr)) != shape:
            raise AssetError(f"{a.source}: head asset '{name}' has shape {tuple(np.shape(arr))}, "
                             f"expected {shape}")
    faces = np.asarray(a.faces)
    if faces.size and (faces.min() < 0 or faces.max() >= nv):
        raise AssetError(f"{a.source}: head asset 'faces' must index vertices 0..{nv - 1}")


class HeadModel(torch.nn.Module):
    """FLAME layer: ``forward(shape, expression, pose) -> HeadOutput`` (see module docstring).

    ``n_shape``/``n_expression`` select how many leading components are used (None = all the
    assets have). Inputs shorter than that are zero-padded; longer ones raise ConfigError.
    """

    def __init__(self, assets: HeadAssets, n_shape: int | None = None, n_expression: int | None = None,
                 dtype: torch.dtype | str = torch.float32):
        super().__init__()
        dt = _as_dtype(dtype)
        self.kind, self.source = assets.kind, assets.source
        self.max_shape, self.max_expression = assets.num_shape, assets.num_expression
        self.n_shape = self._count(n_shape, assets.num_shape, "head.n_shape", "shape")
        self.n_expression = self._count(n_expression, assets.num_expression, "head.n_expression",
                                        "expression")
        self.num_vertices = assets.num_vertices
        self.joint_names = tuple(assets.joint_names)
        parents = [int(p) for p in np.asarray(assets.parents).reshape(-1)]
        nj = len(parents)
        topo = parents[0] == -1 and all(0 <= parents[j] < j for j in range(1, nj))
        if not topo or nj != len(self.joint_names):
            raise AssetError(f"{self.source}: kinematic tree parents={parents} must start with -1, list each "
                             f"parent before its child and have one entry per joint {self.joint_names}")
        self.parents_list = tuple(parents)
        self.vertex_regions = {k: np.asarray(v, dtype=np.int64) for k, v in assets.vertex_regions.items()}
        self.has_landmarks = _has_embedding(assets)
        _check_shapes(assets, nj)

        nv = self.num_vertices

        def f(a: Any) -> torch.Tensor:  # a copy: buffers never alias (possibly cached) asset arrays
            return torch.tensor(np.asarray(a, dtype=np.float64), dtype=dt)

        dirs = np.concatenate([np.asarray(assets.shapedirs)[:, :, : self.n_shape],
                               np.asarray(assets.exprdirs)[:, :, : self.n_expression]], axis=2)
        self.register_buffer("v_template", f(assets.v_template))
        self.register_buffer("blenddirs", f(dirs.reshape(nv * 3, -1).T.copy()))  # (S+E, 3V)
        posedirs = np.asarray(assets.posedirs)
        self.register_buffer("posedirs", f(posedirs.reshape(nv * 3, -1).T.copy()))  # (9(J-1), 3V)
        self.register_buffer("j_regressor", f(assets.j_regressor))
        self.register_buffer("lbs_weights", f(assets.lbs_weights))
        self.register_buffer("parents", torch.tensor(parents, dtype=torch.long))
        self.register_buffer("faces", torch.tensor(np.asarray(assets.faces, dtype=np.int64)))
        lm = assets.landmarks
        self.register_buffer("static_lmk_faces", torch.tensor(np.asarray(lm.static_faces, dtype=np.int64)))
        self.register_buffer("static_lmk_bary", f(lm.static_bary))
        self.register_buffer("dynamic_lmk_faces", torch.tensor(np.asarray(lm.dynamic_faces, dtype=np.int64)))
        self.register_buffer("dynamic_lmk_bary", f(lm.dynamic_bary))
        self.register_buffer("full_lmk_faces", torch.tensor(np.asarray(lm.full_faces, dtype=np.int64)))
        self.register_buffer("full_lmk_bary", f(lm.full_bary))
        self.register_buffer("uv_coords", f(assets.uv_coords))
        self.register_buffer("uv_faces", torch.tensor(np.asarray(assets.uv_faces, dtype=np.int64)))
        self.register_buffer("uv_label_map", torch.tensor(np.asarray(assets.uv_label_map, dtype=np.uint8)))
        # the root -> neck chain whose rotation picks the contour row (neck first, as FLAME lists it)
        chain, j = [], NECK_JOINT if nj > NECK_JOINT else 0
        while j != -1:
            chain.append(j)
            j = parents[j]
        self.neck_chain = tuple(chain)

    def _count(self, n: int | None, available: int, key: str, what: str) -> int:
        if n is None:
            return available
        if not 0 <= int(n) <= available:
            raise ConfigError(f"{key}={n}: the head model {self.source} has {available} {what} components; "
                              f"choose 0..{available}")
        return int(n)

    # -- properties ---------------------------------------------------------------------------
    @property
    def dtype(self) -> torch.dtype:
        return self.v_template.dtype

    @property
    def device(self) -> torch.device:
        return self.v_template.device

    @property
    def num_faces(self) -> int:
        return int(self.faces.shape[0])

    @property
    def num_joints(self) -> int:
        return len(self.parents_list)

    # -- forward ------------------------------------------------------------------------------
    def _param(self, x: torch.Tensor | None, count: int, name: str, b: int) -> torch.Tensor:
        if x is None:
            return torch.zeros(b, count, dtype=self.dtype, device=self.device)
        x = torch.as_tensor(x)
        if x.dim() == 1:
            x = x.unsqueeze(0)
        if x.dim() != 2 or x.shape[0] != b:
            raise ConfigError(f"{name}: expected a (B={b}, k<={count}) tensor for head model {self.source}, "
                              f"got shape {tuple(x.shape)}")
        if x.shape[1] > count:
            joints = ", ".join(self.joint_names)
            hint = f" (head.n_{name})" if name != "pose" else f" (3 per joint: {joints})"
            raise ConfigError(f"{name}: got {x.shape[1]} coefficients but head model {self.source} uses "
                              f"{count}{hint}; pass at most {count}")
        x = x.to(device=self.device, dtype=self.dtype)
        if x.shape[1] < count:
            x = torch.nn.functional.pad(x, (0, count - x.shape[1]))
        return x

    def forward(self, shape: torch.Tensor | None = None, expression: torch.Tensor | None = None,
                pose: torch.Tensor | None = None) -> HeadOutput:
        """shape ``(B, <=n_shape)``, expression ``(B, <=n_expression)``, pose ``(B, <=15)`` axis-angle
        in ``JOINT_NAMES`` order (global, neck, jaw, left eye, right eye); None means zeros."""
        if not self.has_landmarks:
            raise AssetError(f"{self.source}: no landmark embedding was loaded, so landmarks cannot be "
                             "computed; set head.landmark_embedding (DECA landmark_embedding.npy, or RingNet "
                             "flame_static_embedding.pkl with head.dynamic_embedding)")
        given = [t for t in (shape, expression, pose) if t is not None]
        b = 1
        if given:
            t0 = torch.as_tensor(given[0])
            b = 1 if t0.dim() == 1 else int(t0.shape[0])
        pose_dim = 3 * self.num_joints
        betas = torch.cat([self._param(shape, self.n_shape, "shape", b),
                           self._param(expression, self.n_expression, "expression", b)], dim=1)
        full_pose = self._param(pose, pose_dim, "pose", b)
        verts, joints = lbs(betas, full_pose, self.v_template, self.blenddirs, self.posedirs,
                            self.j_regressor, self.parents_list, self.lbs_weights)
        rows = self.contour_rows(full_pose)
        contour = vertices_to_landmarks(verts, self.faces, self.dynamic_lmk_faces[rows],
                                        self.dynamic_lmk_bary[rows])
        static = vertices_to_landmarks(verts, self.faces, self.static_lmk_faces, self.static_lmk_bary)
        fixed = vertices_to_landmarks(verts, self.faces, self.full_lmk_faces, self.full_lmk_bary)
        return HeadOutput(vertices=verts, landmarks=torch.cat([contour, static], dim=1),
                          landmarks_fixed=fixed, joints=joints)

    def contour_rows(self, pose: torch.Tensor) -> torch.Tensor:
        """Dynamic-table rows ``(B,)`` for full poses ``(B, 3 J)`` (see :func:`dynamic_contour_rows`)."""
        b = pose.shape[0]
        rots = batch_rodrigues(pose.detach().reshape(-1, 3)).view(b, -1, 3, 3)
        rel = torch.eye(3, dtype=rots.dtype, device=rots.device).expand(b, 3, 3)
        for j in self.neck_chain:  # neck first, then its parents: rel = R_root @ ... @ R_neck
            rel = rots[:, j] @ rel
        # FLAME_PyTorch, smplx and DECA index the table with the *negated* yaw
        # (``-rot_mat_to_euler``): a head turned towards +x (subject's left) uses rows 40..78.
        return dynamic_contour_rows(-yaw_degrees(rel))

    def summary(self) -> dict[str, Any]:
        """Counts, joints, parameter dims, landmark embedding and label regions (JSON-ready)."""
        from sfray.head.summary import head_summary

        return head_summary(self)

    def extra_repr(self) -> str:
        return (f"kind={self.kind}, vertices={self.num_vertices}, faces={self.num_faces}, "
                f"n_shape={self.n_shape}, n_expression={self.n_expression}, dtype={self.dtype}")

