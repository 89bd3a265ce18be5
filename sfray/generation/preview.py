"""The dataset preview sheet: the first committed samples, read back from the shards.

Drawing from the stored records (not from a fresh render) shows exactly what a training job
will read: image | landmarks (green visible, red occluded) | segmentation overlay | depth.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from sfray.conventions import Field
from sfray.data import layout
from sfray.data.manifest import Manifest
from sfray.data.record import decode_record
from sfray.data.shard import ShardReader

PREVIEW_FILE = "preview.png"


def sample_panels(sample: dict[str, Any]) -> list[np.ndarray]:
    """Four (H, W, 3) uint8 panels of one decoded sample."""
    from sfray.viz.overlay import colorize_depth, draw_landmarks, overlay_segmentation
    from sfray.viz.sheet import to_hwc

    image = to_hwc(sample[Field.IMAGE])
    panels = [image, draw_landmarks(image, sample[Field.LANDMARKS_2D], sample.get(Field.LANDMARKS_VISIBLE))]
    panels.append(overlay_segmentation(image, sample[Field.SEGMENTATION]))
    panels.append(colorize_depth(sample[Field.DEPTH], sample.get(Field.MASK)))
    return panels


def write_dataset_preview(dataset_dir: str | Path, num_samples: int) -> Path | None:
    """Write ``DATASET/preview.png`` from the first ``num_samples`` kept samples; None if empty."""
    from sfray.viz.sheet import contact_sheet

    root = Path(dataset_dir)
    rows = Manifest.load(root).rows(statuses=("ok", "flagged"))[: max(num_samples, 0)]
    if not rows:
        return None
    panels: list[np.ndarray] = []
    readers: dict[str, ShardReader] = {}
    try:
        for row in rows:
            reader = readers.get(row["shard"])
            if reader is None:
                reader = readers[row["shard"]] = ShardReader(layout.shard_path(root, row["shard"]))
            panels.extend(sample_panels(decode_record(reader.get(row["key"]))))
    finally:
        for reader in readers.values():
            reader.close()
    out = root / PREVIEW_FILE
    tmp = root / f"{PREVIEW_FILE}{layout.TMP_MARK}"
    contact_sheet(panels, ncols=8 if len(rows) > 1 else 4).save(tmp, format="PNG")
    tmp.replace(out)
    return out
