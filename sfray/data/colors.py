"""Colour <-> class id for segmentation maps in the SEG_CLASSES schema.

The authors' release stores segmentation as RGB colour images (docs/synthforge.md) whose
colours blur at region borders (the label map is a JPEG). :func:`rgb_to_ids` matches colours
tolerantly: each *distinct* colour of the image is converted to CIE-LAB (kornia) once and takes
the class of the nearest palette colour, or background when even the nearest is farther than
``max_delta_e`` (CIE76 distance). The label map's two unused colours also read as background.
"""

from __future__ import annotations

import numpy as np

from sfray.conventions import NUM_SEG_CLASSES, SEG_PALETTE
from sfray.head.label_map import colors_to_labels

#: Default tolerance: generous enough for JPEG-blurred borders, far below the palette's spacing.
DEFAULT_MAX_DELTA_E = 20.0


def ids_to_rgb(ids: np.ndarray) -> np.ndarray:
    """(H, W) uint8 class ids -> (H, W, 3) uint8 colour image (the authors' ``seg/`` format)."""
    if ids.size and int(ids.max()) >= NUM_SEG_CLASSES:
        raise ValueError(f"class id {int(ids.max())} outside 0..{NUM_SEG_CLASSES - 1}")
    return SEG_PALETTE[ids]


def rgb_to_ids(rgb: np.ndarray, max_delta_e: float = DEFAULT_MAX_DELTA_E) -> np.ndarray:
    """(H, W, 3) uint8 colour segmentation -> (H, W) uint8 class ids (nearest colour in LAB).

    The matching is the head label map's (``sfray.head.label_map.colors_to_labels``), with a wider
    default tolerance: released segmentation PNGs were rendered from a JPEG-blurred texture.
    """
    if rgb.ndim != 3 or rgb.shape[2] < 3:
        raise ValueError(f"expected an (H, W, 3) colour image, got shape {rgb.shape}")
    return colors_to_labels(rgb, max_delta_e)
