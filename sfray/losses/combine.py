"""Weighted sum of Stage I's task losses: a dict of the terms and their total under ``loss``.

The weights (lambda) come from ``loss.*``; a term whose weight is 0 is not computed at all (the
equivariance term costs a second encoder pass). Terms are reported unweighted, so runs with
different weights stay comparable; ``loss`` is the weighted sum that is back-propagated.
"""

from __future__ import annotations

import torch

from sfray.config.train import LossSection, SslSection
from sfray.conventions import Field
from sfray.losses.dense import masked_l1, segmentation_ce, soft_dice
from sfray.losses.equivariance import equivariance_loss
from sfray.losses.keypoints import coord_loss, gaussian_heatmaps, heatmap_loss
from sfray.models.multitask import FEATURES, FEATURES_WARPED, HEATMAPS

#: Names of the terms in the dict the combiner returns.
TOTAL = "loss"
SEGMENTATION = "segmentation"
SEGMENTATION_DICE = "segmentation_dice"
DEPTH = "depth"
KEYPOINTS = "keypoints"
KEYPOINTS_HEATMAP = "keypoints_heatmap"
KEYPOINTS_COORD = "keypoints_coord"
SSL = "ssl"


class MultiTaskLoss:
    """``loss(outputs, targets, ...) -> {term: value, ..., "loss": weighted sum}``.

    ``outputs``: the model's dict (segmentation logits, depth, heatmaps, landmarks_2d, features).
    ``targets``: segmentation (B, H, W) long (``IGNORE_LABEL`` where unlabelled), depth (B, H, W),
    mask (B, H, W) bool, landmarks_2d (B, K, 2) in input pixels.
    """

    def __init__(self, cfg: LossSection, ssl: SslSection, heatmap_stride: int):
        self.cfg, self.ssl_cfg, self.stride = cfg, ssl, heatmap_stride

    @property
    def weights(self) -> dict[str, float]:
        c = self.cfg
        return {SEGMENTATION: c.segmentation, DEPTH: c.depth, KEYPOINTS: c.keypoints, SSL: c.ssl}

    def __call__(self, outputs: dict, targets: dict, *, depth_scale: float | torch.Tensor = 1.0,
                 ssl_matrix: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """``ssl_matrix``: the eps the model's ``FEATURES_WARPED`` were computed under (ssl > 0)."""
        c = self.cfg
        terms: dict[str, torch.Tensor] = {}
        if c.segmentation > 0:
            seg = segmentation_ce(outputs[Field.SEGMENTATION], targets[Field.SEGMENTATION])
            if c.seg_dice > 0:
                dice = soft_dice(outputs[Field.SEGMENTATION], targets[Field.SEGMENTATION])
                terms[SEGMENTATION_DICE] = dice.detach()
                seg = seg + c.seg_dice * dice
            terms[SEGMENTATION] = seg
        if c.depth > 0:
            terms[DEPTH] = masked_l1(outputs[Field.DEPTH], targets[Field.DEPTH], targets[Field.MASK], depth_scale)
        if c.keypoints > 0:
            terms.update(self._keypoints(outputs, targets[Field.LANDMARKS_2D]))
        if c.ssl > 0:
            if ssl_matrix is None or FEATURES_WARPED not in outputs:
                raise ValueError("the equivariance term needs the model's features of the warped images")
            terms[SSL] = equivariance_loss(outputs[FEATURES_WARPED], outputs[FEATURES], ssl_matrix, self.ssl_cfg)
        total = sum(self.weights[name] * value for name, value in terms.items()
                    if name in self.weights)
        out = dict(terms)
        out[TOTAL] = total if isinstance(total, torch.Tensor) else torch.zeros(())
        return out

    def _keypoints(self, outputs: dict, points: torch.Tensor) -> dict[str, torch.Tensor]:
        """The keypoint term (heatmap and/or coordinate part) and its parts, for the report."""
        c = self.cfg
        heatmaps = outputs[HEATMAPS]
        h, w = heatmaps[-1].shape[-2:]
        parts: dict[str, torch.Tensor] = {}
        if c.keypoint_form in ("heatmap", "both"):
            target = gaussian_heatmaps(points.float(), (h, w), self.stride, c.heatmap_sigma)
            parts[KEYPOINTS_HEATMAP] = heatmap_loss(heatmaps, target)
        if c.keypoint_form in ("coord", "both"):
            input_hw = (h * self.stride, w * self.stride)
            parts[KEYPOINTS_COORD] = coord_loss(outputs[Field.LANDMARKS_2D], points, input_hw, c.keypoint_coord)
        total = torch.stack(list(parts.values())).sum()
        return {KEYPOINTS: total, **{k: v.detach() for k, v in parts.items()}}
