"""Segmentation F1 from one dataset-level confusion matrix (docs/evaluation.md).

Per-class F1 is 2·TP / (|ground truth| + |prediction|) over the *whole split* (not a per-image
mean), and the headline figure is the mean over every class except background, which is how
face-parsing papers report LaPa and CelebAMask-HQ. The matrix is accumulated with torchmetrics.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import torch
from torchmetrics.classification import MulticlassConfusionMatrix


class ConfusionMatrix:
    """Accumulates a (C, C) confusion matrix, rows = ground truth, columns = prediction.

    ``ignore_index`` pixels of the ground truth (e.g. 255, "unlabelled") are not counted.
    """

    def __init__(self, num_classes: int, ignore_index: int | None = None):
        self.num_classes = int(num_classes)
        self.ignore_index = ignore_index
        # a local count: under torch.distributed, torchmetrics would otherwise gather across ranks on
        # compute() and hang when only rank 0 scores (Stage II validates on rank 0 inside DDP)
        self._metric = MulticlassConfusionMatrix(self.num_classes, ignore_index=ignore_index, sync_on_compute=False)
        self._added = np.zeros((self.num_classes, self.num_classes), dtype=np.int64)
        self._updated = False

    def update(self, pred, target) -> None:
        """Add label maps ``pred`` and ``target`` (same shape, integer class ids)."""
        # read-only arrays (e.g. memory-mapped predictions) are copied: torch refuses to wrap them silently
        p = pred if isinstance(pred, torch.Tensor) else torch.from_numpy(np.array(pred, copy=True))
        t = target if isinstance(target, torch.Tensor) else torch.from_numpy(np.array(target, copy=True))
        if p.shape != t.shape:
            raise ValueError(f"prediction {tuple(p.shape)} and ground truth {tuple(t.shape)} differ in shape")
        self._metric.update(p.reshape(-1).long().cpu(), t.reshape(-1).long().cpu())
        self._updated = True

    def add_matrix(self, matrix: np.ndarray) -> None:
        """Add a (C, C) count matrix accumulated elsewhere (e.g. one image's, cached for reuse)."""
        m = np.asarray(matrix, dtype=np.int64)
        if m.shape != self._added.shape:
            raise ValueError(f"matrix {m.shape} does not match {self._added.shape}")
        self._added += m

    @property
    def matrix(self) -> np.ndarray:
        if not self._updated:
            return self._added.copy()
        return self._metric.compute().cpu().numpy().astype(np.int64) + self._added

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


def image_confusion(pred, target, num_classes: int, ignore_index: int | None = None) -> np.ndarray:
    """(C, C) confusion counts of one label map pair (rows ground truth), for :meth:`add_matrix`."""
    cm = ConfusionMatrix(num_classes, ignore_index)
    cm.update(pred, target)
    return cm.matrix


def f1_summary(cm: ConfusionMatrix, class_names: Sequence[str], background_id: int) -> dict[str, Any]:
    """Per-class F1 by name, the foreground mean (every class but background) and what it averages.

    A class absent from both ground truth and predictions has F1 NaN (written ``null`` in JSON) and
    is left out of the mean, as FaRL's scorer does when a class never occurs in the split.
    """
    f1 = cm.f1()
    fg = [c for c in range(cm.num_classes) if c != background_id]
    return {"f1": {class_names[c]: (None if np.isnan(f1[c]) else float(f1[c])) for c in range(cm.num_classes)},
            "mean_f1": cm.mean_f1(exclude=[background_id]),
            "mean_over": [class_names[c] for c in fg if not np.isnan(f1[c])],
            "background": class_names[background_id],
            "pixels": int(cm.matrix.sum())}
