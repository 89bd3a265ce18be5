"""Preview sheets: the dataset's ``preview.png`` and ``sfray preview``'s fresh samples.

Both draw every sample as image | landmarks (green visible, red occluded) | segmentation overlay
| depth with ``sfray.viz.panels.sample_panels``. The dataset sheet reads the first committed
records back from the shards (exactly what a training job will read); ``sfray preview`` renders
fresh samples in-process (no Ray, no shards) through the same producer a generation job uses.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sfray.config.loader import save_config
from sfray.config.schema import GenerateJobConfig
from sfray.data import layout
from sfray.data.reader import RecordReader, committed_rows
from sfray.data.record import decode_record
from sfray.io.atomic import atomic_path
from sfray.viz.panels import sample_panels
from sfray.viz.sheet import contact_sheet

#: Files ``sfray preview`` writes into ``output_dir`` (it is not a dataset directory).
PREVIEW_CONFIG_FILE = "preview_config.yaml"


def write_dataset_preview(dataset_dir: str | Path, num_samples: int) -> Path | None:
    """Write ``DATASET/preview.png`` from the first ``num_samples`` kept samples; None if empty."""
    root = Path(dataset_dir)
    rows = committed_rows(root).slice(0, max(num_samples, 0)).to_pylist()
    if not rows:
        return None
    panels: list[np.ndarray] = []
    with RecordReader(root) as reader:
        for row in rows:
            panels.extend(sample_panels(decode_record(reader.row(row))))
    out = root / layout.PREVIEW_FILE
    with atomic_path(out) as tmp:
        contact_sheet(panels, ncols=8 if len(rows) > 1 else 4).save(tmp, format="PNG")
    return out


def render_preview(cfg: GenerateJobConfig, *, panel: int = 256, per_row: int = 2,
                   device: str | None = None) -> Path:
    """Render ``cfg.generate.preview_samples`` fresh samples (ids 0, 1, ...) in-process and write
    ``output_dir/preview.png`` and the resolved config; returns the PNG path. Samples the quality
    gate would drop are shown too (a preview is for judging the config)."""
    from sfray.generation.executor import InProcessExecutor

    n = cfg.generate.preview_samples
    produced = InProcessExecutor(device).records(cfg, np.arange(n), keep_dropped=True)
    panels: list[np.ndarray] = []
    for item in produced:
        assert item.record is not None
        panels.extend(sample_panels(decode_record(item.record), size=panel))
    out_dir = Path(cfg.output_dir)
    path = out_dir / layout.PREVIEW_FILE
    with atomic_path(path) as tmp:
        contact_sheet(panels, ncols=4 * min(per_row, n), cell=(panel, panel)).save(tmp, format="PNG",
                                                                                    optimize=True)
    save_config(cfg, out_dir / PREVIEW_CONFIG_FILE)
    return path

