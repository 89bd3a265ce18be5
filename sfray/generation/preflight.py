"""Check the user's inputs on the driver, before any worker starts.

A missing or wrong file then fails once, with its own one-line message, instead of inside every
worker's constructor (and, on a cluster, after the workers were scheduled).
"""

from __future__ import annotations

from pathlib import Path

from sfray.annotate.detector import load_detector
from sfray.config.schema import GenerateJobConfig
from sfray.errors import AssetError
from sfray.geometry.alignment_map import load_alignment_map
from sfray.head.factory import build_head


def preflight(cfg: GenerateJobConfig) -> None:
    """Build the head (FLAME files are read and shape-checked), load the alignment map, import the
    detector, and check that a generator checkpoint exists (workers read it themselves)."""
    build_head(cfg.head)
    load_alignment_map(cfg.annotate.alignment_map)
    if cfg.quality.detector:
        load_detector(cfg.quality.detector)
    if cfg.generator.kind != "next3d":
        return
    from sfray.generators.next3d.wrapper import RANDOM_SMALL

    ckpt = cfg.generator.next3d.checkpoint
    if ckpt != RANDOM_SMALL and not Path(str(ckpt)).is_file():
        raise AssetError(f"{ckpt}: generator checkpoint not found (config key generator.next3d.checkpoint; "
                         "expected Next3D's next3d_ffhq_512.pkl or an sfray .safetensors)")
