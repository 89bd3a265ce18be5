"""Segmentation F1 from one dataset-level confusion matrix (docs/evaluation.md).

Per-class F1 is 2·TP / (|ground truth| + |prediction|) over the *whole split* (not a per-image
mean), and the headline figure is the mean over every class except background, which is how
face-parsing papers report LaPa and CelebAMask-HQ. The matrix is accumulated with torchmetrics.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch
from torchmetrics.classification import MulticlassConfusionMatrix


class ConfusionMatrix:
    """Accumulates a (C, C) confusion matrix, rows = ground truth, columns = prediction.

    ``ignore_index`` pixels of the ground truth (e.g. 255, "unlabelled") are not counted.
    """

    def __init__(self, num_classes: int, ignore_index: int | None = None):
        self.num_classes = int(num_classes)
        self._metric = MulticlassConfusionMatrix(self.num_classes, ignore_index=ignore_index)

    def update(self, pred, target) -> None:
        """Add label maps ``pred`` and ``target`` (same shape, integer class ids)."""
        p = torch.as_tensor(np.asarray(pred) if not isinstance(pred, torch.Tensor) else pred)
        t = torch.as_tensor(np.asarray(target) if not isinstance(target, torch.Tensor) else target)
        if p.shape != t.shape:
            raise ValueError(f"prediction {tuple(p.shape)} and ground truth {tuple(t.shape)} differ in shape")
        self._metric.update(p.reshape(-1).long().cpu(), t.reshape(-1).long().cpu())

    @property
    def matrix(self) -> np.ndarray:
        return self._metric.compute().cpu().numpy().astype(np.int64)

    def f1(self) -> np.ndarray:
        """(C,) per-class F1; NaN for a class absent from both prediction and ground truth."""
        m = self.matrix
        tp = np.diag(m).astype(np.float64)
        denom = m.sum(axis=1) + m.sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(denom > 0, 2.0 * tp / denom, np.nan)

    def mean_f1(self, exclude: Iterable[int] = ()) -> float:
        """Mean F1 over the classes not in ``exclude`` (pass the background id), ignoring NaN."""
        f1 = self.f1()
        keep = [c for c in range(self.num_classes) if c not in set(exclude)]
        vals = f1[keep]
        return float(np.nanmean(vals)) if np.any(~np.isnan(vals)) else float("nan")
