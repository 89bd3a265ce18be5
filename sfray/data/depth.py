"""A record's depth maps with what they show and their units (docs/dataset.md).

A record made by sfray holds two depth maps: ``depth``, the z-buffer of the annotation mesh at the
image resolution (what landmarks, segmentation and visibility were computed from), and
``generator_depth``, the generator's own depth at its native resolution (Next3D's volume-rendered
depth with hair; the procedural renderer's z-buffer with its hair cap), with ``generator_mask``
its coverage or opacity. Records written before the generator's depth was stored have only the
first; they read as ``source = mesh``. Imported records may hold a relative (per-image 0..1)
depth instead of a metric one (``depth_kind``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from sfray.conventions import WORLD_UNITS_PER_METRE, DepthKind, DepthSource, Field

#: Unit names of :attr:`DepthMap.unit`.
WORLD_UNIT = "world"  # generator world units: head-model metres x WORLD_UNITS_PER_METRE
RELATIVE_UNIT = "relative"  # a per-image 0..1 normalisation, no scale


@dataclass(frozen=True)
class DepthMap:
    """One depth map of a record: camera-space z (distance along the optical axis)."""

    name: str  # the record field it came from
    values: np.ndarray  # (H, W) float32, 0 where ``mask`` is false for a mesh z-buffer
    mask: np.ndarray  # (H, W) bool: where the map shows geometry
    source: str  # a DepthSource value
    kind: str  # a DepthKind value

    @property
    def unit(self) -> str:
        return WORLD_UNIT if self.kind == DepthKind.METRIC else RELATIVE_UNIT

    def metres(self) -> np.ndarray:
        """The values in head-model metres (FLAME's scale); only for metric maps."""
        if self.kind != DepthKind.METRIC:
            raise ValueError(f"record field '{self.name}' holds {self.kind} depth, which has no scale")
        return self.values / WORLD_UNITS_PER_METRE


def depth_maps(record: Mapping[str, Any]) -> dict[str, DepthMap]:
    """The depth maps of a decoded record (``sfray.data.record.decode_record``), keyed by field name."""
    out: dict[str, DepthMap] = {}
    if Field.DEPTH in record:
        values = np.asarray(record[Field.DEPTH], dtype=np.float32)
        mask = np.asarray(record.get(Field.MASK, values > 0), dtype=bool)
        out[Field.DEPTH] = DepthMap(Field.DEPTH, values, mask, str(record.get(Field.DEPTH_SOURCE, DepthSource.MESH)),
                                    str(record.get(Field.DEPTH_KIND, DepthKind.METRIC)))
    if Field.GENERATOR_DEPTH in record:
        values = np.asarray(record[Field.GENERATOR_DEPTH], dtype=np.float32)
        cover = np.asarray(record.get(Field.GENERATOR_MASK, np.ones_like(values)), dtype=np.float32)
        out[Field.GENERATOR_DEPTH] = DepthMap(
            Field.GENERATOR_DEPTH, values, cover >= 0.5,
            str(record.get(Field.GENERATOR_DEPTH_SOURCE, DepthSource.UNKNOWN)), DepthKind.METRIC.value)
    return out
