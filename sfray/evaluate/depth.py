"""Depth errors on a foreground mask, accumulated over a whole split.

Errors are pixel-level over the split (every foreground pixel weighs the same): mean absolute
error, root mean squared error (both in the depth's own units, camera-space z for sfray's metric
depth) and mean absolute relative error ``|pred - gt| / gt``. Only pixels of ``mask`` with a
positive ground truth count.
"""

from __future__ import annotations

import numpy as np


def _np(x) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


class DepthErrors:
    """Accumulate ``update(pred, gt, mask)`` (same shapes), then read :meth:`summary`."""

    def __init__(self) -> None:
        self.abs_sum = 0.0
        self.sq_sum = 0.0
        self.rel_sum = 0.0
        self.count = 0

    def update(self, pred, gt, mask) -> None:
        p, g, m = _np(pred).astype(np.float64), _np(gt).astype(np.float64), _np(mask).astype(bool)
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
