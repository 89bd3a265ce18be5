"""Stage I losses: ignore labels, masks, heatmap targets, coordinate forms, equivariance, lambda."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from sfray.config import load_config
from sfray.config.train import LossSection, SslSection, TrainJobConfig
from sfray.conventions import Field
from sfray.errors import ConfigError
from sfray.geometry.warp import similarity_about
from sfray.losses import IGNORE_LABEL, MultiTaskLoss, masked_l1, segmentation_ce
from sfray.losses.equivariance import equivariance_loss
from sfray.losses.keypoints import coord_loss, gaussian_heatmaps, heatmap_loss
from sfray.models import FEATURES, HEATMAPS
from sfray.models.hourglass import soft_argmax


def test_cross_entropy_skips_unlabelled_pixels():
    target = torch.tensor([[[1, IGNORE_LABEL]]])
    good = torch.tensor([[[[0.0, 0.0]], [[9.0, -9.0]], [[0.0, 0.0]]]])  # right where labelled
    assert float(segmentation_ce(good, target)) < 1e-3
    bad = good.clone()
    bad[0, :, 0, 1] = torch.tensor([9.0, -9.0, 0.0])  # the ignored pixel may say anything
    assert float(segmentation_ce(bad, target)) == pytest.approx(float(segmentation_ce(good, target)))


def test_masked_l1_is_a_mean_of_per_image_means():
    pred = torch.zeros(2, 2, 2)
    gt = torch.tensor([[[1.0, 3.0], [0.0, 0.0]], [[2.0, 2.0], [2.0, 2.0]]])
    mask = torch.tensor([[[True, True], [False, False]], [[True, False], [False, False]]])
    # image 0: mean(1, 3) = 2; image 1: 2 -> 2; scaled by 0.5 -> 4
    assert float(masked_l1(pred, gt, mask, 0.5)) == pytest.approx(4.0)
    # the batch value is the mean of the halves' values: what DDP's gradient averaging assumes
    halves = (masked_l1(pred[:1], gt[:1], mask[:1]) + masked_l1(pred[1:], gt[1:], mask[1:])) / 2
    assert float(masked_l1(pred, gt, mask)) == pytest.approx(float(halves))


def test_heatmap_targets_decode_back_to_the_points():
    pts = torch.tensor([[[13.3, 40.2], [50.0, 7.5]]])
    target = gaussian_heatmaps(pts, (16, 16), stride=4, sigma=1.5)
    assert target.shape == (1, 2, 16, 16) and float(target.max()) <= 1.0
    # the sharpened softmax rounds sub-cell positions towards cell centres by < 1/4 cell
    # (docs/training.md); the coordinate form of the loss trains that away
    assert torch.allclose(soft_argmax(target, beta=20.0, stride=4), pts, atol=1.0)
    assert float(heatmap_loss([target, target], target)) == 0.0


def test_coordinate_forms():
    pred = torch.tensor([[[0.0, 0.0], [10.0, 0.0]]])
    gt = torch.tensor(
        [[[0.0, 0.0], [10.0, 20.0]]]
    )  # second point off by 20 px of a 40 px input = 1.0 in [-1, 1]
    assert float(coord_loss(pred, gt, (40, 40), "squared")) == pytest.approx(1.0)
    assert float(coord_loss(pred, gt, (40, 40), "euclidean")) == pytest.approx(1.0, abs=1e-5)
    gt2 = gt.clone()
    gt2[0, 1, 1] = 40.0  # 2.0 off: squared grows 4x, euclidean 2x
    assert float(coord_loss(pred, gt2, (40, 40), "squared")) == pytest.approx(4.0)
    assert float(coord_loss(pred, gt2, (40, 40), "euclidean")) == pytest.approx(2.0, abs=1e-5)


def test_equivariance_border_mask():
    """An encoder x -> x + 1 is equivariant except where the warp pads with zeros: only the mask sees that."""
    torch.manual_seed(0)
    img = torch.rand(2, 3, 32, 32)
    m = similarity_about(
        torch.full((2, 2), 16.0),
        torch.tensor([30.0, -20.0]),
        torch.tensor([1.0, 0.9]),
        torch.tensor([[3.0, -2.0], [0.0, 4.0]]),
    )
    from sfray.geometry.warp import warp

    features, warped_features = img + 1.0, warp(img, m, (32, 32)) + 1.0
    masked = equivariance_loss(warped_features, features, m, SslSection(mask_borders=True))
    unmasked = equivariance_loss(warped_features, features, m, SslSection(mask_borders=False))
    assert float(masked) < 1e-3 < float(unmasked)
    summed = equivariance_loss(
        warped_features, features, m, SslSection(mask_borders=False, reduction="sum", metric="l1")
    )
    assert float(summed) > 100 * float(unmasked)  # the release's sum dwarfs a mean


def _outputs_and_targets():
    torch.manual_seed(0)
    b, s = 2, 32
    outputs = {
        Field.SEGMENTATION: torch.randn(b, 20, s, s),
        Field.DEPTH: torch.rand(b, s, s) + 2,
        HEATMAPS: [torch.rand(b, 68, s // 4, s // 4)] * 2,
        Field.LANDMARKS_2D: torch.rand(b, 68, 2) * s,
        FEATURES: torch.randn(b, 4, s, s),
    }
    targets = {
        Field.SEGMENTATION: torch.randint(0, 20, (b, s, s)),
        Field.DEPTH: torch.rand(b, s, s) + 2,
        Field.MASK: torch.rand(b, s, s) > 0.3,
        Field.LANDMARKS_2D: torch.rand(b, 68, 2) * s,
    }
    return outputs, targets


def test_combiner_weights_and_skips_zero_terms():
    outputs, targets = _outputs_and_targets()
    base = MultiTaskLoss(LossSection(segmentation=1, depth=1, keypoints=1, ssl=0), SslSection(), 4)(
        outputs, targets
    )
    weighted = MultiTaskLoss(LossSection(segmentation=2, depth=0, keypoints=0.5, ssl=0), SslSection(), 4)(
        outputs, targets
    )
    assert "depth" not in weighted and "ssl" not in weighted
    expected = 2 * base["segmentation"] + 0.5 * base["keypoints"]
    assert float(weighted["loss"]) == pytest.approx(float(expected), rel=1e-6)
    assert float(base["keypoints"]) == pytest.approx(
        float(base["keypoints_heatmap"] + base["keypoints_coord"]), rel=1e-6
    )


def test_negative_lambda_is_refused_at_load():
    with pytest.raises(ConfigError, match=r"loss\.depth.*>= 0"):
        load_config(TrainJobConfig, None, ["data.dataset_dir=x", "loss.depth=-0.5"])
    cfg = dataclasses.replace(LossSection(), segmentation=0, depth=0, keypoints=0)
    with pytest.raises(ConfigError, match="at least one"):
        cfg.validate()


def test_soft_dice_weighs_small_classes_like_large_ones():
    from sfray.losses.dense import soft_dice

    target = torch.zeros(1, 8, 8, dtype=torch.long)
    target[0, :2, :2] = 1  # a small region (4 pixels) of class 1 among 60 pixels of class 0
    perfect = torch.nn.functional.one_hot(target, 2).permute(0, 3, 1, 2).float() * 50
    assert float(soft_dice(perfect, target)) < 0.02
    miss_small = torch.zeros(1, 2, 8, 8)
    miss_small[:, 0] = 50.0  # everything called class 0
    # cross-entropy barely notices the 4 missed pixels; Dice loses about half its score
    assert float(segmentation_ce(miss_small, target)) > 0.0
    assert float(soft_dice(miss_small, target)) > 0.4
    target[0, 0, 0] = IGNORE_LABEL  # unlabelled pixels do not count
    assert float(soft_dice(perfect, target)) < 0.02
