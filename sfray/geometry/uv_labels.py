"""Per-pixel region ids from the head's UV label map.

The label map is an image of region ids in UV space (row 0 = top = t = 1, OBJ convention). A
rasterized pixel carries interpolated UVs; its region is the label-map texel those UVs fall in.
The lookup is **nearest** on purpose: ids are categories, so any filtering (bilinear, mipmaps)
would invent ids between regions or smear one region into its neighbour.

Texels outside every region (the unused UV area, or a JPEG-blurred border in the authors' map)
would turn a mesh pixel into "background" and break ``mask == mesh coverage``. :func:`fill_unlabelled`
gives each of them the id of the nearest labelled texel, once, before any lookup: regions are only
extended into texels no region claimed, never moved.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage

from sfray.conventions import BACKGROUND_ID, NUM_SEG_CLASSES


def fill_unlabelled(label_map: np.ndarray) -> np.ndarray:
    """(H, W) uint8 ids -> same, every BACKGROUND_ID texel replaced by its nearest region's id."""
    lm = np.asarray(label_map)
    if lm.ndim != 2:
        raise ValueError(f"UV label map must be (H, W) ids, got shape {lm.shape}")
    if int(lm.max(initial=0)) >= NUM_SEG_CLASSES:
        raise ValueError(f"UV label map holds id {int(lm.max())} outside 0..{NUM_SEG_CLASSES - 1}")
    unlabelled = lm == BACKGROUND_ID
    if not unlabelled.any():
        return lm.astype(np.uint8, copy=True)
    if unlabelled.all():
        raise ValueError("UV label map has no labelled texel")
    _, (rows, cols) = ndimage.distance_transform_edt(unlabelled, return_indices=True)
    return lm[rows, cols].astype(np.uint8)


def uv_to_texel(uv: torch.Tensor, size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """(..., 2) UVs in [0, 1] -> integer (row, col) of the texel containing them (clamped).

    Texel (r, c) covers u in [c/W, (c+1)/W) and t in (1 - (r+1)/H, 1 - r/H], matching
    ``grid_sample(align_corners=False)`` with grid = (2u - 1, 1 - 2t).
    """
    h, w = size
    col = torch.floor(uv[..., 0] * w).long().clamp(0, w - 1)
    row = torch.floor((1.0 - uv[..., 1]) * h).long().clamp(0, h - 1)
    return row, col


def lookup_labels(label_map: torch.Tensor, uv: torch.Tensor) -> torch.Tensor:
    """Nearest ids of ``label_map`` (H, W) integer tensor at UVs (..., 2): (...) same dtype as the map."""
    row, col = uv_to_texel(uv, tuple(label_map.shape))
    return label_map[row, col]


def uv_to_grid(uv: torch.Tensor) -> torch.Tensor:
    """(..., 2) UVs -> ``grid_sample`` coordinates (x = 2u - 1, y = 1 - 2t), align_corners=False."""
    return torch.stack([2.0 * uv[..., 0] - 1.0, 1.0 - 2.0 * uv[..., 1]], dim=-1)


def face_labels(label_map: np.ndarray, uv_coords: np.ndarray, uv_faces: np.ndarray) -> np.ndarray:
    """(F,) uint8 region of each face: the (filled) label at its UV centroid.

    Good enough to pick whole faces of a region (eyeballs, scalp) for per-region geometry; pixels
    use the exact per-pixel lookup.
    """
    centroid = np.asarray(uv_coords)[np.asarray(uv_faces)].mean(axis=1)  # (F, 2)
    lm = torch.as_tensor(fill_unlabelled(label_map))
    return lookup_labels(lm, torch.as_tensor(centroid)).numpy().astype(np.uint8)
