"""Colour <-> class id for segmentation maps in the SEG_CLASSES schema.

The authors' release stores segmentation as RGB colour images (SYNTHFORGE.md §1.1, §1.3) whose
colours blur at region borders (the label map is a JPEG). :func:`rgb_to_ids` matches colours
tolerantly: each *distinct* colour of the image is converted to CIE-LAB (kornia) once and takes
the class of the nearest palette colour, or background when even the nearest is farther than
``max_delta_e`` (CIE76 distance). The label map's two unused colours also read as background.
"""

from __future__ import annotations

import numpy as np
import torch
from kornia.color import rgb_to_lab

from sfray.conventions import BACKGROUND_ID, NUM_SEG_CLASSES, SEG_CLASSES, SEG_UNUSED_COLORS

#: (NUM_SEG_CLASSES, 3) uint8 RGB palette indexed by class id (background black).
SEG_PALETTE = np.array([c.color for c in SEG_CLASSES], dtype=np.uint8)
#: Default tolerance: generous enough for JPEG-blurred borders, far below the palette's spacing.
DEFAULT_MAX_DELTA_E = 20.0


def ids_to_rgb(ids: np.ndarray) -> np.ndarray:
    """(H, W) uint8 class ids -> (H, W, 3) uint8 colour image (the authors' ``seg/`` format)."""
    if ids.size and int(ids.max()) >= NUM_SEG_CLASSES:
        raise ValueError(f"class id {int(ids.max())} outside 0..{NUM_SEG_CLASSES - 1}")
    return SEG_PALETTE[ids]


def _lab(rgb: np.ndarray) -> np.ndarray:
    """(N, 3) uint8 sRGB -> (N, 3) float64 CIE-LAB."""
    t = torch.as_tensor(rgb, dtype=torch.float32).T.reshape(3, -1, 1) / 255.0
    return rgb_to_lab(t).reshape(3, -1).T.double().numpy()


def rgb_to_ids(rgb: np.ndarray, max_delta_e: float = DEFAULT_MAX_DELTA_E) -> np.ndarray:
    """(H, W, 3) uint8 colour segmentation -> (H, W) uint8 class ids (nearest colour in LAB)."""
    if rgb.ndim != 3 or rgb.shape[2] < 3:
        raise ValueError(f"expected an (H, W, 3) colour image, got shape {rgb.shape}")
    flat = np.ascontiguousarray(rgb[..., :3]).reshape(-1, 3)
    packed = (flat[:, 0].astype(np.int32) << 16) | (flat[:, 1].astype(np.int32) << 8) | flat[:, 2]
    uniq, inverse = np.unique(packed, return_inverse=True)
    colors = np.stack([(uniq >> 16) & 255, (uniq >> 8) & 255, uniq & 255], axis=1).astype(np.uint8)
    palette = np.concatenate([SEG_PALETTE, np.array(SEG_UNUSED_COLORS, dtype=np.uint8)])
    palette_ids = np.concatenate([np.arange(NUM_SEG_CLASSES), np.full(len(SEG_UNUSED_COLORS), BACKGROUND_ID)])
    dist = np.linalg.norm(_lab(colors)[:, None, :] - _lab(palette)[None, :, :], axis=-1)  # (U, P)
    nearest = dist.argmin(axis=1)
    ids = palette_ids[nearest]
    ids[dist[np.arange(len(colors)), nearest] > max_delta_e] = BACKGROUND_ID
    return ids.astype(np.uint8)[inverse.reshape(-1)].reshape(rgb.shape[:2])
