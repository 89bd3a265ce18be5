"""Per-pixel losses: cross-entropy for segmentation, masked L1 for depth.

Both are averaged per image first and then over the batch, so the loss of a batch is the mean of
its images' losses: split over DDP workers (equal per-worker batches), the averaged gradient is
exactly the one of the whole batch (docs/training.md, losses).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from sfray.conventions import IGNORE_LABEL


def _per_image_mean(values: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """(B, ...) values and 0/1 weights -> (B,) weighted means (0 for an image without weight)."""
    b = values.shape[0]
    num = (values * weight).reshape(b, -1).sum(1)
    den = weight.reshape(b, -1).sum(1)
    return torch.where(den > 0, num / den.clamp_min(1.0), torch.zeros_like(num))


def segmentation_ce(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of (B, C, H, W) logits against (B, H, W) ids; ``IGNORE_LABEL`` pixels skipped."""
    valid = target != IGNORE_LABEL
    ce = F.cross_entropy(
        logits.float(), torch.where(valid, target, torch.zeros_like(target)), reduction="none"
    )
    return _per_image_mean(ce, valid.float()).mean()


def soft_dice(logits: torch.Tensor, target: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    """1 - mean over classes of the soft Dice overlap, per image, then the batch mean.

    A differentiable stand-in for per-class F1: every class weighs the same whatever its pixel
    share, so small regions (eyeballs, lips, brows) matter as much as the face. Unlabelled pixels
    do not count.
    """
    valid = (target != IGNORE_LABEL).unsqueeze(1).float()
    prob = torch.softmax(logits.float(), dim=1) * valid
    one_hot = F.one_hot(torch.where(valid[:, 0] > 0, target, torch.zeros_like(target)), logits.shape[1])
    one_hot = one_hot.permute(0, 3, 1, 2).float() * valid
    inter = (prob * one_hot).sum(dim=(2, 3))
    total = prob.sum(dim=(2, 3)) + one_hot.sum(dim=(2, 3))
    dice = (2.0 * inter + eps) / (total + eps)  # (B, C)
    return (1.0 - dice.mean(dim=1)).mean()


def masked_l1(
    pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, scale: float | torch.Tensor = 1.0
) -> torch.Tensor:
    """Mean |pred - target| / scale over each image's ``mask`` pixels, then over the batch.

    ``scale`` (the model's depth spread) makes the term unit-free, so its weight means the same
    whether depth is metric camera z or a relative map.
    """
    err = (pred.float() - target.float()).abs() / scale
    return _per_image_mean(err, mask.float()).mean()
