"""Draw annotations over images so a human can check that they sit on the features.

Inputs are numpy arrays in the record layout (``(H, W, 3)`` uint8 images, ``(68, 2)`` landmark
pixels with (0, 0) the top-left *corner*, ``(H, W)`` uint8 class ids, ``(H, W)`` float depth);
outputs are new ``(H, W, 3)`` uint8 arrays. Colours of classes come from ``SEG_CLASSES``.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from sfray.conventions import BACKGROUND_ID, SEG_PALETTE

VISIBLE_COLOR = (40, 255, 60)
OCCLUDED_COLOR = (255, 40, 40)


def _rgb(image: np.ndarray) -> np.ndarray:
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 image, got {image.dtype} {image.shape}")
    return image


def draw_landmarks(image: np.ndarray, points: np.ndarray, visible: np.ndarray | None = None,
                   radius: float | None = None, scale: float = 1.0) -> np.ndarray:
    """Dots at ``points * scale`` (N, 2): green where visible, red where occluded or outside.

    ``scale`` maps annotation pixels to this image's pixels (drawing on a resized copy).
    """
    img = Image.fromarray(_rgb(image).copy())
    draw = ImageDraw.Draw(img)
    h, w = image.shape[:2]
    r = radius if radius is not None else max(1.0, min(h, w) / 160.0)
    vis = np.ones(len(points), dtype=bool) if visible is None else np.asarray(visible, dtype=bool)
    for (x, y), v in zip(np.asarray(points, dtype=np.float64) * scale, vis):
        if not np.isfinite(x) or not np.isfinite(y):
            continue
        color = VISIBLE_COLOR if v else OCCLUDED_COLOR
        draw.ellipse((x - r, y - r, x + r, y + r), fill=color, outline=(0, 0, 0) if r >= 2 else None)
    return np.asarray(img)


def colorize_segmentation(seg: np.ndarray, palette: np.ndarray | None = None) -> np.ndarray:
    """(H, W) class ids -> (H, W, 3) uint8 colours: ``palette`` (N, 3) indexed by id, by default
    the ``SEG_CLASSES`` colours (background black). Ids past the palette take its last colour."""
    pal = SEG_PALETTE if palette is None else np.asarray(palette, dtype=np.uint8)
    return pal[np.clip(seg.astype(np.int64), 0, len(pal) - 1)]


def overlay_segmentation(image: np.ndarray, seg: np.ndarray, alpha: float = 0.55,
                         palette: np.ndarray | None = None, background_id: int = BACKGROUND_ID) -> np.ndarray:
    """Blend class colours over the image where ``seg`` is not ``background_id``; the rest stays
    untouched. ``palette`` as in :func:`colorize_segmentation` (another schema's colours)."""
    img = _rgb(image).astype(np.float32)
    if seg.shape != image.shape[:2]:
        seg = np.asarray(Image.fromarray(seg.astype(np.uint8)).resize(image.shape[1::-1], Image.NEAREST))
    colors = colorize_segmentation(seg, palette).astype(np.float32)
    fg = (seg != background_id)[..., None]
    out = np.where(fg, (1.0 - alpha) * img + alpha * colors, img)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def colorize_depth(depth: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """(H, W) camera-space z -> (H, W, 3) uint8, near bright and far dark, background black.

    The range is stretched over the foreground of this one picture for display only; stored
    depth is never normalised (docs/conventions.md).
    """
    d = np.asarray(depth, dtype=np.float32)
    m = (d > 0) if mask is None else np.asarray(mask, dtype=bool)
    out = np.zeros(d.shape + (3,), dtype=np.uint8)
    if not m.any():
        return out
    lo, hi = float(d[m].min()), float(d[m].max())
    t = np.clip((hi - d) / max(hi - lo, 1e-6), 0.0, 1.0)  # 1 = nearest
    v = 0.15 + 0.85 * t
    # a warm ramp reads better than grey: near = pale yellow, far = dark purple
    ramp = np.stack([0.25 + 0.75 * v, v ** 1.5, 0.45 * (1.0 - v) + 0.35 * v ** 3], axis=-1)
    out[m] = np.clip(ramp[m] * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return out
