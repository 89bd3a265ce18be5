"""The proportion warp: a smooth vertical remap that sets the lengths of the lower face.

The anatomy (:mod:`.surface`, :mod:`.labels`, :mod:`.skinning`, :mod:`.bases`) is designed in one
*design space*; the finished template is then squeezed vertically below the eyes by
``y -> warp_y(y)``, so eye line -> mouth and eye line -> chin take adult proportions without
re-tuning the dozens of design numbers that place the nose, lips, chin, labels, jaw weights and
blendshape windows (they all keep meaning the same surface point). The warp is the identity above
the lower lids (eyes, brows and eyeballs do not move), its slope is a smooth profile of local
vertical scales (``anatomy.PROPORTION_SCALES``), and the neck takes up the difference so the neck
cut stays on the plane ``y = NECK_CUT_Y``.

Only y changes and only as a function of y, so the warp keeps mirror symmetry, keeps every
frontal ray (x, y) -> (x, warp_y(y)), and maps displacement fields by its Jacobian
``diag(1, warp_slope(y), 1)``.
"""

from __future__ import annotations

import dataclasses
from functools import lru_cache

import numpy as np

from sfray.head.procedural import anatomy as A
from sfray.head.procedural.mesh import ProceduralMesh

#: Sampling step of the warp table (metres); the warp is C1 and interpolated linearly in between.
_STEP = 2.5e-5


def _smooth_profile(y: np.ndarray, knots: np.ndarray) -> np.ndarray:
    """Local scale at ``y`` from ``(y, scale)`` knots ordered top-down, blended by smoothsteps."""
    ky, ks = knots[:, 0], knots[:, 1]
    s = np.full(y.shape, ks[0])
    for k in range(1, len(ky)):
        t = np.clip((ky[k - 1] - y) / (ky[k - 1] - ky[k]), 0.0, 1.0)
        s = s + (ks[k] - ks[k - 1]) * t * t * (3.0 - 2.0 * t)
    return s


@lru_cache(maxsize=1)
def _table() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(y, warped y, slope) on a fine grid from the neck cut up to the top of the warp."""
    top, cut = float(A.PROPORTION_SCALES[0, 0]), float(A.NECK_CUT_Y)
    n = int(np.ceil((top - cut) / _STEP))
    y = np.linspace(cut, top, n + 1)
    knots = np.concatenate([A.PROPORTION_SCALES, [[A.NECK_STRETCH_Y[0], 0.0], [A.NECK_STRETCH_Y[1], 0.0]]])

    def length(neck_scale: float) -> tuple[np.ndarray, np.ndarray]:
        k = knots.copy()
        k[-2:, 1] = neck_scale
        s = _smooth_profile(y, k)
        seg = 0.5 * (s[1:] + s[:-1]) * np.diff(y)
        return s, np.concatenate([[0.0], np.cumsum(seg)])  # length from the cut up to each y

    # the total length is affine in the neck scale: pick the one that keeps the cut in place
    _, l0 = length(0.0)
    _, l1 = length(1.0)
    neck = ((top - cut) - l0[-1]) / (l1[-1] - l0[-1])
    s, acc = length(neck)
    warped = top - (acc[-1] - acc)
    warped[0] = cut  # exact, whatever the rounding
    return y, warped, s


def warp_y(y: np.ndarray) -> np.ndarray:
    """Warped heights; the identity above ``PROPORTION_SCALES[0, 0]`` (and below the neck cut)."""
    ty, tw, _ = _table()
    y = np.asarray(y, dtype=np.float64)
    inside = (y > ty[0]) & (y < ty[-1])
    return np.where(inside, np.interp(y, ty, tw), y)


def warp_slope(y: np.ndarray) -> np.ndarray:
    """d warp_y / dy, the local vertical scale (1 outside the warped band)."""
    ty, _, ts = _table()
    y = np.asarray(y, dtype=np.float64)
    inside = (y > ty[0]) & (y < ty[-1])
    return np.where(inside, np.interp(y, ty, ts), 1.0)


def warp_points(p: np.ndarray) -> np.ndarray:
    """Positions ``(..., 3)`` in design space -> final template positions."""
    out = np.array(p, dtype=np.float64, copy=True)
    out[..., 1] = warp_y(out[..., 1])
    return out


def warp_directions(p: np.ndarray, dirs: np.ndarray) -> np.ndarray:
    """Displacement fields ``(V, 3, K)`` at design positions ``p`` (V, 3), mapped by the Jacobian."""
    out = np.array(dirs, dtype=np.float64, copy=True)
    out[:, 1] *= warp_slope(p[:, 1])[:, None]
    return out


def warp_mesh(mesh: ProceduralMesh) -> ProceduralMesh:
    """A copy of ``mesh`` with warped positions (vertices, grid points, shells); topology shared."""
    grid = dataclasses.replace(mesh.grid, points=warp_points(mesh.grid.points))
    shells = {code: dataclasses.replace(sh, vertices=warp_points(sh.vertices))
              for code, sh in mesh.shells.items()}
    return dataclasses.replace(mesh, vertices=warp_points(mesh.vertices), grid=grid, shells=shells)
