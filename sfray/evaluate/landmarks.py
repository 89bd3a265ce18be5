"""Landmark errors under the benchmark protocols (docs/evaluation.md).

NME of one image is the mean over its K landmarks of the Euclidean error divided by a
normalising distance of that image's *ground truth*: the outer eye corners (inter-ocular) or the
eye centres (inter-pupil). It is scale-free, so it can be computed in any frame in which prediction
and ground truth share a similarity (original image, crop, model input). Figures are fractions;
reports multiply by 100.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from sfray.benchmarks.schemas import LAPA106_OUTER_EYE_CORNERS
from sfray.conventions import LANDMARK_GROUPS, OUTER_EYE_CORNERS
from sfray.errors import SfrayError

#: Normalisation modes of :func:`nme`.
NORMS = ("inter_ocular", "inter_pupil")
#: Default failure threshold of FR and AUC (NME as a fraction).
DEFAULT_FAILURE_THRESHOLD = 0.08
__all__ = ["LAPA106_OUTER_EYE_CORNERS", "NORMS", "auc", "failure_rate", "landmark_summary", "nme",
           "normalising_distance"]


def _as_array(x) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def normalising_distance(gt: np.ndarray, norm: str = "inter_ocular",
                         corners: Sequence[int] | None = None) -> np.ndarray:
    """(N,) normalising distance of each ground-truth shape ``gt`` (N, K, 2).

    ``inter_ocular``: distance of the outer eye corners (36/45 for 68 points, 66/79 for LaPa's
    106, or ``corners``). ``inter_pupil``: distance of the centroids of the two eyes' contours
    (68-point layout only).
    """
    gt = _as_array(gt)
    k = gt.shape[1]
    if norm == "inter_ocular":
        if corners is None:
            corners = {68: OUTER_EYE_CORNERS, 106: LAPA106_OUTER_EYE_CORNERS}.get(k)
            if corners is None:
                raise SfrayError(f"NME: no default eye corners for {k} landmarks; pass corners=(i, j)")
        a, b = corners
        return np.linalg.norm(gt[:, a] - gt[:, b], axis=-1)
    if norm == "inter_pupil":
        if k != 68:
            raise SfrayError(f"NME inter_pupil needs the 68-point layout, got {k} points")
        right = gt[:, list(LANDMARK_GROUPS["right_eye"])].mean(axis=1)
        left = gt[:, list(LANDMARK_GROUPS["left_eye"])].mean(axis=1)
        return np.linalg.norm(right - left, axis=-1)
    raise SfrayError(f"NME: unknown normalisation '{norm}' (valid: {' | '.join(NORMS)})")


def nme(pred, gt, *, norm: str = "inter_ocular", corners: Sequence[int] | None = None) -> np.ndarray:
    """(N,) per-image normalised mean error of ``pred`` against ``gt``, both (N, K, 2)."""
    pred, gt = _as_array(pred), _as_array(gt)
    if pred.shape != gt.shape or pred.ndim != 3 or pred.shape[-1] != 2:
        raise SfrayError(f"NME: predictions {pred.shape} and ground truth {gt.shape} must both be (N, K, 2)")
    d = normalising_distance(gt, norm, corners)
    if np.any(d <= 0):
        bad = np.flatnonzero(d <= 0).tolist()[:5]
        raise SfrayError(f"NME: zero normalising distance in ground truth of image(s) {bad}")
    return np.linalg.norm(pred - gt, axis=-1).mean(axis=1) / d


def failure_rate(errors, threshold: float = DEFAULT_FAILURE_THRESHOLD) -> float:
    """Fraction of images whose NME exceeds ``threshold`` (FR@threshold)."""
    e = _as_array(errors).reshape(-1)
    return float(np.mean(e > threshold)) if e.size else float("nan")


def auc(errors, threshold: float = DEFAULT_FAILURE_THRESHOLD, steps: int = 10_000) -> float:
    """Area under the cumulative error distribution on [0, threshold], normalised to [0, 1]."""
    e = np.sort(_as_array(errors).reshape(-1))
    if not e.size:
        return float("nan")
    x = np.linspace(0.0, threshold, steps + 1)
    ced = np.searchsorted(e, x, side="right") / e.size
    return float(np.trapezoid(ced, x) / threshold)


def landmark_summary(errors, threshold: float = DEFAULT_FAILURE_THRESHOLD) -> dict[str, float]:
    """Mean NME, FR and AUC at ``threshold`` of per-image errors (fractions), plus the image count."""
    e = _as_array(errors).reshape(-1)
    return {"images": int(e.size), "nme": float(e.mean()) if e.size else float("nan"),
            "fr": failure_rate(e, threshold), "auc": auc(e, threshold), "threshold": float(threshold)}
