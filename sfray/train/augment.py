"""Stage I batches: crop, label-consistent geometric augmentation, photometric augmentation.

One 3x3 matrix per sample carries the whole geometry (crop, then random similarity, flip and
perspective in the input frame), and every label goes through the same matrix: the image with
bilinear sampling, segmentation with nearest sampling (pixels from outside the image become
``IGNORE_LABEL``), depth and mask with nearest sampling, landmarks through the matrix itself. A
flip also swaps the left/right classes (``SEG_FLIP_PERMUTATION``) and the landmark order
(``IBUG68_MIRROR``), so a flipped sample is again a valid sample. Photometric changes (colour,
gamma, grey, blur, noise, erasing; kornia) touch the image only. Runs batched on the training
device (docs/training.md, augmentations).
"""

from __future__ import annotations

import math

import torch
from kornia import augmentation as K
from kornia.geometry.transform import get_perspective_transform
from torch import nn

from sfray.config.train import AugmentSection, CropSection
from sfray.conventions import IBUG68_MIRROR, IGNORE_LABEL, SEG_FLIP_PERMUTATION, Field
from sfray.geometry.warp import hflip, resize_matrix, similarity_about, transform_points, warp, warp_labels
from sfray.train.crop import crop_matrices

#: Record fields a Stage I training batch needs.
TRAIN_FIELDS = (Field.SAMPLE_ID, Field.IMAGE, Field.SEGMENTATION, Field.DEPTH, Field.MASK, Field.LANDMARKS_2D)
#: Extra keys of a prepared batch.
MATRIX = "matrix"  # (B, 3, 3) dataset pixels -> input pixels
FLIPPED = "flipped"  # (B,) bool


def _uniform(lo: float, hi: float, n: int, generator: torch.Generator | None) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=generator)


def random_geometry(batch: int, size: int, cfg: AugmentSection,
                    generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, 3, 3) random maps of the input square onto itself, and (B,) flip flags (CPU tensors)."""
    center = torch.full((batch, 2), size / 2.0)
    angle = _uniform(-cfg.rotation_deg, cfg.rotation_deg, batch, generator)
    scale = _uniform(cfg.scale_range[0], cfg.scale_range[1], batch, generator)
    shift = torch.stack([_uniform(-cfg.shift, cfg.shift, batch, generator) * size,
                         _uniform(-cfg.shift, cfg.shift, batch, generator) * size], dim=-1)
    m = similarity_about(center, angle, scale, shift)
    flip = torch.rand(batch, generator=generator) < cfg.flip_prob
    m = hflip(size, batch, flip) @ m
    if cfg.perspective > 0 and cfg.perspective_prob > 0:
        corners = torch.tensor([[0.0, 0.0], [size, 0.0], [size, size], [0.0, size]]).expand(batch, 4, 2)
        jitter = (torch.rand(batch, 4, 2, generator=generator) * 2 - 1) * cfg.perspective * size
        use = (torch.rand(batch, generator=generator) < cfg.perspective_prob).float().view(batch, 1, 1)
        p = get_perspective_transform(corners, corners + jitter * use)
        m = p @ m
    return m, flip


class Photometric(nn.Module):
    """Image-only kornia augmentations on (B, 3, H, W) floats in [0, 1]; the labels stay valid."""

    def __init__(self, cfg: AugmentSection):
        super().__init__()
        ops: list[nn.Module] = []
        if cfg.color_prob > 0:
            ops.append(K.ColorJiggle(cfg.brightness, cfg.contrast, cfg.saturation, 0.0, p=cfg.color_prob))
        if cfg.gamma_prob > 0:
            ops.append(K.RandomGamma(tuple(cfg.gamma_range), p=cfg.gamma_prob))
        if cfg.grayscale_prob > 0:
            ops.append(K.RandomGrayscale(p=cfg.grayscale_prob))
        if cfg.blur_prob > 0:
            k = 2 * math.ceil(3 * cfg.blur_sigma[1]) + 1
            ops.append(K.RandomGaussianBlur((k, k), tuple(cfg.blur_sigma), p=cfg.blur_prob))
        if cfg.noise_prob > 0 and cfg.noise_std > 0:
            ops.append(K.RandomGaussianNoise(std=cfg.noise_std, p=cfg.noise_prob))
        if cfg.erase_prob > 0:
            ops.append(K.RandomErasing(p=cfg.erase_prob))
        self.ops = nn.Sequential(*ops)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.ops(image).clamp(0.0, 1.0) if len(self.ops) else image


def _labels_to(frame: torch.Tensor, image_hw: tuple[int, int], m: torch.Tensor) -> torch.Tensor:
    """The sample matrix for a label stored at another resolution than the image (e.g. depth)."""
    hw = tuple(frame.shape[-2:])
    if hw == tuple(image_hw):
        return m
    return m @ resize_matrix(hw, image_hw, m.shape[0], m.device)


def prepare_batch(batch: dict, crop: CropSection, device: torch.device | str,
                  augment: AugmentSection | None = None, photometric: nn.Module | None = None,
                  generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """A raw batch (record fields, dataset frame) -> model-ready tensors in the input frame.

    Output: image float (B, 3, S, S) in [0, 1], segmentation long (B, S, S), depth float and mask
    bool (B, S, S), landmarks_2d (B, K, 2) input pixels, ``MATRIX`` and ``FLIPPED``, sample_id.
    ``augment`` None (validation) gives the plain crop.
    """
    image = batch[Field.IMAGE].to(device)
    b, _, h, w = image.shape
    s = crop.input_size
    landmarks = batch[Field.LANDMARKS_2D].to(device).float()
    m = crop_matrices(landmarks, (h, w), crop)
    flip = torch.zeros(b, dtype=torch.bool)
    if augment is not None and augment.enabled:
        g, flip = random_geometry(b, s, augment, generator)
        m = g.to(device) @ m
    flip = flip.to(device)
    img = image.float() / 255.0 if not image.is_floating_point() else image.float()
    out: dict[str, torch.Tensor] = {MATRIX: m, FLIPPED: flip, Field.IMAGE: warp(img, m, (s, s))}
    if Field.SAMPLE_ID in batch:
        out[Field.SAMPLE_ID] = torch.as_tensor(batch[Field.SAMPLE_ID]).to(device)
    lm = transform_points(m, landmarks)
    mirror = torch.tensor(IBUG68_MIRROR, device=device)
    out[Field.LANDMARKS_2D] = torch.where(flip.view(b, 1, 1), lm[:, mirror], lm)
    if Field.SEGMENTATION in batch:
        seg = batch[Field.SEGMENTATION].to(device)
        seg = warp_labels(seg, _labels_to(seg, (h, w), m), (s, s), IGNORE_LABEL)
        table = torch.tensor(list(SEG_FLIP_PERMUTATION) + [0] * (IGNORE_LABEL + 1 - len(SEG_FLIP_PERMUTATION)),
                             device=device)
        table[IGNORE_LABEL] = IGNORE_LABEL
        out[Field.SEGMENTATION] = torch.where(flip.view(b, 1, 1), table[seg], seg)
    if Field.MASK in batch:
        mask = batch[Field.MASK].to(device)
        out[Field.MASK] = warp(mask.float().unsqueeze(1), _labels_to(mask, (h, w), m), (s, s), "nearest")[:, 0] > 0.5
    if Field.DEPTH in batch:
        depth = batch[Field.DEPTH].to(device).float()
        out[Field.DEPTH] = warp(depth.unsqueeze(1), _labels_to(depth, (h, w), m), (s, s), "nearest")[:, 0]
    if photometric is not None and augment is not None and augment.enabled:
        out[Field.IMAGE] = photometric(out[Field.IMAGE])
    return out
