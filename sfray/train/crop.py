"""The face crop: the matrix from a sample's pixels to the model input, and the way back.

``crop.mode=full`` maps the whole image onto the input square (no label needed, so it works on any
picture). ``crop.mode=landmarks`` maps a square of side ``crop.scale`` x the landmarks' bounding
box, centred on the box, onto the input: a tighter face crop that, like the benchmark protocols'
ground-truth boxes, uses the annotation to place it (docs/training.md, crop). Predictions made on
the input go back to the dataset frame with the inverse matrix (:func:`to_dataset_frame`).
"""

from __future__ import annotations

import torch

from sfray.config.train import CropSection
from sfray.conventions import BACKGROUND_ID, Field
from sfray.geometry.warp import inside_mask, resize_matrix, scaling, transform_points, translation, warp


def crop_matrices(landmarks: torch.Tensor, image_hw: tuple[int, int], cfg: CropSection) -> torch.Tensor:
    """(B, 3, 3) dataset pixels -> input pixels for a batch with (B, K, 2) landmarks."""
    b, s = landmarks.shape[0], float(cfg.input_size)
    device = landmarks.device
    if cfg.mode == "full":
        return resize_matrix(image_hw, (cfg.input_size, cfg.input_size), b, device)
    lo = landmarks.amin(dim=1)
    hi = landmarks.amax(dim=1)
    center = (lo + hi) / 2.0
    side = (hi - lo).amax(dim=1).clamp_min(1.0) * cfg.scale
    shift = translation(-(center[:, 0] - side / 2.0), -(center[:, 1] - side / 2.0))
    return scaling(s / side) @ shift


def to_dataset_frame(outputs: dict[str, torch.Tensor], m: torch.Tensor, input_size: int,
                     image_hw: tuple[int, int]) -> dict[str, torch.Tensor]:
    """Map input-frame predictions back onto the dataset's (H, W) pixel grid.

    ``outputs``: ``segmentation`` logits (B, C, S, S), ``depth`` (B, S, S), ``landmarks_2d``
    (B, K, 2). Returns label ids (B, H, W) uint8 (background where the crop did not reach), depth
    (B, H, W) float32 (0 there) and landmarks (B, K, 2) in dataset pixels.
    """
    inv = torch.linalg.inv(m.double()).float()
    covered = inside_mask((input_size, input_size), inv, image_hw)
    logits = warp(outputs[Field.SEGMENTATION].float(), inv, image_hw)
    labels = logits.argmax(dim=1)
    labels = torch.where(covered, labels, torch.full_like(labels, BACKGROUND_ID)).to(torch.uint8)
    depth = warp(outputs[Field.DEPTH].float().unsqueeze(1), inv, image_hw)[:, 0]
    depth = torch.where(covered, depth, torch.zeros_like(depth))
    landmarks = transform_points(inv, outputs[Field.LANDMARKS_2D].float())
    return {Field.SEGMENTATION: labels, Field.DEPTH: depth, Field.LANDMARKS_2D: landmarks}
