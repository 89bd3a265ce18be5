"""LaPa-style 106 points derived from sfray's 68, the segmentation and the mesh (LaPa-like export).

sfray's annotations have the iBUG 68 points, a per-pixel segmentation rasterized from the mesh,
and the mesh itself. LaPa's 106-point layout (``schemas.LAPA106_GROUPS``) is denser. Each LaPa
group is filled as follows (docs/benchmarks-data.md, "LaPa-like set"):

* contour 0-32: the 17 jaw points at even indices, the odd ones the 4-point subdivision midpoint
  of the jaw curve (``(-p0 + 9 p1 + 9 p2 - p3) / 16``);
* brows 33-41 / 42-50: the 68's five brow points (image left to right), then four points on the
  brow's lower edge, found by walking from the midpoints between upper points towards the eye
  through the brow's own segmentation class (a fallback 15% of the way to the eye centre if the
  brow is not visible);
* nose 51-54: the 68's bridge; 55-65: the 68's five nostril points resampled to 11 by arc length;
* eyes 66-73 / 75-82: 8-point contours starting at the image-left corner (66 and 79 are the outer
  corners, as LaPa's NME needs), each lid resampled from the 68's lid to 3 interior points;
* 74 / 83: the pupils, projected from the eyeball vertex the renderer paints the pupil around
  (the 8-point eye centroid when not given);
* mouth 84-103: the 68's 20 lip points in order;
* 104 / 105 (not identified in public sources): the centroids of the two 8-point eye contours.
"""

from __future__ import annotations

import numpy as np

from sfray.benchmarks.schemas import LAPA106_GROUPS, NUM_LAPA_LANDMARKS
from sfray.conventions import LANDMARK_GROUPS, SEG_ID

#: Fallback depth of a brow's lower edge: this fraction of the way from the brow to the eye centre.
BROW_FALLBACK = 0.15


def subdivide(points: np.ndarray) -> np.ndarray:
    """Insert the 4-point subdivision midpoint between consecutive points of an open curve."""
    p = np.asarray(points, dtype=np.float64)
    ext = np.concatenate([2 * p[:1] - p[1:2], p, 2 * p[-1:] - p[-2:-1]])
    mids = (-ext[:-3] + 9 * ext[1:-2] + 9 * ext[2:-1] - ext[3:]) / 16.0
    out = np.empty((2 * len(p) - 1, 2))
    out[0::2], out[1::2] = p, mids
    return out


def resample(points: np.ndarray, n: int) -> np.ndarray:
    """``n`` points equally spaced by arc length along the subdivided curve (ends kept exactly)."""
    curve = subdivide(subdivide(points))
    seg = np.linalg.norm(np.diff(curve, axis=0), axis=1)
    s = np.concatenate([[0.0], np.cumsum(seg)])
    if s[-1] <= 0:
        return np.repeat(curve[:1], n, axis=0)
    t = np.linspace(0.0, s[-1], n)
    return np.stack([np.interp(t, s, curve[:, 0]), np.interp(t, s, curve[:, 1])], axis=1)


def _lower_brow(upper: np.ndarray, eye_centre: np.ndarray, seg: np.ndarray | None, brow_id: int) -> np.ndarray:
    """Four lower-edge points, right to left in the image (the brow outline continues back)."""
    mids = (upper[1:] + upper[:-1]) / 2.0  # left to right
    chord = upper[-1] - upper[0]
    normal = np.array([-chord[1], chord[0]]) / max(np.linalg.norm(chord), 1e-9)
    if np.dot(eye_centre - mids.mean(axis=0), normal) < 0:
        normal = -normal
    out = []
    for m in mids:
        reach = float(np.dot(eye_centre - m, normal))
        edge = None
        if seg is not None and reach > 0:
            h, w = seg.shape
            for t in np.arange(-0.5 * reach, reach, 0.5):
                x, y = m + t * normal
                xi, yi = int(np.floor(x)), int(np.floor(y))  # pixel containing the point (corner convention)
                if 0 <= xi < w and 0 <= yi < h and seg[yi, xi] == brow_id:
                    edge = t + 0.5
        out.append(m + (edge if edge is not None else BROW_FALLBACK * max(reach, 0.0)) * normal)
    return np.asarray(out)[::-1]


def _eye(lm: np.ndarray, corner_a: int, lid_up: tuple[int, int], corner_b: int, lid_down: tuple[int, int]
         ) -> np.ndarray:
    """8 points: corner_a, 3 upper-lid points, corner_b, 3 lower-lid points back to corner_a."""
    up = resample(np.stack([lm[corner_a], lm[lid_up[0]], lm[lid_up[1]], lm[corner_b]]), 5)
    down = resample(np.stack([lm[corner_b], lm[lid_down[0]], lm[lid_down[1]], lm[corner_a]]), 5)
    return np.concatenate([up[:4], down[:4]])


def lapa106_from_68(lm68: np.ndarray, seg: np.ndarray | None = None, pupils: np.ndarray | None = None
                    ) -> np.ndarray:
    """(106, 2) LaPa-layout points from (68, 2) iBUG points (sfray pixels).

    ``seg`` (H, W) sfray ids finds the brows' lower edges; ``pupils`` (2, 2) are the image-left
    eye's (the subject's right) and the image-right eye's pupil centres.
    """
    lm = np.asarray(lm68, dtype=np.float64)
    g = LAPA106_GROUPS
    out = np.zeros((NUM_LAPA_LANDMARKS, 2))
    out[list(g["contour"])] = subdivide(lm[list(LANDMARK_GROUPS["jaw"])])
    eye_a = _eye(lm, 36, (37, 38), 39, (40, 41))
    eye_b = _eye(lm, 42, (43, 44), 45, (46, 47))
    out[list(g["eye_a"])], out[list(g["eye_b"])] = eye_a, eye_b
    for group, brow68, eye, name in (("brow_a", "right_brow", eye_a, "right_eyebrow"),
                                     ("brow_b", "left_brow", eye_b, "left_eyebrow")):
        upper = lm[list(LANDMARK_GROUPS[brow68])]
        idx = list(g[group])
        out[idx[:5]] = upper
        out[idx[5:]] = _lower_brow(upper, eye.mean(axis=0), seg, SEG_ID[name])
    out[list(g["nose_bridge"])] = lm[list(LANDMARK_GROUPS["nose_bridge"])]
    out[list(g["nose_lower"])] = resample(lm[list(LANDMARK_GROUPS["nostrils"])], len(g["nose_lower"]))
    pup = np.asarray(pupils, dtype=np.float64) if pupils is not None else np.stack([eye_a.mean(0), eye_b.mean(0)])
    out[g["eye_a_pupil"][0]], out[g["eye_b_pupil"][0]] = pup[0], pup[1]
    out[list(g["mouth_outer"])] = lm[list(LANDMARK_GROUPS["outer_lip"])]
    out[list(g["mouth_inner"])] = lm[list(LANDMARK_GROUPS["inner_lip"])]
    out[list(g["extra"])] = np.stack([eye_a.mean(axis=0), eye_b.mean(axis=0)])
    return out
