"""Stage I on the held-out split: predictions in the dataset frame, metrics, baselines.

Every figure is computed *in the dataset's own pixel frame at its resolution*, from exactly the
arrays ``predictions.npz`` stores, so a rescoring of that file reproduces ``report.json``
(docs/training.md, predictions and report). Landmarks: NME (inter-ocular), failure rate and AUC
at 0.08. Segmentation: F1 per class and the mean over the foreground classes from one
dataset-level confusion matrix. Depth: MAE, RMSE and relative error on the record's mask.
Baselines in the same pass: the oracle mean shape (mean of the held-out ground truth landmarks),
the per-pixel majority map of the training labels, and a constant depth (the training mean).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from sfray.config.train import CropSection
from sfray.conventions import BACKGROUND_ID, NUM_SEG_CLASSES, SEG_NAMES, Field
from sfray.evaluate.depth import DepthErrors
from sfray.evaluate.landmarks import auc, failure_rate, nme
from sfray.evaluate.segmentation import ConfusionMatrix
from sfray.train.augment import MATRIX, prepare_batch
from sfray.train.crop import to_dataset_frame

#: Keys of predictions.npz (docs/training.md).
PRED_DATASET, PRED_IDS, PRED_LANDMARKS, PRED_SEGMENTATION, PRED_DEPTH = (
    "dataset", "sample_id", "landmarks", "segmentation", "depth")
NME_THRESHOLD = 0.08


class PixelVotes:
    """Per-pixel class counts of label maps (B, H, W); ``majority()`` is the baseline map."""

    def __init__(self, num_classes: int = NUM_SEG_CLASSES):
        self.num_classes = num_classes
        self.counts: torch.Tensor | None = None

    def update(self, labels: torch.Tensor) -> None:
        labels = torch.as_tensor(labels).cpu().long().clamp(0, self.num_classes - 1)
        b, h, w = labels.shape
        flat = labels.reshape(b, h * w) * (h * w) + torch.arange(h * w)  # class-major (C, H*W) index
        add = torch.bincount(flat.reshape(-1), minlength=self.num_classes * h * w).reshape(self.num_classes, h, w)
        self.counts = add if self.counts is None else self.counts + add

    def majority(self) -> np.ndarray | None:
        return None if self.counts is None else self.counts.argmax(0).to(torch.uint8).numpy()


@dataclass
class Evaluation:
    metrics: dict[str, Any]
    predictions: dict[str, np.ndarray] | None = None
    figure_rows: list[dict[str, np.ndarray]] = field(default_factory=list)


def _f1_summary(cm: ConfusionMatrix) -> tuple[float, dict[str, float]]:
    f1 = cm.f1()
    per_class = {SEG_NAMES[c]: (None if np.isnan(f1[c]) else float(f1[c])) for c in range(len(f1))}
    return cm.mean_f1(exclude=(BACKGROUND_ID,)), per_class


def _at_image_size(label: torch.Tensor, hw: tuple[int, int]) -> np.ndarray:
    """A depth map or mask stored at a lower resolution than the image, upsampled by nearest
    sampling (integer factors keep pixel centres aligned); unchanged when already at (H, W)."""
    if tuple(label.shape[-2:]) == tuple(hw):
        return label.numpy()
    up = torch.nn.functional.interpolate(label.float().unsqueeze(1), size=hw, mode="nearest")[:, 0]
    return (up > 0.5).numpy() if label.dtype == torch.bool else up.numpy()


@torch.no_grad()
def evaluate_stage1(model: torch.nn.Module, batches: Iterable[dict[str, Any]], crop: CropSection,
                    device: torch.device, *, loss_fn: Callable[..., dict[str, torch.Tensor]] | None = None,
                    majority_map: np.ndarray | None = None, collect: bool = False,
                    figure_samples: int = 0) -> Evaluation:
    """Run ``model`` over raw held-out ``batches`` and score it (see module docstring)."""
    errors: list[np.ndarray] = []
    gts: list[np.ndarray] = []
    cm, cm_major = ConfusionMatrix(NUM_SEG_CLASSES), ConfusionMatrix(NUM_SEG_CLASSES)
    depth_err, depth_const = DepthErrors(), DepthErrors()
    depth_mean = float(getattr(model, "depth_shift", torch.zeros(())))
    loss_sums: dict[str, float] = {}
    n_loss = 0
    preds: dict[str, list[np.ndarray]] = {PRED_IDS: [], PRED_LANDMARKS: [], PRED_SEGMENTATION: [], PRED_DEPTH: []}
    rows: list[dict[str, np.ndarray]] = []
    for raw in batches:
        prepared = prepare_batch(raw, crop, device)
        out = model(prepared[Field.IMAGE])
        if loss_fn is not None:
            terms = loss_fn(out, prepared)
            b = prepared[Field.IMAGE].shape[0]
            for k, v in terms.items():
                loss_sums[k] = loss_sums.get(k, 0.0) + float(v) * b
            n_loss += b
        h, w = raw[Field.IMAGE].shape[-2:]
        back = to_dataset_frame(out, prepared[MATRIX], crop.input_size, (h, w))
        lm_pred = back[Field.LANDMARKS_2D].cpu().numpy().astype(np.float32)
        lm_gt = raw[Field.LANDMARKS_2D].numpy().astype(np.float32)
        seg_pred = back[Field.SEGMENTATION].cpu().numpy()
        seg_gt = raw[Field.SEGMENTATION].numpy().astype(np.uint8)
        depth_pred = back[Field.DEPTH].cpu().numpy().astype(np.float16)  # scored as stored
        errors.append(nme(lm_pred, lm_gt))
        gts.append(lm_gt)
        cm.update(seg_pred, seg_gt)
        if majority_map is not None:
            cm_major.update(np.broadcast_to(majority_map, seg_gt.shape), seg_gt)
        gt_depth, gt_mask = _at_image_size(raw[Field.DEPTH], (h, w)), _at_image_size(raw[Field.MASK], (h, w))
        depth_err.update(depth_pred.astype(np.float32), gt_depth, gt_mask)
        depth_const.update(np.full(gt_depth.shape, depth_mean, np.float32), gt_depth, gt_mask)
        if collect:
            preds[PRED_IDS].append(np.asarray(raw[Field.SAMPLE_ID]).astype(np.int64).reshape(-1))
            preds[PRED_LANDMARKS].append(lm_pred)
            preds[PRED_SEGMENTATION].append(seg_pred.astype(np.uint8))
            preds[PRED_DEPTH].append(depth_pred)
        for i in range(min(figure_samples - len(rows), len(lm_pred))):
            rows.append({"image": raw[Field.IMAGE][i].numpy(), "landmarks_gt": lm_gt[i], "landmarks": lm_pred[i],
                         "segmentation_gt": seg_gt[i], "segmentation": seg_pred[i],
                         "depth": depth_pred[i].astype(np.float32), "mask": gt_mask[i]})
    e = np.concatenate(errors) if errors else np.zeros(0)
    gt_all = np.concatenate(gts) if gts else np.zeros((0, 0, 2))
    mean_f1, per_class = _f1_summary(cm)
    metrics: dict[str, Any] = {
        "samples": int(e.size),
        "nme": float(e.mean()) if e.size else float("nan"),
        f"fr_{NME_THRESHOLD}": failure_rate(e, NME_THRESHOLD),
        f"auc_{NME_THRESHOLD}": auc(e, NME_THRESHOLD),
        "seg_mean_f1": mean_f1,
        "seg_f1": per_class,
        **{f"depth_{k}": v for k, v in depth_err.summary().items()},
    }
    if e.size:
        mean_shape = np.broadcast_to(gt_all.mean(axis=0), gt_all.shape)
        metrics["baseline_mean_shape_nme"] = float(nme(mean_shape, gt_all).mean())
    if majority_map is not None:
        metrics["baseline_majority_map_mean_f1"] = _f1_summary(cm_major)[0]
    metrics["baseline_constant_depth_mae"] = depth_const.summary()["mae"]
    if n_loss:
        metrics["losses"] = {k: v / n_loss for k, v in loss_sums.items()}
    predictions = None
    if collect:
        predictions = {k: (np.concatenate(v) if v else np.zeros(0)) for k, v in preds.items()}
    return Evaluation(metrics, predictions, rows)
