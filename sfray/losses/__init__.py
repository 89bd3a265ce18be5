"""Stage I losses: cross-entropy, masked L1, keypoint L2 (heatmap / coordinate), equivariance, and
the lambda-weighted combiner :class:`MultiTaskLoss` (docs/training.md, losses)."""

from sfray.losses.combine import MultiTaskLoss
from sfray.losses.dense import IGNORE_LABEL, masked_l1, segmentation_ce

__all__ = ["IGNORE_LABEL", "MultiTaskLoss", "masked_l1", "segmentation_ce"]
