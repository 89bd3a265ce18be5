"""Kinematics of the template: joint regressor, skinning weights and pose correctives.

Joints follow FLAME (``JOINT_NAMES``: global, neck, jaw, left eye, right eye; parents
``[-1, 0, 1, 1, 1]``). Each regressor row is a convex combination of vertex-set means, so joints
move with the shaped mesh the way FLAME's do: the root at the middle of the neck cut, the neck
pivot high in the neck behind the jaw, the jaw hinge midway between the two temporomandibular
regions in front of the ears, and each eye at the centroid of its eyeball.

Jaw weights are *harmonic*: fixed to 1 on the chin and lower lip, 0 on the upper lip, upper face,
skull and neck, and smoothly interpolated (graph Laplacian solve) in between. Because the lips
are cut apart along the slit, the upper and lower lip get different weights although their
vertices coincide, and the mouth corners blend.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from sfray.conventions import JOINT_NAMES
from sfray.head.procedural import anatomy as A
from sfray.head.procedural import surface as S
from sfray.head.procedural.mesh import (
    LEFT_EAR,
    LEFT_EYEBALL,
    POUCH,
    RIGHT_EAR,
    RIGHT_EYEBALL,
    SKIN,
    ProceduralMesh,
)
from sfray.head.procedural.surface import smoothstep

PARENTS = np.array([-1, 0, 1, 1, 1], dtype=np.int64)
GLOBAL, NECK, JAW, LEFT_EYE, RIGHT_EYE = (JOINT_NAMES.index(n) for n in JOINT_NAMES)


def _mean_row(n: int, ids: np.ndarray) -> np.ndarray:
    row = np.zeros(n)
    row[ids] = 1.0 / ids.shape[0]
    return row


def _ring_row(n: int, vertices: np.ndarray, ring: np.ndarray) -> np.ndarray:
    """Weights of a closed vertex loop by arc length, so the row regresses the loop's centroid."""
    p = vertices[ring]
    seg = np.linalg.norm(np.roll(p, -1, axis=0) - p, axis=1)
    w = 0.5 * (seg + np.roll(seg, 1))
    row = np.zeros(n)
    row[ring] = w / w.sum()
    return row


def _centre_row(n: int, vertices: np.ndarray, ids: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """Positive weights on ``ids`` whose weighted mean is exactly ``centre`` on the template.

    Starts from uniform weights and tilts them linearly along the offset of the plain mean, which
    removes the bias of a sampling that is denser on one side (eyeball rings crowd the cornea).
    """
    d = vertices[ids] - centre
    w = np.ones(ids.shape[0])
    for _ in range(3):
        bias = (w[:, None] * d).sum(0) / w.sum()
        if np.linalg.norm(bias) < 1e-12:
            break
        u = bias / np.linalg.norm(bias)
        proj = d @ u
        lam = -(w * proj).sum() / (w * proj * proj).sum()
        w = w * (1.0 + lam * proj)
    if (w <= 0).any():
        raise AssertionError("eyeball centre weights must stay positive")
    row = np.zeros(n)
    row[ids] = w / w.sum()
    return row


def joint_regressor(mesh: ProceduralMesh) -> np.ndarray:
    """(5, V) rows summing to 1 (see module docstring)."""
    v, part = mesh.vertices, mesh.part
    n = v.shape[0]
    skin = part == SKIN
    x, y, z = v[:, 0], v[:, 1], v[:, 2]
    cut_ring = mesh.grid_ids[-1]
    hinge = skin & (np.abs(np.abs(x) - A.JAW_HINGE[0]) < 0.02) & (np.abs(y - A.JAW_HINGE[1]) < 0.012) \
        & (np.abs(z - A.JAW_HINGE[2]) < 0.012)
    upper_neck = skin & (np.abs(y + 0.085) < 0.012) & (z < -0.035)
    reg = np.zeros((len(JOINT_NAMES), n))
    reg[GLOBAL] = _ring_row(n, v, cut_ring)
    reg[NECK] = 0.5 * _mean_row(n, np.flatnonzero(upper_neck)) + 0.5 * _mean_row(n, np.flatnonzero(hinge))
    reg[JAW] = _mean_row(n, np.flatnonzero(hinge))
    centres = S.eye_centres()
    reg[LEFT_EYE] = _centre_row(n, v, np.flatnonzero(part == LEFT_EYEBALL), centres[0])
    reg[RIGHT_EYE] = _centre_row(n, v, np.flatnonzero(part == RIGHT_EYEBALL), centres[1])
    return reg


def _laplacian(vertices: np.ndarray, faces: np.ndarray) -> sp.csr_matrix:
    """Cotangent Laplacian ``D - W`` with non-negative weights (clamped), so that harmonic
    interpolation obeys the maximum principle and does not depend on which quad diagonals the
    triangulation happened to pick."""
    n = vertices.shape[0]
    rows, cols, vals = [], [], []
    for k in range(3):
        i, j, o = faces[:, k], faces[:, (k + 1) % 3], faces[:, (k + 2) % 3]
        a, b = vertices[i] - vertices[o], vertices[j] - vertices[o]
        cot = np.sum(a * b, axis=1) / (np.linalg.norm(np.cross(a, b), axis=1) + 1e-18)
        w = np.clip(0.5 * cot, 1e-3, None)
        rows += [i, j]
        cols += [j, i]
        vals += [w, w]
    adj = sp.coo_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n)).tocsr()
    return (sp.diags(np.asarray(adj.sum(axis=1)).ravel()) - adj).tocsr()


def harmonic(vertices: np.ndarray, faces: np.ndarray, fixed: np.ndarray, values: np.ndarray,
             active: np.ndarray) -> np.ndarray:
    """Harmonic interpolation on the ``active`` vertices with Dirichlet values on ``fixed``."""
    n = vertices.shape[0]
    lap = _laplacian(vertices, faces)
    free = active & ~fixed
    out = np.zeros(n)
    out[fixed] = values[fixed]
    fi, xi = np.flatnonzero(free), np.flatnonzero(fixed)
    rhs = -lap[fi][:, xi] @ out[xi]
    out[fi] = spla.spsolve(lap[fi][:, fi].tocsc(), rhs)
    return np.clip(out, 0.0, 1.0)


def jaw_weights(mesh: ProceduralMesh) -> np.ndarray:
    """(V,) weight of the jaw joint on skin and pouch (0 elsewhere)."""
    v, part = mesh.vertices, mesh.part
    n = v.shape[0]
    x, y, z = v[:, 0], v[:, 1], v[:, 2]
    active = (part == SKIN) | (part == POUCH)
    values = np.zeros(n)
    fixed = np.zeros(n, dtype=bool)
    # the pouch: palate with the skull, floor with the jaw
    frac = mesh.pouch_alpha / (2.0 * np.pi)
    pouch_w = smoothstep(0.40, 0.62, frac)
    fixed[mesh.pouch_ids] = True
    values[mesh.pouch_ids] = pouch_w[:, None]
    upper_slit = mesh.grid_ids[mesh.mouth_row, mesh.slit_cols]
    fixed[upper_slit] = True
    fixed[mesh.lower_lip_ids] = True
    values[mesh.lower_lip_ids] = 1.0
    skin = part == SKIN
    lower_lip_rows = mesh.grid_ids[mesh.mouth_row + 1: mesh.mouth_row + 3, mesh.slit_cols].ravel()
    chin = skin & (y < -0.066) & (y > -0.092) & (z > 0.02) & (np.abs(x) < 0.035)
    fixed[lower_lip_rows] = True
    values[lower_lip_rows] = 1.0
    fixed |= chin
    values[chin] = 1.0
    still = skin & ((y > -0.026) | (z < -0.062) | (y < -0.160))
    fixed |= still & ~chin
    values[still & ~chin] = 0.0
    return harmonic(v, mesh.faces, fixed & active, values, active)


def skinning_weights(mesh: ProceduralMesh) -> np.ndarray:
    """(V, 5) LBS weights, rows summing to 1."""
    n = mesh.vertices.shape[0]
    w = np.zeros((n, len(JOINT_NAMES)))
    part = mesh.part
    head = (part == SKIN) | (part == POUCH)
    jaw = jaw_weights(mesh)
    root = smoothstep(-0.125, -0.185, mesh.vertices[:, 1]) * head
    root = np.minimum(root, 1.0 - jaw)
    w[:, JAW] = jaw
    w[:, GLOBAL] = root
    w[:, NECK] = np.where(head, 1.0 - jaw - root, 0.0)
    w[(part == LEFT_EAR) | (part == RIGHT_EAR), NECK] = 1.0
    w[part == LEFT_EYEBALL, LEFT_EYE] = 1.0
    w[part == RIGHT_EYEBALL, RIGHT_EYE] = 1.0
    return w / w.sum(axis=1, keepdims=True)


def pose_correctives(mesh: ProceduralMesh, weights: np.ndarray) -> np.ndarray:
    """(V, 3, 36) small smooth pose correctives (FLAME layout: 9 numbers of ``R_j - I`` per joint).

    Only the jaw has one: when it opens (rotation about x), the cheeks beside the mouth are drawn
    inwards a little and the skin under the chin bulges, as soft tissue does; ``(R - I)[1, 1]`` and
    ``[2, 2]`` both grow like ``1 - cos`` of the opening angle, so the corrective is second order.
    """
    v = mesh.vertices
    n = v.shape[0]
    out = np.zeros((n, 3, 9 * (len(JOINT_NAMES) - 1)))
    jaw = weights[:, JAW]
    blend = 4.0 * jaw * (1.0 - jaw)  # strongest where the jaw weight fades (cheeks, under chin)
    x, y = v[:, 0], v[:, 1]
    side = np.tanh(x / 0.02)
    under = smoothstep(-0.09, -0.12, y)
    disp = np.zeros((n, 3))
    disp[:, 0] = -0.040 * side * blend * (1.0 - under)
    disp[:, 2] = 0.030 * blend * under
    base = 9 * (JAW - 1)
    for k in (4, 8):  # (R - I)[1, 1] and (R - I)[2, 2]; both are -(1 - cos) for a rotation about x
        out[:, :, base + k] = -0.5 * disp
    return out
