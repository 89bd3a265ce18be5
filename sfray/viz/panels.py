"""The four preview panels of one sample: image | landmarks | segmentation overlay | depth.

Both previews draw with this one function: ``sfray preview`` (fresh samples, resized to a panel
size) and the dataset's ``preview.png`` (records read back from the shards, native size).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from PIL import Image

from sfray.conventions import Field
from sfray.viz.overlay import colorize_depth, draw_landmarks, overlay_segmentation
from sfray.viz.sheet import to_hwc


def _np(x: Any) -> np.ndarray:
    return x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)


def sample_panels(sample: Mapping[str, Any], size: int | None = None) -> list[np.ndarray]:
    """Four (S, S, 3) uint8 panels of a sample dict keyed by ``Field`` (numpy or torch values).

    ``size`` resizes every panel to S x S (image bilinear, labels and depth nearest, landmarks
    scaled); None keeps the sample's own resolution.
    """
    image = to_hwc(sample[Field.IMAGE])
    h = image.shape[0]
    scale = 1.0
    if size is not None and size != h:
        image = np.asarray(Image.fromarray(image).resize((size, size), Image.BILINEAR))
        scale = size / h
    visible = sample.get(Field.LANDMARKS_VISIBLE)
    panels = [image, draw_landmarks(image, _np(sample[Field.LANDMARKS_2D]),
                                    None if visible is None else _np(visible), scale=scale)]
    panels.append(overlay_segmentation(image, _np(sample[Field.SEGMENTATION])))
    mask = sample.get(Field.MASK)
    depth = colorize_depth(_np(sample[Field.DEPTH]), None if mask is None else _np(mask))
    if depth.shape[:2] != image.shape[:2]:
        depth = np.asarray(Image.fromarray(depth).resize(image.shape[1::-1], Image.NEAREST))
    panels.append(depth)
    return panels
