"""Closed shells that are separate from the skin: the eyeballs and the ears.

Both are spheres in disguise: a ring-and-pole grid whose front pole sits at the centre of a round
UV island (polar layout), so the iris of an eyeball is a small disc around its island's centre and
an ear's outer face fills the inner half of its island.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sfray.head.procedural import anatomy as A
from sfray.head.procedural.surface import smoothstep


@dataclass
class Shell:
    """A closed triangle shell with a polar UV layout.

    ``vertices`` (n, 3) metres; ``faces`` (f, 3) indices into vertices, outward winding;
    ``uv`` (t, 2) island-local coordinates in the unit disc; ``uv_faces`` (f, 3) into ``uv``;
    ``polar`` (n,) polar angle of each vertex from the front pole (0) to the back pole (pi).
    """

    vertices: np.ndarray
    faces: np.ndarray
    uv: np.ndarray
    uv_faces: np.ndarray
    polar: np.ndarray


def _polar_grid(alphas: np.ndarray, n_around: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Topology of a sphere with a front pole, rings at ``alphas`` (0 < a < pi) and a back pole.

    Returns ``(alpha, beta, faces, uv_faces, uv)`` pieces: per-vertex polar/azimuth angles, faces
    winding outward for the embedding ``(sin a cos b, sin a sin b, cos a)``, and a polar UV layout
    (radius = alpha / pi) whose back pole is split into one copy per triangle on the rim.
    """
    n_rings = alphas.shape[0]
    betas = 2.0 * np.pi * np.arange(n_around) / n_around
    alpha = np.concatenate([[0.0], np.repeat(alphas, n_around), [np.pi]])
    beta = np.concatenate([[0.0], np.tile(betas, n_rings), [0.0]])
    back = 1 + n_rings * n_around

    def ring(i: int, k: int) -> int:
        return 1 + i * n_around + (k % n_around)

    faces, uv_faces = [], []
    for k in range(n_around):
        faces.append((0, ring(0, k), ring(0, k + 1)))
    for i in range(n_rings - 1):
        for k in range(n_around):
            a, b, c, d = ring(i, k), ring(i, k + 1), ring(i + 1, k + 1), ring(i + 1, k)
            faces += [(a, d, c), (a, c, b)]
    uv_faces = [tuple(f) for f in faces]
    n_uv = back
    for k in range(n_around):
        faces.append((ring(n_rings - 1, k), back, ring(n_rings - 1, k + 1)))
        uv_faces.append((ring(n_rings - 1, k), n_uv + k, ring(n_rings - 1, k + 1)))
    radius = alpha[:back] / np.pi
    uv = np.stack([radius * np.cos(beta[:back]), radius * np.sin(beta[:back])], axis=-1)
    rim_beta = betas + np.pi / n_around
    uv = np.concatenate([uv, np.stack([np.cos(rim_beta), np.sin(rim_beta)], axis=-1)])
    return alpha, beta, np.asarray(faces, np.int64), np.asarray(uv_faces, np.int64), uv


def eyeball(centre: np.ndarray, radius: float = A.EYE_RADIUS, n_rings: int = 11, n_around: int = 18) -> Shell:
    """A sphere looking along +z with rings crowded on the visible front (cornea and iris)."""
    s = np.linspace(0.0, 1.0, n_rings + 2)[1:-1]
    alphas = np.pi * (0.55 * s + 0.45 * s ** 2)
    alpha, beta, faces, uv_faces, uv = _polar_grid(alphas, n_around)
    # The cornea bulges slightly in front of the sclera.
    r = radius * (1.0 + 0.04 * np.clip(1.0 - alpha / 0.6, 0.0, None) ** 2)
    # Azimuth measured from +x (the subject's left) counter-clockwise seen from the front.
    v = np.stack([r * np.sin(alpha) * np.cos(beta), r * np.sin(alpha) * np.sin(beta), r * np.cos(alpha)], -1)
    return Shell(vertices=v + centre, faces=faces, uv=uv, uv_faces=uv_faces, polar=alpha)


def _ear_outline(beta: np.ndarray) -> np.ndarray:
    """Radius (metres) of the ear outline at in-plane angle ``beta`` (0 = backwards, pi/2 = up).

    A squared-off oval, broad at the helix on top and narrowing to the lobe at the bottom.
    """
    a, b, p = 0.5 * A.EAR_WIDTH, 0.5 * A.EAR_HEIGHT, 2.6
    oval = (np.abs(np.cos(beta) / a) ** p + np.abs(np.sin(beta) / b) ** p) ** (-1.0 / p)
    top = 1.0 + 0.10 * np.exp(-0.5 * ((beta - 0.35 * np.pi) / 0.5) ** 2)
    lobe = 1.0 - 0.25 * np.exp(-0.5 * ((beta - 1.35 * np.pi) / 0.45) ** 2)
    return oval * top * lobe


def ear(side: int, n_rings: int = 8, n_around: int = 16) -> Shell:
    """One ear shell; ``side`` 0 is the subject's left (+x), 1 the right (mirror image).

    A flattened sphere: the lateral pole is the concha (cupped towards the head), the rim is the
    helix, and the plane is flared so the front edge sinks into the head and the back stands off.
    """
    s = np.linspace(0.0, 1.0, n_rings + 2)[1:-1]
    alphas = np.pi * s
    alpha, beta, faces, uv_faces, uv = _polar_grid(alphas, n_around)
    rho = np.sin(alpha)  # 0 at the poles, 1 on the rim
    lateral = np.cos(alpha)  # +1 lateral face, -1 medial face
    outline = _ear_outline(beta)
    u = rho * outline * np.cos(beta)  # backwards in the ear plane
    w = rho * outline * np.sin(beta)  # upwards in the ear plane
    # Thickness: a rounded helix rim, thinner middle; the concha is cupped towards the head.
    half_t = 0.5 * A.EAR_THICKNESS * (0.55 + 0.45 * smoothstep(0.55, 0.95, rho))
    concha = -0.0035 * np.exp(-0.5 * (((u + 0.002) / 0.008) ** 2 + ((w + 0.004) / 0.011) ** 2))
    n = half_t * lateral + np.where(lateral > 0.0, concha, 0.3 * concha) + 0.004 * rho ** 2
    # Ear frame: the plane is the head's side (y, -z) flared about the vertical by EAR_FLARE,
    # with the top tilted back a little.
    c, s_ = np.cos(A.EAR_FLARE), np.sin(A.EAR_FLARE)
    tilt = 0.25
    e_back = np.array([s_, 0.0, -c])
    e_up = np.array([0.0, np.cos(tilt), -np.sin(tilt)])
    e_up = e_up - e_back * (e_up @ e_back)
    e_up /= np.linalg.norm(e_up)
    # (back, up, out) is right-handed, so the sphere's outward winding carries over.
    e_out = np.cross(e_back, e_up)
    v = A.EAR_CENTRE + u[:, None] * e_back + w[:, None] * e_up + n[:, None] * e_out
    if side == 1:  # mirror image: reverse the winding (and the UV island) to stay outward
        v = v * np.array([-1.0, 1.0, 1.0])
        faces = faces[:, ::-1].copy()
        uv_faces = uv_faces[:, ::-1].copy()
        uv = uv * np.array([-1.0, 1.0])
    return Shell(vertices=v, faces=faces, uv=uv, uv_faces=uv_faces, polar=alpha)
