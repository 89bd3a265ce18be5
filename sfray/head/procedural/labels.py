"""The UV label map (the 19 SynthForge regions) and the matching per-vertex regions.

One classifier decides the region of a skin point from its template position and its (theta, phi)
surface coordinates; the label map applies it to every texel of the skin island (through the
bilinear grid parameterisation) and ``vertex_regions`` applies it to every skin vertex, so the two
agree by construction. Eyeball, ear and pouch islands carry their part's label. "Left"/"right" are
the subject's: x > 0 is left.
"""

from __future__ import annotations

import numpy as np

from sfray.conventions import BACKGROUND_ID, SEG_ID, SEG_NAMES
from sfray.head.procedural import anatomy as A
from sfray.head.procedural import surface as S
from sfray.head.procedural.mesh import (
    LEFT_EAR,
    LEFT_EYEBALL,
    POUCH,
    RIGHT_EAR,
    RIGHT_EYEBALL,
    SKIN,
    UV_ISLANDS,
    UV_POUCH,
    UV_SKIN_BOTTOM,
    ProceduralMesh,
)

LABEL_MAP_SIZE = 512
#: Island margin painted around each island (texels), so bilinear texture look-ups at island
#: borders do not bleed background in.
ISLAND_MARGIN = 3


def _ellipse(ax: np.ndarray, y: np.ndarray, cx: float, cy: float, rx: float, ry: float) -> np.ndarray:
    return ((ax - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 < 1.0


def brow_line(ax: np.ndarray) -> np.ndarray:
    """Height (y) of the eyebrow's centre line over |x|, metres."""
    return 0.0455 + 0.0055 * np.exp(-0.5 * ((ax - 0.036) / 0.012) ** 2) + 0.02 * np.clip(0.014 - ax, 0.0, None)


def classify(p: np.ndarray, theta: np.ndarray, phi: np.ndarray, lower_side: np.ndarray) -> np.ndarray:
    """SEG_CLASSES id of skin points: positions ``(n, 3)``, angles ``(n,)``, ``lower_side`` (n,) bool
    (True for points on the lower-lip side of the mouth slit row)."""
    x, y, z = p[:, 0], p[:, 1], p[:, 2]
    ax = np.abs(x)
    left = x > 0.0
    lab = np.full(x.shape, SEG_ID["scalp"], dtype=np.uint8)

    def put(mask: np.ndarray, name: str) -> None:
        lab[mask] = SEG_ID[name]

    def put_lr(mask: np.ndarray, base: str) -> None:
        lab[mask & left] = SEG_ID["left_" + base]
        lab[mask & ~left] = SEG_ID["right_" + base]

    front = z > -0.005
    # Painted from the broadest region to the most specific; later assignments win.
    jaw_line = -0.106 + 0.020 * S.smoothstep(0.04, -0.035, z) + 0.060 * S.smoothstep(-0.035, -0.055, z)
    behind_ear = z < -0.052
    put((y < -0.02) & behind_ear, "neck_back")
    put((y < jaw_line) & ~behind_ear, "neck")
    put((y < -0.045) & (z < -0.045) & (y < jaw_line + 0.01), "neck_back")
    hairline = 0.100 - 6.0 * ax ** 2
    # the face's upper edge recedes at the temples; in front of the ear it reaches eye height, so
    # the upper jaw-contour points (iBUG 0, 16) sit on the face, not the sideburn
    temple = 0.012 + 0.038 * S.smoothstep(-0.045, 0.002, z)
    face = (z > -0.035) & (y >= jaw_line) & (y < temple)
    put(face, "face")
    brow = brow_line(ax)
    put((z > -0.02) & (y >= brow + 0.003) & (y < hairline) & (ax < 0.068), "forehead")
    put(front & (y >= brow + 0.003) & (y < brow + 0.016) & (ax < 0.062), "eye_region+forehead")
    ex, ey = A.EYE_CENTRE[0], A.EYE_CENTRE[1]
    put(front & (_ellipse(ax, y, ex, ey - 0.002, 0.027, 0.020) | ((ax < 0.014) & (y > 0.030) & (y < brow + 0.003))),
        "eye_region")
    put_lr(front & _ellipse(ax, y, ex, ey, 0.0195, 0.0125), "eye_region")
    # the brow tapers towards its tail but keeps ~3 mm each side of its line out to the temple, so
    # the outer brow landmarks (17, 26) stay on it in steep views
    thick = 0.0042 - 0.0011 * S.smoothstep(0.03, 0.056, ax)
    put_lr(front & (np.abs(y - brow) < thick) & (ax > 0.012) & (ax < 0.060), "eyebrow")
    # the nose: where it stands off the face, plus the nostril sill and the columella base down to
    # ~3.5 mm below the subnasale (iBUG 33), so that point lies on the nose from any view
    sill = (ax < 0.018) & (y > -0.0265 + 0.007 * (ax / 0.018) ** 2) & (y < -0.005)
    put(front & (((S.nose_height(x, y) > 0.0016) & (y < 0.036)) | sill) & (y > -0.030), "nose")
    # lips: between the vermilion borders of the lip model (see surface.lip_height)
    phi_c = S.mouth_corner_phi()
    q = np.clip(1.0 - (phi / phi_c) ** 2, 0.0, None)
    dt = theta - A.THETA_MOUTH
    in_mouth = (np.abs(phi) < phi_c) & front
    upper = in_mouth & ~lower_side & (dt < 0.0) & (dt > -(0.070 * np.sqrt(q) + 0.008))
    lower = in_mouth & (lower_side | (dt > 0.0)) & (dt >= 0.0) & (dt < 0.085 * np.sqrt(q) + 0.008)
    put(upper, "upper_lip")
    put(lower, "lower_lip")
    return lab


def _skin_texels(mesh: ProceduralMesh, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row/column indices of the skin island's texels and their (p, theta, phi, lower_side)."""
    g = mesh.grid
    rows_n, cols_n = g.n_rows, g.n_cols
    t = 1.0 - (np.arange(size) + 0.5) / size
    u = (np.arange(size) + 0.5) / size
    ti = np.flatnonzero(t >= UV_SKIN_BOTTOM)
    fr = (1.0 - t[ti]) / (1.0 - UV_SKIN_BOTTOM) * (rows_n - 1)
    fc = u * cols_n
    R, C = np.meshgrid(fr, fc, indexing="ij")
    r0 = np.clip(np.floor(R).astype(int), 0, rows_n - 2)
    c0 = np.floor(C).astype(int) % cols_n
    c1 = (c0 + 1) % cols_n
    a, b = (R - r0)[..., None], (C - np.floor(C))[..., None]
    pts, th = g.points, g.theta

    def lerp(arr: np.ndarray) -> np.ndarray:
        return ((1 - a) * (1 - b) * arr[r0, c0] + (1 - a) * b * arr[r0, c1]
                + a * (1 - b) * arr[r0 + 1, c0] + a * b * arr[r0 + 1, c1])

    p = lerp(pts)
    theta = lerp(th[..., None])[..., 0]
    phi = np.interp(C, np.arange(cols_n + 1), np.concatenate([g.phi, [np.pi]]))
    lower = R >= g.mouth_row
    return ti, p.reshape(-1, 3), theta.ravel(), phi.ravel(), lower.ravel()


def build_label_map(mesh: ProceduralMesh, size: int = LABEL_MAP_SIZE) -> np.ndarray:
    """``(size, size)`` uint8 SEG ids; row 0 is the top of the UV image (t = 1)."""
    out = np.full((size, size), BACKGROUND_ID, dtype=np.uint8)
    ti, p, theta, phi, lower = _skin_texels(mesh, size)
    out[ti] = classify(p, theta, phi, lower).reshape(ti.shape[0], size)
    t = 1.0 - (np.arange(size) + 0.5) / size
    u = (np.arange(size) + 0.5) / size
    U, T = np.meshgrid(u, t)
    margin = ISLAND_MARGIN / size
    for name, (cu, ct, rad) in UV_ISLANDS.items():
        out[(U - cu) ** 2 + (T - ct) ** 2 < (rad + margin) ** 2] = SEG_ID[name]
    u0, u1, t0, t1 = UV_POUCH
    out[(U > u0 - margin) & (U < u1 + margin) & (T > t0 - margin) & (T < t1 + margin)] = SEG_ID["inner_mouth"]
    return out


def vertex_labels(mesh: ProceduralMesh) -> np.ndarray:
    """(V,) SEG id of every vertex, from the same classifier as the label map."""
    lab = np.zeros(mesh.vertices.shape[0], dtype=np.uint8)
    g = mesh.grid
    ids = mesh.grid_ids[1:].ravel()
    theta = g.theta[1:].ravel()
    phi = np.broadcast_to(g.phi, g.theta[1:].shape).ravel()
    lower = np.broadcast_to((np.arange(1, g.n_rows) > g.mouth_row)[:, None], g.theta[1:].shape).ravel()
    lab[ids] = classify(mesh.vertices[ids], theta, phi, lower)
    lab[0] = classify(mesh.vertices[:1], np.zeros(1), np.zeros(1), np.zeros(1, bool))[0]
    slit = mesh.lower_lip_ids
    lab[slit] = classify(mesh.vertices[slit], np.full(slit.shape, A.THETA_MOUTH), g.phi[mesh.slit_cols],
                         np.ones(slit.shape, bool))
    names = {POUCH: "inner_mouth", LEFT_EYEBALL: "left_eyeball", RIGHT_EYEBALL: "right_eyeball",
             LEFT_EAR: "left_ear", RIGHT_EAR: "right_ear"}
    for code, name in names.items():
        lab[mesh.part == code] = SEG_ID[name]
    assert (mesh.part == SKIN).sum() + sum((mesh.part == c).sum() for c in names) == mesh.part.shape[0]
    return lab


def vertex_regions(labels: np.ndarray) -> dict[str, np.ndarray]:
    """Region name -> vertex indices for every SEG class (background excluded), plus ``lips``."""
    out = {name: np.flatnonzero(labels == i).astype(np.int64) for i, name in enumerate(SEG_NAMES) if i != BACKGROUND_ID}
    out["lips"] = np.flatnonzero((labels == SEG_ID["upper_lip"]) | (labels == SEG_ID["lower_lip"])).astype(np.int64)
    return out
