"""Depth errors: metric where the ground truth is metric, scale-and-shift invariant where it is not.

LaPa-D's depth maps are *relative* (made by a 3D face reconstruction model, stored as 8-bit grey
levels with an unknown scale, offset and even sign relative to camera z), so comparing raw values
would measure the units, not the shape. The invariant error first fits, per image and over the
pixels with ground truth, the affine map ``a * pred + b`` closest to the ground truth in least
squares (``a`` may be negative, so "near = bright" and "near = small z" compare fine), then reports
the RMSE and MAE of the fitted prediction in ground-truth units (docs/evaluation.md). Metric
ground truth (sfray's own camera-space z) also gets the absolute relative error without fitting.
Figures are means over images.
"""

from __future__ import annotations

import numpy as np

#: Error names of :func:`depth_errors` (per image) and :class:`DepthAccumulator` (means).
SI_RMSE, SI_MAE, ABS_REL, RMSE = "si_rmse", "si_mae", "abs_rel", "rmse"


def fit_scale_shift(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray) -> tuple[float, float]:
    """Least-squares ``(a, b)`` with ``a * pred + b ~= gt`` over ``mask`` (a constant pred: a = 0)."""
    p = np.asarray(pred, dtype=np.float64)[mask]
    g = np.asarray(gt, dtype=np.float64)[mask]
    if p.size == 0:
        return 1.0, 0.0
    pc, gc = p - p.mean(), g - g.mean()
    var = float((pc * pc).sum())
    a = float((pc * gc).sum()) / var if var > 0 else 0.0
    return a, float(g.mean() - a * p.mean())


def depth_errors(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray, *, metric: bool = False) -> dict[str, float]:
    """Errors of one image over ``mask`` (bool, pixels with ground truth); NaN when the mask is empty."""
    pred = np.asarray(pred, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    mask = np.asarray(mask, dtype=bool) & np.isfinite(pred) & np.isfinite(gt)
    if pred.shape != gt.shape:
        raise ValueError(f"depth prediction {pred.shape} and ground truth {gt.shape} differ in shape")
    if not mask.any():
        nan = float("nan")
        return {SI_RMSE: nan, SI_MAE: nan} | ({ABS_REL: nan, RMSE: nan} if metric else {})
    a, b = fit_scale_shift(pred, gt, mask)
    r = (a * pred[mask] + b) - gt[mask]
    out = {SI_RMSE: float(np.sqrt(np.mean(r * r))), SI_MAE: float(np.mean(np.abs(r)))}
    if metric:
        d = pred[mask] - gt[mask]
        with np.errstate(divide="ignore", invalid="ignore"):
            rel = np.abs(d) / np.abs(gt[mask])
        out[ABS_REL] = float(np.mean(rel[np.isfinite(rel)])) if np.isfinite(rel).any() else float("nan")
        out[RMSE] = float(np.sqrt(np.mean(d * d)))
    return out


class DepthAccumulator:
    """Per-image depth errors of a split, averaged by :meth:`summary`."""

    def __init__(self, metric: bool = False):
        self.metric = metric
        self.per_image: list[dict[str, float]] = []

    def update(self, pred: np.ndarray, gt: np.ndarray, mask: np.ndarray) -> dict[str, float]:
        errs = depth_errors(pred, gt, mask, metric=self.metric)
        self.per_image.append(errs)
        return errs

    def add(self, errors: dict[str, float]) -> None:
        """Add one image's errors computed elsewhere (cached across splits)."""
        self.per_image.append(dict(errors))

    def summary(self) -> dict[str, float]:
        names = [SI_RMSE, SI_MAE] + ([ABS_REL, RMSE] if self.metric else [])
        out: dict[str, float] = {"images": len(self.per_image)}
        for n in names:
            vals = np.array([e[n] for e in self.per_image if np.isfinite(e.get(n, np.nan))])
            out[n] = float(vals.mean()) if vals.size else float("nan")
        return out


class DepthErrors:
    """Pixel-level metric errors over a whole split (every foreground pixel weighs the same).

    Used for sfray's own metric depth during training validation, where no scale needs fitting:
    ``update(pred, gt, mask)`` with equal shapes, then :meth:`summary` gives MAE, RMSE (in the
    depth's own units) and the mean absolute relative error over the mask's pixels with gt > 0.
    """

    def __init__(self) -> None:
        self.abs_sum = 0.0
        self.sq_sum = 0.0
        self.rel_sum = 0.0
        self.count = 0

    def update(self, pred, gt, mask) -> None:
        p, g, m = (_np(x) for x in (pred, gt, mask))
        p, g, m = p.astype(np.float64), g.astype(np.float64), m.astype(bool)
        if p.shape != g.shape or g.shape != m.shape:
            raise ValueError(f"depth shapes differ: prediction {p.shape}, ground truth {g.shape}, mask {m.shape}")
        m = m & (g > 0) & np.isfinite(p)
        d = p[m] - g[m]
        self.abs_sum += float(np.abs(d).sum())
        self.sq_sum += float((d * d).sum())
        self.rel_sum += float((np.abs(d) / g[m]).sum())
        self.count += int(m.sum())

    def summary(self) -> dict[str, float]:
        n = self.count
        if n == 0:
            return {"mae": float("nan"), "rmse": float("nan"), "abs_rel": float("nan"), "pixels": 0}
        return {"mae": self.abs_sum / n, "rmse": (self.sq_sum / n) ** 0.5, "abs_rel": self.rel_sum / n, "pixels": n}


def _np(x) -> np.ndarray:
    """A tensor or array as a NumPy array (tensors are detached and moved to the CPU)."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)
